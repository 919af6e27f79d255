// Fused ensemble Rodas5(4) integrator for small stiff systems on the CPU (docs/ops.md, "ensemble_rodas5").
//
// Each trajectory's whole adaptive loop runs here as one OpenMP task: the exact Jacobian (stiff_systems.h), one
// dense LU with partial pivoting of M = I/(hγ) − J per attempted step, the eight stages, the embedded error
// estimate, Gustafsson's predictive step-size controller and the order-4 dense output at the output times. It is
// the algorithm of fastsim/solvers/rosenbrock.py (which documents the method and cites the coefficients), without
// the Python interpreter between the O(n²) pieces: for the n ≤ a few hundred of the stiff test problems and
// NGS's thresholded Kuramoto, the interpreter is what costs in scipy's Radau/LSODA and in the Python solver.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/string_view.h>
#include <torch/library.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <type_traits>

#include "common/checks.h"
#include "rk/stiff_systems.h"

namespace fastsim {
namespace {

using namespace stiff;

// Per-trajectory status codes (fastsim.ops.ensemble.STIFF_ENSEMBLE_STATUS).
constexpr int kRunning = -1, kOk = 0, kMaxSteps = 1, kNonFinite = 2, kUnderflow = 3, kSingular = 4;
constexpr int kStatNfev = 0, kStatAccepted = 1, kStatRejected = 2, kStatStatus = 3, kStatNjev = 4, kNumStats = 5;
constexpr double kEps = std::numeric_limits<double>::epsilon();

// Rodas5(4) (Di Marzo 1993) in Hairer–Wanner's transformed form; fastsim/solvers/rosenbrock.py holds the same.
constexpr double kGamma = 0.19;
constexpr double kA[8][7] = {
    {},
    {2.0},
    {3.040894194418781, 1.041747909077569},
    {2.576417536461461, 1.62208306077664, -0.9089668560264532},
    {2.760842080225597, 1.446624659844071, -0.3036980084553738, 0.2877498600325443},
    {-14.09640773051259, 6.925207756232704, -41.47510893210728, 2.343771018586405, 24.13215229196062},
    {-14.09640773051259, 6.925207756232704, -41.47510893210728, 2.343771018586405, 24.13215229196062, 1.0},
    {-14.09640773051259, 6.925207756232704, -41.47510893210728, 2.343771018586405, 24.13215229196062, 1.0, 1.0}};
constexpr double kC[8][7] = {
    {},
    {-10.31323885133993},
    {-21.04823117650003, -7.234992135176716},
    {32.22751541853323, -4.943732386540191, 19.44922031041879},
    {-20.69865579590063, -8.816374604402768, 1.260436877740897, -0.7495647613787146},
    {-46.22004352711257, -17.49534862857472, -289.6389582892057, 93.60855400400906, 318.3822534212147},
    {34.20013733472935, -14.1553540271769, 57.823356409884, 25.83362985412365, 1.408950972071624, -6.551835421242162},
    {42.57076742291101, -13.80770672017997, 93.98938432427124, 18.77919633714503, -31.5835918722337,
     -6.685968952921985, -5.810979938412932}};
constexpr double kH[3][8] = {
    {27.354592673333357, -6.925207756232857, 26.40037733258859, 0.5635230501052979, -4.699151156849391,
     -1.6008677469422725, -1.5306074446748028, -1.3929872940716344},
    {44.19024239501722, 1.3677947663381929e-13, 202.93261852171622, -35.5669339789154, -181.91095152160645,
     3.4116351403665033, 2.5793540257308067, 2.2435122582734066},
    {-44.0988150021747, -5.755396159656812e-13, -181.26175034586677, 56.99302194811676, 183.21182741427398,
     -7.480257918273637, -5.792426076169686, -5.32503859794143}};
constexpr double kSafe = 0.9, kFacMax = 5.0, kFacMin = 1.0 / 6.0;  // h / h_new within [1/6, 5]
constexpr int kOrder = 5;

bool all_finite(const double* x, int64_t n) {
  double poison = 0;  // x·0 is NaN for non-finite x
  for (int64_t i = 0; i < n; ++i) poison += x[i] * 0.0;
  return poison == 0.0;
}

// In-place LU with partial pivoting of the row-major n×n matrix `a`; false if a pivot is exactly zero.
bool lu_factor(double* a, int64_t* piv, int64_t n) {
  for (int64_t k = 0; k < n; ++k) {
    int64_t p = k;
    double best = std::fabs(a[k * n + k]);
    for (int64_t i = k + 1; i < n; ++i) {
      if (std::fabs(a[i * n + k]) > best) best = std::fabs(a[i * n + k]), p = i;
    }
    piv[k] = p;
    if (!(best > 0)) return false;
    if (p != k) std::swap_ranges(a + k * n, a + (k + 1) * n, a + p * n);
    const double inv = 1.0 / a[k * n + k];
    for (int64_t i = k + 1; i < n; ++i) {
      const double l = (a[i * n + k] *= inv);
      if (l == 0.0) continue;
      for (int64_t j = k + 1; j < n; ++j) a[i * n + j] -= l * a[k * n + j];
    }
  }
  return true;
}

void lu_solve(const double* a, const int64_t* piv, int64_t n, double* x) {
  for (int64_t k = 0; k < n; ++k) {
    if (piv[k] != k) std::swap(x[k], x[piv[k]]);
  }
  for (int64_t i = 1; i < n; ++i) {
    double s = x[i];
    for (int64_t j = 0; j < i; ++j) s -= a[i * n + j] * x[j];
    x[i] = s;
  }
  for (int64_t i = n - 1; i >= 0; --i) {
    double s = x[i];
    for (int64_t j = i + 1; j < n; ++j) s -= a[i * n + j] * x[j];
    x[i] = s / a[i * n + i];
  }
}

// Elements of one trajectory's workspace: y, y_new, f0, u, g, 8 stages, J, M.
int64_t workspace_size(int64_t n) { return 13 * n + 2 * n * n; }

template <typename Sys>
class Trajectory {
 public:
  Trajectory(const Sys& sys, int64_t n, double* work, int64_t* piv, double rtol, double atol)
      : sys_(sys), n_(n), piv_(piv), rtol_(rtol), atol_(atol) {
    y_ = work, y_new_ = y_ + n, f0_ = y_new_ + n, u_ = f0_ + n, g_ = u_ + n;
    for (int s = 0; s < 8; ++s) k_[s] = g_ + (1 + s) * n;
    J_ = work + 13 * n;
    M_ = J_ + n * n;
  }

