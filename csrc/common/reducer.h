// One reduction abstraction shared by every segment/SpMM kernel, on the host and on the device:
// init() gives the identity, update() folds one value (tracking its position for min/max), finish() writes
// the result for a segment of `count` elements (empty segments give 0 and arg -1).
#pragma once

#include <c10/macros/Macros.h>

#include <cstdint>
#include <limits>

#include "common/checks.h"

namespace fastsim {

template <typename acc_t, Reduce R>
struct Reducer {
  static C10_HOST_DEVICE inline acc_t init() {
    if constexpr (R == Reduce::Min) return std::numeric_limits<acc_t>::infinity();
    if constexpr (R == Reduce::Max) return -std::numeric_limits<acc_t>::infinity();
    return acc_t(0);
  }

  // NaN propagates: once the accumulator is NaN it stays; a NaN value replaces a number.
  // Ties keep the first position, so min/max are deterministic.
  static C10_HOST_DEVICE inline void update(acc_t& acc, int64_t& arg, acc_t v, int64_t pos) {
    if constexpr (R == Reduce::Sum || R == Reduce::Mean) {
      acc += v;
    } else {
      bool acc_nan = acc != acc;
      bool better = (R == Reduce::Max) ? (v > acc) : (v < acc);
      if (!acc_nan && (v != v || better || arg < 0)) {
        acc = v;
        arg = pos;
      }
    }
  }

  // The extreme value alone (no position), branch-free so that CPU loops over features vectorise; the
  // position is found afterwards as the first element equal to the result (see reduce_rows_cpu.h).
  static C10_HOST_DEVICE inline acc_t fold(acc_t acc, acc_t v) {
    const bool better = (R == Reduce::Max) ? (v > acc) : (v < acc);
    return (acc == acc && (v != v || better)) ? v : acc;
  }

  static C10_HOST_DEVICE inline acc_t finish(acc_t acc, int64_t count) {
    if (count == 0) return acc_t(0);
    if constexpr (R == Reduce::Mean) return acc / static_cast<acc_t>(count);
    return acc;
  }
};

// Calls f(std::integral_constant<Reduce, R>) for the runtime reduce r, so kernels are instantiated once per
// reduction without per-reduction copies of their loops.
#define FASTSIM_DISPATCH_REDUCE(r, ...)                                               \
  [&] {                                                                                \
    switch (r) {                                                                       \
      case ::fastsim::Reduce::Sum: {                                                   \
        constexpr ::fastsim::Reduce REDUCE = ::fastsim::Reduce::Sum;                   \
        return __VA_ARGS__();                                                          \
      }                                                                                \
      case ::fastsim::Reduce::Mean: {                                                  \
        constexpr ::fastsim::Reduce REDUCE = ::fastsim::Reduce::Mean;                  \
        return __VA_ARGS__();                                                          \
      }                                                                                \
      case ::fastsim::Reduce::Min: {                                                   \
        constexpr ::fastsim::Reduce REDUCE = ::fastsim::Reduce::Min;                   \
        return __VA_ARGS__();                                                          \
      }                                                                                \
      default: {                                                                       \
        constexpr ::fastsim::Reduce REDUCE = ::fastsim::Reduce::Max;                   \
        return __VA_ARGS__();                                                          \
      }                                                                                \
    }                                                                                  \
  }()

}  // namespace fastsim
