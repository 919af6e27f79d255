// CUDA gn_edge_aggregate and gn_edge_aggregate_backward: the fused graph-network edge step (docs/ops.md).
// For every CSR edge e = (j -> i):
//   z1 = p_src[j] + p_dst[i] + edge_term[e] + graph_term[batch[i]]    (H)
//   h = GELU(z1),  z2 = h @ w2^T + b2,  m = GELU(z2)                  (O)
//   node_out[i] = sum of m over the edges into i,  edge_out[e] = m.
// edge_term is given (E x H) or formed by one GEMM from (E x F) edge features and w_edge (H x F); beyond it,
// nothing of size E x H ever reaches global memory: a warp carries kEB edges at a time through the MLP with the
// hidden layer in shared memory, and the backward recomputes it.
//
// Layout of the work: one warp per destination row (the forward, and the backward's CSR pass) or per source row
// (the backward's pass over the transposed CSR). Within a step the warp puts
//   phase A: lanes along the hidden units k: z1, h = GELU(z1) (and GELU'(z1)) for kEB edges -> shared [k][kEB]
//   phase B: lanes along the outputs o: z2 = b2 + sum_k w2[o, k] h[k], one w2 read feeding kEB edges
//   phase C (backward): lanes along k: gh = sum_o gz2[o] w2[o, k], gz1 = gh * GELU'(z1)
// w2 sits in shared memory, transposed with an odd row stride, when it fits (see GnSmem); otherwise it is read
// from global memory (small and shared by every warp, so L1/L2-resident), which works for any H and O.
//
// Race-freedom: a row belongs to one warp, which accumulates that row's output in its own shared buffer (lane l
// owns entries l, l+32, ...) and writes it once, so node outputs need no atomics and sum edges in CSR order. The
// w2 / b2 gradients, sums over all edges, are folded per block by a fixed owner thread per entry into a
// (blocks, O*H + O) workspace, then summed over blocks by a second kernel: deterministic, no atomics.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>
#include <tuple>

#include "common/checks.h"
#include "common/cuda_utils.cuh"

