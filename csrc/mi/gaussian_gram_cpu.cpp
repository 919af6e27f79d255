// Fused Gaussian Gram matrices on the CPU, batched over the leading dimension:
//   gaussian_gram:  A_bij = exp(−‖x_bi − x_bj‖² / (2σ_b²)) / N                  (trace 1)
//                   with `other` (trace-1 Grams O_b): A_b ∘ O_b / tr(A_b ∘ O_b) = A_b ∘ O_b · N / tr(O_b)
//   kde_logsumexp:  L_bi = log Σ_j exp(−scale · ‖t_bi − t_bj‖²), in column chunks (O(N) memory)
// Both take squared distances in GEMM form (see below). Each output row is owned by one thread.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/diagonal.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <torch/library.h>

#include <cmath>
#include <limits>
#include <optional>

#include "mi/mi_checks.h"

namespace fastsim {
namespace {

// Squared distances in GEMM form, ‖x_i‖² + ‖x_j‖² − 2 x_i·x_j, with the dot products from one batched GEMM: at
// d = 784 this is ~10× faster than differences, and the cancellation it allows (≈ 1e-16·‖x‖² in d²) is far below
// what moves an entropy (plain torch's cdist does the same; compat="iprl" keeps the authors' differences in
// Python). The self distance is set to 0 exactly and negative rounding residues are clamped.
at::Tensor gaussian_gram_cpu(const at::Tensor& x, const at::Tensor& sigma, const std::optional<at::Tensor>& other) {
  check_gram_args(x, sigma, other);
  const int64_t B = x.size(0), N = x.size(1);
  at::Tensor out = at::empty({B, N, N}, x.options());
  if (out.numel() == 0) return out;
  // detach(): the GEMM's out= form refuses inputs that require grad (this op's autograd is registered above it).
  at::bmm_out(out, x.detach(), x.detach().transpose(1, 2));
  const at::Tensor squares = out.diagonal(0, 1, 2).clone();  // ‖x_i‖² (B, N): the dots' own diagonal
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gaussian_gram_cpu", [&] {
    using Vec = at::vec::Vectorized<scalar_t>;
    const scalar_t* sq = squares.data_ptr<scalar_t>();
    const scalar_t* sp = sigma.data_ptr<scalar_t>();
    const scalar_t* op = other.has_value() ? other->data_ptr<scalar_t>() : nullptr;
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, B * N, std::max<int64_t>(1, 16384 / std::max<int64_t>(N, 1)), [&](int64_t r0, int64_t r1) {
      for (int64_t row = r0; row < r1; ++row) {
        const int64_t b = row / N, i = row % N;
        double factor = 1.0 / double(N);
        if (op != nullptr) {
          double trace = 0;
          for (int64_t k = 0; k < N; ++k) trace += double(op[(b * N + k) * N + k]);
          factor = 1.0 / trace;  // (1/N) · N / tr(O)
        }
        scalar_t* line = o + row * N;
        const scalar_t* other_line = op != nullptr ? op + row * N : nullptr;
        const scalar_t* sq_b = sq + b * N;
        const Vec sq_i(sq[row]), two(scalar_t(2)), zero(scalar_t(0)), scale{scalar_t(factor)};
        const Vec minus_inv(scalar_t(-1.0 / (2.0 * double(sp[b]) * double(sp[b]))));
        auto kernel = [&](int64_t j, int64_t count) {
          const Vec d2 = at::vec::maximum(sq_i + Vec::loadu(sq_b + j, count) - two * Vec::loadu(line + j, count), zero);
          Vec k = (minus_inv * d2).exp() * scale;
          if (other_line != nullptr) k = k * Vec::loadu(other_line + j, count);
          k.store(line + j, count);
        };
        int64_t j = 0;
        for (; j + Vec::size() <= N; j += Vec::size()) kernel(j, Vec::size());
        if (j < N) kernel(j, N - j);
        line[i] = scalar_t(factor * (other_line != nullptr ? double(other_line[i]) : 1.0));  // d² = 0 exactly
      }
    });
  });
  return out;
}

