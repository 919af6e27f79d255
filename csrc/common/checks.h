// Argument checks shared by every kernel. The Python wrappers in fastsim/ops validate user input with
// messages that name the argument; these TORCH_CHECKs guard the C++ entry points against direct calls.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace fastsim {

inline void check_index(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.scalar_type() == at::kLong, name, " must be int64, got ", t.scalar_type());
  TORCH_CHECK(t.dim() == 1, name, " must be 1-D, got ", t.dim(), "-D");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
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
