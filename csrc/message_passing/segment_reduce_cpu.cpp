// segment_reduce on the CPU: out[i] = reduce(src[indptr[i]:indptr[i+1]]) for any trailing feature shape.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "common/checks.h"
#include "message_passing/reduce_rows_cpu.h"

namespace fastsim {
namespace {

std::tuple<at::Tensor, at::Tensor> segment_reduce_cpu(const at::Tensor& src, const at::Tensor& indptr,
                                                      c10::string_view reduce) {
  check_float(src, "src");
  check_index(indptr, "indptr");
  TORCH_CHECK(src.dim() >= 1, "src must have at least one dimension");
  const Reduce r = parse_reduce(reduce);
  check_offsets(indptr, src.size(0), "indptr");
  const int64_t num_rows = indptr.numel() - 1;
  auto out_sizes = src.sizes().vec();
  out_sizes[0] = num_rows;
  const int64_t F = src.dim() == 1 ? 1 : src.numel() / std::max<int64_t>(src.size(0), 1);
  at::Tensor out = at::empty(out_sizes, src.options());
  at::Tensor arg = has_arg(r) ? at::empty(out_sizes, indptr.options()) : at::empty({0}, indptr.options());
  if (out.numel() == 0) return {out, arg};
  const int64_t* ip = indptr.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, src.scalar_type(), "segment_reduce_cpu", [&] {
    const scalar_t* s = src.data_ptr<scalar_t>();
    using acc_t = at::opmath_type<scalar_t>;
    int64_t* a = has_arg(r) ? arg.data_ptr<int64_t>() : nullptr;
    FASTSIM_DISPATCH_REDUCE(r, [&] {
      reduce_rows_cpu<scalar_t, REDUCE>(
          ip, num_rows, F, [&](int64_t e) { return s + e * F; }, [](int64_t) { return acc_t(1); },
          out.data_ptr<scalar_t>(), a);
    });
  });
  return {out, arg};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastsim, CPU, m) { m.impl("segment_reduce", &segment_reduce_cpu); }

}  // namespace fastsim
