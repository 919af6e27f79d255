// Shared pieces of the fused ensemble integrators (ensemble_cpu.cpp, ensemble_cuda.cu), usable from host and
// device code: the Dormand-Prince 5(4) coefficients, the right-hand sides of the built-in graph dynamics as
// per-node functors, and the scalar step-size control (PI controller, first-step heuristic) that every
// trajectory runs on its own.
//
// Every functor reproduces the forward() of its module in fastsim/dynamics exactly (same formula, same order of
// the terms), so the fused integrators and fastsim.solvers.odeint integrate the same vector field:
//   heat                  HeatDiffusion        dT_i = Σ_{e: j→i} D_e T_j − (Σ_{e: j→i} D_e) T_i        (N,) or (N, F)
//   kuramoto              Kuramoto             dθ_i = ω_i + cos θ_i Σ_e K_e sin θ_j − sin θ_i Σ_e K_e cos θ_j
//   kuramoto_mean_field   KuramotoMeanField    dθ_i = ω_i + (K_b / N_b)(cos θ_i S_b − sin θ_i C_b),
//                                              S_b = Σ_{j in b} sin θ_j, C_b = Σ_{j in b} cos θ_j    (O(N_b))
//   rossler               CoupledRossler       (N, 3): dx = −y − z, dy = x + a_b y + Σ_e K_e y_j − (Σ_e K_e) y,
//                                              dz = b_b + z (x − c_b)
//   sis                   SIS                  dρ_i = −γ_i ρ_i + (1 − ρ_i) Σ_e β_e ρ_j
//   sir                   SIR                  (N, 3): λ_i = Σ_e β_e I_j; dS = −S λ, dI = S λ − γ I, dR = γ I
// (sums over the CSR edges e = j → i into node i; b is the graph of node i).
#pragma once

#include <c10/macros/Macros.h>

#include <cmath>
#include <cstdint>

namespace fastsim {
namespace ensemble {

// ------------------------------------------------------------------------------------------------ systems
enum class SystemKind : int { Heat = 0, Kuramoto = 1, KuramotoMeanField = 2, Rossler = 3, SIS = 4, SIR = 5 };

// Op status codes per trajectory (docs/ops.md). kRunning never leaves the kernels.
constexpr int kRunning = -1;
constexpr int kOk = 0;
constexpr int kMaxSteps = 1;
constexpr int kNonFinite = 2;
constexpr int kUnderflow = 3;

// Columns of the int64 stats output.
constexpr int kStatNfev = 0, kStatAccepted = 1, kStatRejected = 2, kStatStatus = 3, kNumStats = 4;

// Per-node auxiliary values the functors may ask for (sin θ, cos θ): computed once per node and stage instead
// of once per edge. At most kMaxAux per node; kSumAux: the kernels also sum them over the trajectory.
constexpr int kMaxAux = 2;

// x − x is 0 for finite x and NaN for ±inf and NaN (no fast-math here): a finiteness test for host and device.
C10_HOST_DEVICE inline bool is_finite(double x) { return x - x == 0.0; }

C10_HOST_DEVICE inline double math_sin(double x) { return ::sin(x); }
C10_HOST_DEVICE inline float math_sin(float x) { return ::sinf(x); }
C10_HOST_DEVICE inline double math_cos(double x) { return ::cos(x); }
C10_HOST_DEVICE inline float math_cos(float x) { return ::cosf(x); }

// Common layout of a functor: `rhs(b, n0, i, y, aux, sums, dy)` writes the dim() components of dy/dt at the
// trajectory's local node i (global node n0 + i, graph b). `y` is the trajectory's local state (node-major,
// dim() values per node), `aux` its per-node auxiliary values (kAux per node) and `sums` their sum over the
// trajectory (kSumAux). CSR edges carry global node ids; edges never cross graphs, so src − n0 is local.
// A functor only reads; the kernels own every write. `local(n0, e0, indptr_b, src_b)` returns the functor of
// one trajectory alone, over a 0-based copy of its CSR (nodes n0.., edges e0..): called with n0 = 0 it gives the
// same numbers with smaller indices (the CPU kernel uses int32 copies built once per trajectory).

// kFields: F known at compile time (1 for a (N,) state), or 0 for a runtime `fields`.
template <typename scalar_t, int kFields, typename index_t = int64_t>
struct Heat {
  static constexpr int kAux = 0;
  static constexpr bool kSumAux = false;
  const index_t* indptr;
  const index_t* src;
  const scalar_t* diffusivity;  // (E,)
  int fields;                   // F

