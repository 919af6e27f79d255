// Fused ensemble Dormand-Prince 5(4) integrator on the CPU (docs/ops.md, "ensemble_dopri5").
//
// A batched block-diagonal graph holds B independent trajectories; each one's whole adaptive loop (FSAL stages,
// error norm, PI step-size control, dense output at the output times) runs here as one OpenMP task, with
// `schedule(dynamic)` because trajectories differ in size and in the number of steps they need. A trajectory
// lives in a per-thread workspace (the state, the 7 stages, two stage-state buffers, per-node sin/cos, and an
// int32 0-based copy of its CSR), small enough to stay in L1/L2 for graphs of a few hundred nodes, and never
// touches another trajectory's memory.
//
// Per stage: one gather pass evaluates k_s = f(Y_s) node by node (the only pass that reads other nodes), then a
// branch-free pass over the state forms Y_{s+1} = y + h Σ_j a_{s+1,j} k_j, which the compiler vectorises; the
// last pass accumulates the error norm. Y_s ping-pongs between two buffers.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <type_traits>
#include <utility>

#include "rk/ensemble_args.h"
#include "rk/ensemble_systems.h"

namespace fastsim {
namespace {

using namespace ensemble;

// Elements of one thread's floating workspace for trajectories of at most `n` state values and `nb` nodes.
int64_t workspace_size(int64_t n, int64_t nb) { return (kStages + 3) * n + 2 * kMaxAux * nb; }

// aux[2i], aux[2i+1] = sin y[i], cos y[i] for i < n, SIMD (ATen's Vectorized: SLEEF, 1 ulp) where it fits:
// the sine and cosine are most of the work of a Kuramoto evaluation.
template <typename scalar_t>
void sin_cos_interleaved(const scalar_t* y, scalar_t* aux, int64_t n) {
  using Vec = at::vec::Vectorized<scalar_t>;
  constexpr int64_t kWidth = Vec::size();
  scalar_t s[kWidth], c[kWidth];
  int64_t i = 0;
  for (; i + kWidth <= n; i += kWidth) {
    const Vec v = Vec::loadu(y + i);
    v.sin().store(s);
    v.cos().store(c);
    for (int64_t k = 0; k < kWidth; ++k) {
      aux[2 * (i + k)] = s[k];
      aux[2 * (i + k) + 1] = c[k];
    }
  }
  for (; i < n; ++i) {
    aux[2 * i] = std::sin(y[i]);
    aux[2 * i + 1] = std::cos(y[i]);
  }
}

// Sys: the functor over the batch's global CSR; Local: its one-trajectory form over an int32 0-based CSR.
template <typename scalar_t, typename Sys>
class Trajectory {
  using Local = decltype(std::declval<const Sys&>().local(int64_t(0), int64_t(0), static_cast<const int32_t*>(nullptr),
                                                           static_cast<const int32_t*>(nullptr)));

 public:
  // `indptr`, `src`: the batch's CSR; `index_work`: room for nb + 1 + E_b int32 values.
  Trajectory(const Sys& sys, const int64_t* indptr, const int64_t* src, int64_t b, int64_t n0, int64_t nb,
             scalar_t* work, int32_t* index_work, double rtol, double atol)
      : sys_(localize(sys, indptr, src, n0, nb, index_work)),
        b_(b),
        nb_(nb),
        n_(nb * sys.dim()),
        rtol_(rtol),
        atol_(atol) {
    y_ = work;
    for (int s = 0; s < kStages; ++s) k_[s] = work + (1 + s) * n_;
    Y_[0] = work + (kStages + 1) * n_;
    Y_[1] = work + (kStages + 2) * n_;
    aux_[0] = work + (kStages + 3) * n_;
    aux_[1] = aux_[0] + kMaxAux * nb_;
  }

