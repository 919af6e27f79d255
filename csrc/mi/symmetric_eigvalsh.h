// Eigenvalues of one real symmetric matrix, written once for the host (symmetric_eigvalsh_cpu.cpp, one thread per
// matrix) and the device (symmetric_eigvalsh_cuda.cu, one thread block per matrix):
//   1. Householder tridiagonalisation  Q^T A Q = T  (d: diagonal, e: off-diagonal), in place on an n×n float64
//      work copy of A, scaled by 1/max|a_ij| so that no square over- or underflows;
//   2. the eigenvalues of T by Sturm-sequence bisection: count(x) = #{negative pivots of the LDL^T of T − xI} is the
//      number of eigenvalues below x, so the k-th eigenvalue is found by halving its Gershgorin interval until it
//      is eps·‖T‖ wide, independently of every other one.
// Bisection rather than implicit QL or Jacobi because every eigenvalue is an independent job of the same length
// (one per GPU thread, no divergence, no inter-thread traffic) and its error is bounded a priori (eps·‖T‖ absolute,
// the accuracy of LAPACK's dsterf) however clustered the spectrum, e.g. the many near-zero eigenvalues of a Gram
// matrix of few samples. Its cost, n² divisions per bit of accuracy (≈ 60 bits), is why the CPU op hands matrices
// larger than 32×32 to LAPACK's root-free QR (symmetric_eigvalsh_cpu.cpp), which is faster there on one core.
//
// The functions are templated on a Team: the threads that share one matrix. `rank()`/`size()` number them,
// `sync()` is a barrier that makes the work arrays' writes visible to the team, `sum`/`max` reduce a value over
// the team and return it to every member. On the host a team is one thread (SerialTeam: size 1, no-op barrier).
// Loops `for (c = rank; c < m; c += size)` split columns or eigenvalues across the team; each index is written
// by exactly one member between two barriers, so no two members ever write the same element.
#pragma once

#include <c10/macros/Macros.h>

#include <cfloat>
#include <cmath>
#include <cstdint>

namespace fastsim {
namespace eigvalsh {

// Bisection refines kLanes eigenvalues at once per team member: their Sturm recurrences are independent, so on the
// host they fill the SIMD lanes and hide the division latency (the recurrence itself is a serial chain). On the
// device every thread already runs in a SIMT lane, and one eigenvalue per thread keeps registers low.
#ifdef __CUDA_ARCH__
constexpr int kLanes = 1;
#define FASTSIM_EIGVALSH_SIMD
#else
constexpr int kLanes = 16;
#define FASTSIM_EIGVALSH_SIMD _Pragma("omp simd")
#endif

// Doubles of work memory a matrix of order n needs: the n×n copy, then v (Householder vector), p, d, e².
C10_HOST_DEVICE constexpr int64_t work_size(int64_t n) { return n * n + 4 * n; }

// The single-thread team of the host.
struct SerialTeam {
  static constexpr int rank() { return 0; }
  static constexpr int size() { return 1; }
  void sync() const {}
  double sum(double v) const { return v; }
  double max(double v) const { return v; }
};

// Copies the symmetric matrix given by the lower triangle of `a` (n×n, row-major, any floating type; the strict
// upper triangle is not read, as in LAPACK's uplo = 'L') into work[0 : n²) as a full float64 matrix divided by
// max|a_ij|, and returns that scale (0 for the zero matrix, which is left as zeros).
template <typename Team, typename scalar_t>
C10_HOST_DEVICE double load_scaled(const Team& team, const scalar_t* a, int64_t n, double* work) {
  double amax = 0;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = team.rank(); c < n; c += team.size()) {
      const double value = double(c <= r ? a[r * n + c] : a[c * n + r]);
      work[r * n + c] = value;
      amax = fmax(amax, fabs(value));
    }
  }
  amax = team.max(amax);  // also the barrier after the copy
  const double inv = amax > 0 ? 1.0 / amax : 0.0;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = team.rank(); c < n; c += team.size()) work[r * n + c] *= inv;
  }
  team.sync();
  return amax;
}