  template <typename I>
  Heat<scalar_t, kFields, I> local(int64_t, int64_t e0, const I* ip, const I* sp) const {
    return {ip, sp, diffusivity + e0, fields};
  }

  C10_HOST_DEVICE int dim() const { return kFields > 0 ? kFields : fields; }
  C10_HOST_DEVICE void aux(const scalar_t*, scalar_t*) const {}
  C10_HOST_DEVICE void rhs(int64_t, int64_t n0, int64_t i, const scalar_t* y, const scalar_t*, const double*,
                           scalar_t* dy) const {
    const int64_t e0 = indptr[n0 + i], e1 = indptr[n0 + i + 1];
    if (kFields == 1) {
      scalar_t acc = 0, degree = 0;
      for (int64_t e = e0; e < e1; ++e) {
        const scalar_t w = diffusivity[e];
        acc += w * y[src[e] - n0];
        degree += w;
      }
      dy[0] = acc - degree * y[i];
      return;
    }
    const int fields = dim();
    for (int f = 0; f < fields; ++f) {
      scalar_t acc = 0, degree = 0;
      for (int64_t e = e0; e < e1; ++e) {
        const scalar_t w = diffusivity[e];
        acc += w * y[(src[e] - n0) * fields + f];
        degree += w;
      }
      dy[f] = acc - degree * y[i * fields + f];
    }
  }
};

template <typename scalar_t, typename index_t = int64_t>
struct Kuramoto {
  static constexpr int kAux = 2;  // sin θ, cos θ
  static constexpr bool kSumAux = false;
  const index_t* indptr;
  const index_t* src;
  const scalar_t* omega;     // (N,)
  const scalar_t* coupling;  // (E,)

  template <typename I>
  Kuramoto<scalar_t, I> local(int64_t n0, int64_t e0, const I* ip, const I* sp) const {
    return {ip, sp, omega + n0, coupling + e0};
  }

  C10_HOST_DEVICE int dim() const { return 1; }
  C10_HOST_DEVICE void aux(const scalar_t* y, scalar_t* a) const {
    a[0] = math_sin(y[0]);
    a[1] = math_cos(y[0]);
  }
  C10_HOST_DEVICE void rhs(int64_t, int64_t n0, int64_t i, const scalar_t*, const scalar_t* aux, const double*,
                           scalar_t* dy) const {
    scalar_t s = 0, c = 0;
    for (int64_t e = indptr[n0 + i]; e < indptr[n0 + i + 1]; ++e) {
      const int64_t j = src[e] - n0;
      s += coupling[e] * aux[2 * j];
      c += coupling[e] * aux[2 * j + 1];
    }
    dy[0] = omega[n0 + i] + aux[2 * i + 1] * s - aux[2 * i] * c;
  }
};

template <typename scalar_t>
struct KuramotoMeanField {
  static constexpr int kAux = 2;  // sin θ, cos θ, summed over the trajectory into S, C
  static constexpr bool kSumAux = true;
  const int64_t* ptr;
  const scalar_t* omega;     // (N,)
  const scalar_t* coupling;  // (B,) K, divided by N_b here

  template <typename I>
  KuramotoMeanField local(int64_t n0, int64_t, const I*, const I*) const {
    return {ptr, omega + n0, coupling};
  }

  C10_HOST_DEVICE int dim() const { return 1; }
  C10_HOST_DEVICE void aux(const scalar_t* y, scalar_t* a) const {
    a[0] = math_sin(y[0]);
    a[1] = math_cos(y[0]);
  }
  C10_HOST_DEVICE void rhs(int64_t b, int64_t n0, int64_t i, const scalar_t*, const scalar_t* aux,
                           const double* sums, scalar_t* dy) const {
    const int64_t size = ptr[b + 1] - ptr[b];
    const scalar_t scale = coupling[b] / scalar_t(size > 1 ? size : 1);
    dy[0] = omega[n0 + i] + scale * (aux[2 * i + 1] * scalar_t(sums[0]) - aux[2 * i] * scalar_t(sums[1]));
  }
};

template <typename scalar_t, typename index_t = int64_t>
struct Rossler {
  static constexpr int kAux = 0;
  static constexpr bool kSumAux = false;
  const index_t* indptr;
  const index_t* src;
  const scalar_t* abc;       // (B, 3): a, b, c per graph
  const scalar_t* coupling;  // (E,)

