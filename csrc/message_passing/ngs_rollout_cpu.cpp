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
// Once per rollout, from the raw inputs (the encoders' products cost next to nothing; as Python calls they were
// a tenth of a small rollout's time):
//   g_0[s] = [GELU(GELU(Δt_s W_dt1ᵀ + b) W_dt2ᵀ + b), glob_embedding]                       layer 0's globals (B, g)
//   f = GELU(GELU(edge_coefficients W_e1ᵀ + b) W_e2ᵀ + b)                                    edge features (E, e)
// Per step s, from x = state(t_s) (N, D):
//   node = GELU(GELU(x W_enc1ᵀ + b) W_enc2ᵀ + b)                                                   (N, n)
//   for each layer k, whose first Linears act on [.., g] and whose global blocks give the per-graph terms
//   T_k = g_k @ [edge | node | glob blocks]ᵀ + [their biases] = (graph term | node bias | global bias):
//     p_src = node @ W_srcᵀ,  p_dst = node @ W_dstᵀ + graph_term[batch]
//     aggregated[i] = Σ_{e into i} m[e],  m[e] = GELU(GELU(p_src[j] + p_dst[i] + f[e] W_edgeᵀ) W2ᵀ + b2),
//       f = the encoded edge features for k = 0, else the previous layer's m
//     node = GELU(GELU([node, aggregated] W_nodeᵀ + node_bias[batch]) W_node2ᵀ + b)
//     (not in the last layer) g_{k+1} = GELU(GELU([min node, min aggregated] W_globᵀ + glob_bias) W_glob2ᵀ + b),
//       minima per graph over its nodes (0 for a graph without nodes, as segment_reduce gives)
//   state(t_{s+1}) = x + GELU(node W_dec1ᵀ + b) W_dec2ᵀ + b
//
// weights: the model's Linear layers as nn.Linear holds them (weight (out, in), bias (out)), in order:
//   state encoder (W, b, W, b), Δt encoder (W, b, W, b), edge encoder (W, b, W, b); per layer: edge MLP first
//   (H, 2n + e + g) and second (e', H), node update first (Hn, n + e' + g) and second (n, Hn) and, except in the
//   last layer (whose global update nobody reads), global update first (Hg, n + e' + g) and second (g', Hg);
//   decoder (W, b, W, b). Column blocks are read in place: no split or transposed copy is made by the caller.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "common/checks.h"
#include "message_passing/gn_edge_cpu.h"

namespace fastsim {
namespace {

// Node rows per tile of the node-level stages (and the smallest parallel chunk).
constexpr int64_t kRowTile = 64;

// Rows of n values, stored with stride ld >= n, moved down in place to stride n.
template <typename scalar_t>
void compact_rows(std::vector<scalar_t>& rows, int64_t count, int64_t ld, int64_t n) {
  for (int64_t r = 1; ld != n && r < count; ++r)
    std::copy(rows.begin() + r * ld, rows.begin() + r * ld + n, rows.begin() + r * n);
}

// An encoder MLP (Linear, GELU, Linear, GELU; weights w[0..3]) on `rows` rows of x (stride ld): (rows, out)
// with stride out.
template <typename scalar_t>
std::vector<scalar_t> encode(const at::Tensor* w, const scalar_t* x, int64_t ld, int64_t rows) {
  const TileLinear<scalar_t> first(w[0].t(), &w[1]), second(w[2].t(), &w[3]);
  std::vector<scalar_t> hidden(rows * first.outp), out(rows * second.outp);
  first.apply(rows, x, ld, hidden.data(), true);
  second.apply(rows, hidden.data(), first.outp, out.data(), true);
  compact_rows(out, rows, second.outp, second.out);
  return out;
}

// Largest (E, H) first-layer edge term formed once per rollout (see `first_edge_term`): 256 KiB of float.
constexpr int64_t kEdgeTermElements = int64_t(1) << 16;

// Layer 0's edge features are the encoded coefficients, constant along a rollout, so their projection
// `features @ W_edgeᵀ` (E, H) can be formed once instead of in every step: 14 % of a heat step's products. It is,
// up to kEdgeTermElements: single graphs of hundreds of nodes, where per-call costs matter most. Beyond that the
// term would raise the rollout's peak memory above the PyG formulation's (heat at 16 graphs: +0.75 MB on 1.6 MB;
// Rössler at 16 graphs: +10 MB on 14 MB). Empty when not formed.
template <typename scalar_t>
std::vector<scalar_t> first_edge_term(const EdgeMlp<scalar_t>& edge, const scalar_t* features, int64_t E) {
  const int64_t H = edge.H, Hp = padded<scalar_t>(H);
  if (!edge.F || E * Hp > kEdgeTermElements) return {};
  std::vector<scalar_t> term(E * Hp, scalar_t(0));
  tile_gemm(E, Hp, edge.F, features, edge.F, 1, edge.w_edge_t.data(), Hp, term.data(), Hp);
  compact_rows(term, E, Hp, H);  // EdgeInputs' layout
  return term;
}

// Per-graph minima over rows [ptr[b], ptr[b+1]) of x (stride ld, n columns) into out (B × n); 0 for no rows.
// NaN propagates, as in segment_reduce's min (the tensor path): a diverging rollout stays visibly NaN.
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
      for (int64_t c = 0; c < n; ++c) {
        const scalar_t v = x[r * ld + c];
        if (v < o[c] || std::isnan(v)) o[c] = v;  // once NaN, no comparison is true: it stays
      }
  }
}