namespace fastsim {
namespace {

using cuda::kWarpSize;

constexpr int kEB = 4;  // edges a warp carries through the MLP together: each w2 value read feeds kEB FMAs
constexpr int kMaxWarps = 8;

// One hidden (or output) unit for the kEB edges of a step, moved as one 128-bit (float) / 2 x 128-bit access.
template <typename T>
using EdgePack = cuda::Vec<T, kEB>;

template <typename T>
__device__ __forceinline__ EdgePack<T> load_pack(const T* p) {
  return *reinterpret_cast<const EdgePack<T>*>(p);
}
template <typename T>
__device__ __forceinline__ void store_pack(T* p, const EdgePack<T>& v) {
  *reinterpret_cast<EdgePack<T>*>(p) = v;
}

// Device pointers of the op's inputs; absent optionals are null.
template <typename scalar_t>
struct GnArgs {
  const int64_t* indptr;
  const int64_t* src;
  const int64_t* rev_indptr;
  const int64_t* rev_dst;
  const int64_t* rev_perm;
  const scalar_t* p_src;
  const scalar_t* p_dst;
  const scalar_t* edge_term;
  const scalar_t* graph_term;
  const int64_t* batch;
  const scalar_t* w2;   // (O, H)
  const scalar_t* w2t;  // (H, O): w2 transposed, only for the global-memory w2 variant
  const scalar_t* b2;
  const scalar_t* grad_node;  // backward only
  const scalar_t* grad_edge;  // backward only, optional
  int64_t N;
  int H;
  int O;
};

// Shared memory plan, in acc_t elements.
//   block part: w2 transposed, w2t[k * S + o] with S = O | 1, when staged. Lanes along o (phase B) read
//     consecutive words; lanes along k (phase C) read with the odd stride S, which hits 32 distinct banks
//     (float) or 16 distinct bank pairs per half-warp (double): no bank conflicts either way.
//   one region per warp, packs first so every [.][kEB] array stays kEB-aligned:
//     h [H][kEB], d1 = GELU'(z1) [H][kEB] (backward), gz2 [O][kEB] (backward), base [H], acc [H or O].
struct GnSmem {
  int H;
  int O;
  bool backward;
  bool w2_shared;
  C10_HOST_DEVICE static int64_t round_up(int64_t n) { return (n + kEB - 1) / kEB * kEB; }
  C10_HOST_DEVICE int stride() const { return O | 1; }
  C10_HOST_DEVICE int64_t w2_elems() const { return w2_shared ? round_up(int64_t(H) * stride()) : 0; }
  C10_HOST_DEVICE int64_t d1_off() const { return int64_t(H) * kEB; }
  C10_HOST_DEVICE int64_t gz2_off() const { return d1_off() + (backward ? int64_t(H) * kEB : 0); }
  C10_HOST_DEVICE int64_t base_off() const { return gz2_off() + (backward ? int64_t(O) * kEB : 0); }
  C10_HOST_DEVICE int64_t acc_off() const { return base_off() + H; }
  C10_HOST_DEVICE int64_t warp_elems() const { return round_up(acc_off() + (backward ? H : O)); }
  C10_HOST_DEVICE int64_t elems(int warps) const { return w2_elems() + warps * warp_elems(); }
};

// w2[o, k] from shared memory or global memory, for lanes running along o or along k.
template <typename scalar_t, bool SHARED>
struct W2View {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t* s;
  const scalar_t* w2;
  const scalar_t* w2t;
  int H;
  int O;
  int S;
  __device__ __forceinline__ acc_t along_o(int k, int o) const {
    if constexpr (SHARED) {
      return s[k * S + o];
    } else {
      return static_cast<acc_t>(w2t[int64_t(k) * O + o]);  // coalesced along o
    }
  }
  __device__ __forceinline__ acc_t along_k(int o, int k) const {
    if constexpr (SHARED) {
      return s[k * S + o];
    } else {
      return static_cast<acc_t>(w2[int64_t(o) * H + k]);  // coalesced along k
    }
  }
};

// Copies w2 into shared memory, transposed (block-wide; every thread must call it).
template <typename scalar_t, bool SHARED, typename acc_t>
__device__ W2View<scalar_t, SHARED> stage_w2(const GnArgs<scalar_t>& a, acc_t* smem) {
  const W2View<scalar_t, SHARED> view{smem, a.w2, a.w2t, a.H, a.O, a.O | 1};
  if constexpr (SHARED) {
    const int OH = a.O * a.H;
    for (int idx = threadIdx.x; idx < OH; idx += blockDim.x) {  // coalesced reads of w2 (O, H)
      const int o = idx / a.H;
      const int k = idx - o * a.H;
      smem[k * view.S + o] = static_cast<acc_t>(a.w2[idx]);
    }
    __syncthreads();
  }
  return view;
}

// The row-constant part of z1 for destination row i: p_dst[i] + graph_term[batch[i]].
template <typename scalar_t, typename acc_t>
__device__ __forceinline__ void load_dst_base(const GnArgs<scalar_t>& a, int64_t i, int lane, acc_t* base) {
  const int H = a.H;
  const int64_t g = a.graph_term != nullptr ? a.batch[i] : 0;
  for (int k = lane; k < H; k += kWarpSize) {
    acc_t b = static_cast<acc_t>(a.p_dst[i * H + k]);
    if (a.graph_term != nullptr) b += static_cast<acc_t>(a.graph_term[g * H + k]);
    base[k] = b;
  }
}

// Phase A: z1 = base + p_other[other] (+ graph_term[gidx]) (+ edge_term[eid]) for the kEB edges of a step;
// writes GELU(z1) to s_h and, in the backward, GELU'(z1) to s_d1. Slots eb >= nb get 0, which contributes
// nothing downstream. Lane l handles k = l, l+32, ...: the lane that owns base[k] (and acc[k]).
template <bool BACKWARD, typename scalar_t, typename acc_t>
__device__ __forceinline__ void edge_hidden(int lane, int nb, int H, const acc_t* base,
                                            const scalar_t* __restrict__ p_other, const int64_t (&other)[kEB],
                                            const scalar_t* __restrict__ graph_term, const int64_t (&gidx)[kEB],
                                            const scalar_t* __restrict__ edge_term, const int64_t (&eid)[kEB],
                                            acc_t* s_h, acc_t* s_d1) {
  for (int k = lane; k < H; k += kWarpSize) {
    const acc_t b = base[k];
    EdgePack<acc_t> h;
    EdgePack<acc_t> d;
#pragma unroll
    for (int eb = 0; eb < kEB; ++eb) {
      h.v[eb] = acc_t(0);
      d.v[eb] = acc_t(0);
      if (eb < nb) {
        acc_t z = b + static_cast<acc_t>(p_other[other[eb] * H + k]);  // int64 offsets
        if (graph_term != nullptr) z += static_cast<acc_t>(graph_term[gidx[eb] * H + k]);
        if (edge_term != nullptr) z += static_cast<acc_t>(edge_term[eid[eb] * H + k]);
        h.v[eb] = cuda::gelu(z);
        if constexpr (BACKWARD) d.v[eb] = cuda::gelu_grad(z);
      }
    }
    store_pack(s_h + k * kEB, h);
    if constexpr (BACKWARD) store_pack(s_d1 + k * kEB, d);
  }
}

// Phase B for output o: z[eb] = b2[o] + sum_k w2[o, k] h[k][eb].
template <typename scalar_t, bool SHARED, typename acc_t>
__device__ __forceinline__ void edge_preact(const W2View<scalar_t, SHARED>& w2, acc_t bias, const acc_t* s_h, int H,
                                            int o, acc_t (&z)[kEB]) {
#pragma unroll
  for (int eb = 0; eb < kEB; ++eb) z[eb] = bias;
#pragma unroll 4
  for (int k = 0; k < H; ++k) {
    const acc_t w = w2.along_o(k, o);
    const EdgePack<acc_t> h = load_pack(s_h + k * kEB);  // same address for all lanes: a broadcast
#pragma unroll
    for (int eb = 0; eb < kEB; ++eb) z[eb] += w * h.v[eb];
  }
}

// Phases B and C of the backward for one step. B (lanes along o): gz2 = (grad_node[node] + grad_edge[eid]) *
// GELU'(z2) -> s_gz2. C (lanes along k): gz1 = (sum_o gz2[o] w2[o, k]) * GELU'(z1), added to acc[k] in edge order
// and written to grad_edge_term (when not null).
template <typename scalar_t, bool SHARED, typename acc_t>
__device__ __forceinline__ void edge_backward(int lane, int nb, const GnArgs<scalar_t>& a,
                                              const W2View<scalar_t, SHARED>& w2, const int64_t (&node)[kEB],
                                              const int64_t (&eid)[kEB], const acc_t* s_h, const acc_t* s_d1,
                                              acc_t* s_gz2, acc_t* s_acc, scalar_t* __restrict__ grad_edge_term) {
  const int H = a.H;
  const int O = a.O;
  for (int o = lane; o < O; o += kWarpSize) {
    acc_t z[kEB];
    edge_preact(w2, static_cast<acc_t>(a.b2[o]), s_h, H, o, z);
    EdgePack<acc_t> gz;
#pragma unroll
    for (int eb = 0; eb < kEB; ++eb) {
      gz.v[eb] = acc_t(0);
      if (eb < nb) {
        acc_t gm = static_cast<acc_t>(a.grad_node[node[eb] * O + o]);
        if (a.grad_edge != nullptr) gm += static_cast<acc_t>(a.grad_edge[eid[eb] * O + o]);
        gz.v[eb] = gm * cuda::gelu_grad(z[eb]);
      }
    }
    store_pack(s_gz2 + o * kEB, gz);
  }
  __syncwarp();  // s_gz2 complete before any lane reads all of it
  for (int k = lane; k < H; k += kWarpSize) {
    acc_t gh[kEB];
#pragma unroll
    for (int eb = 0; eb < kEB; ++eb) gh[eb] = acc_t(0);
#pragma unroll 4
    for (int o = 0; o < O; ++o) {
      const acc_t w = w2.along_k(o, k);
      const EdgePack<acc_t> gz = load_pack(s_gz2 + o * kEB);  // broadcast
#pragma unroll
      for (int eb = 0; eb < kEB; ++eb) gh[eb] += w * gz.v[eb];
    }
    const EdgePack<acc_t> d = load_pack(s_d1 + k * kEB);
    acc_t sum = s_acc[k];
#pragma unroll
    for (int eb = 0; eb < kEB; ++eb) {
      if (eb < nb) {
        const acc_t g1 = gh[eb] * d.v[eb];
        sum += g1;
        if (grad_edge_term != nullptr) grad_edge_term[eid[eb] * H + k] = static_cast<scalar_t>(g1);
      }
    }
    s_acc[k] = sum;
  }
  __syncwarp();  // all lanes are done with s_h, s_d1, s_gz2 before the next step rewrites them
}

// No __launch_bounds__ on these kernels: with it ptxas capped them at 64 registers and spilled; the launch
// plan sizes the grid from the actual occupancy instead.
template <typename scalar_t, bool SHARED>
__global__ void gn_forward_kernel(const GnArgs<scalar_t> a, scalar_t* __restrict__ node_out,
                                  scalar_t* __restrict__ edge_out) {
  using acc_t = at::opmath_type<scalar_t>;
  extern __shared__ __align__(32) unsigned char gn_smem[];
  acc_t* smem = reinterpret_cast<acc_t*>(gn_smem);
  const GnSmem L{a.H, a.O, false, SHARED};
  const W2View<scalar_t, SHARED> w2 = stage_w2<scalar_t, SHARED>(a, smem);
  const int lane = threadIdx.x & (kWarpSize - 1);
  const int warp = threadIdx.x / kWarpSize;
  const int W = blockDim.x / kWarpSize;
  acc_t* ws = smem + L.w2_elems() + warp * L.warp_elems();
  acc_t* s_h = ws;
  acc_t* s_base = ws + L.base_off();
  acc_t* s_node = ws + L.acc_off();
  const int H = a.H;
  const int O = a.O;
  const int64_t none[kEB] = {};
  // Grid-stride over rows by warps: the grid is capped at the resident block count, so w2 is staged once per
  // block, not once per row tile.
  for (int64_t row = int64_t(blockIdx.x) * W + warp; row < a.N; row += int64_t(gridDim.x) * W) {
    const int64_t start = a.indptr[row];
    const int64_t end = a.indptr[row + 1];
    load_dst_base(a, row, lane, s_base);
    for (int o = lane; o < O; o += kWarpSize) s_node[o] = acc_t(0);
    for (int64_t e = start; e < end; e += kEB) {
      const int nb = static_cast<int>(end - e < kEB ? end - e : kEB);
      int64_t j[kEB];
      int64_t eid[kEB];
#pragma unroll
      for (int eb = 0; eb < kEB; ++eb) {
        eid[eb] = e + eb;
        j[eb] = eb < nb ? a.src[e + eb] : 0;
      }
      edge_hidden<false>(lane, nb, H, s_base, a.p_src, j, static_cast<const scalar_t*>(nullptr), none, a.edge_term,
                         eid, s_h, static_cast<acc_t*>(nullptr));
      __syncwarp();  // s_h complete before every lane reads all of it
      for (int o = lane; o < O; o += kWarpSize) {
        acc_t z[kEB];
        edge_preact(w2, static_cast<acc_t>(a.b2[o]), s_h, H, o, z);
        acc_t sum = s_node[o];
#pragma unroll
        for (int eb = 0; eb < kEB; ++eb) {
          if (eb < nb) {
            const acc_t m = cuda::gelu(z[eb]);
            sum += m;
            if (edge_out != nullptr) edge_out[eid[eb] * O + o] = static_cast<scalar_t>(m);  // coalesced along o
          }
        }
        s_node[o] = sum;
      }
      __syncwarp();  // every lane is done reading s_h before the next step rewrites it
    }
    for (int o = lane; o < O; o += kWarpSize) node_out[row * O + o] = static_cast<scalar_t>(s_node[o]);
  }
}

// Phase D: adds this step's w2 / b2 gradient terms of all the block's warps to the block's partial sums. Thread t
// owns entries t, t + blockDim.x, ... of [grad_w2 (O*H, row-major) | grad_b2 (O)]: the read-modify-write of
// `part` races with nobody and the summation order (step, warp, edge) is fixed.
template <typename acc_t>
__device__ void accumulate_weight_grads(const GnSmem& L, const acc_t* warps, int W, acc_t* __restrict__ part) {
  const int H = L.H;
  const int OH = L.O * L.H;
  for (int idx = threadIdx.x; idx < OH + L.O; idx += blockDim.x) {
    const bool is_w2 = idx < OH;
    const int o = is_w2 ? idx / H : idx - OH;
    const int k = is_w2 ? idx - o * H : 0;
    acc_t sum = acc_t(0);
    for (int w = 0; w < W; ++w) {
      const acc_t* ws = warps + w * L.warp_elems();
      const EdgePack<acc_t> gz = load_pack(ws + L.gz2_off() + o * kEB);
      if (is_w2) {
        const EdgePack<acc_t> h = load_pack(ws + k * kEB);
#pragma unroll
        for (int eb = 0; eb < kEB; ++eb) sum += gz.v[eb] * h.v[eb];
      } else {
#pragma unroll
        for (int eb = 0; eb < kEB; ++eb) sum += gz.v[eb];
      }
    }
    part[idx] += sum;
  }
}

// Backward pass over the CSR (warp per destination row): grad_p_dst, grad_edge_term and the per-block partial
// sums of grad_w2 / grad_b2. The warps of a block step together (phase D reads every warp's step), so a warp whose
// row is done moves to its next row at the next step; a warp with no rows left idles with nb = 0.
template <typename scalar_t, bool SHARED>
__global__ void gn_backward_dst_kernel(const GnArgs<scalar_t> a, scalar_t* __restrict__ grad_p_dst,
                                       scalar_t* __restrict__ grad_edge_term,
                                       at::opmath_type<scalar_t>* __restrict__ partials) {
  using acc_t = at::opmath_type<scalar_t>;
  extern __shared__ __align__(32) unsigned char gn_smem[];
  acc_t* smem = reinterpret_cast<acc_t*>(gn_smem);
  const GnSmem L{a.H, a.O, true, SHARED};
  const W2View<scalar_t, SHARED> w2 = stage_w2<scalar_t, SHARED>(a, smem);
  const int lane = threadIdx.x & (kWarpSize - 1);
  const int warp = threadIdx.x / kWarpSize;
  const int W = blockDim.x / kWarpSize;
  acc_t* warps = smem + L.w2_elems();
  acc_t* ws = warps + warp * L.warp_elems();
  acc_t* s_h = ws;
  acc_t* s_d1 = ws + L.d1_off();
  acc_t* s_gz2 = ws + L.gz2_off();
  acc_t* s_base = ws + L.base_off();
  acc_t* s_acc = ws + L.acc_off();
  acc_t* part = partials + int64_t(blockIdx.x) * (int64_t(a.O) * a.H + a.O);
  const int H = a.H;
  const int64_t stride = int64_t(gridDim.x) * W;
  const int64_t none[kEB] = {};
  int64_t e = 0;
  int64_t end = 0;
  // First non-empty row at or after r in this warp's sequence; rows skipped on the way get a zero gradient.
  auto seek = [&](int64_t r) {
    for (; r < a.N; r += stride) {
      e = a.indptr[r];
      end = a.indptr[r + 1];
      if (e < end) {
        load_dst_base(a, r, lane, s_base);
        for (int k = lane; k < H; k += kWarpSize) s_acc[k] = acc_t(0);
        return r;
      }
      for (int k = lane; k < H; k += kWarpSize) grad_p_dst[r * H + k] = scalar_t(0);
    }
    return r;
  };
  int64_t row = seek(int64_t(blockIdx.x) * W + warp);
  while (__syncthreads_or(row < a.N)) {  // also the barrier that guards this step's writes of s_h and s_gz2
    const int nb = row < a.N ? static_cast<int>(end - e < kEB ? end - e : kEB) : 0;
    int64_t j[kEB];
    int64_t eid[kEB];
    int64_t node[kEB];
#pragma unroll
    for (int eb = 0; eb < kEB; ++eb) {
      eid[eb] = e + eb;
      j[eb] = eb < nb ? a.src[e + eb] : 0;
      node[eb] = row;
    }
    edge_hidden<true>(lane, nb, H, s_base, a.p_src, j, static_cast<const scalar_t*>(nullptr), none, a.edge_term,
                      eid, s_h, s_d1);
    __syncwarp();
    edge_backward(lane, nb, a, w2, node, eid, s_h, s_d1, s_gz2, s_acc, grad_edge_term);
    e += nb;
    if (nb > 0 && e == end) {  // row finished: write it once, from the lanes that accumulated it
      for (int k = lane; k < H; k += kWarpSize) grad_p_dst[row * H + k] = static_cast<scalar_t>(s_acc[k]);
      row = seek(row + stride);
    }
    __syncthreads();  // every warp's s_h / s_gz2 for this step are complete
    accumulate_weight_grads(L, warps, W, part);
  }
}

// Backward pass over the transposed CSR (warp per source row j): grad_p_src[j] = sum of gz1 over the edges out
// of j, recomputing each edge's MLP. rev_dst gives the destination i, rev_perm the CSR position e.
template <typename scalar_t, bool SHARED>
__global__ void gn_backward_src_kernel(const GnArgs<scalar_t> a, scalar_t* __restrict__ grad_p_src) {
  using acc_t = at::opmath_type<scalar_t>;
  extern __shared__ __align__(32) unsigned char gn_smem[];
  acc_t* smem = reinterpret_cast<acc_t*>(gn_smem);
  const GnSmem L{a.H, a.O, true, SHARED};
  const W2View<scalar_t, SHARED> w2 = stage_w2<scalar_t, SHARED>(a, smem);
  const int lane = threadIdx.x & (kWarpSize - 1);
  const int warp = threadIdx.x / kWarpSize;
  const int W = blockDim.x / kWarpSize;
  acc_t* ws = smem + L.w2_elems() + warp * L.warp_elems();
  acc_t* s_h = ws;
  acc_t* s_d1 = ws + L.d1_off();
  acc_t* s_gz2 = ws + L.gz2_off();
  acc_t* s_base = ws + L.base_off();
  acc_t* s_acc = ws + L.acc_off();
  const int H = a.H;
  for (int64_t src = int64_t(blockIdx.x) * W + warp; src < a.N; src += int64_t(gridDim.x) * W) {
    const int64_t start = a.rev_indptr[src];
    const int64_t end = a.rev_indptr[src + 1];
    for (int k = lane; k < H; k += kWarpSize) {
      s_base[k] = static_cast<acc_t>(a.p_src[src * H + k]);
      s_acc[k] = acc_t(0);
    }
    for (int64_t p = start; p < end; p += kEB) {
      const int nb = static_cast<int>(end - p < kEB ? end - p : kEB);
      int64_t node[kEB];
      int64_t eid[kEB];
      int64_t gidx[kEB];
#pragma unroll
      for (int eb = 0; eb < kEB; ++eb) {
        node[eb] = eb < nb ? a.rev_dst[p + eb] : 0;
        eid[eb] = eb < nb ? a.rev_perm[p + eb] : 0;
        gidx[eb] = eb < nb && a.batch != nullptr ? a.batch[node[eb]] : 0;
      }
      edge_hidden<true>(lane, nb, H, s_base, a.p_dst, node, a.graph_term, gidx, a.edge_term, eid, s_h, s_d1);
      __syncwarp();
      edge_backward(lane, nb, a, w2, node, eid, s_h, s_d1, s_gz2, s_acc, static_cast<scalar_t*>(nullptr));
    }
    for (int k = lane; k < H; k += kWarpSize) grad_p_src[src * H + k] = static_cast<scalar_t>(s_acc[k]);
  }
}

// grad_w2 / grad_b2 = sum over blocks of the partials, in block order (deterministic).
template <typename scalar_t, typename acc_t>
__global__ void gn_weight_grad_reduce_kernel(const acc_t* __restrict__ partials, int64_t blocks, int64_t entries,
                                             int64_t OH, scalar_t* __restrict__ grad_w2,
                                             scalar_t* __restrict__ grad_b2) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= entries) return;
  acc_t sum = acc_t(0);
  for (int64_t b = 0; b < blocks; ++b) sum += partials[b * entries + idx];  // coalesced along idx
  if (idx < OH) {
    grad_w2[idx] = static_cast<scalar_t>(sum);
  } else {
    grad_b2[idx - OH] = static_cast<scalar_t>(sum);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Host side.

struct GnPlan {
  int warps;
  bool w2_shared;
  size_t smem;
};

int device_attribute(cudaDeviceAttr attr, int device) {
  int value = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&value, attr, device));
  return value;
}

