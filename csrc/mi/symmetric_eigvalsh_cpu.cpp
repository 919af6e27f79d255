// Batched eigenvalues of symmetric matrices on the CPU, parallel over the batch. torch.linalg.eigvalsh runs the
// batch serially and leaves threading to LAPACK, which gains nothing at n ≈ 100; here each thread takes whole
// matrices. Matrices up to kMaxBisectionOrder run the shared Householder + bisection code of
// symmetric_eigvalsh.h (the same code as the CUDA kernel, with a one-thread team); larger ones LAPACK's dsyevd
// through at::linalg_eigvalsh, which inside the parallel region runs single-threaded. Each matrix's eigenvalues
// are written by the one thread that owns the matrix, so no two threads write the same output.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/linalg_eigvalsh.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "mi/symmetric_eigvalsh.h"
#include "mi/mi_checks.h"

namespace fastsim {
namespace {

// Largest order for which the shared code is as fast as LAPACK per matrix on one core. Measured as thread CPU
// time per float64 matrix, shared code vs MKL (torch.linalg.eigvalsh): n = 16: 9.1 vs 8.6 µs, n = 32: 34 vs
// 36 µs, n = 48: 76 vs 66 µs, n = 100: 456 vs 295 µs. The gap is the tridiagonal stage: bisection costs n² divisions
// per bit of accuracy, LAPACK's root-free QR O(n²) operations in all.
constexpr int64_t kMaxBisectionOrder = 32;

at::Tensor symmetric_eigvalsh_cpu(const at::Tensor& a) {
  check_eigvalsh_args(a);
  const int64_t B = a.size(0), n = a.size(1);
  at::Tensor out = at::empty({B, n}, a.options());
  if (out.numel() == 0) return out;
  // Enough matrices per task to amortise waking a thread (~10 µs) at small n.
  const int64_t grain = std::max<int64_t>(1, 4096 / (n * n * n));
  if (n > kMaxBisectionOrder) {
    at::parallel_for(0, B, grain, [&](int64_t b0, int64_t b1) {
      // float64 LAPACK for float32 input too: every path computes in float64 and rounds once at the end.
      out.slice(0, b0, b1).copy_(at::linalg_eigvalsh(a.slice(0, b0, b1).to(at::kDouble)));
    });
    return out;
  }
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "symmetric_eigvalsh_cpu", [&] {
    const scalar_t* ap = a.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, B, grain, [&](int64_t b0, int64_t b1) {
      std::vector<double> work(eigvalsh::work_size(n));
      const eigvalsh::SerialTeam team;
      for (int64_t b = b0; b < b1; ++b) {
        eigvalsh::symmetric_eigvalsh(team, ap + b * n * n, n, work.data(), op + b * n, 1);
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastsim, CPU, m) { m.impl("symmetric_eigvalsh", &symmetric_eigvalsh_cpu); }

}  // namespace fastsim
