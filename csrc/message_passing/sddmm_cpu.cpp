// sddmm on the CPU: per-edge values from u[src[e]] and v[i] for every CSR edge e into node i.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "common/checks.h"
#include "common/parallel.h"

namespace fastsim {
namespace {

enum class EdgeOp { Dot, Add, Mul };

EdgeOp parse_edge_op(c10::string_view op) {
  if (op == "dot") return EdgeOp::Dot;
  if (op == "add") return EdgeOp::Add;
  TORCH_CHECK(op == "mul", "op must be one of dot, add, mul; got '", op, "'");
  return EdgeOp::Mul;
}

template <typename scalar_t>
void sddmm_rows(const int64_t* ip, const int64_t* col, int64_t num_rows, int64_t F, EdgeOp edge_op,
                const scalar_t* up, const scalar_t* vp, scalar_t* o) {
  using acc_t = at::opmath_type<scalar_t>;
  // Edge e belongs to exactly one row, so each output element is written by one chunk only.
  parallel_rows(ip, num_rows, F, [&](int64_t row_begin, int64_t row_end) {
    for (int64_t i = row_begin; i < row_end; ++i) {
      const scalar_t* __restrict vi = vp + i * F;
      for (int64_t e = ip[i]; e < ip[i + 1]; ++e) {
        const scalar_t* __restrict uj = up + col[e] * F;
        scalar_t* __restrict oe = o + e * F;
        if (edge_op == EdgeOp::Dot) {
          acc_t dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int64_t f = 0; f < F; ++f) dot += acc_t(uj[f]) * acc_t(vi[f]);
          o[e] = scalar_t(dot);
        } else if (edge_op == EdgeOp::Add) {
          for (int64_t f = 0; f < F; ++f) oe[f] = scalar_t(acc_t(uj[f]) + acc_t(vi[f]));
        } else {
          for (int64_t f = 0; f < F; ++f) oe[f] = scalar_t(acc_t(uj[f]) * acc_t(vi[f]));
        }
      }
    }
  });
}

at::Tensor sddmm_cpu(const at::Tensor& indptr, const at::Tensor& src, const at::Tensor& /*rev_indptr*/,
                     const at::Tensor& /*rev_dst*/, const at::Tensor& /*rev_perm*/, const at::Tensor& u,
                     const at::Tensor& v, c10::string_view op) {
  check_index(indptr, "indptr");
  check_index(src, "src");
  check_float(u, "u");
  check_float(v, "v");
  TORCH_CHECK(u.dim() == 2 && v.dim() == 2 && u.size(1) == v.size(1), "u and v must be (N, F) with equal F");
  const EdgeOp edge_op = parse_edge_op(op);
  check_offsets(indptr, src.numel(), "indptr");
  check_in_range(src, u.size(0), "src");
  const int64_t num_rows = indptr.numel() - 1, E = src.numel(), F = u.size(1);
  TORCH_CHECK(num_rows <= v.size(0), "v must have a row for each of the ", num_rows, " rows of indptr");
  at::Tensor out = edge_op == EdgeOp::Dot ? at::empty({E}, u.options()) : at::empty({E, F}, u.options());
  if (E == 0) return out;
  const int64_t* ip = indptr.data_ptr<int64_t>();
  const int64_t* col = src.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, u.scalar_type(), "sddmm_cpu", [&] {
    sddmm_rows<scalar_t>(ip, col, num_rows, F, edge_op, u.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(),
                         out.data_ptr<scalar_t>());
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastsim, CPU, m) { m.impl("sddmm", &sddmm_cpu); }

}  // namespace fastsim