// Columns [c0, c0 + k) of an nn.Linear weight (out, in) as a TileLinear with k inputs.
template <typename scalar_t>
TileLinear<scalar_t> columns(const at::Tensor& w, int64_t c0, int64_t k, const at::Tensor* bias) {
  return TileLinear<scalar_t>(w.narrow(1, c0, k).t(), bias);
}

template <typename scalar_t>
struct Layer {
  TileLinear<scalar_t> src, dst;
  EdgeMlp<scalar_t> edge;
  TileLinear<scalar_t> node_a, node_b, node2;  // node update: first Linear's [node | aggregated] blocks, second
  TileLinear<scalar_t> terms;                  // global blocks of the first Linears with their biases
  std::optional<TileLinear<scalar_t>> glob_a, glob_b, glob2;  // global update; none in the last layer

  // w: this layer's weights in the documented order (shapes checked by check_layout); n: node width; e: edge
  // input width.
  Layer(const at::Tensor* w, int64_t n, int64_t e, bool last)
      : src(columns<scalar_t>(w[0], 0, n, nullptr)),
        dst(columns<scalar_t>(w[0], n, n, nullptr)),
        edge(edge_mlp(w, n, e)),
        node_a(columns<scalar_t>(w[4], 0, n, nullptr)),
        node_b(columns<scalar_t>(w[4], n, w[2].size(0), nullptr)),
        node2(w[6].t(), &w[7]),
        terms(glob_terms(w, n + w[2].size(0), 2 * n + e, last)) {
    if (!last) {
      glob_a.emplace(columns<scalar_t>(w[8], 0, n, nullptr));
      glob_b.emplace(columns<scalar_t>(w[8], n, w[2].size(0), nullptr));
      glob2.emplace(w[10].t(), &w[11]);
    }
  }

 private:
  // The edge MLP: its first Linear's edge-feature block and its second Linear.
  static EdgeMlp<scalar_t> edge_mlp(const at::Tensor* w, int64_t n, int64_t e) {
    const at::Tensor w_edge = w[0].narrow(1, 2 * n, e);
    return EdgeMlp<scalar_t>(e ? &w_edge : nullptr, w[2], w[3]);
  }

  // The first Linears' global blocks side by side (W, g)ᵀ, with their biases: one product per graph gives
  // the edge MLP's graph term, the node-update bias and the global-update bias. `local` is the width of the node
  // and global updates' local inputs, `edge_local` the edge MLP's.
  static TileLinear<scalar_t> glob_terms(const at::Tensor* w, int64_t local, int64_t edge_local, bool last) {
    const int64_t g = w[0].size(1) - edge_local;
    std::vector<at::Tensor> blocks{w[0].narrow(1, edge_local, g), w[4].narrow(1, local, g)}, biases{w[1], w[5]};
    if (!last) {
      blocks.push_back(w[8].narrow(1, local, g));
      biases.push_back(w[9]);
    }
    const at::Tensor bias = at::cat(biases);
    return TileLinear<scalar_t>(at::cat(blocks).t(), &bias);
  }
};

