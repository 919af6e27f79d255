// The one CPU segment-reduction loop behind segment_reduce and spmm: for each CSR row i, fold
// scale(e) * value(e)[0:F] over the row's edges e with Reducer<R> and write out[i] (and arg[i] for min/max:
// found in a second pass over the row, which is still in cache, so that the first pass vectorises).
#pragma once

#include <ATen/OpMathType.h>
#include <ATen/cpu/vec/vec.h>

#include <type_traits>

#include <vector>

#include "common/parallel.h"
#include "common/reducer.h"

namespace fastsim {

// Rows are gathered in random order, so the loop is bound by memory latency: prefetching the value rows a few
// edges ahead keeps enough cache misses in flight to approach the copy bandwidth.
constexpr int64_t kPrefetchDistance = 8;

// Sum of one row with the feature size known at compile time (FB > 0): the accumulator stays in registers.
template <int64_t FB, typename scalar_t, typename acc_t, typename ValueOf, typename ScaleOf>
inline void sum_row_fixed(int64_t e_begin, int64_t e_end, ValueOf& value_of, ScaleOf& scale_of, acc_t* out_acc) {
  acc_t acc[FB] = {};
  for (int64_t e = e_begin; e < e_end; ++e) {
    if (e + kPrefetchDistance < e_end) __builtin_prefetch(value_of(e + kPrefetchDistance));
    const scalar_t* __restrict value = value_of(e);
    const acc_t scale = scale_of(e);
#pragma omp simd
    for (int64_t f = 0; f < FB; ++f) acc[f] += scale * acc_t(value[f]);
  }
  for (int64_t f = 0; f < FB; ++f) out_acc[f] = acc[f];
}

// acc[f] <- min/max(acc[f], scale * value[f]) with NaN propagating (the value pass of min/max). ATen's
// vectorised maximum/minimum propagate NaN, so the common float/double case runs branch-free in SIMD.
template <Reduce R, typename scalar_t, typename acc_t>
inline void fold_extreme(acc_t* __restrict acc, const scalar_t* __restrict value, acc_t scale, int64_t F) {
  int64_t f = 0;
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    using Vec = at::vec::Vectorized<acc_t>;
    const Vec s(scale);
    for (; f + Vec::size() <= F; f += Vec::size()) {
      const Vec v = Vec::loadu(value + f) * s, a = Vec::loadu(acc + f);
      (R == Reduce::Max ? at::vec::maximum(a, v) : at::vec::minimum(a, v)).store(acc + f);
    }
  }
  for (; f < F; ++f) acc[f] = Reducer<acc_t, R>::fold(acc[f], scale * acc_t(value[f]));
}

template <typename scalar_t, Reduce R, typename ValueOf, typename ScaleOf>
void reduce_rows_cpu(const int64_t* indptr, int64_t num_rows, int64_t F, ValueOf value_of, ScaleOf scale_of,
                     scalar_t* out, int64_t* arg) {
  using acc_t = at::opmath_type<scalar_t>;
  using Red = Reducer<acc_t, R>;
  constexpr bool kArg = R == Reduce::Min || R == Reduce::Max;
  // Each chunk owns a contiguous range of output rows, so the writes below never race.
  parallel_rows(indptr, num_rows, F, [&](int64_t row_begin, int64_t row_end) {
    std::vector<acc_t> acc_buf(F);
    std::vector<int64_t> arg_buf(kArg ? F : 0);
    std::vector<int32_t> first_buf(kArg ? F : 0);
    acc_t* __restrict acc = acc_buf.data();
    int32_t* __restrict first = first_buf.data();
    int64_t* __restrict best = arg_buf.data();
    for (int64_t i = row_begin; i < row_end; ++i) {
      const int64_t e_begin = indptr[i], e_end = indptr[i + 1];
      bool done = false;
      if constexpr (!kArg) {  // common feature sizes get a register-resident accumulator
        done = true;
        switch (F) {
          case 1: sum_row_fixed<1, scalar_t>(e_begin, e_end, value_of, scale_of, acc); break;
          case 2: sum_row_fixed<2, scalar_t>(e_begin, e_end, value_of, scale_of, acc); break;
          case 4: sum_row_fixed<4, scalar_t>(e_begin, e_end, value_of, scale_of, acc); break;
          case 8: sum_row_fixed<8, scalar_t>(e_begin, e_end, value_of, scale_of, acc); break;
          case 16: sum_row_fixed<16, scalar_t>(e_begin, e_end, value_of, scale_of, acc); break;
          case 32: sum_row_fixed<32, scalar_t>(e_begin, e_end, value_of, scale_of, acc); break;
          case 64: sum_row_fixed<64, scalar_t>(e_begin, e_end, value_of, scale_of, acc); break;
          default: done = false;
        }
      }
      if (!done) {
        std::fill(acc_buf.begin(), acc_buf.end(), Red::init());
        for (int64_t e = e_begin; e < e_end; ++e) {
          if (e + kPrefetchDistance < e_end) __builtin_prefetch(value_of(e + kPrefetchDistance));
          const scalar_t* __restrict value = value_of(e);
          const acc_t scale = scale_of(e);
          if constexpr (kArg) {
            fold_extreme<R>(acc, value, scale, F);
          } else {
#pragma omp simd
            for (int64_t f = 0; f < F; ++f) acc[f] += scale * acc_t(value[f]);
          }
        }
      }
      if constexpr (kArg) {
        // Second, cache-hot pass over the row: the position of the first element equal to the extreme (NaN
        // matches NaN), so ties keep the first and NaN wins, as Reducer::update decides. Walking the row
        // backwards with an unconditional select keeps the loop branch-free (row-relative int32 positions
        // match the float lanes' width, so it vectorises).
        std::fill(first_buf.begin(), first_buf.end(), int32_t(-1));
        for (int64_t e = e_end - 1; e >= e_begin; --e) {
          const scalar_t* __restrict value = value_of(e);
          const acc_t scale = scale_of(e);
          const int32_t k = int32_t(e - e_begin);
#pragma omp simd
          for (int64_t f = 0; f < F; ++f) {
            const acc_t v = scale * acc_t(value[f]);
            const bool match = acc[f] != acc[f] ? v != v : v == acc[f];
            first[f] = match ? k : first[f];
          }
        }
        for (int64_t f = 0; f < F; ++f) best[f] = first[f] < 0 ? -1 : e_begin + first[f];
      }
      scalar_t* __restrict out_row = out + i * F;
      for (int64_t f = 0; f < F; ++f) out_row[f] = scalar_t(Red::finish(acc[f], e_end - e_begin));
      if constexpr (kArg) std::copy(arg_buf.begin(), arg_buf.end(), arg + i * F);
    }
  });
}

}  // namespace fastsim
