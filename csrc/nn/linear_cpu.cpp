// Dense Linear layers on the CPU, for the models' tensor-op paths (training; docs/ops.md "Linear"):
//   linear(x, weight, bias)                   = x @ weightᵀ + bias              x (M, K), weight (N, K) → (M, N)
//   linear_backward(grad, x, weight, gi, gw)  = (grad @ weight, gradᵀ @ x)      each only when asked for
// Every product is the register-blocked tile product of common/tile_gemm.h, without packing. At the graph
// models' shapes (thousands of rows, widths 16–352) it runs at ≈ 170–240 GFLOP/s on one AVX-512 core where
// MKL's sgemm runs at ≈ 90–105 (on AMD processors MKL takes its AVX2 code path), and the node-level products
// were half of an NGS Rössler training step.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>
#include <tuple>
#include <vector>

#include "common/checks.h"
#include "common/tile_gemm.h"

namespace fastsim {
namespace {

// Output rows per parallel task: a few register blocks, enough work to amortise a task at small widths.
constexpr int64_t kRowBlock = 48;
// Rows of x summed in one pass of the weight gradient before the pass's partial sum is added to the total.
constexpr int64_t kSumBlock = 128;

void check_linear_args(const at::Tensor& x, const at::Tensor& weight) {
  check_float(x, "x");
  TORCH_CHECK(at::isFloatingType(weight.scalar_type()), "weight must be a floating tensor, got ",
              weight.scalar_type());
  TORCH_CHECK(x.dim() == 2 && weight.dim() == 2, "x and weight must be 2-D; got ", x.dim(), "-D and ",
              weight.dim(), "-D");
  TORCH_CHECK(x.size(1) == weight.size(1), "x (M, K) and weight (N, K) must agree in K; got ", x.sizes(), " and ",
              weight.sizes());
  TORCH_CHECK(weight.scalar_type() == x.scalar_type(), "weight must have x's dtype ", x.scalar_type(), "; got ",
              weight.scalar_type());
}

// out (M, N) = [bias +] a (M, K) @ b (K, N), b row-major with ldb, rows of out in parallel blocks.
template <typename scalar_t>
void rows_times(const scalar_t* a, const scalar_t* b, int64_t ldb, const scalar_t* bias, scalar_t* out, int64_t M,
                int64_t K, int64_t N) {
  at::parallel_for(0, (M + kRowBlock - 1) / kRowBlock, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t block = lo; block < hi; ++block) {
      const int64_t r0 = block * kRowBlock, m = std::min(kRowBlock, M - r0);
      scalar_t* o = out + r0 * N;
      if (bias) fill_rows(o, m, N, bias, N);
      else std::fill(o, o + m * N, scalar_t(0));
      tile_gemm(m, N, K, a + r0 * K, K, 1, b, ldb, o, N);
    }
  });
}

at::Tensor linear_cpu(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  check_linear_args(x, weight);
  const int64_t M = x.size(0), K = x.size(1), N = weight.size(0);
  if (bias) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == N, "bias must be (N,) = (", N, ",); got ", bias->sizes());
    TORCH_CHECK(bias->scalar_type() == x.scalar_type(), "bias must have x's dtype");
  }
  at::Tensor out = at::empty({M, N}, x.options());
  if (M == 0 || N == 0) return out;
  const at::Tensor wt = weight.t().contiguous();  // (K, N): the product's right operand, row-major
  const at::Tensor b = bias ? bias->contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "linear_cpu", [&] {
    rows_times(x.data_ptr<scalar_t>(), wt.data_ptr<scalar_t>(), N, b.defined() ? b.data_ptr<scalar_t>() : nullptr,
               out.data_ptr<scalar_t>(), M, K, N);
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> linear_backward_cpu(const at::Tensor& grad, const at::Tensor& x,
                                                       const at::Tensor& weight, bool input_grad, bool weight_grad) {
  check_linear_args(x, weight);
  check_float(grad, "grad");
  const int64_t M = x.size(0), K = x.size(1), N = weight.size(0);
  TORCH_CHECK(grad.dim() == 2 && grad.size(0) == M && grad.size(1) == N, "grad must be (M, N) = (", M, ", ", N,
              "); got ", grad.sizes());
  TORCH_CHECK(grad.scalar_type() == x.scalar_type(), "grad must have x's dtype");
  at::Tensor grad_x = at::empty({input_grad ? M : 0, K}, x.options());
  at::Tensor grad_w = at::zeros({weight_grad ? N : 0, K}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "linear_backward_cpu", [&] {
    const scalar_t* g = grad.data_ptr<scalar_t>();
    if (input_grad && M && K) {  // grad_x = grad (M, N) @ weight (N, K)
      const at::Tensor w = weight.contiguous();
      rows_times(g, w.data_ptr<scalar_t>(), K, static_cast<const scalar_t*>(nullptr), grad_x.data_ptr<scalar_t>(),
                 M, N, K);
    }
    if (weight_grad && M && N && K) {  // grad_w = gradᵀ (N, M) @ x (M, K): rows of grad_w in parallel blocks
      const scalar_t* xp = x.data_ptr<scalar_t>();
      scalar_t* gw = grad_w.data_ptr<scalar_t>();
      at::parallel_for(0, (N + kRowBlock - 1) / kRowBlock, 1, [&](int64_t lo, int64_t hi) {
        std::vector<scalar_t> partial(kRowBlock * K);
        for (int64_t block = lo; block < hi; ++block) {
          const int64_t r0 = block * kRowBlock, n = std::min(kRowBlock, N - r0);
          // The sum over all M rows in one accumulator lets its rounding error grow with M (1.5× MKL's at
          // M = 480, enough to change where a sensitive training ends up); partial sums over kSumBlock rows,
          // added up, keep it at MKL's level.
          for (int64_t k0 = 0; k0 < M; k0 += kSumBlock) {
            std::fill(partial.begin(), partial.begin() + n * K, scalar_t(0));
            tile_gemm(n, K, std::min(kSumBlock, M - k0), g + k0 * N + r0, 1, N, xp + k0 * K, K, partial.data(), K);
            scalar_t* out = gw + r0 * K;
            for (int64_t i = 0; i < n * K; ++i) out[i] += partial[i];
          }
        }
      });
    }
  });
  return {grad_x, grad_w};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastsim, CPU, m) {
  m.impl("linear", &linear_cpu);
  m.impl("linear_backward", &linear_backward_cpu);
}

}  // namespace fastsim
