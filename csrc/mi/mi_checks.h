// Argument checks of the information-estimator kernels (fastsim/ops/mi.py validates user input first).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <optional>

#include "common/checks.h"

namespace fastsim {

inline void check_gram_args(const at::Tensor& x, const at::Tensor& sigma, const std::optional<at::Tensor>& other) {
  check_float(x, "x");
  TORCH_CHECK(x.dim() == 3, "x must be (B, N, d), got ", x.dim(), "-D");
  check_float(sigma, "sigma");
  TORCH_CHECK(sigma.dim() == 1 && sigma.size(0) == x.size(0), "sigma must be (B,) with B = ", x.size(0));
  TORCH_CHECK(sigma.scalar_type() == x.scalar_type() && sigma.device() == x.device(), "sigma must match x");
  if (other.has_value()) {
    check_float(*other, "other");
    TORCH_CHECK(other->dim() == 3 && other->size(0) == x.size(0) && other->size(1) == x.size(1) &&
                    other->size(2) == x.size(1),
                "other must be (B, N, N) matching x");
    TORCH_CHECK(other->scalar_type() == x.scalar_type() && other->device() == x.device(), "other must match x");
  }
}

inline void check_kde_args(const at::Tensor& t) {
  check_float(t, "t");
  TORCH_CHECK(t.dim() == 3, "t must be (B, N, d), got ", t.dim(), "-D");
}

inline void check_eigvalsh_args(const at::Tensor& a) {
  check_float(a, "a");
  TORCH_CHECK(a.scalar_type() == at::kFloat || a.scalar_type() == at::kDouble, "a must be float32 or float64, got ",
              a.scalar_type());
  TORCH_CHECK(a.dim() == 3 && a.size(1) == a.size(2), "a must be (B, N, N), got ", a.sizes());
}

}  // namespace fastsim
