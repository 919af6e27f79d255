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

// h <- GELU(z) and cdf <- Φ(z), so that a backward can reuse Φ instead of a second erf.
template <typename scalar_t>
inline void gelu_with_cdf(const scalar_t* z_in, scalar_t* h, scalar_t* cdf, int64_t n) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const Vec half(scalar_t(0.5)), one(scalar_t(1)), rsqrt2(scalar_t(M_SQRT1_2));
  auto step = [&](int64_t k, int64_t count) {
    Vec z = Vec::loadu(z_in + k, count);
    Vec c = half * (one + (z * rsqrt2).erf());
    c.store(cdf + k, count);
    (z * c).store(h + k, count);
  };
  int64_t k = 0;
  for (; k + Vec::size() <= n; k += Vec::size()) step(k, Vec::size());
  if (k < n) step(k, n - k);
}

// g <- g · GELU'(z) = g · (Φ(z) + z·φ(z)), with Φ(z) given (from gelu_with_cdf) or computed when cdf is null.
template <typename scalar_t>
inline void gelu_backward_inplace(const scalar_t* z_in, const scalar_t* cdf, scalar_t* g, int64_t n) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const Vec half(scalar_t(0.5)), one(scalar_t(1)), rsqrt2(scalar_t(M_SQRT1_2));
  const Vec rsqrt2pi(scalar_t(0.3989422804014327)), neg_half(scalar_t(-0.5));
  auto step = [&](int64_t k, int64_t count) {
    Vec z = Vec::loadu(z_in + k, count);
    Vec c = cdf ? Vec::loadu(cdf + k, count) : half * (one + (z * rsqrt2).erf());
    Vec pdf = rsqrt2pi * (neg_half * z * z).exp();
    (Vec::loadu(g + k, count) * (c + z * pdf)).store(g + k, count);
  };
  int64_t k = 0;
  for (; k + Vec::size() <= n; k += Vec::size()) step(k, Vec::size());
  if (k < n) step(k, n - k);
}

}  // namespace fastsim
