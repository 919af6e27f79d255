// Right-hand sides and dense Jacobians of the stiff systems of the fused Rodas5 ensemble (ensemble_rodas5).
//
// Each system is a small struct built from one trajectory's parameter row; `f(y, dy)` writes dy/dt and
// `jac(y, J)` the row-major n×n Jacobian ∂f/∂y. All are autonomous, so Rodas5 needs no ∂f/∂t. The formulas are
// those of fastsim/dynamics/stiff.py (the Bari/deTestSet test problems and NGS's thresholded Kuramoto), in the
// same operation order where it matters for rounding (ROBER).
#pragma once

#include <cmath>
#include <cstdint>

namespace fastsim {
namespace stiff {

// ROBER: params (k1, k2, k3).
struct Rober {
  double k1, k2, k3;
  explicit Rober(const double* p) : k1(p[0]), k2(p[1]), k3(p[2]) {}
  static constexpr int64_t kParams = 3;
  void f(const double* y, double* dy) const {
    const double r1 = k1 * y[0], r2 = k2 * y[1] * y[1], r3 = k3 * y[1] * y[2];
    dy[0] = r3 - r1;
    dy[1] = (r1 - r3) - r2;  // (r1 − r3) first: late in the run r1 ≈ r3 and this difference is exact
    dy[2] = r2;
  }
  void jac(const double* y, double* J) const {
    J[0] = -k1, J[1] = k3 * y[2], J[2] = k3 * y[1];
    J[3] = k1, J[4] = -2 * k2 * y[1] - k3 * y[2], J[5] = -k3 * y[1];
    J[6] = 0, J[7] = 2 * k2 * y[1], J[8] = 0;
  }
};

// HIRES (n = 8), the test set's constants; no params.
struct Hires {
  static constexpr int64_t kParams = 0;
  static constexpr double k1 = 1.71, k2 = 0.43, k3 = 8.32, k4 = 0.69, k5 = 0.035, k6 = 8.32, k7 = 280.0, k8 = 0.69,
                          k9 = 0.69, oks = 0.0007;
  explicit Hires(const double*) {}
  void f(const double* y, double* dy) const {
    const double r7 = k7 * y[5] * y[7];
    dy[0] = -k1 * y[0] + k2 * y[1] + k6 * y[2] + oks;
    dy[1] = k1 * y[0] - (k2 + k3) * y[1];
    dy[2] = -(k6 + k1) * y[2] + k2 * y[3] + k5 * y[4];
    dy[3] = k3 * y[1] + k1 * y[2] - (k4 + k2) * y[3];
    dy[4] = -(k5 + k1) * y[4] + k2 * y[5] + k2 * y[6];
    dy[5] = k8 * y[3] + k1 * y[4] - k2 * y[5] + k8 * y[6] - r7;
    dy[6] = -(k2 + k8 + k9) * y[6] + r7;
    dy[7] = (k2 + k8 + k9) * y[6] - r7;
  }
  void jac(const double* y, double* J) const {
    for (int i = 0; i < 64; ++i) J[i] = 0;
    J[0 * 8 + 0] = -k1, J[0 * 8 + 1] = k2, J[0 * 8 + 2] = k6;
    J[1 * 8 + 0] = k1, J[1 * 8 + 1] = -(k2 + k3);
    J[2 * 8 + 2] = -(k6 + k1), J[2 * 8 + 3] = k2, J[2 * 8 + 4] = k5;
    J[3 * 8 + 1] = k3, J[3 * 8 + 2] = k1, J[3 * 8 + 3] = -(k4 + k2);
    J[4 * 8 + 4] = -(k5 + k1), J[4 * 8 + 5] = k2, J[4 * 8 + 6] = k2;
    J[5 * 8 + 3] = k8, J[5 * 8 + 4] = k1, J[5 * 8 + 5] = -k2 - k7 * y[7], J[5 * 8 + 6] = k8, J[5 * 8 + 7] = -k7 * y[5];
    J[6 * 8 + 5] = k7 * y[7], J[6 * 8 + 6] = -(k2 + k8 + k9), J[6 * 8 + 7] = k7 * y[5];
    J[7 * 8 + 5] = -k7 * y[7], J[7 * 8 + 6] = k2 + k8 + k9, J[7 * 8 + 7] = -k7 * y[5];
  }
};

// OREGO (n = 3), the test set's constants; no params.
struct Orego {
  static constexpr int64_t kParams = 0;
  static constexpr double k1 = 77.27, k2 = 8.375e-6, k3 = 77.27, k4 = 0.161;
  explicit Orego(const double*) {}
  void f(const double* y, double* dy) const {
    dy[0] = (y[1] + y[0] - y[0] * (k2 * y[0] + y[1])) * k1;
    dy[1] = (y[2] - (y[0] + 1) * y[1]) * (1 / k3);
    dy[2] = (y[0] - y[2]) * k4;
  }
  void jac(const double* y, double* J) const {
    J[0] = k1 * (1 - 2 * k2 * y[0] - y[1]), J[1] = k1 * (1 - y[0]), J[2] = 0;
    J[3] = -y[1] / k3, J[4] = -(1 + y[0]) / k3, J[5] = 1 / k3;
    J[6] = k4, J[7] = 0, J[8] = -k4;
  }
};

// VDPOL in Hairer's scaling (n = 2): params (ε), the test set's ε = 1e-6 (μ = 1000).
struct Vdpol {
  double eps;
  static constexpr int64_t kParams = 1;
  explicit Vdpol(const double* p) : eps(p[0]) {}
  void f(const double* y, double* dy) const {
    dy[0] = y[1];
    dy[1] = ((y[1] - y[0] * y[0] * y[1]) - y[0]) * (1 / eps);
  }
  void jac(const double* y, double* J) const {
    J[0] = 0, J[1] = 1;
    J[2] = (-2 * y[0] * y[1] - 1) / eps, J[3] = (1 - y[0] * y[0]) / eps;
  }
};

// NGS's thresholded all-to-all Kuramoto on n oscillators: params (K, θ_th, ω_1 … ω_n).
// dθ_i/dt = ω_i + (K/n) Σ_{j≠i} 1[kept] sin(θ_j − θ_i), a pair kept while (θ_j − θ_i) mod 2π lies within θ_th of
// π/2 or 3π/2; the Jacobian is taken with the indicator held fixed (fastsim.dynamics.thresholded_kuramoto_jacobian).
struct ThresholdedKuramoto {
  int64_t n;
  double k_over_n, threshold;
  const double* omega;
  static constexpr int64_t kParams = -1;  // 2 + n
  ThresholdedKuramoto(const double* p, int64_t n_) : n(n_), k_over_n(p[0] / double(n_)), threshold(p[1]), omega(p + 2) {}
  bool kept(double diff) const {
    constexpr double kTwoPi = 6.283185307179586, kHalfPi = 1.5707963267948966, kThreeHalfPi = 4.71238898038469;
    double d = std::fmod(diff, kTwoPi);
    if (d < 0) d += kTwoPi;
    return std::fabs(d - kHalfPi) < threshold || std::fabs(d - kThreeHalfPi) < threshold;
  }
  void f(const double* y, double* dy) const {
    for (int64_t i = 0; i < n; ++i) {
      double acc = 0;
      for (int64_t j = 0; j < n; ++j) {
        const double diff = y[j] - y[i];
        if (j != i && kept(diff)) acc += std::sin(diff);
      }
      dy[i] = omega[i] + k_over_n * acc;
    }
  }
  void jac(const double* y, double* J) const {
    for (int64_t i = 0; i < n; ++i) {
      double diag = 0;
      for (int64_t j = 0; j < n; ++j) {
        const double diff = y[j] - y[i];
        const double v = (j != i && kept(diff)) ? k_over_n * std::cos(diff) : 0.0;
        J[i * n + j] = v;
        diag += v;
      }
      J[i * n + i] = -diag;
    }
  }
};

}  // namespace stiff
}  // namespace fastsim
