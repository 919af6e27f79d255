// A whole NGS rollout on the CPU in one call (fastsim/models/ngs_rollout.py builds the arguments; docs/ops.md):
// every step's state encoder, graph-network layers and decoder run here, with nothing dispatched per step.
//
// At the sizes NGS is used at (hundreds of nodes, widths 8–350) a step written as tensor ops is ≈ 50 ATen calls
// whose fixed costs (dispatch, allocation, a BLAS call for a 123 × 16 × 8 product) exceed their arithmetic:
// that, not the arithmetic, made a heat rollout slower than the numerical solver it replaces. Here every dense
// product is a register-blocked tile product on padded rows (common/tile_gemm.h), the edge MLP and the sum run as
// in the fused edge op (gn_edge_cpu.h), and concatenations are never formed: a Linear on [a, b] is the sum of its
// two column blocks' products, and the per-graph global terms enter as per-node biases.
//
// Per step s, from x = state(t_s) (N, D):
//   node = GELU(GELU(x @ enc_w1t + enc_b1) @ enc_w2t + enc_b2)                                    (N, n)
//   for each layer k, with per-graph terms T_k = (graph term | node bias | global bias): the given
//   layer0_terms[s] for k = 0, else glob @ terms_wt + terms_b:
//     p_src = node @ src_wt,  p_dst = node @ dst_wt + graph_term[batch]
//     aggregated[i] = Σ_{e into i} m[e],  m[e] = GELU(GELU(p_src[j] + p_dst[i] + f[e] w_edgeᵀ) w2ᵀ + b2),
//       f = edge_features for k = 0, else the previous layer's m
//     node = GELU(GELU([node, aggregated] @ node_w1t + node_bias[batch]) @ node_w2t + node_b2)
//     (not in the last layer) glob = GELU(GELU([min node, min aggregated] @ glob_w1t + glob_bias) @ glob_w2t
//       + glob_b2), minima per graph over its nodes (0 for a graph without nodes, as segment_reduce gives)
//   state(t_{s+1}) = x + GELU(node @ dec_w1t + dec_b1) @ dec_w2t + dec_b2
//
// weights, in order (every `*t` is a Linear's weight transposed, (in, out) contiguous):
//   enc_w1t, enc_b1, enc_w2t, enc_b2,
//   per layer: src_wt (n, H), dst_wt (n, H), w_edge (H, e), w2 (e, H), b2 (e), node_w1t (n + e, Hn),
//     node_w2t (Hn, n), node_b2 (n), terms_wt (g, W), terms_b (W) and, except in the last layer, glob_w1t
//     (n + e, Hg), glob_w2t (Hg, g), glob_b2 (g), with W = H + Hn (+ Hg),
//   dec_w1t, dec_b1, dec_w2t, dec_b2.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <vector>

#include "common/checks.h"
#include "message_passing/gn_edge_cpu.h"

namespace fastsim {
namespace {

// Node rows per tile of the node-level stages (and the smallest parallel chunk).
constexpr int64_t kRowTile = 64;

// Per-graph minima over rows [ptr[b], ptr[b+1]) of x (stride ld, n columns) into out (B × n); 0 for no rows.
template <typename scalar_t>
void graph_min(const scalar_t* x, int64_t ld, int64_t n, const int64_t* ptr, int64_t B, scalar_t* out) {
  for (int64_t b = 0; b < B; ++b) {
    scalar_t* o = out + b * n;
    if (ptr[b] == ptr[b + 1]) {
      std::fill(o, o + n, scalar_t(0));
      continue;
    }
    std::fill(o, o + n, std::numeric_limits<scalar_t>::infinity());
    for (int64_t r = ptr[b]; r < ptr[b + 1]; ++r)
      for (int64_t c = 0; c < n; ++c) o[c] = std::min(o[c], x[r * ld + c]);
  }
}

template <typename scalar_t>
struct Layer {
  TileLinear<scalar_t> src, dst;
  EdgeMlp<scalar_t> edge;
  TileLinear<scalar_t> node_a, node_b, node2;  // node update: first Linear's [node | aggregated] blocks, second
  TileLinear<scalar_t> terms;                  // global blocks of the three first Linears (per-graph terms)
  std::optional<TileLinear<scalar_t>> glob_a, glob_b, glob2;  // global update; none in the last layer