// Reduces the symmetric matrix in work[0 : n²) (full storage, both triangles kept equal) to tridiagonal form
// T = H_{n-3} … H_0 A H_0 … H_{n-3}, H_k = I − β v v^T, and leaves T's diagonal in d[0:n) and the squares of its
// off-diagonal in e2[0:n-1). Step k annihilates row/column k below the subdiagonal and updates the trailing block
// B = A[k+1:, k+1:] by the symmetric rank-2 form B ← B − v w^T − w v^T, p = β B v, w = p − (β v^T p / 2) v.
// Member c owns column c of B and p: consecutive members touch consecutive addresses (no shared-memory bank
// conflicts on the device), and each p[c] and B[·, c] has one writer.
template <typename Team>
C10_HOST_DEVICE void tridiagonalize(const Team& team, double* work, int64_t n, double* d, double* e2) {
  double* v = work + n * n;
  double* p = v + n;
  for (int64_t k = 0; k + 2 < n; ++k) {
    const int64_t m = n - k - 1;         // order of the trailing block
    const double* x = work + k * n + k + 1;  // row k right of the diagonal == column k below it
    double* B = work + (k + 1) * n + k + 1;  // B[r, c] = B[r * n + c]
    double part = 0;
    for (int64_t c = team.rank(); c < m; c += team.size()) part += x[c] * x[c];
    const double norm2 = team.sum(part);
    const double x0 = x[0];
    if (team.rank() == 0) d[k] = work[k * n + k];
    if (norm2 == 0) {  // column already zero: H_k = I
      if (team.rank() == 0) e2[k] = 0;
      continue;
    }
    // alpha = −sign(x0)·‖x‖ avoids cancellation in v0 = x0 − alpha; v^T v = 2(‖x‖² − x0·alpha).
    const double alpha = x0 >= 0 ? -sqrt(norm2) : sqrt(norm2);
    const double beta = 1.0 / (norm2 - x0 * alpha);
    if (team.rank() == 0) e2[k] = norm2;  // alpha², without the rounding of the square root
    for (int64_t c = team.rank(); c < m; c += team.size()) v[c] = c == 0 ? x0 - alpha : x[c];
    team.sync();
    // p = β B v as a sum of scaled rows of B, so that the innermost loop runs along a row (SIMD on the host).
    for (int64_t c = team.rank(); c < m; c += team.size()) p[c] = 0;
    for (int64_t r = 0; r < m; ++r) {
      const double vr = v[r];
      for (int64_t c = team.rank(); c < m; c += team.size()) p[c] += B[r * n + c] * vr;
    }
    part = 0;
    for (int64_t c = team.rank(); c < m; c += team.size()) {
      p[c] *= beta;
      part += v[c] * p[c];
    }
    const double half_k = 0.5 * beta * team.sum(part);  // also the barrier after the writes of p
    for (int64_t c = team.rank(); c < m; c += team.size()) p[c] -= half_k * v[c];  // p becomes w
    team.sync();
    // v_r w_c + w_r v_c is the same number for (r, c) and (c, r), so B stays exactly symmetric.
    for (int64_t r = 0; r < m; ++r) {
      const double vr = v[r], wr = p[r];
      for (int64_t c = team.rank(); c < m; c += team.size()) B[r * n + c] -= vr * p[c] + wr * v[c];
    }
    team.sync();
  }
  if (team.rank() == 0) {
    if (n >= 2) {
      d[n - 2] = work[(n - 2) * n + n - 2];
      const double last = work[(n - 1) * n + n - 2];
      e2[n - 2] = last * last;
    }
    d[n - 1] = work[(n - 1) * n + n - 1];
  }
  team.sync();
}

// Eigenvalues of the tridiagonal T (diagonal d, squared off-diagonal e2), ascending, times `scale`, into
// out[k * out_stride] (k = 0..n-1) as scalar_t. Eigenvalue k is the limit of [lo, hi] with count(lo) ≤ k <
// count(hi), starting from the Gershgorin interval of T (padded so the invariant holds); every interval has the
// same width at every step, so all lanes and members run the same number of steps (≈ 53 + log2 n).
template <typename Team, typename scalar_t>
C10_HOST_DEVICE void bisect(const Team& team, const double* d, const double* e2, int64_t n, double scale,
                            scalar_t* out, int64_t out_stride) {
  double lo = d[0], hi = d[0], e2max = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double left = i > 0 ? sqrt(e2[i - 1]) : 0.0, right = i + 1 < n ? sqrt(e2[i]) : 0.0;
    lo = fmin(lo, d[i] - left - right);
    hi = fmax(hi, d[i] + left + right);
    if (i + 1 < n) e2max = fmax(e2max, e2[i]);
  }
  // A pivot smaller than pivmin is replaced by −pivmin (LAPACK dstebz): no division by zero, and the count stays
  // that of a matrix within pivmin of T.
  const double pivmin = DBL_MIN * fmax(1.0, e2max);
  const double tnorm = fmax(fabs(lo), fabs(hi));
  const double tol = 2 * DBL_EPSILON * tnorm + 4 * pivmin;
  lo -= 2 * DBL_EPSILON * tnorm * double(n) + 2 * pivmin;
  hi += 2 * DBL_EPSILON * tnorm * double(n) + 2 * pivmin;
  int steps = 0;
  for (double width = hi - lo; width > tol && steps < 128; width *= 0.5) ++steps;

  for (int64_t k0 = int64_t(team.rank()) * kLanes; k0 < n; k0 += int64_t(team.size()) * kLanes) {
    double a[kLanes], b[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      a[l] = lo;
      b[l] = hi;
    }
    for (int s = 0; s < steps; ++s) {
      double x[kLanes], q[kLanes], below[kLanes];
      for (int l = 0; l < kLanes; ++l) {
        x[l] = 0.5 * (a[l] + b[l]);
        q[l] = d[0] - x[l];
        if (fabs(q[l]) < pivmin) q[l] = -pivmin;
        below[l] = q[l] < 0 ? 1.0 : 0.0;
      }
      for (int64_t i = 1; i < n; ++i) {
        const double di = d[i], ei2 = e2[i - 1];
        FASTSIM_EIGVALSH_SIMD
        for (int l = 0; l < kLanes; ++l) {
          const double qi = (di - x[l]) - ei2 / q[l];
          q[l] = fabs(qi) < pivmin ? -pivmin : qi;
          below[l] += q[l] < 0 ? 1.0 : 0.0;
        }
      }
      for (int l = 0; l < kLanes; ++l) {
        if (below[l] > double(k0 + l)) {
          b[l] = x[l];
        } else {
          a[l] = x[l];
        }
      }
    }
    for (int l = 0; l < kLanes && k0 + l < n; ++l) out[(k0 + l) * out_stride] = scalar_t(0.5 * (a[l] + b[l]) * scale);
  }
}

// All of it for one matrix: `a` (n×n, row-major, symmetric; only its values are read) → out[k * out_stride].
template <typename Team, typename scalar_t>
C10_HOST_DEVICE void symmetric_eigvalsh(const Team& team, const scalar_t* a, int64_t n, double* work, scalar_t* out,
                                        int64_t out_stride) {
  const double scale = load_scaled(team, a, n, work);
  double* d = work + n * n + 2 * n;
  double* e2 = d + n;
  tridiagonalize(team, work, n, d, e2);
  bisect(team, d, e2, n, scale, out, out_stride);
}

}  // namespace eigvalsh
}  // namespace fastsim