// Stage w2 in shared memory when two blocks of 8 (or 4) warps still fit on an SM; otherwise read w2 from global
// memory, with as many warps per block as the per-warp buffers allow.
GnPlan plan_launch(int H, int O, bool backward, size_t acc_size, int device) {
  const size_t optin = device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  const size_t per_sm = device_attribute(cudaDevAttrMaxSharedMemoryPerMultiprocessor, device);
  for (int warps : {kMaxWarps, kMaxWarps / 2}) {
    const size_t bytes = GnSmem{H, O, backward, true}.elems(warps) * acc_size;
    if (bytes <= optin && 2 * bytes <= per_sm) return {warps, true, bytes};
  }
  for (int warps : {kMaxWarps, kMaxWarps / 2, 2, 1}) {
    const size_t bytes = GnSmem{H, O, backward, false}.elems(warps) * acc_size;
    if (bytes <= optin) return {warps, false, bytes};
  }
  TORCH_CHECK(false, "gn_edge_aggregate (CUDA): H = ", H, " and O = ", O, " need ",
              GnSmem{H, O, backward, false}.elems(1) * acc_size, " bytes of shared memory per warp; the device allows ",
              optin, " per block");
}

// Blocks for a grid-stride kernel: enough to cover `rows` with one warp per row, at most what is resident at once.
template <typename Kernel>
int64_t plan_grid(Kernel* kernel, const GnPlan& plan, int64_t rows, int device) {
  if (plan.smem > 48 * 1024) {
    C10_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(plan.smem)));
  }
  int per_sm = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, plan.warps * kWarpSize, plan.smem));
  const int64_t resident = int64_t(device_attribute(cudaDevAttrMultiProcessorCount, device)) * std::max(per_sm, 1);
  return std::max<int64_t>(1, std::min(cuda::ceil_div(rows, plan.warps), resident));
}

