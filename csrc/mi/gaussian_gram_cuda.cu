// CUDA versions of the fused Gaussian Gram and the streamed KDE log-sum-exp (see gaussian_gram_cpu.cpp).
// gaussian_gram: one thread per output entry (b, i, j); kde_logsumexp: one thread per row (b, i) with an online
// log-sum-exp over j, so memory stays O(B·N).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAStream.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <optional>

#include "mi/mi_checks.h"

namespace fastsim {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__device__ double squared_distance(const scalar_t* a, const scalar_t* b, int64_t d) {
  double acc = 0;
  for (int64_t k = 0; k < d; ++k) {
    const double diff = double(a[k]) - double(b[k]);
    acc += diff * diff;
  }
  return acc;
}

// factor_b = 1/N without `other`, 1/tr(O_b) with it (tr(A∘O) = tr(O)/N since A_ii = 1/N).
template <typename scalar_t>
__global__ void gram_factor_kernel(const scalar_t* __restrict__ other, double* __restrict__ factor, int64_t B,
                                   int64_t N) {
  const int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (b >= B) return;
  if (other == nullptr) {
    factor[b] = 1.0 / double(N);
    return;
  }
  double trace = 0;
  for (int64_t k = 0; k < N; ++k) trace += double(other[(b * N + k) * N + k]);
  factor[b] = 1.0 / trace;
}

template <typename scalar_t>
__global__ void gaussian_gram_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ sigma,
                                     const scalar_t* __restrict__ other, const double* __restrict__ factor,
                                     scalar_t* __restrict__ out, int64_t B, int64_t N, int64_t D) {
  const int64_t total = B * N * N;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = idx / (N * N), i = (idx / N) % N, j = idx % N;
    const double s = double(sigma[b]);
    double k = exp(-squared_distance(x + (b * N + i) * D, x + (b * N + j) * D, D) / (2.0 * s * s)) * factor[b];
    if (other != nullptr) k *= double(other[idx]);
    out[idx] = scalar_t(k);
  }
}

template <typename scalar_t>
__global__ void kde_logsumexp_kernel(const scalar_t* __restrict__ t, scalar_t* __restrict__ out, int64_t B,
                                     int64_t N, int64_t D, double scale) {
  const int64_t row = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (row >= B * N) return;
  const int64_t b = row / N;
  double m = -INFINITY, acc = 0;
  for (int64_t j = 0; j < N; ++j) {
    const double v = -scale * squared_distance(t + row * D, t + (b * N + j) * D, D);
    if (v > m) {
      acc = acc * exp(m - v) + 1.0;
      m = v;
    } else {
      acc += exp(v - m);
    }
  }
  out[row] = scalar_t(m + log(acc));
}

at::Tensor gaussian_gram_cuda(const at::Tensor& x, const at::Tensor& sigma, const std::optional<at::Tensor>& other) {
  check_gram_args(x, sigma, other);
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2);
  at::Tensor out = at::empty({B, N, N}, x.options());
  if (out.numel() == 0) return out;
  at::Tensor factor = at::empty({B}, x.options().dtype(at::kDouble));
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gaussian_gram_cuda", [&] {
    const scalar_t* op = other.has_value() ? other->data_ptr<scalar_t>() : nullptr;
    gram_factor_kernel<scalar_t><<<(B + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
        op, factor.data_ptr<double>(), B, N);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    const int64_t blocks = std::min<int64_t>((out.numel() + kThreads - 1) / kThreads, 65535);
    gaussian_gram_kernel<scalar_t><<<blocks, kThreads, 0, stream>>>(
        x.data_ptr<scalar_t>(), sigma.data_ptr<scalar_t>(), op, factor.data_ptr<double>(), out.data_ptr<scalar_t>(),
        B, N, D);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor kde_logsumexp_cuda(const at::Tensor& t, double scale) {
  check_kde_args(t);
  const c10::cuda::CUDAGuard guard(t.device());
  const int64_t B = t.size(0), N = t.size(1), D = t.size(2);
  at::Tensor out = at::empty({B, N}, t.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "kde_logsumexp_cuda", [&] {
    kde_logsumexp_kernel<scalar_t><<<(B * N + kThreads - 1) / kThreads, kThreads, 0,
                                     c10::cuda::getCurrentCUDAStream()>>>(t.data_ptr<scalar_t>(),
                                                                          out.data_ptr<scalar_t>(), B, N, D, scale);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastsim, CUDA, m) {
  m.impl("gaussian_gram", &gaussian_gram_cuda);
  m.impl("kde_logsumexp", &kde_logsumexp_cuda);
}

}  // namespace fastsim