  template <typename I>
  Rossler<scalar_t, I> local(int64_t, int64_t e0, const I* ip, const I* sp) const {
    return {ip, sp, abc, coupling + e0};
  }

  C10_HOST_DEVICE int dim() const { return 3; }
  C10_HOST_DEVICE void aux(const scalar_t*, scalar_t*) const {}
  C10_HOST_DEVICE void rhs(int64_t b, int64_t n0, int64_t i, const scalar_t* y, const scalar_t*, const double*,
                           scalar_t* dy) const {
    scalar_t acc = 0, degree = 0;
    for (int64_t e = indptr[n0 + i]; e < indptr[n0 + i + 1]; ++e) {
      acc += coupling[e] * y[3 * (src[e] - n0) + 1];
      degree += coupling[e];
    }
    const scalar_t px = y[3 * i], py = y[3 * i + 1], pz = y[3 * i + 2];
    dy[0] = -py - pz;
    dy[1] = px + abc[3 * b] * py + acc - degree * py;
    dy[2] = abc[3 * b + 1] + pz * (px - abc[3 * b + 2]);
  }
};

// SIS (kCompartments = 1: the state is ρ) and SIR (3: S, I, R per node): the infection force on node i is
// Σ_e β_e I_j over its in-edges, with I_j the infected compartment of the source.
template <typename scalar_t, int kCompartments, typename index_t = int64_t>
struct Epidemic {
  static_assert(kCompartments == 1 || kCompartments == 3, "SIS has one compartment, SIR three");
  static constexpr int kAux = 0;
  static constexpr bool kSumAux = false;
  static constexpr int kInfected = kCompartments == 1 ? 0 : 1;
  const index_t* indptr;
  const index_t* src;
  const scalar_t* recovery;   // (N,) γ
  const scalar_t* infection;  // (E,) β

  template <typename I>
  Epidemic<scalar_t, kCompartments, I> local(int64_t n0, int64_t e0, const I* ip, const I* sp) const {
    return {ip, sp, recovery + n0, infection + e0};
  }

