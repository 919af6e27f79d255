// Argument checks shared by the Runge-Kutta stage kernels (CPU and CUDA).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include "common/checks.h"

namespace fastsim {

// y: (B, N); dt: (B,); every k: (B, N), same dtype/device; at least as many stages as coefficients.
inline void check_rk_stage_args(const at::Tensor& y, const at::Tensor& dt, at::TensorList ks, size_t num_coeffs,
                                const char* coeff_name) {
  check_float(y, "y");
  check_float(dt, "dt");
  TORCH_CHECK(y.dim() == 2, "y must be 2-D (B, N), got ", y.dim(), "-D");
  TORCH_CHECK(dt.dim() == 1 && dt.size(0) == y.size(0), "dt must have shape (B,) = (", y.size(0), ",)");
  TORCH_CHECK(dt.scalar_type() == y.scalar_type(), "dt must have the dtype of y");
  TORCH_CHECK(ks.size() >= num_coeffs, "ks holds ", ks.size(), " stages but ", coeff_name, " has ", num_coeffs);
  for (size_t s = 0; s < num_coeffs; ++s) {
    check_float(ks[s], "ks[s]");
    TORCH_CHECK(ks[s].sizes() == y.sizes() && ks[s].scalar_type() == y.scalar_type() &&
                    ks[s].device() == y.device(),
                "every stage in ks must match y in shape, dtype and device (stage ", s, ")");
  }
}

}  // namespace fastsim
