// CUDA segment_reduce: out[i] = ⊕ src[indptr[i]:indptr[i+1]] for sum / mean / min / max (docs/ops.md).
// One lane group per segment (see csr_row_reduce): the group owns its output row, so there are no atomics and the
// result does not depend on scheduling.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "common/checks.h"
#include "common/cuda_utils.cuh"
#include "common/reducer.h"

namespace fastsim {
namespace {

using cuda::kThreads;

// No __launch_bounds__: with it ptxas capped the row kernels at 64 registers and spilled the float64 min/max paths.
template <typename scalar_t, Reduce R, int VEC>
__global__ void segment_reduce_kernel(const scalar_t* __restrict__ src, const int64_t* __restrict__ indptr,
                                      scalar_t* __restrict__ out, int64_t* __restrict__ arg, int64_t N, int64_t F,
                                      int lanes_log2) {
  const cuda::LaneGroup g = cuda::lane_group(1 << lanes_log2);
  // Groups are whole within a block (lanes divides 32 and blockDim), so a group's lanes share `row` and leave
  // together.
  // (a shift, not a 64-bit division, which is a slow subroutine call on the GPU)
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> lanes_log2;
  if (row >= N) return;
  cuda::csr_row_reduce<scalar_t, R, VEC>(g, row, indptr, /*index=*/nullptr, /*weight=*/nullptr, src, F, out, arg);
}

template <typename scalar_t, Reduce R, int VEC>
void launch(const at::Tensor& src, const at::Tensor& indptr, at::Tensor& out, at::Tensor& arg, int64_t N,
            int64_t F) {
  const int lanes = cuda::lanes_for(cuda::ceil_div(F, VEC));
  const int64_t blocks = cuda::ceil_div(N * lanes, kThreads);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  segment_reduce_kernel<scalar_t, R, VEC><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      src.const_data_ptr<scalar_t>(), indptr.const_data_ptr<int64_t>(), out.mutable_data_ptr<scalar_t>(),
      has_arg(R) ? arg.mutable_data_ptr<int64_t>() : nullptr, N, F,
      cuda::log2_exact(lanes));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

std::tuple<at::Tensor, at::Tensor> segment_reduce_cuda(const at::Tensor& src, const at::Tensor& indptr,
                                                       c10::string_view reduce) {
  const Reduce r = parse_reduce(reduce);
  check_index(indptr, "indptr");
  check_float(src, "src");
  check_same_device(indptr, src, "src");
  TORCH_CHECK(src.dim() >= 1, "src must have at least one dimension");
  TORCH_CHECK(indptr.numel() >= 1, "indptr must have N+1 >= 1 entries");
  c10::cuda::CUDAGuard guard(src.device());

  const int64_t N = indptr.numel() - 1;
  int64_t F = 1;  // features per segment element: the product of src's trailing sizes (valid for E = 0 too)
  std::vector<int64_t> sizes = src.sizes().vec();
  for (size_t d = 1; d < sizes.size(); ++d) F *= sizes[d];
  sizes[0] = N;

  at::Tensor out = at::empty(sizes, src.options());
  const auto long_opts = src.options().dtype(at::kLong);
  at::Tensor arg = has_arg(r) ? at::empty(sizes, long_opts) : at::empty({0}, long_opts);
  if (N == 0 || F == 0) return {out, arg};  // nothing to write; a zero-sized grid is a launch error

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, src.scalar_type(), "segment_reduce_cuda", [&] {
    constexpr int V = cuda::kVec16<scalar_t>;
    // 128-bit path: every row start src + e*F is 16-byte aligned when src is and F % V == 0 (out is fresh).
    const bool vec = F % V == 0 && cuda::is_aligned16(src.const_data_ptr());
    FASTSIM_DISPATCH_REDUCE(r, [&] {
      if (vec) {
        launch<scalar_t, REDUCE, V>(src, indptr, out, arg, N, F);
      } else {
        launch<scalar_t, REDUCE, 1>(src, indptr, out, arg, N, F);
      }
    });
  });
  return {out, arg};
}

}  // namespace
}  // namespace fastsim

TORCH_LIBRARY_IMPL(fastsim, CUDA, m) { m.impl("segment_reduce", &fastsim::segment_reduce_cuda); }