  C10_HOST_DEVICE int dim() const { return kCompartments; }
  C10_HOST_DEVICE void aux(const scalar_t*, scalar_t*) const {}
  C10_HOST_DEVICE void rhs(int64_t, int64_t n0, int64_t i, const scalar_t* y, const scalar_t*, const double*,
                           scalar_t* dy) const {
    scalar_t force = 0;
    for (int64_t e = indptr[n0 + i]; e < indptr[n0 + i + 1]; ++e) {
      force += infection[e] * y[kCompartments * (src[e] - n0) + kInfected];
    }
    const scalar_t* node = y + kCompartments * i;
    if constexpr (kCompartments == 1) {
      dy[0] = -recovery[n0 + i] * node[0] + (scalar_t(1) - node[0]) * force;
    } else {
      const scalar_t infected = node[0] * force, recovered = recovery[n0 + i] * node[1];
      dy[0] = -infected;
      dy[1] = infected - recovered;
      dy[2] = recovered;
    }
  }
};

template <typename scalar_t, typename index_t = int64_t>
using SIS = Epidemic<scalar_t, 1, index_t>;
template <typename scalar_t, typename index_t = int64_t>
using SIR = Epidemic<scalar_t, 3, index_t>;

// --------------------------------------------------------------------------------- Dormand-Prince 5(4)
// J. R. Dormand and P. J. Prince, "A family of embedded Runge-Kutta formulae", J. Comp. Appl. Math. 6 (1980);
// dense output (Shampine 1986) as in Hairer, Nørsett & Wanner, Solving ODEs I, §II.6 and Hairer's DOPRI5. The
// numbers are those of fastsim/solvers/tableaux.py (dopri5): the test suite compares against that engine.
// Stages k_0..k_6; k_0 = f(t, y); stage s evaluates at t + c_s h the state y + h Σ_{j<s} a_sj k_j; row 6 of a
// is b (FSAL: the last stage state is y_new and k_6 = f(t + h, y_new) is the next step's k_0).
constexpr int kStages = 7;

// a_ij as a constexpr function (host and device code both fold it: CUDA cannot read constexpr arrays).
C10_HOST_DEVICE constexpr double dp5_a(int i, int j) {
  switch (i * 8 + j) {
    case 1 * 8 + 0: return 1.0 / 5;
    case 2 * 8 + 0: return 3.0 / 40;
    case 2 * 8 + 1: return 9.0 / 40;
    case 3 * 8 + 0: return 44.0 / 45;
    case 3 * 8 + 1: return -56.0 / 15;
    case 3 * 8 + 2: return 32.0 / 9;
    case 4 * 8 + 0: return 19372.0 / 6561;
    case 4 * 8 + 1: return -25360.0 / 2187;
    case 4 * 8 + 2: return 64448.0 / 6561;
    case 4 * 8 + 3: return -212.0 / 729;
    case 5 * 8 + 0: return 9017.0 / 3168;
    case 5 * 8 + 1: return -355.0 / 33;
    case 5 * 8 + 2: return 46732.0 / 5247;
    case 5 * 8 + 3: return 49.0 / 176;
    case 5 * 8 + 4: return -5103.0 / 18656;
    case 6 * 8 + 0: return 35.0 / 384;  // row 6 = b
    case 6 * 8 + 2: return 500.0 / 1113;
    case 6 * 8 + 3: return 125.0 / 192;
    case 6 * 8 + 4: return -2187.0 / 6784;
    case 6 * 8 + 5: return 11.0 / 84;
    default: return 0.0;
  }
}

// Error weights b − b̂ (b̂: the embedded 4th-order solution), in the order of the engine's np.subtract.
C10_HOST_DEVICE constexpr double dp5_e(int j) {
  switch (j) {
    case 0: return 35.0 / 384 - 5179.0 / 57600;
    case 2: return 500.0 / 1113 - 7571.0 / 16695;
    case 3: return 125.0 / 192 - 393.0 / 640;
    case 4: return -2187.0 / 6784 - -92097.0 / 339200;
    case 5: return 11.0 / 84 - 187.0 / 2100;
    case 6: return 0.0 - 1.0 / 40;
    default: return 0.0;
  }
}

// Dense output: y(t + θh) = y + h Σ_j b_j(θ) k_j with b_j(θ) = Σ_{d=1..4} W[j][d−1] θ^d (b_j(1) = b_j).
C10_HOST_DEVICE constexpr double dp5_w(int j, int d) {
  switch (j * 4 + d) {
    case 0 * 4 + 0: return 1.0;
    case 0 * 4 + 1: return -8048581381.0 / 2820520608;
    case 0 * 4 + 2: return 8663915743.0 / 2820520608;
    case 0 * 4 + 3: return -12715105075.0 / 11282082432;
    case 2 * 4 + 1: return 131558114200.0 / 32700410799;
    case 2 * 4 + 2: return -68118460800.0 / 10900136933;
    case 2 * 4 + 3: return 87487479700.0 / 32700410799;
    case 3 * 4 + 1: return -1754552775.0 / 470086768;
    case 3 * 4 + 2: return 14199869525.0 / 1410260304;
    case 3 * 4 + 3: return -10690763975.0 / 1880347072;
    case 4 * 4 + 1: return 127303824393.0 / 49829197408;
    case 4 * 4 + 2: return -318862633887.0 / 49829197408;
    case 4 * 4 + 3: return 701980252875.0 / 199316789632;
    case 5 * 4 + 1: return -282668133.0 / 205662961;
    case 5 * 4 + 2: return 2019193451.0 / 616988883;
    case 5 * 4 + 3: return -1453857185.0 / 822651844;
    case 6 * 4 + 1: return 40617522.0 / 29380423;
    case 6 * 4 + 2: return -110615467.0 / 29380423;
    case 6 * 4 + 3: return 69997945.0 / 29380423;
    default: return 0.0;
  }
}

// h · b_j(θ) for the 7 stages.
C10_HOST_DEVICE inline void dp5_dense_weights(double theta, double h, double* w) {
  for (int j = 0; j < kStages; ++j) {
    w[j] = h * theta * (dp5_w(j, 0) + theta * (dp5_w(j, 1) + theta * (dp5_w(j, 2) + theta * dp5_w(j, 3))));
  }
}

// ------------------------------------------------------------------------------------------ step control
// The controller of fastsim.solvers.control.PIController with dopri5's defaults (Hairer's "stabilised" PI
// control, Gustafsson 1991): error order q = 4, k = q + 1 = 5, (pcoeff, icoeff) = (0.2, 0.65), safety 0.9,
// factor bounds [0.2, 10], previous error floored at 1e-4. Times and step sizes are float64 for every state dtype.
constexpr double kSafety = 0.9, kMinFactor = 0.2, kMaxFactor = 10.0, kErrPrevFloor = 1e-4;
constexpr double kAlpha = (0.2 + 0.65) / 5.0, kBeta = 0.2 / 5.0;
constexpr double kEps = 2.220446049250313e-16;            // float64 machine epsilon
constexpr double kTiny = 2.2250738585072014e-308;          // smallest normal float64
constexpr double kLandSlack = 1.0 + 1.4901161193847656e-08;  // 1 + sqrt(eps): a step this close lands on t_end

// Scalar state of one trajectory's step loop. Every thread of a CUDA block keeps an identical copy (each
// computes the same decisions from the same block-reduced numbers), so no thread ever waits on a broadcast.
struct StepControl {
  double t, t_end, h, err_prev = kErrPrevFloor;
  bool rejected_before = false;
  int64_t nfev = 0, accepted = 0, rejected = 0, max_steps;
  int status = kRunning;

