// Fused Runge-Kutta stage arithmetic on the CPU, for any right-hand side:
//   rk_stage:      out = y + dt_b · Σ_s c_s k_s                              (one pass instead of S axpys)
//   rk_error_norm: per trajectory b, the weighted RMS norm of the embedded error dt_b · Σ_s e_s k_s with
//                  scale atol + rtol · max(|y0|, |y1|); with b_err_aux (DOP853) Hairer's combined 5th/3rd estimate.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

#include "rk/rk_checks.h"

namespace fastsim {
namespace {

template <typename scalar_t>
std::vector<const scalar_t*> stage_pointers(at::TensorList ks, size_t count) {
  std::vector<const scalar_t*> ptrs(count);
  for (size_t s = 0; s < count; ++s) ptrs[s] = ks[s].data_ptr<scalar_t>();
  return ptrs;
}

at::Tensor rk_stage_cpu(const at::Tensor& y, const at::Tensor& dt, at::TensorList ks, at::ArrayRef<double> coeffs) {
  check_rk_stage_args(y, dt, ks, coeffs.size(), "coeffs");
  at::Tensor out = at::empty_like(y);
  const int64_t B = y.size(0), N = y.size(1);
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "rk_stage_cpu", [&] {
    const auto k = stage_pointers<scalar_t>(ks, coeffs.size());
    const scalar_t* yp = y.data_ptr<scalar_t>();
    const scalar_t* dtp = dt.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    // Element ranges are disjoint per thread; each output element is written once.
    at::parallel_for(0, B * N, 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t idx = begin; idx < end; ++idx) {
        scalar_t acc = 0;
        for (size_t s = 0; s < k.size(); ++s) acc += scalar_t(coeffs[s]) * k[s][idx];
        o[idx] = yp[idx] + dtp[idx / N] * acc;
      }
    });
  });
  return out;
}

at::Tensor rk_error_norm_cpu(const at::Tensor& y0, const at::Tensor& y1, const at::Tensor& dt, at::TensorList ks,
                             at::ArrayRef<double> b_err, at::ArrayRef<double> b_err_aux, double rtol, double atol) {
  check_rk_stage_args(y0, dt, ks, std::max(b_err.size(), b_err_aux.size()), "b_err");
  TORCH_CHECK(y1.sizes() == y0.sizes() && y1.scalar_type() == y0.scalar_type(), "y1 must match y0");
  const int64_t B = y0.size(0), N = y0.size(1);
  at::Tensor norm = at::empty({B}, y0.options());
  if (B == 0) return norm;
  AT_DISPATCH_FLOATING_TYPES(y0.scalar_type(), "rk_error_norm_cpu", [&] {
    const auto k = stage_pointers<scalar_t>(ks, std::max(b_err.size(), b_err_aux.size()));
    const scalar_t *a = y0.data_ptr<scalar_t>(), *b = y1.data_ptr<scalar_t>(), *dtp = dt.data_ptr<scalar_t>();
    scalar_t* out = norm.data_ptr<scalar_t>();
    // One trajectory per iteration: its norm is a private reduction, so threads never share an output.
    at::parallel_for(0, B, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(N, 1)), [&](int64_t b0, int64_t b1) {
      for (int64_t row = b0; row < b1; ++row) {
        double sum5 = 0, sum3 = 0;
        for (int64_t i = row * N; i < (row + 1) * N; ++i) {
          const double scale = atol + rtol * std::max(std::abs(double(a[i])), std::abs(double(b[i])));
          double e5 = 0, e3 = 0;
          for (size_t s = 0; s < b_err.size(); ++s) e5 += b_err[s] * double(k[s][i]);
          for (size_t s = 0; s < b_err_aux.size(); ++s) e3 += b_err_aux[s] * double(k[s][i]);
          sum5 += (e5 / scale) * (e5 / scale);
          sum3 += (e3 / scale) * (e3 / scale);
        }
        const double h = std::abs(double(dtp[row]));
        double value;
        if (b_err_aux.empty()) {
          value = N > 0 ? h * std::sqrt(sum5 / double(N)) : 0.0;
        } else {  // Hairer's DOP853: |h| · ‖e5‖² / sqrt(N (‖e5‖² + 0.01 ‖e3‖²))
          const double denom = sum5 + 0.01 * sum3;
          value = denom > 0 ? h * sum5 / std::sqrt(double(N) * denom) : 0.0;
        }
        out[row] = scalar_t(value);
      }
    });
  });
  return norm;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastsim, CPU, m) {
  m.impl("rk_stage", &rk_stage_cpu);
  m.impl("rk_error_norm", &rk_error_norm_cpu);
}

}  // namespace fastsim
