// Exact (erf) GELU and its derivative over contiguous arrays, vectorised with ATen's Vectorized<T>.
//   GELU(z) = z·Φ(z),  GELU'(z) = Φ(z) + z·φ(z),  Φ(z) = (1 + erf(z/√2)) / 2,  φ(z) = exp(−z²/2) / √(2π)
// In float, erf is a rational function of x on [−3.83, 3.83] (odd degree-13 over even degree-8 polynomial,
// the approximation Eigen and XLA use; erf(±3.83) rounds to ±1 in float), accurate to a few float ulps
// (tests/ops/test_gn_edge_aggregate.py checks the float32 kernels against float64 at 4e-6). It costs 10 FMAs and
// a reciprocal; ATen's Vectorized<float>::erf calls exp and measured 2.6× slower here (1.28M values, AVX2): the
// fused edge kernels spend much of their time in GELU at the paper's widths (a quarter of a heat rollout).
// The derivative's φ uses ATen's exp_u20 (a degree-5 polynomial exp, ≤ 20 ulp in float; the same tests hold).
// double keeps ATen's erf and exp (exp_u20 is exp for double): full double accuracy.
#pragma once

#include <ATen/cpu/vec/vec.h>

#include <cstdint>

namespace fastsim {

// 1 / q for q away from 0: the hardware estimate (12 bits with AVX2, 14 with AVX-512) refined by one Newton step
// (≈ 23 bits, within 2 ulp): a third of a division's cost, and the division was half of GELU's time at the
// paper's widths.
inline at::vec::Vectorized<float> reciprocal(const at::vec::Vectorized<float>& q) {
  using Vec = at::vec::Vectorized<float>;
#if defined(CPU_CAPABILITY_AVX2)
  const Vec r(_mm256_rcp_ps(q));
  return r * at::vec::fnmadd(q, r, Vec(2.f));
#elif defined(CPU_CAPABILITY_AVX512)
  const Vec r(_mm512_rcp14_ps(q));
  return r * at::vec::fnmadd(q, r, Vec(2.f));
#else
  return Vec(1.f) / q;
#endif
}

// Φ(z), the standard normal CDF: 0.5 · (1 + erf(z/√2)).
template <typename scalar_t>
inline at::vec::Vectorized<scalar_t> normal_cdf(const at::vec::Vectorized<scalar_t>& z) {
  using Vec = at::vec::Vectorized<scalar_t>;
  return Vec(scalar_t(0.5)) * (Vec(scalar_t(1)) + (z * Vec(scalar_t(M_SQRT1_2))).erf());
}

// In float, Φ(z) = 0.5 + z · P(z²) / Q(z²) with z clamped to ±3.8325·√2: the rational erf above, erf(u) = u ·
// p(u²) / q(u²), with u = z/√2 and Φ's factor 1/2 folded into the coefficients (the coefficient of u^2k scales
// by 2^-k), which saves two multiplies of GELU's ≈ 20 operations.
template <>
inline at::vec::Vectorized<float> normal_cdf(const at::vec::Vectorized<float>& z_in) {
  using Vec = at::vec::Vectorized<float>;
  // p and q, highest degree first.
  constexpr double kP[] = {-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                           -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
                           -1.60960333262415e-02};
  constexpr double kQ[] = {-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                           -7.37332916720468e-03, -1.42647390514189e-02};
  constexpr double kBound = 3.832506856900711 * M_SQRT2, kHalfSqrt1_2 = 0.5 * M_SQRT1_2;
  const Vec z = at::vec::clamp(z_in, Vec(float(-kBound)), Vec(float(kBound)));
  const Vec t = z * z;
  Vec p(float(kP[0] * kHalfSqrt1_2 / 64));
  for (int k = 1; k < 7; ++k) p = at::vec::fmadd(p, t, Vec(float(kP[k] * kHalfSqrt1_2 / double(1 << (6 - k)))));
  Vec q(float(kQ[0] / 16));
  for (int k = 1; k < 5; ++k) q = at::vec::fmadd(q, t, Vec(float(kQ[k] / double(1 << (4 - k)))));
  // Below the clamp Φ is 0 in float (Φ(−5.42) ≈ 3e-8 is under the rational's absolute error there, ≈ one ulp
  // of 0.5): without this mask Φ would stay at its value at the clamp, ≈ 5e-8, and GELU(z) = z·Φ would grow
  // linearly (−5e-7 at z = −10, −5e22 at −1e30) where it is −0. Above the clamp Φ is within 1e-7 of 1.
  const Vec cdf = at::vec::fmadd(z * p, reciprocal(q), Vec(0.5f));
  return cdf & (z_in >= Vec(float(-kBound)));
}

// Applies step(k, count) to [0, n) in whole vectors, then once to the remainder.
template <typename scalar_t, typename Step>
inline void for_vectors(int64_t n, Step step) {
  constexpr int64_t V = at::vec::Vectorized<scalar_t>::size();
  int64_t k = 0;
  for (; k + V <= n; k += V) step(k, V);
  if (k < n) step(k, n - k);
}

// h <- GELU(z); h may be z.
template <typename scalar_t>
inline void gelu(const scalar_t* z_in, scalar_t* h, int64_t n) {
  using Vec = at::vec::Vectorized<scalar_t>;
  for_vectors<scalar_t>(n, [&](int64_t k, int64_t count) {
    const Vec z = Vec::loadu(z_in + k, count);
    (z * normal_cdf(z)).store(h + k, count);
  });
}

// x <- GELU(x)
template <typename scalar_t>
inline void gelu_inplace(scalar_t* x, int64_t n) {
  gelu(x, x, n);
}

// h <- GELU(z) and cdf <- Φ(z), so that a backward can reuse Φ instead of a second erf.
template <typename scalar_t>
inline void gelu_with_cdf(const scalar_t* z_in, scalar_t* h, scalar_t* cdf, int64_t n) {
  using Vec = at::vec::Vectorized<scalar_t>;
  for_vectors<scalar_t>(n, [&](int64_t k, int64_t count) {
    const Vec z = Vec::loadu(z_in + k, count);
    const Vec c = normal_cdf(z);
    c.store(cdf + k, count);
    (z * c).store(h + k, count);
  });
}

// g_out <- g · GELU'(z) = g · (Φ(z) + z·φ(z)), with Φ(z) given (from gelu_with_cdf) or computed when cdf is
// null; g_out may be g.
template <typename scalar_t>
inline void gelu_backward(const scalar_t* z_in, const scalar_t* cdf, const scalar_t* g, scalar_t* g_out, int64_t n) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const Vec rsqrt2pi(scalar_t(0.3989422804014327)), neg_half(scalar_t(-0.5));
  for_vectors<scalar_t>(n, [&](int64_t k, int64_t count) {
    const Vec z = Vec::loadu(z_in + k, count);
    const Vec c = cdf ? Vec::loadu(cdf + k, count) : normal_cdf(z);
    const Vec pdf = rsqrt2pi * (neg_half * z * z).exp_u20();
    (Vec::loadu(g + k, count) * (c + z * pdf)).store(g_out + k, count);
  });
}

// g <- g · GELU'(z), as gelu_backward.
template <typename scalar_t>
inline void gelu_backward_inplace(const scalar_t* z_in, const scalar_t* cdf, scalar_t* g, int64_t n) {
  gelu_backward(z_in, cdf, g, g, n);
}

}  // namespace fastsim