struct GnDims {
  int64_t N;
  int64_t E;
  int H;
  int O;
};

GnDims check_inputs(const at::Tensor& indptr, const at::Tensor& src, const at::Tensor& rev_indptr,
                    const at::Tensor& rev_dst, const at::Tensor& rev_perm, const at::Tensor& p_src,
                    const at::Tensor& p_dst, const std::optional<at::Tensor>& edge_term,
                    const std::optional<at::Tensor>& graph_term, const std::optional<at::Tensor>& batch,
                    const at::Tensor& w2, const at::Tensor& b2) {
  check_index(indptr, "indptr");
  check_index(src, "src");
  check_index(rev_indptr, "rev_indptr");
  check_index(rev_dst, "rev_dst");
  check_index(rev_perm, "rev_perm");
  TORCH_CHECK(indptr.numel() >= 1, "indptr must have N+1 >= 1 entries");
  const int64_t N = indptr.numel() - 1;
  const int64_t E = src.numel();
  TORCH_CHECK(rev_indptr.numel() == N + 1, "rev_indptr must have N+1 = ", N + 1, " entries; got ", rev_indptr.numel());
  TORCH_CHECK(rev_dst.numel() == E && rev_perm.numel() == E, "rev_dst and rev_perm must have E = ", E, " entries");
  const auto dtype = p_src.scalar_type();
  auto check_feature = [&](const at::Tensor& t, const char* name) {
    check_float(t, name);
    check_same_device(indptr, t, name);
    TORCH_CHECK(t.scalar_type() == dtype, name, " must have p_src's dtype ", dtype, "; got ", t.scalar_type());
  };
  check_feature(p_src, "p_src");
  check_feature(p_dst, "p_dst");
  check_feature(w2, "w2");
  check_feature(b2, "b2");
  TORCH_CHECK(p_src.dim() == 2 && p_src.size(0) == N, "p_src must have shape (N, H) with N = ", N, "; got ",
              p_src.sizes());
  TORCH_CHECK(p_dst.sizes() == p_src.sizes(), "p_dst must have p_src's shape ", p_src.sizes(), "; got ",
              p_dst.sizes());
  const int64_t H = p_src.size(1);
  TORCH_CHECK(w2.dim() == 2 && w2.size(1) == H, "w2 must have shape (O, H) with H = ", H, "; got ", w2.sizes());
  const int64_t O = w2.size(0);
  TORCH_CHECK(b2.dim() == 1 && b2.size(0) == O, "b2 must have shape (O,) with O = ", O, "; got ", b2.sizes());
  TORCH_CHECK(H <= INT32_MAX && O <= INT32_MAX && H * O <= INT32_MAX, "H and O are too large");
  if (edge_term.has_value()) {
    check_feature(*edge_term, "edge_term");
    TORCH_CHECK(edge_term->dim() == 2 && edge_term->size(0) == E && edge_term->size(1) == H,
                "edge_term must have shape (E, H) = (", E, ", ", H, "); got ", edge_term->sizes());
  }
  TORCH_CHECK(graph_term.has_value() == batch.has_value(), "graph_term and batch must be given together");
  if (graph_term.has_value()) {
    check_feature(*graph_term, "graph_term");
    TORCH_CHECK(graph_term->dim() == 2 && graph_term->size(1) == H, "graph_term must have shape (B, H) with H = ", H,
                "; got ", graph_term->sizes());
    check_index(*batch, "batch");
    check_same_device(indptr, *batch, "batch");
    TORCH_CHECK(batch->numel() == N, "batch must have N = ", N, " entries; got ", batch->numel());
  }
  return {N, E, static_cast<int>(H), static_cast<int>(O)};
}

