// CUDA sddmm: per-edge values from the two endpoints, for every CSR edge e = (j -> i) (docs/ops.md):
//   dot: out[e] = <u[j], v[i]>,   add / mul: out[e, :] = u[j] + v[i] / u[j] * v[i].
// One lane group per destination row i, lanes across the features: v[i] is read once per row chunk and stays in
// L1, each u[j] row is one coalesced (128-bit when possible) read, and for add/mul each thread writes its own
// (edge, feature-vector) outputs. For dot the group reduces each edge's partial sums with __shfl_down_sync.
// Every output element belongs to exactly one edge of one row, so there are no atomics.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "common/checks.h"
#include "common/cuda_utils.cuh"

namespace fastsim {
namespace {

using cuda::kThreads;

enum class SddmmOp { Dot, Add, Mul };

SddmmOp parse_op(c10::string_view op) {
  if (op == "dot") return SddmmOp::Dot;
  if (op == "add") return SddmmOp::Add;
  if (op == "mul") return SddmmOp::Mul;
  TORCH_CHECK(false, "op must be one of dot, add, mul; got '", op, "'");
}

// No __launch_bounds__: with it ptxas capped these kernels at 64 registers and spilled the float64 paths.
template <typename scalar_t, SddmmOp OP, int VEC>
__global__ void sddmm_kernel(const int64_t* __restrict__ indptr, const int64_t* __restrict__ src,
                             const scalar_t* __restrict__ u, const scalar_t* __restrict__ v,
                             scalar_t* __restrict__ out, int64_t N, int64_t F, int lanes_log2) {
  using acc_t = at::opmath_type<scalar_t>;
  using Vt = cuda::Vec<scalar_t, VEC>;
  constexpr int kUnroll = 4;  // edges whose u rows are loaded before they are used: gathers in flight
  const cuda::LaneGroup g = cuda::lane_group(1 << lanes_log2);
  // Groups are whole within a block, so a group's lanes share `row` and leave together (a shift: a 64-bit
  // division is a slow subroutine on the GPU).
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> lanes_log2;
  if (row >= N) return;
  const int64_t start = indptr[row];
  const int64_t end = indptr[row + 1];
  const int64_t chunk = static_cast<int64_t>(g.lanes) * VEC;
  for (int64_t e0 = start; e0 < end; e0 += g.lanes) {
    const int n = static_cast<int>(end - e0 < g.lanes ? end - e0 : g.lanes);  // same for the whole group
    // One coalesced read of the next `lanes` sources; lane k's value is broadcast below by shuffle.
    const int64_t my_j = g.lane < n ? src[e0 + g.lane] : 0;
    for (int k0 = 0; k0 < n; k0 += kUnroll) {
      int64_t j[kUnroll];
#pragma unroll
      for (int q = 0; q < kUnroll; ++q) j[q] = __shfl_sync(g.mask, my_j, (k0 + q) & (g.lanes - 1), g.lanes);
      if constexpr (OP == SddmmOp::Dot) {
        acc_t part[kUnroll];
#pragma unroll
        for (int q = 0; q < kUnroll; ++q) part[q] = acc_t(0);
        for (int64_t f = static_cast<int64_t>(g.lane) * VEC; f < F; f += chunk) {
          const Vt b = *reinterpret_cast<const Vt*>(v + row * F + f);
#pragma unroll
          for (int q = 0; q < kUnroll; ++q) {
            if (k0 + q < n) {
              const Vt a = *reinterpret_cast<const Vt*>(u + j[q] * F + f);
#pragma unroll
              for (int c = 0; c < VEC; ++c) part[q] += cuda::to_acc(a.v[c]) * cuda::to_acc(b.v[c]);
            }
          }
        }
#pragma unroll
        for (int q = 0; q < kUnroll; ++q) {
          if (k0 + q < n) {  // group-uniform
            const acc_t s = cuda::group_sum(g, part[q]);
            if (g.lane == 0) out[e0 + k0 + q] = static_cast<scalar_t>(s);
          }
        }
      } else {
        for (int64_t f = static_cast<int64_t>(g.lane) * VEC; f < F; f += chunk) {
          const Vt b = *reinterpret_cast<const Vt*>(v + row * F + f);
          Vt a[kUnroll];
#pragma unroll
          for (int q = 0; q < kUnroll; ++q) {
            if (k0 + q < n) a[q] = *reinterpret_cast<const Vt*>(u + j[q] * F + f);
          }
#pragma unroll
          for (int q = 0; q < kUnroll; ++q) {
            if (k0 + q < n) {
              Vt o;
#pragma unroll
              for (int c = 0; c < VEC; ++c) {
                const acc_t x = cuda::to_acc(a[q].v[c]);
                const acc_t y = cuda::to_acc(b.v[c]);
                o.v[c] = static_cast<scalar_t>(OP == SddmmOp::Add ? x + y : x * y);
              }
              *reinterpret_cast<Vt*>(out + (e0 + k0 + q) * F + f) = o;  // (edge, feature) offset in int64
            }
          }
        }
      }
    }
  }
}

template <typename scalar_t, SddmmOp OP, int VEC>
void launch(const at::Tensor& indptr, const at::Tensor& src, const at::Tensor& u, const at::Tensor& v,
            at::Tensor& out, int64_t N, int64_t F) {
  const int lanes = cuda::lanes_for(cuda::ceil_div(F, VEC));
  const int64_t blocks = cuda::ceil_div(N * lanes, kThreads);
  sddmm_kernel<scalar_t, OP, VEC><<<static_cast<unsigned>(blocks), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      indptr.const_data_ptr<int64_t>(), src.const_data_ptr<int64_t>(), u.const_data_ptr<scalar_t>(),
      v.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), N, F, cuda::log2_exact(lanes));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

at::Tensor sddmm_cuda(const at::Tensor& indptr, const at::Tensor& src, const at::Tensor& rev_indptr,
                      const at::Tensor& rev_dst, const at::Tensor& rev_perm, const at::Tensor& u,
                      const at::Tensor& v, c10::string_view op) {
  // rev_* serve the backward (run by the caller); the forward reads only the CSR.
  const SddmmOp o = parse_op(op);
  check_index(indptr, "indptr");
  check_index(src, "src");
  check_index(rev_indptr, "rev_indptr");
  check_index(rev_dst, "rev_dst");
  check_index(rev_perm, "rev_perm");
  check_float(u, "u");
  check_float(v, "v");
  check_same_device(indptr, src, "src");
  check_same_device(indptr, u, "u");
  check_same_device(indptr, v, "v");
  TORCH_CHECK(indptr.numel() >= 1, "indptr must have N+1 >= 1 entries");
  const int64_t N = indptr.numel() - 1;
  const int64_t E = src.numel();
  TORCH_CHECK(u.dim() == 2 && u.size(0) == N, "u must have shape (N, F) with N = ", N, "; got ", u.sizes());
  TORCH_CHECK(v.sizes() == u.sizes(), "v must have u's shape ", u.sizes(), "; got ", v.sizes());
  TORCH_CHECK(v.scalar_type() == u.scalar_type(), "v must have u's dtype ", u.scalar_type(), "; got ",
              v.scalar_type());
  c10::cuda::CUDAGuard guard(u.device());

  const int64_t F = u.size(1);
  if (o == SddmmOp::Dot && F == 0) return at::zeros({E}, u.options());  // empty dot products are 0
  at::Tensor out = o == SddmmOp::Dot ? at::empty({E}, u.options()) : at::empty({E, F}, u.options());
  if (N == 0 || E == 0 || F == 0) return out;  // nothing to write; a zero-sized grid is a launch error

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, u.scalar_type(), "sddmm_cuda", [&] {
    constexpr int V = cuda::kVec16<scalar_t>;
    // 128-bit path: rows of u, v (and out for add/mul, which is fresh) start 16-byte aligned when the bases are
    // and F % V == 0.
    const bool vec = F % V == 0 && cuda::is_aligned16(u.const_data_ptr()) && cuda::is_aligned16(v.const_data_ptr());
    switch (o) {
      case SddmmOp::Dot:
        vec ? launch<scalar_t, SddmmOp::Dot, V>(indptr, src, u, v, out, N, F)
            : launch<scalar_t, SddmmOp::Dot, 1>(indptr, src, u, v, out, N, F);
        break;
      case SddmmOp::Add:
        vec ? launch<scalar_t, SddmmOp::Add, V>(indptr, src, u, v, out, N, F)
            : launch<scalar_t, SddmmOp::Add, 1>(indptr, src, u, v, out, N, F);
        break;
      case SddmmOp::Mul:
        vec ? launch<scalar_t, SddmmOp::Mul, V>(indptr, src, u, v, out, N, F)
            : launch<scalar_t, SddmmOp::Mul, 1>(indptr, src, u, v, out, N, F);
        break;
    }
  });
  return out;
}

}  // namespace
}  // namespace fastsim

TORCH_LIBRARY_IMPL(fastsim, CUDA, m) { m.impl("sddmm", &fastsim::sddmm_cuda); }