  // Integrates from t_eval[0] to t_eval[T-1], writing y(t_eval[p]) to out + p·out_stride (n values each).
  void solve(const scalar_t* y0, const double* t_eval, int64_t T, scalar_t* out, int64_t out_stride,
             double first_step, int64_t max_steps, int64_t* stats, double* t_final) {
    StepControl ctl;
    ctl.t = t_eval[0];
    ctl.t_end = t_eval[T - 1];
    ctl.max_steps = max_steps;
    std::copy(y0, y0 + n_, y_);
    std::copy(y0, y0 + n_, out);  // t_eval[0] is the initial time
    int64_t p = 1;
    if (T == 1 || n_ == 0) {
      ctl.status = kOk;
      ctl.t = ctl.t_end;
      if (n_ == 0) p = T;
    } else {
      prepare(y_, aux_[0], sums_[0]);
      evaluate(y_, aux_[0], sums_[0], k_[0]);
      ctl.nfev = 1;
      double poison = 0;  // x·0 is NaN for non-finite x
      for (int64_t idx = 0; idx < n_; ++idx) poison += double(y_[idx]) * 0.0 + double(k_[0][idx]) * 0.0;
      if (poison != 0.0 || poison != poison) {
        ctl.status = kNonFinite;
      } else if (first_step > 0) {
        ctl.h = first_step;
      } else {
        ctl.h = initial_step(ctl.t_end - ctl.t);
        ctl.nfev += 1;
      }
    }
    while (ctl.status == kRunning) {
      double h_step, t_new;
      ctl.propose(h_step, t_new);
      const double t_old = ctl.t;
      const scalar_t hs = scalar_t(h_step);
      combine<0>(hs);
      stage<1>(hs);
      stage<2>(hs);
      stage<3>(hs);
      stage<4>(hs);
      stage<5>(hs);
      bool finite;
      const double err = last_stage(h_step, finite);
      if (!ctl.decide(h_step, t_new, err, finite)) continue;
      // Accepted: output times in (t_old, t_new] from the dense output of this step, then y ← y_new (FSAL).
      for (; p < T && t_eval[p] <= t_new; ++p) dense_output(t_eval[p], t_old, t_new, h_step, out + p * out_stride);
      std::swap(y_, Y_[1]);
      std::swap(k_[0], k_[kStages - 1]);
    }
    for (; p < T; ++p) {
      std::fill(out + p * out_stride, out + p * out_stride + n_, std::numeric_limits<scalar_t>::quiet_NaN());
    }
    stats[kStatNfev] = ctl.nfev;
    stats[kStatAccepted] = ctl.accepted;
    stats[kStatRejected] = ctl.rejected;
    stats[kStatStatus] = ctl.status;
    *t_final = ctl.t;
  }

 private:
  // The trajectory's CSR rebased to node 0 / edge 0 in int32 (halves the index traffic of every evaluation).
  static Local localize(const Sys& sys, const int64_t* indptr, const int64_t* src, int64_t n0, int64_t nb,
                        int32_t* index_work) {
    const int64_t e0 = indptr[n0];
    int32_t* ip = index_work;
    int32_t* sp = index_work + nb + 1;
    for (int64_t i = 0; i <= nb; ++i) ip[i] = int32_t(indptr[n0 + i] - e0);
    for (int64_t e = 0; e < indptr[n0 + nb] - e0; ++e) sp[e] = int32_t(src[e0 + e] - n0);
    return sys.local(n0, e0, static_cast<const int32_t*>(ip), static_cast<const int32_t*>(sp));
  }

  // State values per node: a compile-time constant except for heat with F fields.
  int64_t dim() const { return sys_.dim(); }

  // Per-node auxiliary values (sin/cos) of a state and, where the system asks, their sums.
  void prepare(const scalar_t* y, scalar_t* aux, double* sums) const {
    if constexpr (Local::kAux > 0) {
      // kAux = 2 is (sin θ, cos θ) of a one-value state: both Kuramoto forms (ensemble_systems.h).
      static_assert(Local::kAux == 2, "the vectorised pass below computes sin and cos");
      sin_cos_interleaved(y, aux, nb_);
      double s0 = 0, s1 = 0;
      for (int64_t i = 0; i < nb_; ++i) {
        if constexpr (Local::kSumAux) {
          s0 += double(aux[i * Local::kAux]);
          s1 += double(aux[i * Local::kAux + 1]);
        }
      }
      sums[0] = s0;
      sums[1] = s1;
    }
  }

