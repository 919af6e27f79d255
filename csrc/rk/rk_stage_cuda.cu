// Fused Runge-Kutta stage arithmetic on CUDA (see rk_stage_cpu.cpp for the maths).
// Stage pointers and coefficients travel by value in a kernel argument (at most kMaxStages stages:
// DOP853 has 12), so one launch replaces S axpy launches.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAStream.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "rk/rk_checks.h"

namespace fastsim {
namespace {

constexpr int kMaxStages = 16;
constexpr int kThreads = 256;

template <typename scalar_t>
struct Stages {
  const scalar_t* k[kMaxStages];
  double c[kMaxStages];
  double c_aux[kMaxStages];
  int count, count_aux;
};

template <typename scalar_t>
Stages<scalar_t> pack(at::TensorList ks, at::ArrayRef<double> c, at::ArrayRef<double> c_aux) {
  TORCH_CHECK(c.size() <= kMaxStages && c_aux.size() <= kMaxStages, "at most ", kMaxStages, " stages");
  Stages<scalar_t> s{};
  s.count = int(c.size());
  s.count_aux = int(c_aux.size());
  const size_t used = std::max(c.size(), c_aux.size());
  for (size_t i = 0; i < used; ++i) s.k[i] = ks[i].data_ptr<scalar_t>();
  for (size_t i = 0; i < c.size(); ++i) s.c[i] = c[i];
  for (size_t i = 0; i < c_aux.size(); ++i) s.c_aux[i] = c_aux[i];
  return s;
}

template <typename scalar_t>
__global__ void rk_stage_kernel(const scalar_t* __restrict__ y, const scalar_t* __restrict__ dt, Stages<scalar_t> st,
                                scalar_t* __restrict__ out, int64_t total, int64_t N) {
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    scalar_t acc = 0;
    for (int s = 0; s < st.count; ++s) acc += scalar_t(st.c[s]) * st.k[s][idx];
    out[idx] = y[idx] + dt[idx / N] * acc;
  }
}

// One block per trajectory: the block reduces its own row, so no atomics and no cross-block traffic.
template <typename scalar_t>
__global__ void rk_error_norm_kernel(const scalar_t* __restrict__ y0, const scalar_t* __restrict__ y1,
                                     const scalar_t* __restrict__ dt, Stages<scalar_t> st, scalar_t* __restrict__ out,
                                     int64_t N, double rtol, double atol) {
  const int64_t row = blockIdx.x;
  double sum5 = 0, sum3 = 0;
  for (int64_t j = threadIdx.x; j < N; j += blockDim.x) {
    const int64_t i = row * N + j;
    const double scale = atol + rtol * fmax(fabs(double(y0[i])), fabs(double(y1[i])));
    double e5 = 0, e3 = 0;
    for (int s = 0; s < st.count; ++s) e5 += st.c[s] * double(st.k[s][i]);
    for (int s = 0; s < st.count_aux; ++s) e3 += st.c_aux[s] * double(st.k[s][i]);
    sum5 += (e5 / scale) * (e5 / scale);
    sum3 += (e3 / scale) * (e3 / scale);
  }
  __shared__ double red5[kThreads], red3[kThreads];
  red5[threadIdx.x] = sum5;
  red3[threadIdx.x] = sum3;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      red5[threadIdx.x] += red5[threadIdx.x + stride];
      red3[threadIdx.x] += red3[threadIdx.x + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const double h = fabs(double(dt[row]));
    double value;
    if (st.count_aux == 0) {
      value = N > 0 ? h * sqrt(red5[0] / double(N)) : 0.0;
    } else {
      const double denom = red5[0] + 0.01 * red3[0];
      value = denom > 0 ? h * red5[0] / sqrt(double(N) * denom) : 0.0;
    }
    out[row] = scalar_t(value);
  }
}

at::Tensor rk_stage_cuda(const at::Tensor& y, const at::Tensor& dt, at::TensorList ks, at::ArrayRef<double> coeffs) {
  check_rk_stage_args(y, dt, ks, coeffs.size(), "coeffs");
  const c10::cuda::CUDAGuard guard(y.device());
  at::Tensor out = at::empty_like(y);
  const int64_t total = y.numel();
  if (total == 0) return out;
  const int64_t blocks = std::min<int64_t>((total + kThreads - 1) / kThreads, 65535);
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "rk_stage_cuda", [&] {
    rk_stage_kernel<scalar_t><<<blocks, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        y.data_ptr<scalar_t>(), dt.data_ptr<scalar_t>(), pack<scalar_t>(ks, coeffs, {}), out.data_ptr<scalar_t>(),
        total, y.size(1));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor rk_error_norm_cuda(const at::Tensor& y0, const at::Tensor& y1, const at::Tensor& dt, at::TensorList ks,
                              at::ArrayRef<double> b_err, at::ArrayRef<double> b_err_aux, double rtol, double atol) {
  check_rk_stage_args(y0, dt, ks, std::max(b_err.size(), b_err_aux.size()), "b_err");
  TORCH_CHECK(y1.sizes() == y0.sizes() && y1.scalar_type() == y0.scalar_type(), "y1 must match y0");
  const c10::cuda::CUDAGuard guard(y0.device());
  const int64_t B = y0.size(0);
  at::Tensor norm = at::empty({B}, y0.options());
  if (B == 0) return norm;
  AT_DISPATCH_FLOATING_TYPES(y0.scalar_type(), "rk_error_norm_cuda", [&] {
    rk_error_norm_kernel<scalar_t><<<B, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        y0.data_ptr<scalar_t>(), y1.data_ptr<scalar_t>(), dt.data_ptr<scalar_t>(),
        pack<scalar_t>(ks, b_err, b_err_aux), norm.data_ptr<scalar_t>(), y0.size(1), rtol, atol);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return norm;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastsim, CUDA, m) {
  m.impl("rk_stage", &rk_stage_cuda);
  m.impl("rk_error_norm", &rk_error_norm_cuda);
}

}  // namespace fastsim
