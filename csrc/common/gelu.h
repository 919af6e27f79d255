// Exact (erf) GELU and its derivative over contiguous arrays, vectorised with ATen's Vectorized<T>.
//   GELU(z) = z·Φ(z),  GELU'(z) = Φ(z) + z·φ(z),  Φ(z) = (1 + erf(z/√2)) / 2,  φ(z) = exp(−z²/2) / √(2π)
#pragma once

#include <ATen/cpu/vec/vec.h>

#include <cstdint>

namespace fastsim {

// x <- GELU(x)
template <typename scalar_t>
inline void gelu_inplace(scalar_t* x, int64_t n) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const Vec half(scalar_t(0.5)), one(scalar_t(1)), rsqrt2(scalar_t(M_SQRT1_2));
  int64_t k = 0;
  for (; k + Vec::size() <= n; k += Vec::size()) {
    Vec z = Vec::loadu(x + k);
    (z * half * (one + (z * rsqrt2).erf())).store(x + k);
  }
  if (k < n) {
    Vec z = Vec::loadu(x + k, n - k);
    (z * half * (one + (z * rsqrt2).erf())).store(x + k, n - k);
  }
}

// g <- g · GELU'(z)
template <typename scalar_t>
inline void gelu_backward_inplace(const scalar_t* z_in, scalar_t* g, int64_t n) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const Vec half(scalar_t(0.5)), one(scalar_t(1)), rsqrt2(scalar_t(M_SQRT1_2));
  const Vec rsqrt2pi(scalar_t(0.3989422804014327)), neg_half(scalar_t(-0.5));
  auto step = [&](Vec z, Vec gv) {
    Vec cdf = half * (one + (z * rsqrt2).erf());
    Vec pdf = rsqrt2pi * (neg_half * z * z).exp();
    return gv * (cdf + z * pdf);
  };
  int64_t k = 0;
  for (; k + Vec::size() <= n; k += Vec::size()) step(Vec::loadu(z_in + k), Vec::loadu(g + k)).store(g + k);
  if (k < n) step(Vec::loadu(z_in + k, n - k), Vec::loadu(g + k, n - k)).store(g + k, n - k);
}

}  // namespace fastsim