// Weights of a layer, of the last layer, and of the three encoders with the decoder.
constexpr int64_t kLayerWeights = 12, kLastLayerWeights = 8, kCodecWeights = 16;

// An nn.Linear (w (out, in), b (out)) of the rollout: `in` inputs (and `out` outputs when given).
void check_linear(const at::Tensor* w, int64_t in, int64_t out, const char* what) {
  TORCH_CHECK(w[0].dim() == 2 && w[1].dim() == 1 && w[1].size(0) == w[0].size(0),
              "weights: ", what, " must be an nn.Linear weight (out, in) and bias (out)");
  TORCH_CHECK(w[0].size(1) == in && (out < 0 || w[0].size(0) == out), "weights: ", what, " must be (",
              out < 0 ? std::string("·") : std::to_string(out), ", ", in, "); got (", w[0].size(0), ", ",
              w[0].size(1), ")");
}

// Checks every Linear of the rollout against the widths it meets: the state's D, the node width n of the state
// encoder, the edge coefficients' count and the width of the constant global embedding; raises naming the first
// mismatch.
void check_layout(at::TensorList weights, int64_t D, int64_t edge_coefficients, int64_t glob_width, int64_t depth) {
  const at::Tensor* w = weights.data();
  const char* names[3][2] = {{"the state encoder's first Linear", "the state encoder's second Linear"},
                             {"the Δt encoder's first Linear", "the Δt encoder's second Linear"},
                             {"the edge encoder's first Linear", "the edge encoder's second Linear"}};
  const int64_t inputs[3] = {D, 1, edge_coefficients};
  for (int64_t k = 0; k < 3; ++k) {
    check_linear(w + 4 * k, inputs[k], -1, names[k][0]);
    check_linear(w + 4 * k + 2, w[4 * k].size(0), -1, names[k][1]);
  }
  const int64_t n = w[2].size(0);
  int64_t e = w[10].size(0), g = w[6].size(0) + glob_width;
  for (int64_t k = 0; k < depth; ++k) {
    const at::Tensor* l = w + 12 + k * kLayerWeights;
    check_linear(l, 2 * n + e + g, -1, "an edge MLP's first Linear (on [node, node, edge, globals])");
    check_linear(l + 2, l[0].size(0), -1, "an edge MLP's second Linear");
    e = l[2].size(0);
    check_linear(l + 4, n + e + g, -1, "a node update's first Linear (on [node, aggregated, globals])");
    check_linear(l + 6, l[4].size(0), n, "a node update's second Linear (keeping the node width)");
    if (k + 1 < depth) {
      check_linear(l + 8, n + e + g, -1, "a global update's first Linear (on [min node, min aggregated, globals])");
      check_linear(l + 10, l[8].size(0), -1, "a global update's second Linear");
      g = l[10].size(0);
    }
  }
  const at::Tensor* d = w + weights.size() - 4;
  check_linear(d, n, -1, "the decoder's first Linear");
  check_linear(d + 2, d[0].size(0), D, "the decoder's second Linear (onto the state's width)");
}

