// Host-side argument handling of ensemble_dopri5, shared by the CPU and CUDA kernels: checks, output allocation,
// and the choice of the right-hand-side functor (ensemble_systems.h) from the system name and coefficients.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <c10/util/string_view.h>

#include <cmath>
#include <optional>
#include <tuple>

#include "common/checks.h"
#include "rk/ensemble_systems.h"

namespace fastsim {
namespace ensemble {

inline SystemKind parse_system(c10::string_view name) {
  if (name == "heat") return SystemKind::Heat;
  if (name == "kuramoto") return SystemKind::Kuramoto;
  if (name == "kuramoto_mean_field") return SystemKind::KuramotoMeanField;
  if (name == "rossler") return SystemKind::Rossler;
  if (name == "sis") return SystemKind::SIS;
  if (name == "sir") return SystemKind::SIR;
  TORCH_CHECK(false, "system must be one of heat, kuramoto, kuramoto_mean_field, rossler, sis, sir; got '", name,
              "'");
  return SystemKind::Heat;
}

// Validated arguments of one call.
struct EnsembleArgs {
  SystemKind kind;
  at::Tensor ptr, indptr, src, node_coeff, edge_coeff, graph_coeff, y0, t_eval;
  int64_t B, N, E, T, dim;
  int64_t t_stride;  // between the rows of t_eval: T for (B, T), 0 for a shared (T,)
  double rtol, atol, first_step;
  int64_t max_steps;
};

// Which coefficient tensors a system takes, and their trailing size: 0 = absent, 1 = (X,), 3 = (X, 3).
struct CoeffSpec {
  int node, edge, graph;
  const char *node_name, *edge_name, *graph_name;
};

inline CoeffSpec coeff_spec(SystemKind kind) {
  switch (kind) {
    case SystemKind::Heat: return {0, 1, 0, "", "diffusivity", ""};
    case SystemKind::Kuramoto: return {1, 1, 0, "omega", "coupling", ""};
    case SystemKind::KuramotoMeanField: return {1, 0, 1, "omega", "", "coupling"};
    case SystemKind::Rossler: return {0, 1, 3, "", "coupling", "(a, b, c)"};
    case SystemKind::SIS:
    case SystemKind::SIR: return {1, 1, 0, "recovery_rate", "infection_rate", ""};
  }
  return {0, 0, 0, "", "", ""};
}

inline at::Tensor check_coeff(const std::optional<at::Tensor>& value, int want, int64_t rows, const at::Tensor& y0,
                              const char* arg, const char* meaning, c10::string_view system) {
  if (want == 0) {
    TORCH_CHECK(!value.has_value(), arg, " must be None for system '", system, "'");
    return at::Tensor();
  }
  TORCH_CHECK(value.has_value(), arg, " (", meaning, ") is required for system '", system, "'");
  const at::Tensor& v = *value;
  check_float(v, arg);
  TORCH_CHECK(v.scalar_type() == y0.scalar_type(), arg, " must have the dtype of y0 (", y0.scalar_type(), "), got ",
              v.scalar_type());
  TORCH_CHECK(v.device() == y0.device(), arg, " must be on the device of y0");
  const bool ok = want == 1 ? (v.dim() == 1 && v.size(0) == rows)
                            : (v.dim() == 2 && v.size(0) == rows && v.size(1) == want);
  TORCH_CHECK(ok, arg, " (", meaning, ") must have shape (", rows, want == 1 ? "" : ", 3", ") for system '", system,
              "', got ", v.sizes());
  return v;
}

inline EnsembleArgs check_ensemble_args(const at::Tensor& ptr, const at::Tensor& indptr, const at::Tensor& src,
                                        const std::optional<at::Tensor>& node_coeff,
                                        const std::optional<at::Tensor>& edge_coeff,
                                        const std::optional<at::Tensor>& graph_coeff, const at::Tensor& y0,
                                        const at::Tensor& t_eval, c10::string_view system, double rtol, double atol,
                                        double first_step, int64_t max_steps) {
  EnsembleArgs a;
  a.kind = parse_system(system);
  check_index(ptr, "ptr");
  check_index(indptr, "indptr");
  check_index(src, "src");
  check_float(y0, "y0");
  TORCH_CHECK(y0.scalar_type() == at::kDouble || y0.scalar_type() == at::kFloat, "y0 must be float32 or float64, got ",
              y0.scalar_type());
  for (const at::Tensor* t : {&ptr, &indptr, &src, &t_eval}) {
    TORCH_CHECK(t->device() == y0.device(), "ptr, indptr, src and t_eval must be on the device of y0 (", y0.device(),
                ")");
  }
  a.B = ptr.size(0) - 1;
  a.N = indptr.size(0) - 1;
  a.E = src.size(0);
  TORCH_CHECK(a.B >= 1, "ptr must have B + 1 >= 2 entries, got ", ptr.size(0));
  TORCH_CHECK(a.N >= 0, "indptr must have N + 1 >= 1 entries");
  TORCH_CHECK(y0.dim() >= 1 && y0.size(0) == a.N, "y0 must have N = ", a.N, " rows, got ", y0.sizes());
  switch (a.kind) {
    case SystemKind::Heat:
      TORCH_CHECK(y0.dim() == 1 || (y0.dim() == 2 && y0.size(1) >= 1), "y0 must be (N,) or (N, F) for 'heat', got ",
                  y0.sizes());
      a.dim = y0.dim() == 1 ? 1 : y0.size(1);
      break;
    case SystemKind::Rossler:
    case SystemKind::SIR:
      TORCH_CHECK(y0.dim() == 2 && y0.size(1) == 3, "y0 must be (N, 3) for '", system, "', got ", y0.sizes());
      a.dim = 3;
      break;
    default:
      TORCH_CHECK(y0.dim() == 1, "y0 must be (N,) for '", system, "', got ", y0.sizes());
      a.dim = 1;
  }
  TORCH_CHECK(t_eval.scalar_type() == at::kDouble, "t_eval must be float64, got ", t_eval.scalar_type());
  TORCH_CHECK(t_eval.is_contiguous(), "t_eval must be contiguous");
  TORCH_CHECK((t_eval.dim() == 1 || (t_eval.dim() == 2 && t_eval.size(0) == a.B)) && t_eval.size(-1) >= 1,
              "t_eval must be (T,) or (B, T) = (", a.B, ", T) with T >= 1, got ", t_eval.sizes());
  a.T = t_eval.size(-1);
  a.t_stride = t_eval.dim() == 2 ? a.T : 0;
  TORCH_CHECK(std::isfinite(rtol) && rtol > 0, "rtol must be a positive finite number, got ", rtol);
  TORCH_CHECK(std::isfinite(atol) && atol > 0, "atol must be a positive finite number, got ", atol);
  TORCH_CHECK(std::isfinite(first_step), "first_step must be finite (<= 0 selects the heuristic), got ", first_step);
  TORCH_CHECK(max_steps >= 1, "max_steps must be >= 1, got ", max_steps);
  const CoeffSpec spec = coeff_spec(a.kind);
  a.node_coeff = check_coeff(node_coeff, spec.node, a.N, y0, "node_coeff", spec.node_name, system);
  a.edge_coeff = check_coeff(edge_coeff, spec.edge, a.E, y0, "edge_coeff", spec.edge_name, system);
  a.graph_coeff = check_coeff(graph_coeff, spec.graph, a.B, y0, "graph_coeff", spec.graph_name, system);
  a.ptr = ptr;
  a.indptr = indptr;
  a.src = src;
  TORCH_CHECK(y0.is_contiguous(), "y0 must be contiguous");
  a.y0 = y0;
  a.t_eval = t_eval;
  a.rtol = rtol;
  a.atol = atol;
  a.first_step = first_step;
  a.max_steps = max_steps;
  return a;
}

// Graph structure checks that read the index tensors (CPU only: on CUDA they would synchronise; the Python
// wrapper fastsim.ops.ensemble_dopri5 runs them there): ptr and indptr are monotone offsets covering every node
// and edge, and every edge stays inside its graph (the kernels index a trajectory's local state with src − n0).
inline void check_graph_structure_cpu(const EnsembleArgs& a) {
  const int64_t* ptr = a.ptr.data_ptr<int64_t>();
  const int64_t* indptr = a.indptr.data_ptr<int64_t>();
  const int64_t* src = a.src.data_ptr<int64_t>();
  TORCH_CHECK(ptr[0] == 0 && ptr[a.B] == a.N, "ptr must start at 0 and end at N = ", a.N);
  TORCH_CHECK(indptr[0] == 0 && indptr[a.N] == a.E, "indptr must start at 0 and end at E = ", a.E);
  for (int64_t b = 0; b < a.B; ++b) {
    TORCH_CHECK(ptr[b] <= ptr[b + 1], "ptr must be non-decreasing (at graph ", b, ")");
    for (int64_t i = ptr[b]; i < ptr[b + 1]; ++i) {
      TORCH_CHECK(indptr[i] <= indptr[i + 1], "indptr must be non-decreasing (at node ", i, ")");
      for (int64_t e = indptr[i]; e < indptr[i + 1]; ++e) {
        TORCH_CHECK(src[e] >= ptr[b] && src[e] < ptr[b + 1], "edge ", e, " (", src[e], " -> ", i,
                    ") crosses from one graph of the batch into graph ", b, ": ensemble graphs must be block-diagonal");
      }
    }
  }
}

// ys (T, *y0.shape) in the dtype of y0, stats (B, 4) int64 [nfev, accepted, rejected, status], t_final (B,) float64.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> allocate_outputs(const EnsembleArgs& a) {
  std::vector<int64_t> shape{a.T};
  for (int64_t s : a.y0.sizes()) shape.push_back(s);
  return {at::empty(shape, a.y0.options()), at::zeros({a.B, kNumStats}, a.y0.options().dtype(at::kLong)),
          at::empty({a.B}, a.y0.options().dtype(at::kDouble))};
}

// Calls f(functor) with the right-hand side of a.kind over the data of `a`.
template <typename scalar_t, typename F>
void with_system(const EnsembleArgs& a, F&& f) {
  const int64_t* indptr = a.indptr.data_ptr<int64_t>();
  const int64_t* src = a.src.data_ptr<int64_t>();
  auto data = [](const at::Tensor& t) { return t.defined() ? t.data_ptr<scalar_t>() : nullptr; };
  switch (a.kind) {
    case SystemKind::Heat:
      if (a.dim == 1) {
        f(Heat<scalar_t, 1>{indptr, src, data(a.edge_coeff), 1});
      } else {
        f(Heat<scalar_t, 0>{indptr, src, data(a.edge_coeff), static_cast<int>(a.dim)});
      }
      break;
    case SystemKind::Kuramoto:
      f(Kuramoto<scalar_t>{indptr, src, data(a.node_coeff), data(a.edge_coeff)});
      break;
    case SystemKind::KuramotoMeanField:
      f(KuramotoMeanField<scalar_t>{a.ptr.data_ptr<int64_t>(), data(a.node_coeff), data(a.graph_coeff)});
      break;
    case SystemKind::Rossler:
      f(Rossler<scalar_t>{indptr, src, data(a.graph_coeff), data(a.edge_coeff)});
      break;
    case SystemKind::SIS:
      f(SIS<scalar_t>{indptr, src, data(a.node_coeff), data(a.edge_coeff)});
      break;
    case SystemKind::SIR:
      f(SIR<scalar_t>{indptr, src, data(a.node_coeff), data(a.edge_coeff)});
      break;
  }
}

}  // namespace ensemble
}  // namespace fastsim
