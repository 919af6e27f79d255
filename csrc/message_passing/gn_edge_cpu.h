// The forward tile loop of the fused graph-network edge step on the CPU (see gn_edge_aggregate_cpu.cpp), shared
// by the op and by the fused NGS rollout (ngs_rollout_cpu.cpp).
#pragma once

#include <ATen/core/Tensor.h>

#include <algorithm>
#include <vector>

#include "common/gelu.h"
#include "common/parallel.h"
#include "common/tile_gemm.h"

namespace fastsim {

constexpr int64_t kTile = 128;

template <typename scalar_t>
struct EdgeInputs {
  const scalar_t* p_src;       // rows of stride ld
  const scalar_t* p_dst;       // rows of stride ld
  const scalar_t* edge_term;   // (E, H); may be null
  const scalar_t* graph_term;  // (B, H); may be null (then batch is null too)
  const int64_t* batch;
  int64_t H;
  int64_t ld;

  // z <- p_src[j] + p_dst[i] + edge_term[e] + graph_term[batch[i]]
  void pre_activation(int64_t e, int64_t j, int64_t i, scalar_t* __restrict z) const {
    const scalar_t* __restrict a = p_src + j * ld;
    const scalar_t* __restrict b = p_dst + i * ld;
    if (edge_term && graph_term) {  // the common case in one pass
      const scalar_t* __restrict c = edge_term + e * H;
      const scalar_t* __restrict q = graph_term + batch[i] * H;
      for (int64_t h = 0; h < H; ++h) z[h] = (a[h] + b[h]) + c[h] + q[h];
      return;
    }
    if (edge_term) {  // the fused rollout's first layer
      const scalar_t* __restrict c = edge_term + e * H;
      for (int64_t h = 0; h < H; ++h) z[h] = (a[h] + b[h]) + c[h];
      return;
    }
    for (int64_t h = 0; h < H; ++h) z[h] = a[h] + b[h];
    if (graph_term) {
      const scalar_t* __restrict q = graph_term + batch[i] * H;
      for (int64_t h = 0; h < H; ++h) z[h] += q[h];
    }
  }
};

// The edge MLP's second Linear (and, with edge features, the feature projection w_edge) laid out for tile
// products once: `m[e] = GELU(GELU(pre_activation + features[e] @ w_edge.T) @ w2.T + b2)`.
template <typename scalar_t>
struct EdgeMlp {
  int64_t H, O, F;                  // F = 0: no edge features
  std::vector<scalar_t> w_edge_t;   // (F, Hp)
  std::vector<scalar_t> w2t;        // (H, Op)
  std::vector<scalar_t> bias;       // (1, Op)
  mutable ThreadScratch<scalar_t> hidden_, out_;  // per-thread edge tiles, reused by every `run`

  EdgeMlp(const at::Tensor* w_edge, const at::Tensor& w2, const at::Tensor& b2)
      : H(w2.size(1)),
        O(w2.size(0)),
        F(w_edge ? w_edge->size(1) : 0),
        w_edge_t(w_edge ? padded_weight<scalar_t>(*w_edge, /*transpose=*/true) : std::vector<scalar_t>()),
        w2t(padded_weight<scalar_t>(w2, /*transpose=*/true)),
        bias(padded_weight<scalar_t>(b2.view({1, O}), /*transpose=*/false)) {}

  // node[i] += Σ_{e into i} m[e] (node (N, O), zeroed by the caller) and, when `edges` is given, edges[e] = m[e]
  // ((E, O)); `features` (E, F) with F > 0. A chunk owns rows [row_begin, row_end) and hence their edges and
  // output rows: no races.
  void run(const int64_t* ip, const int64_t* col, int64_t N, const EdgeInputs<scalar_t>& in,
           const scalar_t* features, scalar_t* node, scalar_t* edges) const {
    const int64_t Hp = padded<scalar_t>(H), Op = padded<scalar_t>(O);
    parallel_rows(ip, N, H * O, [&](int64_t row_begin, int64_t row_end) {
      // Reused tiles: every column read into a result is written first (the padding columns of z, zero when made,
      // only ever receive zero-weight products and their GELU, and the second Linear reads H columns).
      scalar_t* z = hidden_.get(kTile * Hp);
      scalar_t* y = out_.get(kTile * Op);
      int64_t dst_of[kTile];
      int64_t i = row_begin;
      for (int64_t tile = ip[row_begin]; tile < ip[row_end]; tile += kTile) {
        const int64_t t = std::min(kTile, ip[row_end] - tile);
        for (int64_t k = 0; k < t; ++k) {
          const int64_t e = tile + k;
          while (ip[i + 1] <= e) ++i;
          dst_of[k] = i;
          in.pre_activation(e, col[e], i, z + k * Hp);
        }
        if (F) tile_gemm(t, Hp, F, features + tile * F, F, 1, w_edge_t.data(), Hp, z, Hp);
        gelu_inplace(z, t * Hp);
        fill_rows(y, t, Op, bias.data(), Op);
        tile_gemm(t, Op, H, z, Hp, 1, w2t.data(), Op, y, Op);
        gelu_inplace(y, t * Op);
        for (int64_t k = 0; k < t; ++k) {
          scalar_t* __restrict acc = node + dst_of[k] * O;
          const scalar_t* __restrict m = y + k * Op;
          for (int64_t o = 0; o < O; ++o) acc[o] += m[o];
          if (edges) copy_row(m, O, edges + (tile + k) * O);
        }
      }
    });
  }
};

}  // namespace fastsim