void check_rollout_args(const at::Tensor& state, const at::Tensor& indptr, const at::Tensor& src,
                        const at::Tensor& ptr, const at::Tensor& edge_coefficients, const at::Tensor& dts,
                        const at::Tensor& glob_embedding, at::TensorList weights) {
  check_float(state, "state");
  for (auto* t : {&indptr, &src, &ptr}) check_index(*t, "graph index");
  const int64_t N = indptr.numel() - 1, B = ptr.numel() - 1;
  TORCH_CHECK(state.dim() == 2 && state.size(0) == N, "state must be (N, D)");
  TORCH_CHECK(B >= 1, "ptr must list at least one graph");
  check_offsets(indptr, src.numel(), "indptr");
  check_in_range(src, N, "src");
  check_offsets(ptr, N, "ptr");
  check_float(dts, "dts");
  TORCH_CHECK(dts.dim() == 2 && dts.size(1) == B && dts.scalar_type() == state.scalar_type(),
              "dts must be (S, B) in the dtype of state");
  check_float(glob_embedding, "glob_embedding");
  TORCH_CHECK(glob_embedding.dim() == 2 && glob_embedding.size(0) == B &&
                  glob_embedding.scalar_type() == state.scalar_type(),
              "glob_embedding must be (B, g) in the dtype of state");
  const int64_t count = int64_t(weights.size());
  TORCH_CHECK(count >= kCodecWeights + kLastLayerWeights &&
                  (count - kCodecWeights - kLastLayerWeights) % kLayerWeights == 0,
              "weights must hold the encoder, the layers and the decoder in the documented order; got ", count);
  for (const auto& w : weights) {
    TORCH_CHECK(w.device().is_cpu() && w.is_floating_point(), "weights must be floating CPU tensors");
    TORCH_CHECK(w.scalar_type() == state.scalar_type(), "weights must have the dtype of state");
  }
  check_float(edge_coefficients, "edge_coefficients");
  TORCH_CHECK(edge_coefficients.dim() == 2 && edge_coefficients.size(0) == src.numel() &&
                  edge_coefficients.scalar_type() == state.scalar_type(),
              "edge_coefficients must be (E, k) in the dtype of state");
  const int64_t depth = (count - kCodecWeights - kLastLayerWeights) / kLayerWeights + 1;
  check_layout(weights, state.size(1), edge_coefficients.size(1), glob_embedding.size(1), depth);
}

// Whether every value is finite (and, with `positive`, > 0); contiguous CPU tensors.
template <typename scalar_t>
bool all_valid(const at::Tensor& t, bool positive) {
  const scalar_t* p = t.data_ptr<scalar_t>();
  for (int64_t k = 0; k < t.numel(); ++k)
    if (!std::isfinite(p[k]) || (positive && !(p[k] > 0))) return false;
  return true;
}

// The caller's values, checked here in one pass each rather than by a reduction and a host read each in Python
// (≈ 5 % of a single-trajectory rollout): ValueError, with the messages of NGS.rollout's own checks.
void check_rollout_values(const at::Tensor& state, const at::Tensor& dts, const at::Tensor& edge_coefficients) {
  AT_DISPATCH_FLOATING_TYPES(state.scalar_type(), "ngs_rollout_values", [&] {
    TORCH_CHECK_VALUE(all_valid<scalar_t>(state, false), "state must be finite; got NaN or inf values");
    TORCH_CHECK_VALUE(all_valid<scalar_t>(dts, true), "dt must hold finite steps > 0");
    TORCH_CHECK_VALUE(all_valid<scalar_t>(edge_coefficients, false), "edge must be finite; got NaN or inf values");
  });
}