  // dy = f(y): the gather pass (node i reads its in-neighbours' values of y / aux).
  void evaluate(const scalar_t* y, const scalar_t* aux, const double* sums, scalar_t* dy) const {
    for (int64_t i = 0; i < nb_; ++i) sys_.rhs(b_, 0, i, y, aux, sums, dy + i * dim());
  }

  // Y_{S+1} = y + h Σ_{j≤S} a_{S+1,j} k_j into Y_[S&1] (elementwise; the coefficients fold at compile time).
  template <int S>
  void combine(scalar_t hs) {
    scalar_t* __restrict__ out = Y_[S & 1];
    const scalar_t* __restrict__ y = y_;
    const scalar_t* __restrict__ k0 = k_[0];
    const scalar_t* __restrict__ k1 = k_[S >= 1 ? 1 : 0];
    const scalar_t* __restrict__ k2 = k_[S >= 2 ? 2 : 0];
    const scalar_t* __restrict__ k3 = k_[S >= 3 ? 3 : 0];
    const scalar_t* __restrict__ k4 = k_[S >= 4 ? 4 : 0];
    const scalar_t* __restrict__ k5 = k_[S >= 5 ? 5 : 0];
    constexpr double a0 = dp5_a(S + 1, 0), a1 = dp5_a(S + 1, 1), a2 = dp5_a(S + 1, 2), a3 = dp5_a(S + 1, 3),
                     a4 = dp5_a(S + 1, 4), a5 = dp5_a(S + 1, 5);
    for (int64_t idx = 0; idx < n_; ++idx) {
      scalar_t acc = scalar_t(a0) * k0[idx];
      if constexpr (S >= 1 && a1 != 0.0) acc += scalar_t(a1) * k1[idx];
      if constexpr (S >= 2 && a2 != 0.0) acc += scalar_t(a2) * k2[idx];
      if constexpr (S >= 3 && a3 != 0.0) acc += scalar_t(a3) * k3[idx];
      if constexpr (S >= 4 && a4 != 0.0) acc += scalar_t(a4) * k4[idx];
      if constexpr (S >= 5 && a5 != 0.0) acc += scalar_t(a5) * k5[idx];
      out[idx] = y[idx] + hs * acc;
    }
    prepare(out, aux_[S & 1], sums_[S & 1]);
  }

  // k_S = f(Y_S) with Y_S in Y_[(S-1)&1], then Y_{S+1} into the other buffer.
  template <int S>
  void stage(scalar_t hs) {
    evaluate(Y_[(S - 1) & 1], aux_[(S - 1) & 1], sums_[(S - 1) & 1], k_[S]);
    combine<S>(hs);
  }

  // k_6 = f(y_new) (y_new = Y_6 in Y_[1]) and the error norm |h| · RMS_i(Σ_j e_j k_j[i] / sc_i),
  // sc = atol + rtol · max(|y|, |y_new|); `finite` is false when y_new, k_6 or the norm is not finite.
  double last_stage(double h_step, bool& finite) {
    evaluate(Y_[1], aux_[1], sums_[1], k_[6]);
    const scalar_t* __restrict__ y = y_;
    const scalar_t* __restrict__ ynew = Y_[1];
    const scalar_t *__restrict__ k0 = k_[0], *__restrict__ k2 = k_[2], *__restrict__ k3 = k_[3];
    const scalar_t *__restrict__ k4 = k_[4], *__restrict__ k5 = k_[5], *__restrict__ k6 = k_[6];
    constexpr double e0 = dp5_e(0), e2 = dp5_e(2), e3 = dp5_e(3), e4 = dp5_e(4), e5 = dp5_e(5), e6 = dp5_e(6);
    static_assert(dp5_e(1) == 0.0, "dopri5's second stage has no error weight");
    double sum = 0, poison = 0;
    for (int64_t idx = 0; idx < n_; ++idx) {
      const double e = e0 * double(k0[idx]) + e2 * double(k2[idx]) + e3 * double(k3[idx]) + e4 * double(k4[idx]) +
                       e5 * double(k5[idx]) + e6 * double(k6[idx]);
      const double scale = atol_ + rtol_ * std::max(std::abs(double(y[idx])), std::abs(double(ynew[idx])));
      sum += (e / scale) * (e / scale);
      poison += double(ynew[idx]) * 0.0 + double(k6[idx]) * 0.0;
    }
    const double err = std::abs(h_step) * std::sqrt(sum / double(n_));
    finite = poison == 0.0 && is_finite(err);
    return err;
  }