  // Integrates from t_eval[0] to t_eval[T-1], writing y(t_eval[p]) to out + p·out_stride (n values each).
  void solve(const double* y0, const double* t_eval, int64_t T, double* out, int64_t out_stride, double first_step,
             int64_t max_steps, int64_t* stats, double* t_final) {
    const int64_t n = n_;
    double t = t_eval[0];
    const double t_end = t_eval[T - 1];
    int status = kRunning;
    int64_t nfev = 0, njev = 0, accepted = 0, rejected = 0, nsing = 0, p = 1;
    std::copy(y0, y0 + n, y_);
    std::copy(y0, y0 + n, out);  // t_eval[0] is the initial time
    double h = 0, h_acc = -1, err_acc = 1;
    bool reject = false, nonfinite = false, need_jac = true;
    if (T == 1 || n == 0) {
      status = kOk;
      t = t_end;
      if (n == 0) p = T;
    } else {
      sys_.f(y_, f0_);
      nfev = 1;
      if (!all_finite(y_, n) || !all_finite(f0_, n)) {
        status = kNonFinite;
      } else {
        h = first_step > 0 ? first_step : initial_step(t, t_end, nfev);
        h = std::min(h, t_end - t);
      }
    }
    while (status == kRunning) {
      if (need_jac) {
        sys_.jac(y_, J_);
        ++njev;
        need_jac = false;
      }
      if (accepted + rejected >= max_steps) {
        status = kMaxSteps;
        break;
      }
      if (0.1 * h <= std::fabs(t) * kEps || !(h > 0)) {
        status = nonfinite ? kNonFinite : kUnderflow;
        break;
      }
      const bool last = t + h * (1 + 1e-9) >= t_end;
      if (last) h = t_end - t;
      const double t_new = last ? t_end : t + h;
      // M = I/(hγ) − J
      const double shift = 1.0 / (h * kGamma);
      for (int64_t i = 0; i < n * n; ++i) M_[i] = -J_[i];
      for (int64_t i = 0; i < n; ++i) M_[i * n + i] += shift;
      if (!lu_factor(M_, piv_, n)) {
        if (++nsing >= 5) {
          status = kSingular;
          break;
        }
        h *= 0.5;
        continue;
      }
      nsing = 0;
      // The 8 stages: M k_i = f(y + Σ a_ij k_j) + Σ (C_ij/h) k_j (autonomous: no ∂f/∂t term).
      const double inv_h = 1.0 / h;
      std::copy(f0_, f0_ + n, k_[0]);
      lu_solve(M_, piv_, n, k_[0]);
      for (int s = 1; s < 8; ++s) {
        for (int64_t i = 0; i < n; ++i) {
          double a = y_[i], c = 0;
          for (int j = 0; j < s; ++j) a += kA[s][j] * k_[j][i], c += kC[s][j] * k_[j][i];
          u_[i] = a;
          g_[i] = c * inv_h;
        }
        sys_.f(u_, k_[s]);
        for (int64_t i = 0; i < n; ++i) k_[s][i] += g_[i];
        lu_solve(M_, piv_, n, k_[s]);
      }
      nfev += 7;
      double acc = 0;
      for (int64_t i = 0; i < n; ++i) {
        y_new_[i] = u_[i] + k_[7][i];
        const double sc = atol_ + rtol_ * std::max(std::fabs(y_[i]), std::fabs(y_new_[i]));
        const double e = k_[7][i] / sc;
        acc += e * e;
      }
      const double err = std::sqrt(acc / double(n));
      bool finite = std::isfinite(err) && all_finite(y_new_, n);
      if (finite && err <= 1) {
        sys_.f(y_new_, g_);  // f(y_new), kept in g_ until the step is accepted
        ++nfev;
        finite = all_finite(g_, n);
      }
      if (!finite) {
        h *= 0.5, reject = true, nonfinite = true;
        ++rejected;
        continue;
      }
      nonfinite = false;
      const double fac = std::max(kFacMin, std::min(kFacMax, std::pow(err, 1.0 / kOrder) / kSafe));
      double h_new = h / fac;
      if (err <= 1) {
        ++accepted;
        if (h_acc > 0) {  // Gustafsson's predictive controller
          const double facgus =
              std::max(kFacMin, std::min(kFacMax, (h_acc / h) * std::pow(err * err / err_acc, 1.0 / kOrder) / kSafe));
          h_new = h / std::max(fac, facgus);
        }
        h_acc = h, err_acc = std::max(1e-2, err);
        for (; p < T && t_eval[p] <= t_new; ++p) dense_output(t_eval[p], t, h, out + p * out_stride);
        std::swap(y_, y_new_);
        std::copy(g_, g_ + n, f0_);
        t = t_new;
        need_jac = true;
        if (last) {
          status = kOk;
          break;
        }
        h = reject ? std::min(h_new, h) : h_new;
        reject = false;
      } else {
        ++rejected;
        h = h_new, reject = true;
      }
    }
    for (; p < T; ++p) {
      std::fill(out + p * out_stride, out + p * out_stride + n, std::numeric_limits<double>::quiet_NaN());
    }
    stats[kStatNfev] = nfev;
    stats[kStatAccepted] = accepted;
    stats[kStatRejected] = rejected;
    stats[kStatStatus] = status;
    stats[kStatNjev] = njev;
    *t_final = t;
  }