template <typename scalar_t>
GnArgs<scalar_t> make_args(const GnDims& d, const at::Tensor& indptr, const at::Tensor& src,
                           const at::Tensor& rev_indptr, const at::Tensor& rev_dst, const at::Tensor& rev_perm,
                           const at::Tensor& p_src, const at::Tensor& p_dst,
                           const std::optional<at::Tensor>& edge_term, const std::optional<at::Tensor>& graph_term,
                           const std::optional<at::Tensor>& batch, const at::Tensor& w2, const at::Tensor& w2t,
                           const at::Tensor& b2) {
  GnArgs<scalar_t> a{};
  a.indptr = indptr.const_data_ptr<int64_t>();
  a.src = src.const_data_ptr<int64_t>();
  a.rev_indptr = rev_indptr.const_data_ptr<int64_t>();
  a.rev_dst = rev_dst.const_data_ptr<int64_t>();
  a.rev_perm = rev_perm.const_data_ptr<int64_t>();
  a.p_src = p_src.const_data_ptr<scalar_t>();
  a.p_dst = p_dst.const_data_ptr<scalar_t>();
  a.edge_term = edge_term.has_value() ? edge_term->const_data_ptr<scalar_t>() : nullptr;
  a.graph_term = graph_term.has_value() ? graph_term->const_data_ptr<scalar_t>() : nullptr;
  a.batch = batch.has_value() ? batch->const_data_ptr<int64_t>() : nullptr;
  a.w2 = w2.const_data_ptr<scalar_t>();
  a.w2t = w2t.defined() ? w2t.const_data_ptr<scalar_t>() : nullptr;
  a.b2 = b2.const_data_ptr<scalar_t>();
  a.grad_node = nullptr;
  a.grad_edge = nullptr;
  a.N = d.N;
  a.H = d.H;
  a.O = d.O;
  return a;
}

