// spmm on the CPU: out[i] = reduce_{e into i} w_e * x[src[e]], one destination row per loop iteration.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "common/checks.h"
#include "message_passing/reduce_rows_cpu.h"

namespace fastsim {
namespace {

std::tuple<at::Tensor, at::Tensor> spmm_cpu(const at::Tensor& indptr, const at::Tensor& src,
                                            const at::Tensor& /*rev_indptr*/, const at::Tensor& /*rev_dst*/,
                                            const at::Tensor& /*rev_perm*/,
                                            const std::optional<at::Tensor>& weight, const at::Tensor& x,
                                            c10::string_view reduce) {
  check_index(indptr, "indptr");
  check_index(src, "src");
  check_float(x, "x");
  TORCH_CHECK(x.dim() == 2, "x must be 2-D (N, F), got ", x.dim(), "-D");
  const Reduce r = parse_reduce(reduce);
  check_offsets(indptr, src.numel(), "indptr");
  check_in_range(src, x.size(0), "src");
  const int64_t num_rows = indptr.numel() - 1, F = x.size(1);
  if (weight) {
    check_float(*weight, "weight");
    TORCH_CHECK(weight->scalar_type() == x.scalar_type(), "weight and x must share a dtype");
    TORCH_CHECK(weight->dim() == 1 && weight->numel() == src.numel(), "weight must have shape (E,)");
  }
  at::Tensor out = at::empty({num_rows, F}, x.options());
  at::Tensor arg = has_arg(r) ? at::empty({num_rows, F}, indptr.options()) : at::empty({0}, indptr.options());
  if (out.numel() == 0) return {out, arg};
  const int64_t* ip = indptr.data_ptr<int64_t>();
  const int64_t* col = src.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "spmm_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* w = weight ? weight->data_ptr<scalar_t>() : nullptr;
    int64_t* a = has_arg(r) ? arg.data_ptr<int64_t>() : nullptr;
    auto value_of = [&](int64_t e) { return xp + col[e] * F; };
    FASTSIM_DISPATCH_REDUCE(r, [&] {
      if (w) {
        reduce_rows_cpu<scalar_t, REDUCE>(
            ip, num_rows, F, value_of, [&](int64_t e) { return acc_t(w[e]); }, out.data_ptr<scalar_t>(), a);
      } else {
        reduce_rows_cpu<scalar_t, REDUCE>(
            ip, num_rows, F, value_of, [](int64_t) { return acc_t(1); }, out.data_ptr<scalar_t>(), a);
      }
    });
  });
  return {out, arg};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastsim, CPU, m) { m.impl("spmm", &spmm_cpu); }

}  // namespace fastsim