  // w: this layer's weights in the documented order; n: node width.
  Layer(const at::Tensor* w, int64_t n, bool last)
      : src(w[0], nullptr),
        dst(w[1], nullptr),
        edge(&w[2], w[3], w[4]),
        node_a(w[5].narrow(0, 0, n), nullptr),
        node_b(w[5].narrow(0, n, w[5].size(0) - n), nullptr),
        node2(w[6], &w[7]),
        terms(w[8], &w[9]) {
    if (!last) {
      glob_a.emplace(w[10].narrow(0, 0, n), nullptr);
      glob_b.emplace(w[10].narrow(0, n, w[10].size(0) - n), nullptr);
      glob2.emplace(w[11], &w[12]);
    }
  }
};

constexpr int64_t kLayerWeights = 13, kLastLayerWeights = 10, kCodecWeights = 8;

void check_rollout_args(const at::Tensor& state, const at::Tensor& indptr, const at::Tensor& src,
                        const at::Tensor& ptr, const at::Tensor& edge_features, const at::Tensor& layer0_terms,
                        at::TensorList weights) {
  check_float(state, "state");
  for (auto* t : {&indptr, &src, &ptr}) check_index(*t, "graph index");
  const int64_t N = indptr.numel() - 1;
  TORCH_CHECK(state.dim() == 2 && state.size(0) == N, "state must be (N, D)");
  TORCH_CHECK(ptr.numel() >= 2, "ptr must list at least one graph");
  check_float(layer0_terms, "layer0_terms");
  TORCH_CHECK(layer0_terms.dim() == 3 && layer0_terms.size(1) == ptr.numel() - 1, "layer0_terms must be (S, B, W)");
  const int64_t count = int64_t(weights.size());
  TORCH_CHECK(count >= kCodecWeights + kLastLayerWeights &&
                  (count - kCodecWeights - kLastLayerWeights) % kLayerWeights == 0,
              "weights must hold the encoder, the layers and the decoder in the documented order; got ", count);
  for (const auto& w : weights) {
    check_float(w, "weights");
    TORCH_CHECK(w.scalar_type() == state.scalar_type(), "weights must have the dtype of state");
  }
  check_float(edge_features, "edge_features");
  TORCH_CHECK(edge_features.dim() == 2 && edge_features.size(0) == src.numel() &&
                  edge_features.scalar_type() == state.scalar_type(),
              "edge_features must be (E, e) in the dtype of state");
}

at::Tensor ngs_rollout_cpu(const at::Tensor& state, const at::Tensor& indptr, const at::Tensor& src,
                           const at::Tensor& ptr, const at::Tensor& edge_features, const at::Tensor& layer0_terms,
                           at::TensorList weights) {
  check_rollout_args(state, indptr, src, ptr, edge_features, layer0_terms, weights);
  const int64_t N = indptr.numel() - 1, E = src.numel(), B = ptr.numel() - 1, D = state.size(1);
  const int64_t S = layer0_terms.size(0), W0 = layer0_terms.size(2);
  const int64_t depth = (int64_t(weights.size()) - kCodecWeights - kLastLayerWeights) / kLayerWeights + 1;
  at::Tensor out = at::empty({S, N, D}, state.options());
  if (S == 0 || N == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(state.scalar_type(), "ngs_rollout_cpu", [&] {
    const at::Tensor* w = weights.data();
    const TileLinear<scalar_t> enc1(w[0], &w[1]), enc2(w[2], &w[3]);
    std::vector<Layer<scalar_t>> layers;
    const int64_t width = enc2.out;  // n
    for (int64_t k = 0; k < depth; ++k)
      layers.emplace_back(w + 4 + k * kLayerWeights, width, k == depth - 1);
    const at::Tensor* d = w + weights.size() - 4;
    const TileLinear<scalar_t> dec1(d[0], &d[1]), dec2(d[2], &d[3]);
    const Layer<scalar_t>& first = layers.front();
    TORCH_CHECK(first.terms.out == W0, "layer0_terms must have the width of layer 0's per-graph terms");
    TORCH_CHECK(dec2.out == D && enc1.in == D, "the encoder and decoder must act on the state's width");
    for (const auto& layer : layers) {
      TORCH_CHECK(layer.src.in == width && layer.node2.out == width && layer.node_a.in == width,
                  "every layer must keep the node width of the encoder");
      TORCH_CHECK(layer.node_b.in == layer.edge.O && layer.edge.H == layer.src.out && layer.dst.out == layer.src.out,
                  "edge widths do not match");
      const int64_t glob_hidden = layer.glob_a ? layer.glob_a->out : 0;
      TORCH_CHECK(layer.terms.out == layer.src.out + layer.node_a.out + glob_hidden,
                  "terms_wt must be (g, H + Hn + Hg)");
      TORCH_CHECK(!layer.glob_a || (layer.glob_a->in == width && layer.glob_b->in == layer.edge.O),
                  "the global update must act on [min node, min aggregated]");
    }
    for (int64_t k = 0; k + 1 < depth; ++k)
      TORCH_CHECK(layers[k].glob2->out == layers[k + 1].terms.in, "the global width must match the next layer's");
    TORCH_CHECK(dec1.in == width, "the decoder must act on the node width");

    const int64_t np = padded<scalar_t>(width), e = first.edge.O, H = first.src.out, Hp = padded<scalar_t>(H);
    int64_t hidden = std::max(enc1.outp, dec1.outp);
    for (const auto& layer : layers) hidden = std::max(hidden, layer.node_a.outp);
    std::vector<scalar_t> node(N * np, 0), p_src(N * Hp), p_dst(N * Hp), aggregated(N * e);
    std::vector<scalar_t> features[2] = {std::vector<scalar_t>(E * e), std::vector<scalar_t>(E * e)};
    std::vector<scalar_t> node_min(B * width), edge_min(B * e), terms, hg, glob;
    std::vector<int64_t> batch(N);
    const int64_t* ip = indptr.data_ptr<int64_t>();
    const int64_t* col = src.data_ptr<int64_t>();
    const int64_t* gp = ptr.data_ptr<int64_t>();
    for (int64_t b = 0; b < B; ++b) std::fill(batch.begin() + gp[b], batch.begin() + gp[b + 1], b);
    const scalar_t* edge0 = edge_features.data_ptr<scalar_t>();
    // f(i0, m, h, v) for tiles of m ≤ kRowTile node rows from i0, chunks of tiles in parallel, with two per-chunk
    // scratch tiles: h (kRowTile × hidden) and v (kRowTile × max(np, decoder output)). The node-level stages
    // are row-local, so no (N × hidden) tensor is needed.
    const int64_t wide = std::max(np, dec2.outp);
    const auto tiles = [&](auto&& f) {
      at::parallel_for(0, N, kRowTile, [&](int64_t r0, int64_t r1) {
        std::vector<scalar_t> h(kRowTile * hidden), v(kRowTile * wide);
        for (int64_t i0 = r0; i0 < r1; i0 += kRowTile) f(i0, std::min(kRowTile, r1 - i0), h.data(), v.data());
      });
    };

    for (int64_t s = 0; s < S; ++s) {
      const scalar_t* x = (s == 0 ? state : out[s - 1]).data_ptr<scalar_t>();
      tiles([&](int64_t i0, int64_t m, scalar_t* h, scalar_t*) {  // node = state encoder(x)
        enc1.apply(m, x + i0 * D, D, h, true);
        enc2.apply(m, h, enc1.outp, node.data() + i0 * np, true);
      });
      const scalar_t* terms_at = layer0_terms.data_ptr<scalar_t>() + s * B * W0;  // (B, ld_terms)
      int64_t ld_terms = W0;
      for (int64_t k = 0; k < depth; ++k) {
        const Layer<scalar_t>& layer = layers[k];
        const bool last = k == depth - 1;
        const int64_t Hn = layer.node_a.out, Hnp = layer.node_a.outp;
        const scalar_t* in_features = k == 0 ? edge0 : features[(k - 1) % 2].data();
        scalar_t* out_features = last ? nullptr : features[k % 2].data();
        tiles([&](int64_t i0, int64_t m, scalar_t*, scalar_t*) {  // p_src, and p_dst with the graph term
          std::fill(p_src.begin() + i0 * Hp, p_src.begin() + (i0 + m) * Hp, scalar_t(0));
          layer.src.accumulate(m, node.data() + i0 * np, np, p_src.data() + i0 * Hp, Hp);
          fill_rows_from(p_dst.data() + i0 * Hp, m, Hp, H,
                         [&](int64_t k) { return terms_at + batch[i0 + k] * ld_terms; });
          layer.dst.accumulate(m, node.data() + i0 * np, np, p_dst.data() + i0 * Hp, Hp);
        });
        std::fill(aggregated.begin(), aggregated.end(), scalar_t(0));
        if (E) {
          const EdgeInputs<scalar_t> in{p_src.data(), p_dst.data(), nullptr, nullptr, nullptr, H, Hp};
          layer.edge.run(ip, col, N, in, in_features, aggregated.data(), out_features);
        }
        // Node update, in place: a row's new features depend on its own old ones and its aggregate only.
        tiles([&](int64_t i0, int64_t m, scalar_t* h, scalar_t* v) {
          fill_rows_from(h, m, Hnp, Hn, [&](int64_t k) { return terms_at + batch[i0 + k] * ld_terms + H; });
          layer.node_a.accumulate(m, node.data() + i0 * np, np, h, Hnp);
          layer.node_b.accumulate(m, aggregated.data() + i0 * e, e, h, Hnp);
          gelu_inplace(h, m * Hnp);
          layer.node2.apply(m, h, Hnp, v, true);
          std::copy(v, v + m * np, node.data() + i0 * np);
        });
        if (last) break;
        graph_min(node.data(), np, width, gp, B, node_min.data());
        graph_min(aggregated.data(), e, e, gp, B, edge_min.data());
        const auto& glob_a = *layer.glob_a;
        const auto& glob_b = *layer.glob_b;
        const auto& glob2 = *layer.glob2;
        hg.resize(B * glob_a.outp);
        fill_rows_from(hg.data(), B, glob_a.outp, glob_a.out,
                       [&](int64_t b) { return terms_at + b * ld_terms + H + Hn; });
        glob_a.accumulate(B, node_min.data(), width, hg.data(), glob_a.outp);
        glob_b.accumulate(B, edge_min.data(), e, hg.data(), glob_a.outp);
        gelu_inplace(hg.data(), B * glob_a.outp);
        glob.resize(B * glob2.outp);
        glob2.apply(B, hg.data(), glob_a.outp, glob.data(), true);
        const TileLinear<scalar_t>& next_terms = layers[k + 1].terms;  // the next layer's per-graph terms
        terms.resize(B * next_terms.outp);
        next_terms.apply(B, glob.data(), glob2.outp, terms.data(), false);
        terms_at = terms.data();
        ld_terms = next_terms.outp;
      }
      scalar_t* y = out[s].data_ptr<scalar_t>();
      tiles([&](int64_t i0, int64_t m, scalar_t* h, scalar_t* v) {  // decoder and the update
        dec1.apply(m, node.data() + i0 * np, np, h, true);
        dec2.apply(m, h, dec1.outp, v, false);
        for (int64_t r = 0; r < m; ++r)
          for (int64_t c = 0; c < D; ++c) y[(i0 + r) * D + c] = x[(i0 + r) * D + c] + v[r * dec2.outp + c];
      });
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastsim, CPU, m) { m.impl("ngs_rollout", &ngs_rollout_cpu); }

// Inference only (rollouts run under torch.inference_mode): not differentiable, its outputs never require grad.
TORCH_LIBRARY_IMPL(fastsim, Autograd, m) { m.impl("ngs_rollout", torch::CppFunction::makeFallthrough()); }

}  // namespace fastsim
