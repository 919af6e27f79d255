// Exact (erf) GELU and its derivative over contiguous arrays, vectorised with ATen's Vectorized<T>.
//   GELU(z) = z·Φ(z),  GELU'(z) = Φ(z) + z·φ(z),  Φ(z) = (1 + erf(z/√2)) / 2,  φ(z) = exp(−z²/2) / √(2π)
// In float, erf is a rational function of x on [−3.83, 3.83] (odd degree-13 over even degree-8 polynomial,
// the approximation Eigen and XLA use; erf(±3.83) rounds to ±1 in float), accurate to a few float ulps
// (tests/ops/test_gn_edge_aggregate.py checks the float32 kernels against float64 at 4e-6). It costs 11 FMAs and
// one division; ATen's Vectorized<float>::erf calls exp and measured 2.6× slower here (1.28M values,
// AVX2): the fused edge kernels spend most of their time in GELU at the paper's widths.
// The derivative's φ uses ATen's exp_u20 (a degree-5 polynomial exp, ≤ 20 ulp in float; the same tests hold).
// double keeps ATen's erf and exp (exp_u20 is exp for double): full double accuracy.
#pragma once

#include <ATen/cpu/vec/vec.h>

#include <cstdint>

namespace fastsim {

template <typename scalar_t>
inline at::vec::Vectorized<scalar_t> vec_erf(const at::vec::Vectorized<scalar_t>& x) {
  return x.erf();
}

template <>
inline at::vec::Vectorized<float> vec_erf(const at::vec::Vectorized<float>& x_in) {
  using Vec = at::vec::Vectorized<float>;
  const Vec x = at::vec::clamp(x_in, Vec(-3.832506856900711f), Vec(3.832506856900711f));
  const Vec x2 = x * x;
  Vec p(-2.72614225801306e-10f);
  for (float c : {2.77068142495902e-08f, -2.10102402082508e-06f, -5.69250639462346e-05f, -7.34990630326855e-04f,
                  -2.95459980854025e-03f, -1.60960333262415e-02f})
    p = at::vec::fmadd(p, x2, Vec(c));
  Vec q(-1.45660718464996e-05f);
  for (float c : {-2.13374055278905e-04f, -1.68282697438203e-03f, -7.37332916720468e-03f, -1.42647390514189e-02f})
    q = at::vec::fmadd(q, x2, Vec(c));
  return x * p / q;
}

// Φ(z), the standard normal CDF.
template <typename scalar_t>
inline at::vec::Vectorized<scalar_t> normal_cdf(const at::vec::Vectorized<scalar_t>& z) {
  using Vec = at::vec::Vectorized<scalar_t>;
  return Vec(scalar_t(0.5)) * (Vec(scalar_t(1)) + vec_erf(z * Vec(scalar_t(M_SQRT1_2))));
}

// Applies step(k, count) to [0, n) in whole vectors, then once to the remainder.
template <typename scalar_t, typename Step>
inline void for_vectors(int64_t n, Step step) {
  constexpr int64_t V = at::vec::Vectorized<scalar_t>::size();
  int64_t k = 0;
  for (; k + V <= n; k += V) step(k, V);
  if (k < n) step(k, n - k);
}

// x <- GELU(x)
template <typename scalar_t>
inline void gelu_inplace(scalar_t* x, int64_t n) {
  using Vec = at::vec::Vectorized<scalar_t>;
  for_vectors<scalar_t>(n, [&](int64_t k, int64_t count) {
    const Vec z = Vec::loadu(x + k, count);
    (z * normal_cdf(z)).store(x + k, count);
  });
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

// g <- g · GELU'(z) = g · (Φ(z) + z·φ(z)), with Φ(z) given (from gelu_with_cdf) or computed when cdf is null.
template <typename scalar_t>
inline void gelu_backward_inplace(const scalar_t* z_in, const scalar_t* cdf, scalar_t* g, int64_t n) {
  using Vec = at::vec::Vectorized<scalar_t>;
  const Vec rsqrt2pi(scalar_t(0.3989422804014327)), neg_half(scalar_t(-0.5));
  for_vectors<scalar_t>(n, [&](int64_t k, int64_t count) {
    const Vec z = Vec::loadu(z_in + k, count);
    const Vec c = cdf ? Vec::loadu(cdf + k, count) : normal_cdf(z);
    const Vec pdf = rsqrt2pi * (neg_half * z * z).exp_u20();
    (Vec::loadu(g + k, count) * (c + z * pdf)).store(g + k, count);
  });
}

}  // namespace fastsim