at::Tensor ngs_rollout_cpu(const at::Tensor& state, const at::Tensor& indptr, const at::Tensor& src,
                           const at::Tensor& ptr, const at::Tensor& edge_coefficients, const at::Tensor& dts,
                           const at::Tensor& glob_embedding, at::TensorList weights) {
  check_rollout_args(state, indptr, src, ptr, edge_coefficients, dts, glob_embedding, weights);
  check_rollout_values(state, dts, edge_coefficients);
  const int64_t N = indptr.numel() - 1, E = src.numel(), B = ptr.numel() - 1, D = state.size(1);
  const int64_t S = dts.size(0);
  const int64_t depth = (int64_t(weights.size()) - kCodecWeights - kLastLayerWeights) / kLayerWeights + 1;
  at::Tensor out = at::empty({S + 1, N, D}, state.options());
  out[0].copy_(state);
  if (S == 0 || N == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(state.scalar_type(), "ngs_rollout_cpu", [&] {
    const at::Tensor* w = weights.data();
    const TileLinear<scalar_t> enc1(w[0].t(), &w[1]), enc2(w[2].t(), &w[3]);
    const int64_t width = enc2.out;  // n
    // Layer 0's globals of every step, (S·B, G0): the Δt embedding, then the constant global embedding.
    const int64_t dt_width = w[6].size(0), G0 = dt_width + glob_embedding.size(1);
    const std::vector<scalar_t> dt_embedding = encode(w + 4, dts.data_ptr<scalar_t>(), 1, S * B);
    std::vector<scalar_t> globals(S * B * G0);
    for (int64_t r = 0; r < S * B; ++r) {
      std::copy_n(dt_embedding.data() + r * dt_width, dt_width, globals.data() + r * G0);
      if (G0 > dt_width)
        std::copy_n(glob_embedding.data_ptr<scalar_t>() + (r % B) * (G0 - dt_width), G0 - dt_width,
                    globals.data() + r * G0 + dt_width);
    }
    const std::vector<scalar_t> edge_features =
        encode(w + 8, edge_coefficients.data_ptr<scalar_t>(), edge_coefficients.size(1), E);
    std::vector<Layer<scalar_t>> layers;
    int64_t edge_width = w[10].size(0);
    for (int64_t k = 0; k < depth; ++k) {
      layers.emplace_back(w + 12 + k * kLayerWeights, width, edge_width, k == depth - 1);
      edge_width = layers.back().edge.O;
    }
    const at::Tensor* d = w + weights.size() - 4;
    const TileLinear<scalar_t> dec1(d[0].t(), &d[1]), dec2(d[2].t(), &d[3]);

    // Buffers for the widest layer (NGS layers all have the same widths).
    const int64_t np = padded<scalar_t>(width);
    int64_t hidden = std::max(enc1.outp, dec1.outp), Hp = 0, e = 0, W = 0, Hg = 0, G = G0;
    for (const auto& layer : layers) {
      hidden = std::max(hidden, layer.node_a.outp);
      Hp = std::max(Hp, layer.src.outp);
      e = std::max(e, layer.edge.O);
      W = std::max(W, layer.terms.outp);
      if (layer.glob_a) Hg = std::max(Hg, layer.glob_a->outp), G = std::max(G, layer.glob2->outp);
    }
    std::vector<scalar_t> node(N * np, 0), p_src(N * Hp), p_dst(N * Hp), aggregated(N * e);
    std::vector<scalar_t> features[2] = {std::vector<scalar_t>(E * e), std::vector<scalar_t>(E * e)};
    std::vector<scalar_t> node_min(B * width), edge_min(B * e), terms(B * W), hg(B * Hg), glob(B * G);
    std::vector<int64_t> batch(N);
    const int64_t* ip = indptr.data_ptr<int64_t>();
    const int64_t* col = src.data_ptr<int64_t>();
    const int64_t* gp = ptr.data_ptr<int64_t>();
    for (int64_t b = 0; b < B; ++b) std::fill(batch.begin() + gp[b], batch.begin() + gp[b + 1], b);
    const scalar_t* edge0 = edge_features.data();
    const std::vector<scalar_t> edge_term0 = first_edge_term(layers[0].edge, edge0, E);
    // With edge_term0, layer 0's edge MLP without the projection (its second Linear: the weights after the first's).
    const EdgeMlp<scalar_t> edge_mlp0(nullptr, w[14], w[15]);
    // f(i0, m, h, v) for tiles of m ≤ kRowTile node rows from i0, chunks of tiles in parallel, with two per-chunk
    // scratch tiles: h (kRowTile × hidden) and v (kRowTile × max(np, decoder output)). The node-level stages
    // are row-local, so no (N × hidden) tensor is needed.
    const int64_t wide = std::max(np, dec2.outp);
    ThreadScratch<scalar_t> h_tiles, v_tiles;
    const auto tiles = [&](auto&& f) {
      at::parallel_for(0, N, kRowTile, [&](int64_t r0, int64_t r1) {
        scalar_t* h = h_tiles.get(kRowTile * hidden);
        scalar_t* v = v_tiles.get(kRowTile * wide);
        for (int64_t i0 = r0; i0 < r1; i0 += kRowTile) f(i0, std::min(kRowTile, r1 - i0), h, v);
      });
    };

    for (int64_t s = 0; s < S; ++s) {
      const scalar_t* x = out.data_ptr<scalar_t>() + s * N * D;
      tiles([&](int64_t i0, int64_t m, scalar_t* h, scalar_t*) {  // node = state encoder(x)
        enc1.apply(m, x + i0 * D, D, h, true);
        enc2.apply(m, h, enc1.outp, node.data() + i0 * np, true);
      });
      const scalar_t* glob_in = globals.data() + s * B * G0;  // (B, ld_glob)
      int64_t ld_glob = G0;
      for (int64_t k = 0; k < depth; ++k) {
        const Layer<scalar_t>& layer = layers[k];
        const bool last = k == depth - 1;
        const int64_t H = layer.src.out, Hkp = layer.src.outp, O = layer.edge.O;
        const int64_t Hn = layer.node_a.out, Hnp = layer.node_a.outp, ld_terms = layer.terms.outp;
        layer.terms.apply(B, glob_in, ld_glob, terms.data(), false);  // (graph term | node bias | global bias)
        const scalar_t* in_features = k == 0 ? edge0 : features[(k - 1) % 2].data();
        scalar_t* out_features = last ? nullptr : features[k % 2].data();
        tiles([&](int64_t i0, int64_t m, scalar_t*, scalar_t*) {  // p_src, and p_dst with the graph term
          std::fill(p_src.begin() + i0 * Hkp, p_src.begin() + (i0 + m) * Hkp, scalar_t(0));
          layer.src.accumulate(m, node.data() + i0 * np, np, p_src.data() + i0 * Hkp, Hkp);
          fill_rows_from(p_dst.data() + i0 * Hkp, m, Hkp, H,
                         [&](int64_t r) { return terms.data() + batch[i0 + r] * ld_terms; });
          layer.dst.accumulate(m, node.data() + i0 * np, np, p_dst.data() + i0 * Hkp, Hkp);
        });
        std::fill(aggregated.begin(), aggregated.begin() + N * O, scalar_t(0));
        if (E) {
          const bool hoisted = k == 0 && !edge_term0.empty();
          const EdgeInputs<scalar_t> in{p_src.data(), p_dst.data(), hoisted ? edge_term0.data() : nullptr,
                                        nullptr, nullptr, H, Hkp};
          (hoisted ? edge_mlp0 : layer.edge).run(ip, col, N, in, in_features, aggregated.data(), out_features);
        }
        // Node update, in place: a row's new features depend on its own old ones and its aggregate only.
        tiles([&](int64_t i0, int64_t m, scalar_t* h, scalar_t* v) {
          fill_rows_from(h, m, Hnp, Hn, [&](int64_t r) { return terms.data() + batch[i0 + r] * ld_terms + H; });
          layer.node_a.accumulate(m, node.data() + i0 * np, np, h, Hnp);
          layer.node_b.accumulate(m, aggregated.data() + i0 * O, O, h, Hnp);
          gelu_inplace(h, m * Hnp);
          layer.node2.apply(m, h, Hnp, v, true);
          std::copy(v, v + m * np, node.data() + i0 * np);
        });
        if (last) break;
        graph_min(node.data(), np, width, gp, B, node_min.data());
        graph_min(aggregated.data(), O, O, gp, B, edge_min.data());
        const auto& glob_a = *layer.glob_a;
        const auto& glob2 = *layer.glob2;
        fill_rows_from(hg.data(), B, glob_a.outp, glob_a.out,
                       [&](int64_t b) { return terms.data() + b * ld_terms + H + Hn; });
        glob_a.accumulate(B, node_min.data(), width, hg.data(), glob_a.outp);
        layer.glob_b->accumulate(B, edge_min.data(), O, hg.data(), glob_a.outp);
        gelu_inplace(hg.data(), B * glob_a.outp);
        glob2.apply(B, hg.data(), glob_a.outp, glob.data(), true);
        glob_in = glob.data();
        ld_glob = glob2.outp;
      }
      scalar_t* y = out.data_ptr<scalar_t>() + (s + 1) * N * D;
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