// Rows are taken in blocks of kRowBlock, columns in chunks of kColChunk: the dot products of a tile are one small
// GEMM (‖a‖² + ‖b‖² − 2a·b; the cancellation it allows is far below the kernel's resolution: exp(−scale·d²) of two
// near points is ≈ 1 either way), then exp and the row sums run in vector lanes. The self term j = i has d² = 0
// exactly and is the largest (exp(0) = 1), so Σ_j lies in [1, N] and needs no running maximum. Memory: one
// kRowBlock × kColChunk tile per thread.
constexpr int64_t kRowBlock = 64, kColChunk = 512;

at::Tensor kde_logsumexp_cpu(const at::Tensor& t_in, double scale) {
  check_kde_args(t_in);
  const at::Tensor t = t_in.detach();  // as in gaussian_gram_cpu: out= GEMMs refuse inputs that require grad
  const int64_t B = t.size(0), N = t.size(1), D = t.size(2);
  at::Tensor out = at::empty({B, N}, t.options());
  if (out.numel() == 0) return out;
  const at::Tensor squares = t.square().sum(-1);  // (B, N)
  const int64_t row_blocks = (N + kRowBlock - 1) / kRowBlock;
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "kde_logsumexp_cpu", [&] {
    using Vec = at::vec::Vectorized<scalar_t>;
    const scalar_t* sq = squares.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, B * row_blocks, 1, [&](int64_t task0, int64_t task1) {
      at::Tensor tile = at::empty({kRowBlock, kColChunk}, t.options());
      scalar_t* buf = tile.data_ptr<scalar_t>();
      for (int64_t task = task0; task < task1; ++task) {
        const int64_t b = task / row_blocks, r0 = (task % row_blocks) * kRowBlock;
        const int64_t rows = std::min(kRowBlock, N - r0);
        const at::Tensor t_rows = t[b].narrow(0, r0, rows);
        Vec acc_rows[kRowBlock];
        for (int64_t r = 0; r < rows; ++r) acc_rows[r] = Vec(scalar_t(0));
        for (int64_t c0 = 0; c0 < N; c0 += kColChunk) {
          const int64_t cols = std::min(kColChunk, N - c0);
          at::Tensor dots = tile.narrow(0, 0, rows).narrow(1, 0, cols);
          at::mm_out(dots, t_rows, t[b].narrow(0, c0, cols).t());
          const scalar_t* sq_cols = sq + b * N + c0;
          const Vec minus_scale(scalar_t(-scale)), two(scalar_t(2)), zero(scalar_t(0));
          for (int64_t r = 0; r < rows; ++r) {
            scalar_t* line = buf + r * kColChunk;  // the narrowed tile keeps the row stride kColChunk
            const Vec sq_row(sq[b * N + r0 + r]);
            const int64_t self = r0 + r - c0;  // d² of the self pair is 0 exactly, not a rounding residue
            auto exps = [&](int64_t k, int64_t count) {
              Vec d2 = at::vec::maximum(sq_row + Vec::loadu(sq_cols + k, count) - two * Vec::loadu(line + k, count), zero);
              Vec e = (minus_scale * d2).exp();
              if (self >= k && self < k + count) {
                scalar_t lanes[Vec::size()];
                e.store(lanes);
                lanes[self - k] = scalar_t(1);
                e = Vec::loadu(lanes);
              }
              // Lanes past `count` are zeros (loadu with a count zero-fills), so their exp is 1: mask them out.
              if (count < Vec::size()) e = Vec::set(zero, e, count);
              acc_rows[r] = acc_rows[r] + e;
            };
            int64_t k = 0;
            for (; k + Vec::size() <= cols; k += Vec::size()) exps(k, Vec::size());
            if (k < cols) exps(k, cols - k);
          }
        }
        for (int64_t r = 0; r < rows; ++r) {
          scalar_t lanes[Vec::size()];
          acc_rows[r].store(lanes);
          double total = 0;
          for (int l = 0; l < Vec::size(); ++l) total += double(lanes[l]);
          o[b * N + r0 + r] = scalar_t(std::log(total));
        }
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastsim, CPU, m) {
  m.impl("gaussian_gram", &gaussian_gram_cpu);
  m.impl("kde_logsumexp", &kde_logsumexp_cpu);
}

}  // namespace fastsim