 private:
  // Hairer's starting step for an order-4 error estimate (fastsim.solvers.implicit.initial_step).
  double initial_step(double t0, double t_end, int64_t& nfev) {
    const int64_t n = n_;
    double d0 = 0, d1 = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double sc = atol_ + rtol_ * std::fabs(y_[i]);
      d0 += (y_[i] / sc) * (y_[i] / sc);
      d1 += (f0_[i] / sc) * (f0_[i] / sc);
    }
    d0 = std::sqrt(d0 / double(n)), d1 = std::sqrt(d1 / double(n));
    double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
    h0 = std::min(h0, t_end - t0);
    for (int64_t i = 0; i < n; ++i) u_[i] = y_[i] + h0 * f0_[i];
    sys_.f(u_, g_);
    ++nfev;
    double d2 = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double e = (g_[i] - f0_[i]) / (atol_ + rtol_ * std::fabs(y_[i]));
      d2 += e * e;
    }
    d2 = std::sqrt(d2 / double(n)) / h0;
    if (!std::isfinite(d2)) return 1e-3 * h0;
    const double dmax = std::max(d1, d2);
    const double h1 = dmax <= 1e-15 ? std::max(1e-6, 1e-3 * h0) : std::pow(0.01 / dmax, 1.0 / kOrder);
    return std::min(std::min(100 * h0, h1), t_end - t0);
  }

