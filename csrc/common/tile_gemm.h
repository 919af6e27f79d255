// Small dense products on row tiles that live in cache, for kernels whose widths (8–350) are too small for a
// BLAS call per tile to pay off: its dispatch costs more than the arithmetic. Rows are padded to whole SIMD
// vectors with zeros that stay zero through the products (padded weight columns are zero) and through GELU
// (GELU(0) = 0), so every product and activation runs on full vectors.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/gelu.h"

namespace fastsim {

// n rounded up to whole SIMD vectors of scalar_t.
template <typename scalar_t>
int64_t padded(int64_t n) {
  constexpr int64_t V = at::vec::Vectorized<scalar_t>::size();
  return (n + V - 1) / V * V;
}

// C[r, :] += Σ_k A(r, k) B[k, :] for R rows and NV vectors of columns, accumulators in registers.
// A(r, k) = a[r * a_row + k * a_k] (so a transposed A is just other strides); B row-major with ldb. With `Tail`
// (NV = 1) only the first `tail` < V columns are read and written: the last columns of a width that is not a
// whole number of vectors, in rows without padding.
template <typename scalar_t, int R, int NV, bool Tail = false>
void tile_kernel(const scalar_t* a, int64_t a_row, int64_t a_k, const scalar_t* b, int64_t ldb, scalar_t* c,
                 int64_t ldc, int64_t K, int64_t tail = 0) {
  using Vec = at::vec::Vectorized<scalar_t>;
  constexpr int64_t V = Vec::size();
  static_assert(!Tail || NV == 1, "a tail is one partial vector");
  auto load = [tail](const scalar_t* p) {
    if constexpr (Tail) return Vec::loadu(p, tail);
    else return Vec::loadu(p);
  };
  Vec acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = load(c + r * ldc + v * V);
  for (int64_t k = 0; k < K; ++k) {
    Vec bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = load(b + k * ldb + v * V);
    for (int r = 0; r < R; ++r) {
      const Vec av(a[r * a_row + k * a_k]);
      for (int v = 0; v < NV; ++v) acc[r][v] = at::vec::fmadd(av, bv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) {
      if constexpr (Tail) acc[r][v].store(c + r * ldc + v * V, tail);
      else acc[r][v].store(c + r * ldc + v * V);
    }
}

// Rows of a column block in steps of six: twelve accumulators plus two B vectors fit the 16 AVX2 registers (AVX-512
// has 32, but blocks of 8, 12 or 14 rows measured up to 10 % slower there on the NGS rollouts).
template <typename scalar_t, int NV, bool Tail = false>
void tile_rows(int64_t m, const scalar_t* a, int64_t a_row, int64_t a_k, const scalar_t* b, int64_t ldb,
               scalar_t* c, int64_t ldc, int64_t K, int64_t tail = 0) {
  int64_t r = 0;
  for (; r + 6 <= m; r += 6)
    tile_kernel<scalar_t, 6, NV, Tail>(a + r * a_row, a_row, a_k, b, ldb, c + r * ldc, ldc, K, tail);
  const scalar_t* ar = a + r * a_row;
  scalar_t* cr = c + r * ldc;
  switch (m - r) {
    case 5: tile_kernel<scalar_t, 5, NV, Tail>(ar, a_row, a_k, b, ldb, cr, ldc, K, tail); break;
    case 4: tile_kernel<scalar_t, 4, NV, Tail>(ar, a_row, a_k, b, ldb, cr, ldc, K, tail); break;
    case 3: tile_kernel<scalar_t, 3, NV, Tail>(ar, a_row, a_k, b, ldb, cr, ldc, K, tail); break;
    case 2: tile_kernel<scalar_t, 2, NV, Tail>(ar, a_row, a_k, b, ldb, cr, ldc, K, tail); break;
    case 1: tile_kernel<scalar_t, 1, NV, Tail>(ar, a_row, a_k, b, ldb, cr, ldc, K, tail); break;
    default: break;
  }
}

// C (m × n) += A (m × K) · B (K × n); see tile_kernel for the strides. The callers that pad their rows pass n a
// multiple of the SIMD width; otherwise the last n mod V columns run as a masked tail.
template <typename scalar_t>
void tile_gemm(int64_t m, int64_t n, int64_t K, const scalar_t* a, int64_t a_row, int64_t a_k, const scalar_t* b,
               int64_t ldb, scalar_t* c, int64_t ldc) {
  constexpr int64_t V = at::vec::Vectorized<scalar_t>::size();
  int64_t col = 0;
  for (; col + 2 * V <= n; col += 2 * V) tile_rows<scalar_t, 2>(m, a, a_row, a_k, b + col, ldb, c + col, ldc, K);
  if (col + V <= n) {
    tile_rows<scalar_t, 1>(m, a, a_row, a_k, b + col, ldb, c + col, ldc, K);
    col += V;
  }
  if (col < n) tile_rows<scalar_t, 1, true>(m, a, a_row, a_k, b + col, ldb, c + col, ldc, K, n - col);
}

// A 2-D `w` (or its transpose when `transpose`), (rows × cols), copied into a zero (rows × cols_padded) buffer;
// read through its strides, so transposed views and column blocks of a weight need no copy of their own.
template <typename scalar_t>
std::vector<scalar_t> padded_weight(const at::Tensor& w, bool transpose) {
  const int64_t rows = w.size(transpose ? 1 : 0), cols = w.size(transpose ? 0 : 1), ld = padded<scalar_t>(cols);
  const int64_t row_stride = w.stride(transpose ? 1 : 0), col_stride = w.stride(transpose ? 0 : 1);
  std::vector<scalar_t> out(rows * ld, scalar_t(0));
  const scalar_t* p = w.data_ptr<scalar_t>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[r * ld + c] = p[r * row_stride + c * col_stride];
  return out;
}

// y[0, n) <- x[0, n) in vector loads and stores: the rows copied here are a few vectors long, and a library copy
// per row (what std::copy becomes) cost more than the copy, a few % of a small rollout step.
template <typename scalar_t>
inline void copy_row(const scalar_t* x, int64_t n, scalar_t* y) {
  using Vec = at::vec::Vectorized<scalar_t>;
  for_vectors<scalar_t>(n, [&](int64_t k, int64_t count) { Vec::loadu(x + k, count).store(y + k, count); });
}

// Rows 0..t of a (·, ld) tile set to `row` (its first n entries; the rest of each row stays as it is).
template <typename scalar_t>
void fill_rows(scalar_t* tile, int64_t t, int64_t ld, const scalar_t* row, int64_t n) {
  for (int64_t k = 0; k < t; ++k) copy_row(row, n, tile + k * ld);
}

// Rows 0..m of y (stride ld) set to the first n values of `row_of(k)` and zeros up to ld.
template <typename scalar_t, typename RowOf>
void fill_rows_from(scalar_t* y, int64_t m, int64_t ld, int64_t n, RowOf row_of) {
  for (int64_t k = 0; k < m; ++k) {
    copy_row(row_of(k), n, y + k * ld);
    std::fill(y + k * ld + n, y + (k + 1) * ld, scalar_t(0));
  }
}

// A Linear `y = x @ wt + b` on row blocks, wt padded to (in, outp); `b` zero when the Linear has none. `w_t` may
// be any strided (in, out) view, e.g. a transposed column block of an nn.Linear weight.
template <typename scalar_t>
struct TileLinear {
  int64_t in, out, outp;
  std::vector<scalar_t> wt, b;

  TileLinear(const at::Tensor& w_t, const at::Tensor* bias)
      : in(w_t.size(0)),
        out(w_t.size(1)),
        outp(padded<scalar_t>(out)),
        wt(padded_weight<scalar_t>(w_t, /*transpose=*/false)),
        b(outp, scalar_t(0)) {
    if (bias) {
      const scalar_t* p = bias->data_ptr<scalar_t>();
      for (int64_t c = 0; c < out; ++c) b[c] = p[c * bias->stride(0)];
    }
  }

  // y[r, :outp] += x[r, :in] @ wt for m rows (x rows of stride ldx, y rows of stride ldy).
  void accumulate(int64_t m, const scalar_t* x, int64_t ldx, scalar_t* y, int64_t ldy) const {
    tile_gemm(m, outp, in, x, ldx, 1, wt.data(), outp, y, ldy);
  }

  // y (m × outp, contiguous) = [GELU](b + x @ wt).
  void apply(int64_t m, const scalar_t* x, int64_t ldx, scalar_t* y, bool gelu) const {
    fill_rows(y, m, outp, b.data(), outp);
    accumulate(m, x, ldx, y, outp);
    if (gelu) gelu_inplace(y, m * outp);
  }
};

}  // namespace fastsim
