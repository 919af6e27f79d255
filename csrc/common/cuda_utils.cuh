// Device helpers shared by the CUDA kernels (csrc/*/*_cuda.cu): lane groups, 128-bit vectors, GELU, and the CSR
// row reduction behind segment_reduce and spmm. Include only from .cu files.
#pragma once

#include <ATen/OpMathType.h>
#include <c10/macros/Macros.h>
#include <c10/util/BFloat16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "common/reducer.h"

namespace fastsim::cuda {

constexpr int kWarpSize = 32;
constexpr int kThreads = 256;  // threads per block of the row kernels: 8 warps, enough to hide gather latency

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// VEC consecutive elements moved as one access; alignas makes a 16-byte Vec compile to one 128-bit load/store.
template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

// Elements of T in one 128-bit access: 4 float, 2 double, 8 half/bfloat16.
template <typename T>
constexpr int kVec16 = 16 / static_cast<int>(sizeof(T));

inline bool is_aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Widen to the accumulation type. bfloat16 is widened from its bits: c10's operator float takes the address of
// the value, which kept whole vectors of bfloat16 in local memory (stack) in the row kernels.
template <typename T>
__device__ __forceinline__ at::opmath_type<T> to_acc(T v) {
  return static_cast<at::opmath_type<T>>(v);
}
template <>
__device__ __forceinline__ float to_acc<c10::BFloat16>(c10::BFloat16 v) {
  return __uint_as_float(static_cast<uint32_t>(v.x) << 16);
}

// Lanes that share one CSR row: the smallest power of two covering `units` (features or vectors), at most a warp.
// Small rows pack 32 / lanes rows into a warp so no lane idles on F < 32.
inline int lanes_for(int64_t units) {
  int lanes = 1;
  while (lanes < kWarpSize && lanes < units) lanes *= 2;
  return lanes;
}

inline int log2_exact(int pow2) {
  int l = 0;
  while ((1 << l) < pow2) ++l;
  return l;
}

// A group of `lanes` consecutive lanes (a power of two dividing 32, aligned within the warp). Groups in one warp
// run different rows with different trip counts, so every *_sync intrinsic uses the group's own mask.
struct LaneGroup {
  int lane;       // rank within the group
  int lanes;      // group size
  unsigned mask;  // the group's lanes in the warp
};

__device__ __forceinline__ LaneGroup lane_group(int lanes) {
  const int warp_lane = static_cast<int>(threadIdx.x) & (kWarpSize - 1);
  LaneGroup g;
  g.lanes = lanes;
  g.lane = warp_lane & (lanes - 1);
  g.mask = lanes == kWarpSize ? 0xffffffffu : ((1u << lanes) - 1u) << (warp_lane - g.lane);
  return g;
}

// Sum over the group; the total lands in rank 0.
template <typename T>
__device__ __forceinline__ T group_sum(const LaneGroup& g, T v) {
  for (int offset = g.lanes / 2; offset > 0; offset /= 2) v += __shfl_down_sync(g.mask, v, offset, g.lanes);
  return v;
}

// Exact (erf) GELU and its derivative Φ(z) + z·φ(z), in the accumulation type.
__device__ __forceinline__ float gelu(float z) { return 0.5f * z * (1.0f + erff(z * 0.70710678118654752f)); }
__device__ __forceinline__ double gelu(double z) { return 0.5 * z * (1.0 + erf(z * 0.70710678118654752440)); }
__device__ __forceinline__ float gelu_grad(float z) {
  return 0.5f * (1.0f + erff(z * 0.70710678118654752f)) + z * 0.39894228040143268f * expf(-0.5f * z * z);
}
__device__ __forceinline__ double gelu_grad(double z) {
  return 0.5 * (1.0 + erf(z * 0.70710678118654752440)) + z * 0.39894228040143267794 * exp(-0.5 * z * z);
}

// out[row, :] = ⊕_{e in [indptr[row], indptr[row+1])} w_e · x[j_e, :] with j_e = index[e] (or e when index is
// null: segment_reduce) and w_e = weight[e] (or 1). One lane group owns the row: no other thread writes out[row]
// or arg[row], so no atomics are needed, and edges are folded in CSR order, so results are deterministic and ties
// keep the first edge. Lanes split the features in VEC-wide vectors (one coalesced read per edge row); the group
// loads `lanes` edges' index/weight with one coalesced read and broadcasts them by shuffle; kUnroll edge rows
// are loaded before they are folded, to keep several gathers in flight per thread.
template <typename scalar_t, Reduce R, int VEC>
__device__ __forceinline__ void csr_row_reduce(const LaneGroup& g, int64_t row, const int64_t* __restrict__ indptr,
                                               const int64_t* __restrict__ index,
                                               const scalar_t* __restrict__ weight, const scalar_t* __restrict__ x,
                                               int64_t F, scalar_t* __restrict__ out, int64_t* __restrict__ arg) {
  using acc_t = at::opmath_type<scalar_t>;
  using Red = Reducer<acc_t, R>;
  using V = Vec<scalar_t, VEC>;
  constexpr int kUnroll = 4;
  const int64_t start = indptr[row];
  const int64_t end = indptr[row + 1];
  for (int64_t f0 = 0; f0 < F; f0 += static_cast<int64_t>(g.lanes) * VEC) {
    const int64_t f = f0 + static_cast<int64_t>(g.lane) * VEC;
    const bool active = f < F;  // on the vector path F % VEC == 0, so a lane's vector is whole or absent
    acc_t acc[VEC];
    int64_t pos[VEC];
#pragma unroll
    for (int c = 0; c < VEC; ++c) {
      acc[c] = Red::init();
      pos[c] = -1;
    }
    for (int64_t e0 = start; e0 < end; e0 += g.lanes) {
      const int n = static_cast<int>(end - e0 < g.lanes ? end - e0 : g.lanes);  // same for the whole group
      int64_t my_j = 0;
      acc_t my_w = acc_t(1);
      if (g.lane < n) {
        my_j = index != nullptr ? index[e0 + g.lane] : e0 + g.lane;
        if (weight != nullptr) my_w = to_acc(weight[e0 + g.lane]);
      }
      for (int k0 = 0; k0 < n; k0 += kUnroll) {
        V v[kUnroll];
        acc_t w[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          if (k0 + u < n) {  // group-uniform, so the shuffles below see the whole group
            const int64_t j = __shfl_sync(g.mask, my_j, k0 + u, g.lanes);
            // my_w is 1 without weight; shuffled unconditionally (a conditional shuffle made ptxas spill)
            w[u] = __shfl_sync(g.mask, my_w, k0 + u, g.lanes);
            if (active) v[u] = *reinterpret_cast<const V*>(x + j * F + f);  // j * F in int64
          }
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          if (active && k0 + u < n) {
#pragma unroll
            for (int c = 0; c < VEC; ++c) {
              Red::update(acc[c], pos[c], w[u] * to_acc(v[u].v[c]), e0 + k0 + u);
            }
          }
        }
      }
    }
    if (active) {
      V o;
#pragma unroll
      for (int c = 0; c < VEC; ++c) o.v[c] = static_cast<scalar_t>(Red::finish(acc[c], end - start));
      *reinterpret_cast<V*>(out + row * F + f) = o;
      if constexpr (R == Reduce::Min || R == Reduce::Max) {
#pragma unroll
        for (int c = 0; c < VEC; ++c) arg[row * F + f + c] = pos[c];
      }
    }
  }
}

}  // namespace fastsim::cuda
