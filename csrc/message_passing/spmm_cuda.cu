// CUDA spmm: out[i] = ⊕_{e in row i} w_e · x[src[e]] for sum / mean / min / max (docs/ops.md).
// A gather over the CSR by destination: one lane group per destination row, lanes across the features, reading
// each neighbour's feature row as one coalesced (128-bit when possible) stretch. The group owns out[i] and
// arg[i], so no atomics are needed and the result is deterministic (see csr_row_reduce in cuda_utils.cuh).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "common/checks.h"
#include "common/cuda_utils.cuh"
#include "common/reducer.h"

namespace fastsim {
namespace {

using cuda::kThreads;

// No __launch_bounds__: with it ptxas capped the row kernels at 64 registers and spilled the float64 min/max paths.
template <typename scalar_t, Reduce R, int VEC>
__global__ void spmm_kernel(const int64_t* __restrict__ indptr, const int64_t* __restrict__ src,
                            const scalar_t* __restrict__ weight, const scalar_t* __restrict__ x,
                            scalar_t* __restrict__ out, int64_t* __restrict__ arg, int64_t N, int64_t F,
                            int lanes_log2) {
  const cuda::LaneGroup g = cuda::lane_group(1 << lanes_log2);
  // Groups are whole within a block (lanes divides 32), so a group's lanes share `row` and leave together.
  // (a shift, not a 64-bit division, which is a slow subroutine call on the GPU)
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> lanes_log2;
  if (row >= N) return;
  cuda::csr_row_reduce<scalar_t, R, VEC>(g, row, indptr, src, weight, x, F, out, arg);
}

template <typename scalar_t, Reduce R, int VEC>
void launch(const at::Tensor& indptr, const at::Tensor& src, const scalar_t* weight, const at::Tensor& x,
            at::Tensor& out, at::Tensor& arg, int64_t N, int64_t F) {
  const int lanes = cuda::lanes_for(cuda::ceil_div(F, VEC));
  const int64_t blocks = cuda::ceil_div(N * lanes, kThreads);
  spmm_kernel<scalar_t, R, VEC><<<static_cast<unsigned>(blocks), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      indptr.const_data_ptr<int64_t>(), src.const_data_ptr<int64_t>(), weight, x.const_data_ptr<scalar_t>(),
      out.mutable_data_ptr<scalar_t>(), has_arg(R) ? arg.mutable_data_ptr<int64_t>() : nullptr, N, F,
      cuda::log2_exact(lanes));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

std::tuple<at::Tensor, at::Tensor> spmm_cuda(const at::Tensor& indptr, const at::Tensor& src,
                                             const at::Tensor& rev_indptr, const at::Tensor& rev_dst,
                                             const at::Tensor& rev_perm, const std::optional<at::Tensor>& weight,
                                             const at::Tensor& x, c10::string_view reduce) {
  // rev_* serve the backward (an spmm over the transposed CSR, run by the caller); the forward reads only the CSR.
  const Reduce r = parse_reduce(reduce);
  check_index(indptr, "indptr");
  check_index(src, "src");
  check_index(rev_indptr, "rev_indptr");
  check_index(rev_dst, "rev_dst");
  check_index(rev_perm, "rev_perm");
  check_float(x, "x");
  check_same_device(indptr, src, "src");
  check_same_device(indptr, x, "x");
  TORCH_CHECK(indptr.numel() >= 1, "indptr must have N+1 >= 1 entries");
  const int64_t N = indptr.numel() - 1;
  const int64_t E = src.numel();
  TORCH_CHECK(x.dim() == 2 && x.size(0) == N, "x must have shape (N, F) with N = ", N, "; got ", x.sizes());
  if (weight.has_value()) {
    check_float(*weight, "weight");
    check_same_device(indptr, *weight, "weight");
    TORCH_CHECK(weight->scalar_type() == x.scalar_type(), "weight must have x's dtype ", x.scalar_type(), "; got ",
                weight->scalar_type());
    TORCH_CHECK(weight->dim() == 1 && weight->numel() == E, "weight must have shape (E,) with E = ", E, "; got ",
                weight->sizes());
  }
  c10::cuda::CUDAGuard guard(x.device());

  const int64_t F = x.size(1);
  at::Tensor out = at::empty({N, F}, x.options());
  at::Tensor arg = at::empty(has_arg(r) ? at::IntArrayRef{N, F} : at::IntArrayRef{0}, x.options().dtype(at::kLong));
  if (N == 0 || F == 0) return {out, arg};  // nothing to write; a zero-sized grid is a launch error

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "spmm_cuda", [&] {
    const scalar_t* w = weight.has_value() ? weight->const_data_ptr<scalar_t>() : nullptr;
    constexpr int V = cuda::kVec16<scalar_t>;
    // 128-bit path: every neighbour row x + j*F is 16-byte aligned when x is and F % V == 0 (out is fresh).
    const bool vec = F % V == 0 && cuda::is_aligned16(x.const_data_ptr());
    FASTSIM_DISPATCH_REDUCE(r, [&] {
      if (vec) {
        launch<scalar_t, REDUCE, V>(indptr, src, w, x, out, arg, N, F);
      } else {
        launch<scalar_t, REDUCE, 1>(indptr, src, w, x, out, arg, N, F);
      }
    });
  });
  return {out, arg};
}

}  // namespace
}  // namespace fastsim

TORCH_LIBRARY_IMPL(fastsim, CUDA, m) { m.impl("spmm", &fastsim::spmm_cuda); }
