// Every fastsim op schema, in one place, plus the `fastsim._C` Python module (build information only:
// the ops themselves are reached through torch.ops.fastsim.*). See docs/ops.md for the contract. The same
// sources build one module per CPU instruction set (CMakeLists.txt); FASTSIM_MODULE names this one.
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <pybind11/pybind11.h>
#include <torch/library.h>

#ifndef FASTSIM_VERSION
#define FASTSIM_VERSION "0+unknown"
#endif
#ifndef FASTSIM_CUDA_ARCHS
#define FASTSIM_CUDA_ARCHS ""
#endif
#ifndef FASTSIM_MODULE
#define FASTSIM_MODULE _C
#endif
#ifndef FASTSIM_CPU_CAPABILITY
#define FASTSIM_CPU_CAPABILITY ""
#endif

TORCH_LIBRARY(fastsim, m) {
  m.def("segment_reduce(Tensor src, Tensor indptr, str reduce) -> (Tensor, Tensor)");
  m.def(
      "spmm(Tensor indptr, Tensor src, Tensor rev_indptr, Tensor rev_dst, Tensor rev_perm, "
      "Tensor? weight, Tensor x, str reduce) -> (Tensor, Tensor)");
  m.def(
      "sddmm(Tensor indptr, Tensor src, Tensor rev_indptr, Tensor rev_dst, Tensor rev_perm, "
      "Tensor u, Tensor v, str op) -> Tensor");
  m.def(
      "gn_edge_aggregate(Tensor indptr, Tensor src, Tensor rev_indptr, Tensor rev_dst, Tensor rev_perm, "
      "Tensor p_src, Tensor p_dst, Tensor? edge_term, Tensor? w_edge, Tensor? graph_term, Tensor? batch, "
      "Tensor w2, Tensor b2, bool return_edges) -> (Tensor, Tensor)");
  m.def(
      "gn_edge_aggregate_backward(Tensor indptr, Tensor src, Tensor rev_indptr, Tensor rev_dst, "
      "Tensor rev_perm, Tensor p_src, Tensor p_dst, Tensor? edge_term, Tensor? w_edge, Tensor? graph_term, "
      "Tensor? batch, Tensor w2, Tensor b2, Tensor grad_node, Tensor? grad_edge, bool need_edge_grad) "
      "-> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  // A whole NGS rollout in one call (CPU; csrc/message_passing/ngs_rollout_cpu.cpp documents the weight order).
  m.def(
      "ngs_rollout(Tensor state, Tensor indptr, Tensor src, Tensor ptr, Tensor edge_coefficients, "
      "Tensor dts, Tensor glob_embedding, Tensor[] weights) -> Tensor");
  // GNRK's Burgers approximator f_θ in one call (CPU, inference; csrc/message_passing/gnrk_burgers_cpu.cpp).
  m.def(
      "gnrk_burgers_f(Tensor x, Tensor indptr, Tensor src, Tensor rev_perm, Tensor e1_term, Tensor e2_term, "
      "Tensor v1_term, Tensor v2_term, Tensor ext_term, Tensor[] weights) -> Tensor");
  // Exact GELU and its derivative (CPU; csrc/nn/gelu_cpu.cpp).
  // Linear layers of the models' tensor-op paths (CPU; csrc/nn/linear_cpu.cpp): x (M, K) @ weightᵀ + bias.
  m.def("linear(Tensor x, Tensor weight, Tensor? bias) -> Tensor");
  m.def("linear_backward(Tensor grad, Tensor x, Tensor weight, bool input_grad, bool weight_grad) -> (Tensor, Tensor)");
  m.def("gelu(Tensor x) -> Tensor");
  m.def("gelu_backward(Tensor grad, Tensor x) -> Tensor");
  m.def("rk_stage(Tensor y, Tensor dt, Tensor[] ks, float[] coeffs) -> Tensor");
  m.def(
      "rk_error_norm(Tensor y0, Tensor y1, Tensor dt, Tensor[] ks, float[] b_err, float[] b_err_aux, "
      "float rtol, float atol) -> Tensor");
  m.def(
      "ensemble_dopri5(Tensor ptr, Tensor indptr, Tensor src, Tensor? node_coeff, Tensor? edge_coeff, "
      "Tensor? graph_coeff, Tensor y0, Tensor t_eval, str system, float rtol, float atol, float first_step, "
      "int max_steps) -> (Tensor, Tensor, Tensor)");
  m.def(
      "ensemble_rodas5(Tensor y0, Tensor params, Tensor t_eval, str system, float rtol, float atol, "
      "float first_step, int max_steps) -> (Tensor, Tensor, Tensor)");
  // Information estimators (csrc/mi): fused Gaussian Gram (optionally Hadamard-joined) and KDE log-sum-exp.
  m.def("gaussian_gram(Tensor x, Tensor sigma, Tensor? other) -> Tensor");
  m.def("kde_logsumexp(Tensor t, float scale) -> Tensor");
  // Eigenvalues (ascending) of a batch of symmetric matrices, read from the lower triangle like torch.linalg.eigvalsh.
  m.def("symmetric_eigvalsh(Tensor a) -> Tensor");
}

namespace py = pybind11;

PYBIND11_MODULE(FASTSIM_MODULE, module) {
  module.doc() = "fastsim compiled kernels (ops are registered as torch.ops.fastsim.*)";
  module.attr("__version__") = FASTSIM_VERSION;
#ifdef FASTSIM_WITH_CUDA
  module.attr("with_cuda") = true;
#else
  module.attr("with_cuda") = false;
#endif
  module.attr("cuda_archs") = FASTSIM_CUDA_ARCHS;
  module.attr("cpu_capability") = FASTSIM_CPU_CAPABILITY;
  // Floats per SIMD vector: the CPU kernels pad rows to whole vectors of this many.
  module.attr("simd_floats") = int(at::vec::Vectorized<float>::size());
  module.def("num_threads", &at::get_num_threads, "Threads the CPU kernels run on (at::get_num_threads).");
#ifdef _OPENMP
  module.attr("openmp") = true;
#else
  module.attr("openmp") = false;
#endif
}
