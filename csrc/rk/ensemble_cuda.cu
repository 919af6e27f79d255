// Fused ensemble Dormand-Prince 5(4) integrator on CUDA (docs/ops.md, "ensemble_dopri5"; the maths and the step
// control are those of ensemble_cpu.cpp, shared through ensemble_systems.h).
//
// One thread block per trajectory. The block's threads own nodes round-robin (node i belongs to thread i mod
// kBlock) and that ownership never changes, so every value of a node (state, stages, stage states, sin/cos) is
// written and re-read by one thread; only the right-hand side reads other nodes (a node's in-neighbours in the
// current stage state), which is why each stage ends with __syncthreads and the stage states ping-pong between two
// buffers. The trajectory's arrays live in a global-memory scratch (10 state-sized arrays + 4 values per node; a
// block's few KB stay in L1/L2). Scalar control (t, h, accept/reject, status) is computed redundantly by every
// thread from block-reduced numbers that every thread sums in the same order, so all threads take the same
// branches, meet at the same barriers, and need no broadcast. There is no host synchronisation: the launch is
// one kernel for the whole ensemble.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <limits>
#include <tuple>
#include <type_traits>

#include "rk/ensemble_args.h"
#include "rk/ensemble_systems.h"

namespace fastsim {
namespace {

using namespace ensemble;

constexpr int kBlock = 128;  // threads per trajectory: fixed, so results do not depend on the batch's composition
constexpr int kWarps = kBlock / 32;

// Scratch values per node: y, k_0..k_6, two stage states (dim each), two sin/cos pairs.
C10_HOST_DEVICE inline int64_t node_scratch(int64_t dim) { return (kStages + 3) * dim + 2 * kMaxAux; }

// Block-wide sums of two values. Every thread returns the same totals (the warp totals are added in warp order
// by every thread). Starts with a barrier so that the shared buffer is free, ends with one so it is complete.
__device__ __forceinline__ void block_sum2(double& a, double& b, double (*shm)[kWarps]) {
  for (int offset = 16; offset > 0; offset /= 2) {
    a += __shfl_xor_sync(0xffffffffu, a, offset);
    b += __shfl_xor_sync(0xffffffffu, b, offset);
  }
  __syncthreads();
  if ((threadIdx.x & 31) == 0) {
    shm[0][threadIdx.x >> 5] = a;
    shm[1][threadIdx.x >> 5] = b;
  }
  __syncthreads();
  a = 0;
  b = 0;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    a += shm[0][w];
    b += shm[1][w];
  }
}

template <typename scalar_t, typename Sys>
struct BlockTrajectory {
  const Sys& sys;
  int64_t b, n0, nb;
  int dim;
  double rtol, atol;
  scalar_t* y;
  scalar_t* k[kStages];
  scalar_t* Y[2];
  scalar_t* aux[2];
  double sums[2][2];
  double (*shm)[kWarps];

  // aux (and their sums) of a state, for this thread's nodes; ends with a barrier when the system has aux.
  __device__ void prepare(const scalar_t* ys, scalar_t* a, double* sm) {
    if constexpr (Sys::kAux > 0) {
      double s0 = 0, s1 = 0;
      for (int64_t i = threadIdx.x; i < nb; i += kBlock) {
        sys.aux(ys + i * dim, a + i * Sys::kAux);
        if constexpr (Sys::kSumAux) {
          s0 += double(a[i * Sys::kAux]);
          s1 += double(a[i * Sys::kAux + 1]);
        }
      }
      if constexpr (Sys::kSumAux) block_sum2(s0, s1, shm);
      sm[0] = s0;
      sm[1] = s1;
    }
    __syncthreads();
  }

  __device__ void evaluate(const scalar_t* ys, const scalar_t* a, const double* sm, scalar_t* dy) {
    for (int64_t i = threadIdx.x; i < nb; i += kBlock) sys.rhs(b, n0, i, ys, a, sm, dy + i * dim);
  }

  __device__ void first_stage(scalar_t hs) {
    const scalar_t a10 = scalar_t(dp5_a(1, 0));
    for (int64_t i = threadIdx.x; i < nb; i += kBlock) {
      for (int64_t idx = i * dim; idx < (i + 1) * dim; ++idx) Y[0][idx] = y[idx] + hs * (a10 * k[0][idx]);
    }
    prepare(Y[0], aux[0], sums[0]);
  }