  // y(t0 + θh) = (1 − θ) y0 + θ (y1 + (1 − θ)(K_1 + θ (K_2 + θ K_3))), K_r = Σ_j H_rj k_j.
  void dense_output(double t_out, double t0, double h, double* out) const {
    const double th = (t_out - t0) / h, th1 = 1 - th;
    for (int64_t i = 0; i < n_; ++i) {
      double K[3] = {0, 0, 0};
      for (int r = 0; r < 3; ++r) {
        for (int j = 0; j < 8; ++j) K[r] += kH[r][j] * k_[j][i];
      }
      out[i] = th1 * y_[i] + th * (y_new_[i] + th1 * (K[0] + th * (K[1] + th * K[2])));
    }
  }

  const Sys& sys_;
  int64_t n_;
  int64_t* piv_;
  double rtol_, atol_;
  double *y_, *y_new_, *f0_, *u_, *g_, *k_[8], *J_, *M_;
};

enum class StiffKind { Rober, Hires, Orego, Vdpol, ThresholdedKuramoto };

StiffKind parse_stiff_system(c10::string_view name) {
  if (name == "rober") return StiffKind::Rober;
  if (name == "hires") return StiffKind::Hires;
  if (name == "orego") return StiffKind::Orego;
  if (name == "vdpol") return StiffKind::Vdpol;
  if (name == "thresholded_kuramoto") return StiffKind::ThresholdedKuramoto;
  TORCH_CHECK(false, "system must be one of rober, hires, orego, vdpol, thresholded_kuramoto; got '", name, "'");
  return StiffKind::Rober;
}

template <typename Sys>
void solve_all(const at::Tensor& y0, const at::Tensor& params, const at::Tensor& t_eval, int64_t t_stride,
               double rtol, double atol, double first_step, int64_t max_steps, at::Tensor& ys, at::Tensor& stats,
               at::Tensor& t_final) {
  const int64_t B = y0.size(0), n = y0.size(1), P = params.size(1), T = t_eval.size(-1);
  const int num_threads =
      at::in_parallel_region() ? 1 : int(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), B)));
  const int64_t ws = std::max<int64_t>(workspace_size(n), 1);
  // One workspace per thread, allocated before the parallel region (nothing in the region may throw).
  at::Tensor work = at::empty({num_threads, ws}, y0.options());
  at::Tensor pivots = at::empty({num_threads, std::max<int64_t>(n, 1)}, y0.options().dtype(at::kLong));
  const double *y0p = y0.data_ptr<double>(), *pp = params.data_ptr<double>(), *tp = t_eval.data_ptr<double>();
  double *out = ys.data_ptr<double>(), *work_base = work.data_ptr<double>(), *tf = t_final.data_ptr<double>();
  int64_t *st = stats.data_ptr<int64_t>(), *piv_base = pivots.data_ptr<int64_t>();
  // Trajectory b writes only its own columns [b·n, (b+1)·n) of every output row, its row of stats and t_final[b].