// With w_edge the edge term is the projection of (E, F) edge features; here it is formed by one GEMM (the CPU
// kernels form it per tile instead).
std::optional<at::Tensor> projected_edge_term(const std::optional<at::Tensor>& edge_features,
                                              const std::optional<at::Tensor>& w_edge) {
  TORCH_CHECK(edge_features.has_value() || !w_edge.has_value(), "w_edge needs edge_term (the edge features)");
  return w_edge.has_value() ? std::optional<at::Tensor>(at::mm(*edge_features, w_edge->t())) : edge_features;
}

std::tuple<at::Tensor, at::Tensor> gn_edge_aggregate_cuda(
    const at::Tensor& indptr, const at::Tensor& src, const at::Tensor& rev_indptr, const at::Tensor& rev_dst,
    const at::Tensor& rev_perm, const at::Tensor& p_src, const at::Tensor& p_dst,
    const std::optional<at::Tensor>& edge_features, const std::optional<at::Tensor>& w_edge,
    const std::optional<at::Tensor>& graph_term, const std::optional<at::Tensor>& batch, const at::Tensor& w2,
    const at::Tensor& b2, bool return_edges) {
  c10::cuda::CUDAGuard guard(p_src.device());
  const std::optional<at::Tensor> edge_term = projected_edge_term(edge_features, w_edge);
  const GnDims d =
      check_inputs(indptr, src, rev_indptr, rev_dst, rev_perm, p_src, p_dst, edge_term, graph_term, batch, w2, b2);
  at::Tensor node_out = at::empty({d.N, d.O}, p_src.options());
  at::Tensor edge_out = at::empty({return_edges ? d.E : 0, d.O}, p_src.options());
  if (d.N == 0 || d.O == 0) return {node_out, edge_out};  // nothing to write

  const int device = p_src.get_device();
  AT_DISPATCH_FLOATING_TYPES(p_src.scalar_type(), "gn_edge_aggregate_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const GnPlan plan = plan_launch(d.H, d.O, /*backward=*/false, sizeof(acc_t), device);
    const at::Tensor w2t = plan.w2_shared ? at::Tensor() : w2.t().contiguous();
    const GnArgs<scalar_t> a = make_args<scalar_t>(d, indptr, src, rev_indptr, rev_dst, rev_perm, p_src, p_dst,
                                                   edge_term, graph_term, batch, w2, w2t, b2);
    auto* kernel = plan.w2_shared ? gn_forward_kernel<scalar_t, true> : gn_forward_kernel<scalar_t, false>;
    const int64_t grid = plan_grid(kernel, plan, d.N, device);
    kernel<<<static_cast<unsigned>(grid), plan.warps * kWarpSize, plan.smem, c10::cuda::getCurrentCUDAStream()>>>(
        a, node_out.mutable_data_ptr<scalar_t>(), return_edges ? edge_out.mutable_data_ptr<scalar_t>() : nullptr);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {node_out, edge_out};
}

// The kernels' gradients, with the per-edge term's gradient (E, H) as it is; edge_term is the term itself.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> gn_backward_of_term(
    const at::Tensor& indptr, const at::Tensor& src, const at::Tensor& rev_indptr, const at::Tensor& rev_dst,
    const at::Tensor& rev_perm, const at::Tensor& p_src, const at::Tensor& p_dst,
    const std::optional<at::Tensor>& edge_term, const std::optional<at::Tensor>& graph_term,
    const std::optional<at::Tensor>& batch, const at::Tensor& w2, const at::Tensor& b2, const at::Tensor& grad_node,
    const std::optional<at::Tensor>& grad_edge, bool need_edge_grad) {
  const GnDims d =
      check_inputs(indptr, src, rev_indptr, rev_dst, rev_perm, p_src, p_dst, edge_term, graph_term, batch, w2, b2);
  check_float(grad_node, "grad_node");
  check_same_device(indptr, grad_node, "grad_node");
  TORCH_CHECK(grad_node.scalar_type() == p_src.scalar_type(), "grad_node must have p_src's dtype");
  TORCH_CHECK(grad_node.dim() == 2 && grad_node.size(0) == d.N && grad_node.size(1) == d.O,
              "grad_node must have shape (N, O) = (", d.N, ", ", d.O, "); got ", grad_node.sizes());
  if (grad_edge.has_value()) {
    check_float(*grad_edge, "grad_edge");
    check_same_device(indptr, *grad_edge, "grad_edge");
    TORCH_CHECK(grad_edge->scalar_type() == p_src.scalar_type(), "grad_edge must have p_src's dtype");
    TORCH_CHECK(grad_edge->dim() == 2 && grad_edge->size(0) == d.E && grad_edge->size(1) == d.O,
                "grad_edge must have shape (E, O) = (", d.E, ", ", d.O, "); got ", grad_edge->sizes());
  }
  c10::cuda::CUDAGuard guard(p_src.device());
  const auto opts = p_src.options();
  const int64_t edge_rows = need_edge_grad ? d.E : 0;
  if (d.N == 0 || d.E == 0 || d.O == 0) {  // no edge carries a gradient: everything is zero, nothing to launch
    return {at::zeros({d.N, d.H}, opts), at::zeros({d.N, d.H}, opts), at::zeros({edge_rows, d.H}, opts),
            at::zeros({d.O, d.H}, opts), at::zeros({d.O}, opts)};
  }
  at::Tensor grad_p_src = at::empty({d.N, d.H}, opts);
  at::Tensor grad_p_dst = at::empty({d.N, d.H}, opts);
  at::Tensor grad_edge_term = at::empty({edge_rows, d.H}, opts);
  at::Tensor grad_w2 = at::empty({d.O, d.H}, opts);
  at::Tensor grad_b2 = at::empty({d.O}, opts);

  const int device = p_src.get_device();
  AT_DISPATCH_FLOATING_TYPES(p_src.scalar_type(), "gn_edge_aggregate_backward_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto stream = c10::cuda::getCurrentCUDAStream();
    const GnPlan plan = plan_launch(d.H, d.O, /*backward=*/true, sizeof(acc_t), device);
    const at::Tensor w2t = plan.w2_shared ? at::Tensor() : w2.t().contiguous();
    GnArgs<scalar_t> a = make_args<scalar_t>(d, indptr, src, rev_indptr, rev_dst, rev_perm, p_src, p_dst, edge_term,
                                             graph_term, batch, w2, w2t, b2);
    a.grad_node = grad_node.const_data_ptr<scalar_t>();
    a.grad_edge = grad_edge.has_value() ? grad_edge->const_data_ptr<scalar_t>() : nullptr;
    const unsigned threads = plan.warps * kWarpSize;

    // Pass 1, CSR rows: grad_p_dst, grad_edge_term, per-block partials of grad_w2 / grad_b2.
    auto* dst_kernel =
        plan.w2_shared ? gn_backward_dst_kernel<scalar_t, true> : gn_backward_dst_kernel<scalar_t, false>;
    const int64_t blocks = plan_grid(dst_kernel, plan, d.N, device);
    const int64_t entries = int64_t(d.O) * d.H + d.O;
    at::Tensor partials = at::zeros({blocks, entries}, opts.dtype(c10::CppTypeToScalarType<acc_t>::value));
    dst_kernel<<<static_cast<unsigned>(blocks), threads, plan.smem, stream>>>(
        a, grad_p_dst.mutable_data_ptr<scalar_t>(),
        need_edge_grad ? grad_edge_term.mutable_data_ptr<scalar_t>() : nullptr, partials.mutable_data_ptr<acc_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();

    // grad_w2 / grad_b2: fixed-order sum of the partials.
    constexpr int kReduceThreads = 256;
    gn_weight_grad_reduce_kernel<scalar_t, acc_t>
        <<<static_cast<unsigned>(cuda::ceil_div(entries, kReduceThreads)), kReduceThreads, 0, stream>>>(
            partials.const_data_ptr<acc_t>(), blocks, entries, int64_t(d.O) * d.H,
            grad_w2.mutable_data_ptr<scalar_t>(), grad_b2.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();

    // Pass 2, transposed CSR rows: grad_p_src (nothing to write when H = 0).
    if (d.H > 0) {
      auto* src_kernel =
          plan.w2_shared ? gn_backward_src_kernel<scalar_t, true> : gn_backward_src_kernel<scalar_t, false>;
      const int64_t src_blocks = plan_grid(src_kernel, plan, d.N, device);
      src_kernel<<<static_cast<unsigned>(src_blocks), threads, plan.smem, stream>>>(
          a, grad_p_src.mutable_data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return {grad_p_src, grad_p_dst, grad_edge_term, grad_w2, grad_b2};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> gn_edge_aggregate_backward_cuda(
    const at::Tensor& indptr, const at::Tensor& src, const at::Tensor& rev_indptr, const at::Tensor& rev_dst,
    const at::Tensor& rev_perm, const at::Tensor& p_src, const at::Tensor& p_dst,
    const std::optional<at::Tensor>& edge_features, const std::optional<at::Tensor>& w_edge,
    const std::optional<at::Tensor>& graph_term, const std::optional<at::Tensor>& batch, const at::Tensor& w2,
    const at::Tensor& b2, const at::Tensor& grad_node, const std::optional<at::Tensor>& grad_edge,
    bool need_edge_grad) {
  c10::cuda::CUDAGuard guard(p_src.device());
  auto [grad_p_src, grad_p_dst, grad_term, grad_w2, grad_b2] =
      gn_backward_of_term(indptr, src, rev_indptr, rev_dst, rev_perm, p_src, p_dst,
                          projected_edge_term(edge_features, w_edge), graph_term, batch, w2, b2, grad_node, grad_edge,
                          need_edge_grad);
  if (!w_edge.has_value()) {
    return {grad_p_src, grad_p_dst, grad_term, at::zeros({p_src.size(1), 0}, p_src.options()), grad_w2, grad_b2};
  }
  // Through the projection term = features @ w_edgeᵀ: two more GEMMs.
  const int64_t F = w_edge->size(1);
  at::Tensor grad_features = need_edge_grad ? at::mm(grad_term, *w_edge) : at::empty({0, F}, p_src.options());
  at::Tensor grad_w_edge =
      need_edge_grad ? at::mm(grad_term.t(), *edge_features) : at::zeros({p_src.size(1), F}, p_src.options());
  return {grad_p_src, grad_p_dst, grad_features, grad_w_edge, grad_w2, grad_b2};
}

}  // namespace
}  // namespace fastsim

TORCH_LIBRARY_IMPL(fastsim, CUDA, m) {
  m.impl("gn_edge_aggregate", &fastsim::gn_edge_aggregate_cuda);
  m.impl("gn_edge_aggregate_backward", &fastsim::gn_edge_aggregate_backward_cuda);
}