  // k_S = f(Y_S), Y_S in Y[(S-1)&1]; Y_{S+1} into Y[S&1] for this thread's nodes; then a barrier.
  template <int S>
  __device__ void stage(scalar_t hs) {
    const scalar_t* ycur = Y[(S - 1) & 1];
    const scalar_t* acur = aux[(S - 1) & 1];
    const double* scur = sums[(S - 1) & 1];
    scalar_t* ynext = Y[S & 1];
    scalar_t* anext = aux[S & 1];
    double s0 = 0, s1 = 0;
    for (int64_t i = threadIdx.x; i < nb; i += kBlock) {
      sys.rhs(b, n0, i, ycur, acur, scur, k[S] + i * dim);
      for (int64_t idx = i * dim; idx < (i + 1) * dim; ++idx) {
        scalar_t acc = scalar_t(dp5_a(S + 1, 0)) * k[0][idx];
#pragma unroll
        for (int j = 1; j <= S; ++j) {
          if (dp5_a(S + 1, j) != 0.0) acc += scalar_t(dp5_a(S + 1, j)) * k[j][idx];
        }
        ynext[idx] = y[idx] + hs * acc;
      }
      if constexpr (Sys::kAux > 0) {
        sys.aux(ynext + i * dim, anext + i * Sys::kAux);
        if constexpr (Sys::kSumAux) {
          s0 += double(anext[i * Sys::kAux]);
          s1 += double(anext[i * Sys::kAux + 1]);
        }
      }
    }
    if constexpr (Sys::kSumAux) block_sum2(s0, s1, shm);
    sums[S & 1][0] = s0;
    sums[S & 1][1] = s1;
    __syncthreads();
  }

  // k_6 = f(y_new) and the block-reduced error norm; `finite` as in ensemble_cpu.cpp.
  __device__ double last_stage(double h_step, bool& finite) {
    const scalar_t* ynew = Y[1];
    double sum = 0, poison = 0;
    for (int64_t i = threadIdx.x; i < nb; i += kBlock) {
      sys.rhs(b, n0, i, ynew, aux[1], sums[1], k[6] + i * dim);
      for (int64_t idx = i * dim; idx < (i + 1) * dim; ++idx) {
        double e = 0;
#pragma unroll
        for (int j = 0; j < kStages; ++j) {
          if (dp5_e(j) != 0.0) e += dp5_e(j) * double(k[j][idx]);
        }
        const double scale = atol + rtol * ::fmax(::fabs(double(y[idx])), ::fabs(double(ynew[idx])));
        sum += (e / scale) * (e / scale);
        poison += double(ynew[idx]) * 0.0 + double(k[6][idx]) * 0.0;
      }
    }
    block_sum2(sum, poison, shm);
    const double err = ::fabs(h_step) * ::sqrt(sum / double(nb * dim));
    finite = poison == 0.0 && is_finite(err);
    return err;
  }

  __device__ void dense_output(double tq, double t_old, double t_new, double h_step, scalar_t* out) {
    if (tq == t_new) {
      for (int64_t i = threadIdx.x; i < nb; i += kBlock) {
        for (int64_t idx = i * dim; idx < (i + 1) * dim; ++idx) out[idx] = Y[1][idx];
      }
      return;
    }
    double w[kStages];
    dp5_dense_weights((tq - t_old) / h_step, h_step, w);
    for (int64_t i = threadIdx.x; i < nb; i += kBlock) {
      for (int64_t idx = i * dim; idx < (i + 1) * dim; ++idx) {
        scalar_t acc = y[idx];
#pragma unroll
        for (int j = 0; j < kStages; ++j) {
          if (j != 1) acc += scalar_t(w[j]) * k[j][idx];  // b_1(θ) ≡ 0
        }
        out[idx] = acc;
      }
    }
  }