#pragma omp parallel num_threads(num_threads) if (num_threads > 1)
  {
#ifdef _OPENMP
    const int tid = omp_get_thread_num();
#else
    const int tid = 0;
#endif
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < B; ++b) {
      const Sys sys = [&] {
        if constexpr (Sys::kParams < 0) {
          return Sys(pp + b * P, n);
        } else {
          return Sys(pp + b * P);
        }
      }();
      Trajectory<Sys> traj(sys, n, work_base + tid * ws, piv_base + tid * std::max<int64_t>(n, 1), rtol, atol);
      traj.solve(y0p + b * n, tp + b * t_stride, T, out + b * n, B * n, first_step, max_steps, st + b * kNumStats,
                 tf + b);
    }
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> ensemble_rodas5_cpu(const at::Tensor& y0, const at::Tensor& params,
                                                                   const at::Tensor& t_eval, c10::string_view system,
                                                                   double rtol, double atol, double first_step,
                                                                   int64_t max_steps) {
  const StiffKind kind = parse_stiff_system(system);
  TORCH_CHECK(y0.scalar_type() == at::kDouble && y0.dim() == 2 && y0.is_contiguous(),
              "y0 must be a contiguous float64 (B, n) tensor, got ", y0.scalar_type(), " ", y0.sizes());
  TORCH_CHECK(params.scalar_type() == at::kDouble && params.dim() == 2 && params.is_contiguous() &&
                  params.size(0) == y0.size(0),
              "params must be a contiguous float64 (B, P) tensor with B = ", y0.size(0), ", got ", params.sizes());
  TORCH_CHECK(t_eval.scalar_type() == at::kDouble && t_eval.is_contiguous() && t_eval.size(-1) >= 1 &&
                  (t_eval.dim() == 1 || (t_eval.dim() == 2 && t_eval.size(0) == y0.size(0))),
              "t_eval must be a contiguous float64 (T,) or (B, T) tensor, got ", t_eval.sizes());
  check_increasing_times(t_eval, "t_eval");
  TORCH_CHECK(rtol > 0 && atol > 0 && std::isfinite(rtol) && std::isfinite(atol), "rtol and atol must be > 0");
  TORCH_CHECK(max_steps >= 1, "max_steps must be >= 1");
  const int64_t B = y0.size(0), n = y0.size(1), P = params.size(1), T = t_eval.size(-1);
  const int64_t fixed_n[] = {3, 8, 3, 2, -1}, fixed_p[] = {Rober::kParams, Hires::kParams, Orego::kParams,
                                                           Vdpol::kParams, 2 + n};
  const int k = int(kind);
  TORCH_CHECK(fixed_n[k] < 0 || n == fixed_n[k], "system '", system, "' has ", fixed_n[k], " unknowns; y0 has ", n);
  TORCH_CHECK(P == fixed_p[k], "system '", system, "' takes ", fixed_p[k], " parameters per trajectory; got ", P);
  at::Tensor ys = at::empty({T, B, n}, y0.options());
  at::Tensor stats = at::empty({B, kNumStats}, y0.options().dtype(at::kLong));
  at::Tensor t_final = at::empty({B}, y0.options());
  const int64_t t_stride = t_eval.dim() == 2 ? T : 0;
  auto run = [&](auto* tag) {
    using Sys = std::remove_pointer_t<decltype(tag)>;
    solve_all<Sys>(y0, params, t_eval, t_stride, rtol, atol, first_step, max_steps, ys, stats, t_final);
  };
  switch (kind) {
    case StiffKind::Rober: run(static_cast<Rober*>(nullptr)); break;
    case StiffKind::Hires: run(static_cast<Hires*>(nullptr)); break;
    case StiffKind::Orego: run(static_cast<Orego*>(nullptr)); break;
    case StiffKind::Vdpol: run(static_cast<Vdpol*>(nullptr)); break;
    case StiffKind::ThresholdedKuramoto: run(static_cast<ThresholdedKuramoto*>(nullptr)); break;
  }
  return {ys, stats, t_final};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastsim, CPU, m) { m.impl("ensemble_rodas5", &ensemble_rodas5_cpu); }

}  // namespace fastsim
