// Row-parallel loops over a CSR graph, balanced by work (rows + edges) so that power-law graphs with a few
// huge rows do not leave threads idle. Each chunk is a contiguous range of rows: a kernel that writes only
// to the rows it was given needs no atomics, and per-chunk partial sums combined in chunk order give the
// same result on every run.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace fastsim {

// Chunk boundaries over [0, num_rows): chunk c is rows [bounds[c], bounds[c+1]) with roughly equal
// rows+edges count; `work_per_item` (e.g. the feature size) only decides whether splitting is worth it.
inline std::vector<int64_t> row_chunks(const int64_t* indptr, int64_t num_rows, int64_t work_per_item) {
  if (num_rows <= 0) return {0, 0};
  const int64_t total = num_rows + indptr[num_rows];
  constexpr int64_t kMinChunkWork = 1 << 15;  // small problems are not worth waking threads for
  const int64_t max_chunks = int64_t(at::get_num_threads()) * 8;
  const int64_t num_chunks =
      std::max<int64_t>(1, std::min(max_chunks, total * std::max<int64_t>(work_per_item, 1) / kMinChunkWork));
  std::vector<int64_t> bounds(num_chunks + 1, num_rows);
  bounds[0] = 0;
  for (int64_t k = 1; k < num_chunks; ++k) {
    const int64_t target = total * k / num_chunks;
    int64_t lo = bounds[k - 1], hi = num_rows;
    while (lo < hi) {  // lower_bound on cost(row) = row + indptr[row], monotone in row
      const int64_t mid = lo + (hi - lo) / 2;
      if (mid + indptr[mid] < target) lo = mid + 1; else hi = mid;
    }
    bounds[k] = lo;
  }
  return bounds;
}

// Calls f(chunk, row_begin, row_end) for every non-empty chunk of `bounds`, in parallel.
template <typename F>
void parallel_chunks(const std::vector<int64_t>& bounds, F&& f) {
  const int64_t num_chunks = int64_t(bounds.size()) - 1;
  auto body = [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      if (bounds[c] < bounds[c + 1]) f(c, bounds[c], bounds[c + 1]);
    }
  };
  if (num_chunks == 1) body(0, 1); else at::parallel_for(0, num_chunks, 1, body);
}

// Calls f(row_begin, row_end) over balanced chunks of [0, num_rows).
template <typename F>
void parallel_rows(const int64_t* indptr, int64_t num_rows, int64_t work_per_item, F&& f) {
  parallel_chunks(row_chunks(indptr, num_rows, work_per_item),
                  [&](int64_t, int64_t row_begin, int64_t row_end) { f(row_begin, row_end); });
}

// Per-thread scratch buffers for the parallel regions of one kernel call: made once per call and reused by every
// region in it, instead of being allocated inside each region. `get(n)` is the calling thread's buffer of at
// least n elements; elements it adds start at zero (a buffer used with one row layout keeps zero padding).
template <typename T>
class ThreadScratch {
 public:
  ThreadScratch() : buffers_(std::max(1, at::get_num_threads())) {}

  T* get(int64_t n) {
    std::vector<T>& buffer = buffers_[at::get_thread_num()];
    if (int64_t(buffer.size()) < n) buffer.resize(n, T(0));
    return buffer.data();
  }

 private:
  std::vector<std::vector<T>> buffers_;
};

}  // namespace fastsim