  // The next attempt: a step of h, or the rest of the interval when that is at most h·(1 + sqrt(eps)).
  C10_HOST_DEVICE void propose(double& h_step, double& t_new) const {
    const double dist = t_end - t;
    if (dist <= h * kLandSlack) {
      h_step = dist;
      t_new = t_end;
    } else {
      h_step = h;
      t_new = t + h;
    }
  }

  // Accept or reject the attempted step (h_step, t_new) with error norm `err`; update t, h and the status.
  // Returns whether the step was accepted (the caller then moves y_new into y and writes dense output).
  C10_HOST_DEVICE bool decide(double h_step, double t_new, double err, bool finite) {
    nfev += kStages - 1;  // FSAL: six new evaluations per attempt
    if (!finite || !(err == err)) {
      status = kNonFinite;
      return false;
    }
    const bool accept = err <= 1.0;
    // err = 0 gives an infinite i_term: the factor then saturates at kMaxFactor, as in Hairer's code.
    const double i_term = kSafety * ::pow(err, -kAlpha);
    double h_next;
    if (accept) {
      double grow = ::fmin(::fmax(i_term * ::pow(err_prev, kBeta), kMinFactor), kMaxFactor);
      if (rejected_before) grow = ::fmin(grow, 1.0);
      h_next = h_step * grow;
      err_prev = ::fmax(err, kErrPrevFloor);
      const bool stalled = t_new == t && h_step > 0;
      t = t_new;
      ++accepted;
      if (t_new == t_end) {
        status = kOk;
      } else if (stalled) {
        status = kUnderflow;
      }
    } else {
      h_next = h_step * ::fmin(::fmax(i_term, kMinFactor), 1.0);
      ++rejected;
      if (h_next < ::fmax(64 * kEps * ::fabs(t), kTiny)) status = kUnderflow;
    }
    h = h_next;
    rejected_before = !accept;
    if (status == kRunning && accepted + rejected >= max_steps) status = kMaxSteps;
    return accept;
  }
};

// Hairer's starting step (HNW I §II.4, fastsim.solvers.control.initial_step) in two halves around the one
// trial evaluation f(t0 + h0, y0 + h0 f0). d0 = ‖y0/sc‖, d1 = ‖f0/sc‖, d2 = ‖(f1 − f0)/sc‖ / h0 (RMS norms,
// sc = atol + rtol |y0|); NaN d2 (the trial left the domain) falls back to h0.
C10_HOST_DEVICE inline double first_step_h0(double d0, double d1, double interval) {
  double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / ::fmax(d1, 1e-300);
  h0 = ::fmin(h0, interval);
  return ::fmax(h0, 1e-300);
}

C10_HOST_DEVICE inline double first_step_h(double h0, double d1, double d2, double interval) {
  if (!(d2 == d2)) return h0;
  const double dmax = ::fmax(d1, d2);
  const double h1 = dmax <= 1e-15 ? ::fmax(1e-6, h0 * 1e-3) : ::pow(0.01 / ::fmax(dmax, 1e-300), 1.0 / 5.0);
  const double h = ::fmin(::fmin(100 * h0, h1), interval);
  return (is_finite(h) && h > 0) ? h : h0;
}

}  // namespace ensemble
}  // namespace fastsim
