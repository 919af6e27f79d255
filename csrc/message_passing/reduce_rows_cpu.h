// The one CPU segment-reduction loop behind segment_reduce and spmm: for each CSR row i, fold
// scale(e) * value(e)[0:F] over the row's edges e with Reducer<R> and write out[i] (and arg[i] for min/max).
#pragma once

#include <ATen/OpMathType.h>

#include <vector>

#include "common/parallel.h"
#include "common/reducer.h"

namespace fastsim {

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
    acc_t* __restrict acc = acc_buf.data();
    int64_t* __restrict best = arg_buf.data();
    for (int64_t i = row_begin; i < row_end; ++i) {
      std::fill(acc_buf.begin(), acc_buf.end(), Red::init());
      std::fill(arg_buf.begin(), arg_buf.end(), int64_t(-1));
      const int64_t e_begin = indptr[i], e_end = indptr[i + 1];
      for (int64_t e = e_begin; e < e_end; ++e) {
        const scalar_t* __restrict value = value_of(e);
        const acc_t scale = scale_of(e);
        if constexpr (kArg) {
          for (int64_t f = 0; f < F; ++f) Red::update(acc[f], best[f], scale * acc_t(value[f]), e);
        } else {
#pragma omp simd
          for (int64_t f = 0; f < F; ++f) acc[f] += scale * acc_t(value[f]);
        }
      }
      scalar_t* __restrict out_row = out + i * F;
      for (int64_t f = 0; f < F; ++f) out_row[f] = scalar_t(Red::finish(acc[f], e_end - e_begin));
      if constexpr (kArg) std::copy(arg_buf.begin(), arg_buf.end(), arg + i * F);
    }
  });
}

}  // namespace fastsim