  // y(tq) for tq in (t_old, t_new] from the step's quartic continuous extension (exactly y_new at t_new).
  void dense_output(double tq, double t_old, double t_new, double h_step, scalar_t* out) const {
    if (tq == t_new) {
      std::copy(Y_[1], Y_[1] + n_, out);
      return;
    }
    double w[kStages];
    dp5_dense_weights((tq - t_old) / h_step, h_step, w);
    scalar_t ws[kStages];
    for (int j = 0; j < kStages; ++j) ws[j] = scalar_t(w[j]);
    for (int64_t idx = 0; idx < n_; ++idx) {
      scalar_t acc = y_[idx];
      for (int j = 0; j < kStages; ++j) {
        if (j != 1) acc += ws[j] * k_[j][idx];  // b_1(θ) ≡ 0
      }
      out[idx] = acc;
    }
  }

  // Hairer's first step (StepControl helpers); the trial state and its derivative use Y_[0] and k_[1].
  double initial_step(double interval) {
    double d0 = 0, d1 = 0;
    for (int64_t idx = 0; idx < n_; ++idx) {
      const double scale = atol_ + rtol_ * std::abs(double(y_[idx]));
      d0 += (double(y_[idx]) / scale) * (double(y_[idx]) / scale);
      d1 += (double(k_[0][idx]) / scale) * (double(k_[0][idx]) / scale);
    }
    d0 = std::sqrt(d0 / double(n_));
    d1 = std::sqrt(d1 / double(n_));
    const double h0 = first_step_h0(d0, d1, interval);
    const scalar_t h0s = scalar_t(h0);
    for (int64_t idx = 0; idx < n_; ++idx) Y_[0][idx] = y_[idx] + h0s * k_[0][idx];
    prepare(Y_[0], aux_[0], sums_[0]);
    evaluate(Y_[0], aux_[0], sums_[0], k_[1]);
    double d2 = 0;
    for (int64_t idx = 0; idx < n_; ++idx) {
      const double scale = atol_ + rtol_ * std::abs(double(y_[idx]));
      const double diff = (double(k_[1][idx]) - double(k_[0][idx])) / scale;
      d2 += diff * diff;
    }
    d2 = std::sqrt(d2 / double(n_)) / h0;
    return first_step_h(h0, d1, d2, interval);
  }

