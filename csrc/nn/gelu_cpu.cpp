// Exact (erf) GELU and its derivative, elementwise on the CPU, for the models' tensor-op paths (training, and
// anything outside the fused ops): ATen's float GELU evaluates erf ≈ 2.6× slower than common/gelu.h, and the
// training steps of the graph models spend a tenth of their time in GELU and its backward.
//   gelu(x)                = x · Φ(x)
//   gelu_backward(grad, x) = grad · (Φ(x) + x · φ(x))
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include "common/checks.h"
#include "common/gelu.h"

namespace fastsim {
namespace {

constexpr int64_t kGrain = 1 << 14;  // elements per parallel chunk: a few µs of work

at::Tensor gelu_cpu(const at::Tensor& x) {
  check_float(x, "x");
  at::Tensor out = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gelu_cpu", [&] {
    const scalar_t* in = x.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      gelu(in + begin, o + begin, end - begin);
    });
  });
  return out;
}

at::Tensor gelu_backward_cpu(const at::Tensor& grad, const at::Tensor& x) {
  check_float(grad, "grad");
  check_float(x, "x");
  TORCH_CHECK(grad.sizes() == x.sizes() && grad.scalar_type() == x.scalar_type(),
              "grad must match x in shape and dtype");
  at::Tensor out = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gelu_backward_cpu", [&] {
    const scalar_t *z = x.data_ptr<scalar_t>(), *g = grad.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      gelu_backward(z + begin, static_cast<const scalar_t*>(nullptr), g + begin, o + begin, end - begin);
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastsim, CPU, m) {
  m.impl("gelu", &gelu_cpu);
  m.impl("gelu_backward", &gelu_backward_cpu);
}

}  // namespace fastsim