  __device__ double initial_step(double interval) {
    const int64_t n = nb * dim;
    double d0 = 0, d1 = 0;
    for (int64_t i = threadIdx.x; i < nb; i += kBlock) {
      for (int64_t idx = i * dim; idx < (i + 1) * dim; ++idx) {
        const double scale = atol + rtol * ::fabs(double(y[idx]));
        d0 += (double(y[idx]) / scale) * (double(y[idx]) / scale);
        d1 += (double(k[0][idx]) / scale) * (double(k[0][idx]) / scale);
      }
    }
    block_sum2(d0, d1, shm);
    d0 = ::sqrt(d0 / double(n));
    d1 = ::sqrt(d1 / double(n));
    const double h0 = first_step_h0(d0, d1, interval);
    const scalar_t h0s = scalar_t(h0);
    for (int64_t i = threadIdx.x; i < nb; i += kBlock) {
      for (int64_t idx = i * dim; idx < (i + 1) * dim; ++idx) Y[0][idx] = y[idx] + h0s * k[0][idx];
    }
    prepare(Y[0], aux[0], sums[0]);
    evaluate(Y[0], aux[0], sums[0], k[1]);
    double d2 = 0, unused = 0;
    for (int64_t i = threadIdx.x; i < nb; i += kBlock) {
      for (int64_t idx = i * dim; idx < (i + 1) * dim; ++idx) {
        const double scale = atol + rtol * ::fabs(double(y[idx]));
        const double diff = (double(k[1][idx]) - double(k[0][idx])) / scale;
        d2 += diff * diff;
      }
    }
    block_sum2(d2, unused, shm);
    d2 = ::sqrt(d2 / double(n)) / h0;
    return first_step_h(h0, d1, d2, interval);
  }
};

template <typename scalar_t, typename Sys>
__global__ void __launch_bounds__(kBlock)
    ensemble_dopri5_kernel(Sys sys, const int64_t* __restrict__ ptr, const scalar_t* __restrict__ y0,
                           const double* __restrict__ t_eval, int64_t t_stride, int64_t T, scalar_t* __restrict__ ys,
                           int64_t row, scalar_t* __restrict__ scratch, double rtol, double atol, double first_step,
                           int64_t max_steps, int64_t* __restrict__ stats, double* __restrict__ t_final) {
  __shared__ double shm[2][kWarps];
  const int64_t b = blockIdx.x;
  const int dim = sys.dim();
  const int64_t n0 = ptr[b], nb = ptr[b + 1] - n0, n = nb * dim;
  const double* tq = t_eval + b * t_stride;
  // Trajectory b writes only its own columns [n0·dim, (n0+nb)·dim) of the output rows, its own scratch region
  // and its row of stats / t_final: blocks never share a written address.
  scalar_t* work = scratch + n0 * node_scratch(dim);
  BlockTrajectory<scalar_t, Sys> tr{sys, b, n0, nb, dim, rtol, atol};
  tr.y = work;
  for (int s = 0; s < kStages; ++s) tr.k[s] = work + (1 + s) * n;
  tr.Y[0] = work + (kStages + 1) * n;
  tr.Y[1] = work + (kStages + 2) * n;
  tr.aux[0] = work + (kStages + 3) * n;
  tr.aux[1] = tr.aux[0] + kMaxAux * nb;
  tr.sums[0][0] = tr.sums[0][1] = tr.sums[1][0] = tr.sums[1][1] = 0;
  tr.shm = shm;
  scalar_t* out = ys + n0 * dim;

  StepControl ctl;
  ctl.t = tq[0];
  ctl.t_end = tq[T - 1];
  ctl.max_steps = max_steps;
  for (int64_t i = threadIdx.x; i < nb; i += kBlock) {
    for (int64_t idx = i * dim; idx < (i + 1) * dim; ++idx) tr.y[idx] = out[idx] = y0[n0 * dim + idx];
  }
  int64_t p = 1;
  if (T == 1 || n == 0) {
    ctl.status = kOk;
    ctl.t = ctl.t_end;
    if (n == 0) p = T;
  } else {
    tr.prepare(tr.y, tr.aux[0], tr.sums[0]);
    tr.evaluate(tr.y, tr.aux[0], tr.sums[0], tr.k[0]);
    ctl.nfev = 1;
    double poison = 0, unused = 0;
    for (int64_t i = threadIdx.x; i < nb; i += kBlock) {
      for (int64_t idx = i * dim; idx < (i + 1) * dim; ++idx) {
        poison += double(tr.y[idx]) * 0.0 + double(tr.k[0][idx]) * 0.0;
      }
    }
    block_sum2(poison, unused, shm);
    if (poison != 0.0 || poison != poison) {
      ctl.status = kNonFinite;
    } else if (first_step > 0) {
      ctl.h = first_step;
    } else {
      ctl.h = tr.initial_step(ctl.t_end - ctl.t);
      ctl.nfev += 1;
    }
  }
  while (ctl.status == kRunning) {  // uniform across the block: every thread holds the same ctl
    double h_step, t_new;
    ctl.propose(h_step, t_new);
    const double t_old = ctl.t;
    const scalar_t hs = scalar_t(h_step);
    tr.first_stage(hs);
    tr.template stage<1>(hs);
    tr.template stage<2>(hs);
    tr.template stage<3>(hs);
    tr.template stage<4>(hs);
    tr.template stage<5>(hs);
    bool finite;
    const double err = tr.last_stage(h_step, finite);
    if (!ctl.decide(h_step, t_new, err, finite)) continue;
    for (; p < T && tq[p] <= t_new; ++p) tr.dense_output(tq[p], t_old, t_new, h_step, out + p * row);
    scalar_t* tmp = tr.y;  // y ← y_new and k_0 ← k_6 (FSAL): pointer swaps, identical in every thread
    tr.y = tr.Y[1];
    tr.Y[1] = tmp;
    tmp = tr.k[0];
    tr.k[0] = tr.k[kStages - 1];
    tr.k[kStages - 1] = tmp;
  }
  for (; p < T; ++p) {
    for (int64_t i = threadIdx.x; i < nb; i += kBlock) {
      for (int64_t idx = i * dim; idx < (i + 1) * dim; ++idx) {
        out[p * row + idx] = std::numeric_limits<scalar_t>::quiet_NaN();
      }
    }
  }
  if (threadIdx.x == 0) {
    stats[b * kNumStats + kStatNfev] = ctl.nfev;
    stats[b * kNumStats + kStatAccepted] = ctl.accepted;
    stats[b * kNumStats + kStatRejected] = ctl.rejected;
    stats[b * kNumStats + kStatStatus] = ctl.status;
    t_final[b] = ctl.t;
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> ensemble_dopri5_cuda(
    const at::Tensor& ptr, const at::Tensor& indptr, const at::Tensor& src, const std::optional<at::Tensor>& node_coeff,
    const std::optional<at::Tensor>& edge_coeff, const std::optional<at::Tensor>& graph_coeff, const at::Tensor& y0,
    const at::Tensor& t_eval, c10::string_view system, double rtol, double atol, double first_step,
    int64_t max_steps) {
  // The graph-structure checks need the index values (a host sync here); fastsim.ops.ensemble_dopri5 runs them.
  const EnsembleArgs a = check_ensemble_args(ptr, indptr, src, node_coeff, edge_coeff, graph_coeff, y0, t_eval, system,
                                             rtol, atol, first_step, max_steps);
  TORCH_CHECK(a.B <= std::numeric_limits<int32_t>::max(), "at most 2^31 - 1 trajectories per call");
  const c10::cuda::CUDAGuard guard(y0.device());
  at::Tensor ys, stats, t_final;
  std::tie(ys, stats, t_final) = allocate_outputs(a);
  at::Tensor scratch = at::empty({std::max<int64_t>(a.N * node_scratch(a.dim), 1)}, a.y0.options());
  AT_DISPATCH_FLOATING_TYPES(a.y0.scalar_type(), "ensemble_dopri5_cuda", [&] {
    with_system<scalar_t>(a, [&](const auto& sys) {
      using Sys = std::decay_t<decltype(sys)>;
      ensemble_dopri5_kernel<scalar_t, Sys><<<static_cast<unsigned>(a.B), kBlock, 0,
                                              c10::cuda::getCurrentCUDAStream()>>>(
          sys, a.ptr.data_ptr<int64_t>(), a.y0.data_ptr<scalar_t>(), a.t_eval.data_ptr<double>(), a.t_stride, a.T,
          ys.data_ptr<scalar_t>(), a.N * a.dim, scratch.data_ptr<scalar_t>(), a.rtol, a.atol, a.first_step,
          a.max_steps, stats.data_ptr<int64_t>(), t_final.data_ptr<double>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {ys, stats, t_final};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastsim, CUDA, m) { m.impl("ensemble_dopri5", &ensemble_dopri5_cuda); }

}  // namespace fastsim