  const Local sys_;
  const int64_t b_, nb_, n_;
  const double rtol_, atol_;
  scalar_t* y_;
  scalar_t* k_[kStages];
  scalar_t* Y_[2];
  scalar_t* aux_[2];
  double sums_[2][2] = {{0, 0}, {0, 0}};
};

// Runs every trajectory of `a` with the right-hand side `sys`, one OpenMP task per trajectory.
template <typename scalar_t, typename Sys>
void solve_all(const EnsembleArgs& a, const Sys& sys, at::Tensor& ys, at::Tensor& stats, at::Tensor& t_final) {
  const int64_t* p = a.ptr.data_ptr<int64_t>();
  const int64_t* indptr = a.indptr.data_ptr<int64_t>();
  const int64_t* src = a.src.data_ptr<int64_t>();
  int64_t max_nb = 0, max_eb = 0;
  for (int64_t b = 0; b < a.B; ++b) {
    max_nb = std::max(max_nb, p[b + 1] - p[b]);
    max_eb = std::max(max_eb, indptr[p[b + 1]] - indptr[p[b]]);
  }
  TORCH_CHECK(max_nb + max_eb < std::numeric_limits<int32_t>::max(),
              "ensemble_dopri5: a single graph of the batch has too many nodes + edges (", max_nb + max_eb, ")");
  const int64_t ws = std::max<int64_t>(workspace_size(max_nb * a.dim, max_nb), 1);
  const int64_t iws = max_nb + 1 + max_eb;
  // Nested inside another parallel region (e.g. an at::parallel_for) the loop runs on the calling thread.
  const int num_threads =
      at::in_parallel_region() ? 1 : int(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), a.B)));
  // One workspace per thread, allocated before the parallel region (nothing in the region may throw).
  at::Tensor work = at::empty({num_threads, ws}, a.y0.options());
  at::Tensor index_work = at::empty({num_threads, iws}, a.y0.options().dtype(at::kInt));
  scalar_t* work_base = work.data_ptr<scalar_t>();
  int32_t* index_base = index_work.data_ptr<int32_t>();
  const scalar_t* y0 = a.y0.data_ptr<scalar_t>();
  const double* t_eval = a.t_eval.data_ptr<double>();
  scalar_t* out = ys.data_ptr<scalar_t>();
  int64_t* st = stats.data_ptr<int64_t>();
  double* tf = t_final.data_ptr<double>();
  const int64_t row = a.N * a.dim, B = a.B, T = a.T, t_stride = a.t_stride, dim = a.dim, max_steps = a.max_steps;
  const double rtol = a.rtol, atol = a.atol, first_step = a.first_step;
  // Trajectory b writes only its own columns [n0·dim, (n0+nb)·dim) of every output row, its row of stats and
  // t_final[b], and works in the workspaces of the thread running it: no two tasks share a written address.
#pragma omp parallel num_threads(num_threads) if (num_threads > 1)
  {
#ifdef _OPENMP
    const int tid = omp_get_thread_num();
#else
    const int tid = 0;
#endif
    scalar_t* mine = work_base + tid * ws;
    int32_t* my_index = index_base + tid * iws;
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < B; ++b) {
      const int64_t n0 = p[b], nb = p[b + 1] - p[b];
      Trajectory<scalar_t, Sys> traj(sys, indptr, src, b, n0, nb, mine, my_index, rtol, atol);
      traj.solve(y0 + n0 * dim, t_eval + b * t_stride, T, out + n0 * dim, row, first_step, max_steps,
                 st + b * kNumStats, tf + b);
    }
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> ensemble_dopri5_cpu(
    const at::Tensor& ptr, const at::Tensor& indptr, const at::Tensor& src, const std::optional<at::Tensor>& node_coeff,
    const std::optional<at::Tensor>& edge_coeff, const std::optional<at::Tensor>& graph_coeff, const at::Tensor& y0,
    const at::Tensor& t_eval, c10::string_view system, double rtol, double atol, double first_step,
    int64_t max_steps) {
  const EnsembleArgs a = check_ensemble_args(ptr, indptr, src, node_coeff, edge_coeff, graph_coeff, y0, t_eval, system,
                                             rtol, atol, first_step, max_steps);
  check_graph_structure_cpu(a);
  check_increasing_times(a.t_eval, "t_eval");
  at::Tensor ys, stats, t_final;
  std::tie(ys, stats, t_final) = allocate_outputs(a);
  AT_DISPATCH_FLOATING_TYPES(a.y0.scalar_type(), "ensemble_dopri5_cpu", [&] {
    with_system<scalar_t>(a, [&](const auto& sys) {
      solve_all<scalar_t, std::decay_t<decltype(sys)>>(a, sys, ys, stats, t_final);
    });
  });
  return {ys, stats, t_final};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastsim, CPU, m) { m.impl("ensemble_dopri5", &ensemble_dopri5_cpu); }

}  // namespace fastsim
