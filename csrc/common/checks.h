// Argument checks shared by every kernel. The Python wrappers in fastsim/ops validate user input with
// messages that name the argument; these TORCH_CHECKs guard the C++ entry points against direct calls.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace fastsim {

inline void check_index(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.scalar_type() == at::kLong, name, " must be int64, got ", t.scalar_type());
  TORCH_CHECK(t.dim() == 1, name, " must be 1-D, got ", t.dim(), "-D");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

// The contents of index tensors, on the CPU, where a kernel would otherwise read out of bounds: the wrappers pass
// a validated fastsim.Graph, but a direct call of torch.ops.fastsim.* may pass anything. One pass over the
// indices, next to kernels that read every index anyway (and on every call: a Graph's tensors can be changed in
// place after it was validated). CUDA tensors are not scanned here (a device reduction and a synchronisation
// per call); the wrappers validate them.

// Whether any of p[0, n) lies outside [0, upper): the sign bit of v | (upper − 1 − v) in unsigned arithmetic,
// OR-ed over all entries. Branch-free, so it vectorises: ≈ 0.1 ms per million indices, 5–10× less than a
// bool per comparison.
inline bool any_outside(const int64_t* p, int64_t n, int64_t upper) {
  const uint64_t last = static_cast<uint64_t>(upper) - 1;
  uint64_t acc = 0;
  for (int64_t k = 0; k < n; ++k) {
    const uint64_t v = static_cast<uint64_t>(p[k]);
    acc |= v | (last - v);
  }
  return (acc >> 63) != 0;
}

inline void check_in_range(const at::Tensor& t, int64_t upper, const char* name) {
  if (!t.device().is_cpu() || t.numel() == 0) return;
  const int64_t* p = t.data_ptr<int64_t>();
  if (!any_outside(p, t.numel(), upper)) return;
  const auto [lo, hi] = std::minmax_element(p, p + t.numel());
  TORCH_CHECK(false, name, " must hold indices in [0, ", upper, "); got values from ", *lo, " to ", *hi);
}

// Offsets into `total` items: 0 = t[0] <= t[1] <= ... <= t[-1] = total.
inline void check_offsets(const at::Tensor& t, int64_t total, const char* name) {
  TORCH_CHECK(t.numel() >= 1, name, " must have at least one entry");
  if (!t.device().is_cpu()) return;
  const int64_t* p = t.data_ptr<int64_t>();
  const int64_t n = t.numel();
  TORCH_CHECK(p[0] == 0 && p[n - 1] == total, name, " must run from 0 to ", total, "; got ", p[0], " to ", p[n - 1]);
  TORCH_CHECK(!any_outside(p, n, total + 1), name, " must be non-decreasing");
  uint64_t steps = 0;  // with every entry in [0, total], a decrease is a difference with its sign bit set
  for (int64_t k = 1; k < n; ++k) steps |= static_cast<uint64_t>(p[k] - p[k - 1]);
  TORCH_CHECK((steps >> 63) == 0, name, " must be non-decreasing");
}

// Output times, a contiguous float64 (T,) or (B, T) tensor on the CPU: every row finite and strictly increasing (the
// solvers step from t[0] towards t[T - 1] and fill each output time as they pass it; a NaN time would never be
// passed, and the trajectory would report success with unwritten outputs).
inline void check_increasing_times(const at::Tensor& t, const char* name) {
  if (!t.device().is_cpu() || t.numel() == 0) return;
  const double* p = t.data_ptr<double>();
  const int64_t T = t.size(-1), rows = t.numel() / T;
  for (int64_t r = 0; r < rows; ++r) {
    const double* row = p + r * T;
    for (int64_t k = 0; k < T; ++k) {
      TORCH_CHECK(std::isfinite(row[k]), name, " must be finite; got ", row[k], " in row ", r);
      TORCH_CHECK(k == 0 || row[k] > row[k - 1], name, " must be strictly increasing along each row; row ", r,
                  " has ", row[k - 1], " then ", row[k]);
    }
  }
}

inline void check_float(const at::Tensor& t, const char* name) {
  TORCH_CHECK(at::isFloatingType(t.scalar_type()), name, " must be a floating tensor, got ", t.scalar_type());
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

inline void check_same_device(const at::Tensor& a, const at::Tensor& b, const char* name) {
  TORCH_CHECK(a.device() == b.device(), name, " is on ", b.device(), " but the graph is on ", a.device());
}

enum class Reduce { Sum, Mean, Min, Max };

inline Reduce parse_reduce(c10::string_view reduce) {
  if (reduce == "sum") return Reduce::Sum;
  if (reduce == "mean") return Reduce::Mean;
  if (reduce == "min") return Reduce::Min;
  if (reduce == "max") return Reduce::Max;
  TORCH_CHECK(reduce == "max", "reduce must be one of sum, mean, min, max; got '", reduce, "'");
  return Reduce::Max;
}

inline bool has_arg(Reduce r) { return r == Reduce::Min || r == Reduce::Max; }

}  // namespace fastsim
