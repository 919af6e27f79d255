// The fused graph-network edge step on the CPU (see docs/ops.md):
//   m[e] = GELU(GELU(p_src[j] + p_dst[i] + edge_term[e] + graph_term[batch[i]]) @ w2.T + b2),
//   node_out[i] = Σ_{e into i} m[e],
// where edge_term[e] is given (E, H), or, with w_edge (H, F), is the projection edge_term[e] @ w_edge.T of
// (E, F) edge features, formed per tile inside the kernels (no E × H tensor either, forward or backward).
// Edges are processed in tiles of kTile consecutive CSR edges: the tile's hidden layer (kTile × H) lives in a
// per-chunk buffer, the second Linear is a register-blocked product on the tile (`tile_gemm`: at these widths,
// H ≈ 32–350 and O ≈ 8–32, a BLAS call per tile costs more in dispatch than in arithmetic), and nothing of size
// E × H is ever allocated. Tile rows are padded to whole SIMD vectors (Hp, Op) with zeros that stay zero
// (GELU(0) = 0, and the padded weight columns are zero), so every product and activation runs on full vectors.
// The backward recomputes the tile: a pass over the CSR gives grad_p_dst (and w2/b2 partials per chunk, with edge
// features also the w_edge partials and, per edge, the features' gradient) and, accumulated by source,
// grad_p_src; with several threads and few edges per node a pass over the transposed CSR gives grad_p_src
// instead, so every node row is written by the one chunk that owns it.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

#include <vector>

#include "common/checks.h"
#include "message_passing/gn_edge_cpu.h"

namespace fastsim {
namespace {

struct Graph5 {
  const at::Tensor &indptr, &src, &rev_indptr, &rev_dst, &rev_perm;
};

void check_gn_args(const Graph5& g, const at::Tensor& p_src, const at::Tensor& p_dst,
                   const std::optional<at::Tensor>& edge_term, const std::optional<at::Tensor>& w_edge,
                   const std::optional<at::Tensor>& graph_term, const std::optional<at::Tensor>& batch,
                   const at::Tensor& w2, const at::Tensor& b2) {
  for (auto* t : {&g.indptr, &g.src, &g.rev_indptr, &g.rev_dst, &g.rev_perm}) check_index(*t, "graph index");
  check_float(p_src, "p_src");
  check_float(p_dst, "p_dst");
  check_float(w2, "w2");
  check_float(b2, "b2");
  const int64_t N = g.indptr.numel() - 1, H = p_src.size(1), O = w2.size(0);
  TORCH_CHECK(p_src.dim() == 2 && p_src.size(0) == N, "p_src must be (N, H)");
  TORCH_CHECK(p_dst.sizes() == p_src.sizes(), "p_dst must have the shape of p_src");
  TORCH_CHECK(w2.dim() == 2 && w2.size(1) == H, "w2 must be (O, H)");
  TORCH_CHECK(b2.dim() == 1 && b2.size(0) == O, "b2 must be (O,)");
  TORCH_CHECK(edge_term || !w_edge, "w_edge needs edge_term (the edge features)");
  if (edge_term) {
    check_float(*edge_term, "edge_term");
    const int64_t width = w_edge ? w_edge->size(-1) : H;
    TORCH_CHECK(edge_term->dim() == 2 && edge_term->size(0) == g.src.numel() && edge_term->size(1) == width,
                w_edge ? "edge_term must be (E, F) with w_edge (H, F)" : "edge_term must be (E, H)");
  }
  if (w_edge) {
    check_float(*w_edge, "w_edge");
    TORCH_CHECK(w_edge->dim() == 2 && w_edge->size(0) == H, "w_edge must be (H, F)");
  }
  TORCH_CHECK(graph_term.has_value() == batch.has_value(), "graph_term and batch must be given together");
  if (graph_term) {
    check_float(*graph_term, "graph_term");
    check_index(*batch, "batch");
    TORCH_CHECK(graph_term->dim() == 2 && graph_term->size(1) == H, "graph_term must be (B, H)");
    TORCH_CHECK(batch->numel() == N, "batch must be (N,)");
    check_in_range(*batch, graph_term->size(0), "batch");
  }
  const int64_t E = g.src.numel();
  TORCH_CHECK(g.rev_indptr.numel() == N + 1 && g.rev_dst.numel() == E && g.rev_perm.numel() == E,
              "rev_indptr must be (N + 1,), rev_dst and rev_perm (E,)");
  check_offsets(g.indptr, E, "indptr");
  check_in_range(g.src, N, "src");
  check_offsets(g.rev_indptr, E, "rev_indptr");
  check_in_range(g.rev_dst, N, "rev_dst");
  check_in_range(g.rev_perm, E, "rev_perm");
}

template <typename scalar_t>
EdgeInputs<scalar_t> edge_inputs(const at::Tensor& p_src, const at::Tensor& p_dst,
                                 const std::optional<at::Tensor>& edge_term,
                                 const std::optional<at::Tensor>& graph_term, const std::optional<at::Tensor>& batch) {
  return {p_src.data_ptr<scalar_t>(),
          p_dst.data_ptr<scalar_t>(),
          edge_term ? edge_term->data_ptr<scalar_t>() : nullptr,
          graph_term ? graph_term->data_ptr<scalar_t>() : nullptr,
          batch ? batch->data_ptr<int64_t>() : nullptr,
          p_src.size(1),
          p_src.size(1)};
}

std::tuple<at::Tensor, at::Tensor> gn_edge_aggregate_cpu(
    const at::Tensor& indptr, const at::Tensor& src, const at::Tensor& rev_indptr, const at::Tensor& rev_dst,
    const at::Tensor& rev_perm, const at::Tensor& p_src, const at::Tensor& p_dst,
    const std::optional<at::Tensor>& edge_term, const std::optional<at::Tensor>& w_edge,
    const std::optional<at::Tensor>& graph_term, const std::optional<at::Tensor>& batch, const at::Tensor& w2,
    const at::Tensor& b2, bool return_edges) {
  check_gn_args({indptr, src, rev_indptr, rev_dst, rev_perm}, p_src, p_dst, edge_term, w_edge, graph_term, batch, w2,
                b2);
  const int64_t N = indptr.numel() - 1, E = src.numel(), H = p_src.size(1), O = w2.size(0);
  at::Tensor node_out = at::zeros({N, O}, p_src.options());
  at::Tensor edge_out = at::empty({return_edges ? E : 0, O}, p_src.options());
  if (E == 0 || O == 0) return {node_out, edge_out};
  AT_DISPATCH_FLOATING_TYPES(p_src.scalar_type(), "gn_edge_aggregate_cpu", [&] {
    // Edge features projected in the kernel: pre_activation leaves the edge term out, the tile adds it.
    const auto in = edge_inputs<scalar_t>(p_src, p_dst, w_edge ? std::nullopt : edge_term, graph_term, batch);
    const EdgeMlp<scalar_t> mlp(w_edge ? &*w_edge : nullptr, w2, b2);
    mlp.run(indptr.data_ptr<int64_t>(), src.data_ptr<int64_t>(), N, in,
            w_edge ? edge_term->data_ptr<scalar_t>() : nullptr, node_out.data_ptr<scalar_t>(),
            return_edges ? edge_out.data_ptr<scalar_t>() : nullptr);
  });
  return {node_out, edge_out};
}

// One backward sweep over a CSR (the graph's own for grad_p_dst, the transposed one for grad_p_src).
// For every edge it recomputes z1, h, z2, forms gz2 = gm ⊙ GELU'(z2) and gz1 = (gz2 @ w2) ⊙ GELU'(z1), sums
// gz1 into the sweep's row (`node_grad[row]`), and, when asked, writes gz1 per edge, accumulates the w2/b2
// gradients of the chunk into `w2_partial` ((chunks, O, Hp)) and `b2_partial` ((chunks, O)), and sums gz1 by
// source into `src_grad_by_thread` ((threads, N, H): one private copy per thread).
template <typename scalar_t>
struct BackwardSweep {
  const EdgeInputs<scalar_t>& in;
  const std::vector<scalar_t>& w2t;   // (H, Op)
  const std::vector<scalar_t>& w2p;   // (O, Hp)
  const std::vector<scalar_t>& bias;  // (Op,)
  const scalar_t* grad_node;
  const scalar_t* grad_edge;  // may be null
  int64_t O;
  // Edge features (E, F) projected per tile by w_edge (H, F), laid out as w_edge_t (F, Hp) and w_edge_p (H, Fp);
  // F = 0: the per-edge term, if any, is in `in`.
  const scalar_t* features;
  int64_t F;
  const std::vector<scalar_t>& w_edge_t;
  const std::vector<scalar_t>& w_edge_p;

  // edge_at(p) -> (e, j, i): CSR edge, source and destination of sweep position p. With features, `edge_grad`
  // receives the features' gradient (E, F) and `w_edge_partial` ((chunks, H, Fp)) the chunks' w_edge gradients;
  // otherwise `edge_grad` receives gz1 (E, H).
  template <typename EdgeAt>
  void run(const int64_t* sweep_indptr, int64_t num_rows, EdgeAt edge_at, scalar_t* node_grad, scalar_t* edge_grad,
           at::Tensor* w2_partial, at::Tensor* b2_partial, at::Tensor* w_edge_partial,
           scalar_t* src_grad_by_thread) const {
    const int64_t H = in.H, Hp = padded<scalar_t>(H), Op = padded<scalar_t>(O), Fp = padded<scalar_t>(F);
    const auto bounds = row_chunks(sweep_indptr, num_rows, 3 * H * (O + F));
    const int64_t num_chunks = int64_t(bounds.size()) - 1;
    if (w2_partial) {
      *w2_partial = at::zeros({num_chunks, O, Hp}, c10::CppTypeToScalarType<scalar_t>::value);
      *b2_partial = at::zeros({num_chunks, O}, w2_partial->options());
    }
    if (w_edge_partial) *w_edge_partial = at::zeros({num_chunks, H, Fp}, c10::CppTypeToScalarType<scalar_t>::value);
    parallel_chunks(bounds, [&](int64_t chunk, int64_t row_begin, int64_t row_end) {
      std::vector<scalar_t> z1(kTile * Hp, 0), h(kTile * Hp, 0), cdf(kTile * Hp, 0), gh(kTile * Hp, 0);
      std::vector<scalar_t> z2(kTile * Op, 0), g2(kTile * Op, 0), feat(kTile * Fp, 0), gfeat(kTile * Fp, 0);
      scalar_t *z1p = z1.data(), *hp = h.data(), *cdfp = cdf.data(), *ghp = gh.data();
      scalar_t *z2p = z2.data(), *g2p = g2.data(), *fp = feat.data(), *gfp = gfeat.data();
      int64_t row_of[kTile], edge_of[kTile], src_of[kTile];
      scalar_t* src_grad = src_grad_by_thread ? src_grad_by_thread + at::get_thread_num() * num_rows * H : nullptr;
      scalar_t* w2_c = w2_partial ? w2_partial->data_ptr<scalar_t>() + chunk * O * Hp : nullptr;
      scalar_t* b2_c = w2_partial ? b2_partial->data_ptr<scalar_t>() + chunk * O : nullptr;
      scalar_t* w_edge_c = w_edge_partial ? w_edge_partial->data_ptr<scalar_t>() + chunk * H * Fp : nullptr;
      int64_t r = row_begin;
      const int64_t end = sweep_indptr[row_end];
      for (int64_t tile = sweep_indptr[row_begin]; tile < end; tile += kTile) {
        const int64_t t = std::min(kTile, end - tile);
        for (int64_t k = 0; k < t; ++k) {
          while (sweep_indptr[r + 1] <= tile + k) ++r;
          const auto [e, j, i] = edge_at(tile + k, r);
          row_of[k] = r;
          edge_of[k] = e;
          src_of[k] = j;
          in.pre_activation(e, j, i, z1p + k * Hp);
          if (F) copy_row(features + e * F, F, fp + k * Fp);  // padding stays zero
          scalar_t* __restrict g = g2p + k * Op;
          const scalar_t* __restrict gn = grad_node + i * O;
          if (grad_edge) {
            const scalar_t* __restrict ge = grad_edge + e * O;
            for (int64_t o = 0; o < O; ++o) g[o] = gn[o] + ge[o];
          } else {
            copy_row(gn, O, g);
          }
        }
        if (F) tile_gemm(t, Hp, F, fp, Fp, 1, w_edge_t.data(), Hp, z1p, Hp);  // z1 += features @ w_edgeᵀ
        gelu_with_cdf(z1p, hp, cdfp, t * Hp);
        fill_rows(z2p, t, Op, bias.data(), Op);
        tile_gemm(t, Op, H, hp, Hp, 1, w2t.data(), Op, z2p, Op);
        gelu_backward_inplace(z2p, static_cast<scalar_t*>(nullptr), g2p, t * Op);  // g2 = gz2
        if (w2_c) {
          tile_gemm(O, Hp, t, g2p, 1, Op, hp, Hp, w2_c, Hp);  // w2_c += gz2ᵀ h
          for (int64_t k = 0; k < t; ++k)
            for (int64_t o = 0; o < O; ++o) b2_c[o] += g2p[k * Op + o];
        }
        std::fill(ghp, ghp + t * Hp, scalar_t(0));
        tile_gemm(t, Hp, O, g2p, Op, 1, w2p.data(), Hp, ghp, Hp);  // gh = gz2 @ w2
        gelu_backward_inplace(z1p, cdfp, ghp, t * Hp);               // gh = gz1
        if (w_edge_c) tile_gemm(H, Fp, t, ghp, 1, Hp, fp, Fp, w_edge_c, Fp);  // w_edge_c += gz1ᵀ features
        if (edge_grad && F) {
          std::fill(gfp, gfp + t * Fp, scalar_t(0));
          tile_gemm(t, Fp, H, ghp, Hp, 1, w_edge_p.data(), Fp, gfp, Fp);  // g_features = gz1 @ w_edge
          for (int64_t k = 0; k < t; ++k) copy_row(gfp + k * Fp, F, edge_grad + edge_of[k] * F);
        }
        for (int64_t k = 0; k < t; ++k) {
          const scalar_t* __restrict g = ghp + k * Hp;
          scalar_t* __restrict acc = node_grad + row_of[k] * H;
          for (int64_t c = 0; c < H; ++c) acc[c] += g[c];
          if (edge_grad && !F) copy_row(g, H, edge_grad + edge_of[k] * H);
          if (src_grad) {  // this thread's private copy: no other thread writes it
            scalar_t* __restrict acc_src = src_grad + src_of[k] * H;
            for (int64_t c = 0; c < H; ++c) acc_src[c] += g[c];
          }
        }
      }
    });
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> gn_edge_aggregate_backward_cpu(
    const at::Tensor& indptr, const at::Tensor& src, const at::Tensor& rev_indptr, const at::Tensor& rev_dst,
    const at::Tensor& rev_perm, const at::Tensor& p_src, const at::Tensor& p_dst,
    const std::optional<at::Tensor>& edge_term, const std::optional<at::Tensor>& w_edge,
    const std::optional<at::Tensor>& graph_term, const std::optional<at::Tensor>& batch, const at::Tensor& w2,
    const at::Tensor& b2, const at::Tensor& grad_node, const std::optional<at::Tensor>& grad_edge,
    bool need_edge_grad) {
  check_gn_args({indptr, src, rev_indptr, rev_dst, rev_perm}, p_src, p_dst, edge_term, w_edge, graph_term, batch, w2,
                b2);
  const int64_t N = indptr.numel() - 1, E = src.numel(), H = p_src.size(1), O = w2.size(0);
  const int64_t F = w_edge ? w_edge->size(1) : 0;
  check_float(grad_node, "grad_node");
  TORCH_CHECK(grad_node.dim() == 2 && grad_node.size(0) == N && grad_node.size(1) == O, "grad_node must be (N, O)");
  if (grad_edge) {
    check_float(*grad_edge, "grad_edge");
    TORCH_CHECK(grad_edge->dim() == 2 && grad_edge->size(0) == E && grad_edge->size(1) == O,
                "grad_edge must be (E, O)");
  }
  at::Tensor grad_p_src = at::zeros_like(p_src), grad_p_dst = at::zeros_like(p_dst);
  // Every row is written by the destination sweep (it visits each edge once): no zero fill.
  at::Tensor grad_edge_term = at::empty({need_edge_grad ? E : 0, w_edge ? F : H}, p_src.options());
  at::Tensor grad_w_edge = at::zeros({H, F}, p_src.options());
  at::Tensor grad_w2 = at::zeros_like(w2), grad_b2 = at::zeros_like(b2);
  if (E == 0 || O == 0) return {grad_p_src, grad_p_dst, grad_edge_term.zero_(), grad_w_edge, grad_w2, grad_b2};
  const int64_t* ip = indptr.data_ptr<int64_t>();
  const int64_t* col = src.data_ptr<int64_t>();
  const int64_t* rip = rev_indptr.data_ptr<int64_t>();
  const int64_t* rdst = rev_dst.data_ptr<int64_t>();
  const int64_t* rperm = rev_perm.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(p_src.scalar_type(), "gn_edge_aggregate_backward_cpu", [&] {
    // With w_edge, edge_term holds the (E, F) features, projected per tile: pre_activation leaves them out.
    const auto in = edge_inputs<scalar_t>(p_src, p_dst, w_edge ? std::nullopt : edge_term, graph_term, batch);
    const std::vector<scalar_t> w2t = padded_weight<scalar_t>(w2, /*transpose=*/true);  // (H, Op)
    const std::vector<scalar_t> w2p = padded_weight<scalar_t>(w2, /*transpose=*/false);  // (O, Hp)
    const std::vector<scalar_t> bias = padded_weight<scalar_t>(b2.view({1, O}), false);  // (1, Op)
    const std::vector<scalar_t> w_edge_t = w_edge ? padded_weight<scalar_t>(*w_edge, true) : std::vector<scalar_t>();
    const std::vector<scalar_t> w_edge_p = w_edge ? padded_weight<scalar_t>(*w_edge, false) : std::vector<scalar_t>();
    const BackwardSweep<scalar_t> sweep{in, w2t, w2p, bias, grad_node.data_ptr<scalar_t>(),
                                        grad_edge ? grad_edge->data_ptr<scalar_t>() : nullptr, O,
                                        w_edge ? edge_term->data_ptr<scalar_t>() : nullptr, F, w_edge_t, w_edge_p};
    struct EdgeRef { int64_t e, j, i; };
    at::Tensor w2_partial, b2_partial, w_edge_partial;
    // grad_p_src needs gz1 summed by source. The destination sweep can accumulate it on the way into a private
    // (N, H) copy per thread; on one thread that copy is grad_p_src itself. With several threads, the copies
    // are taken when they cost less than an (E, H) tensor; otherwise a second sweep over the transposed CSR
    // recomputes the edge MLP, keeping memory at O(N·H). Both are deterministic.
    const int64_t threads = at::get_num_threads();
    const bool by_thread = threads == 1 || threads * N <= E;
    at::Tensor src_by_thread = by_thread && threads > 1 ? at::zeros({threads, N, H}, p_src.options()) : grad_p_src;
    // Destination-sorted sweep: the row is the destination i, edge position p is the CSR edge itself.
    sweep.run(ip, N, [&](int64_t p, int64_t row) { return EdgeRef{p, col[p], row}; },
              grad_p_dst.data_ptr<scalar_t>(), need_edge_grad ? grad_edge_term.data_ptr<scalar_t>() : nullptr,
              &w2_partial, &b2_partial, w_edge && need_edge_grad ? &w_edge_partial : nullptr,
              by_thread ? src_by_thread.data_ptr<scalar_t>() : nullptr);
    if (by_thread && threads > 1) {
      grad_p_src.copy_(src_by_thread.sum(0));
    } else if (!by_thread) {
      // Source-sorted sweep: the row is the source j; rev_perm/rev_dst give the CSR edge and its destination.
      sweep.run(rip, N, [&](int64_t p, int64_t row) { return EdgeRef{rperm[p], row, rdst[p]}; },
                grad_p_src.data_ptr<scalar_t>(), nullptr, nullptr, nullptr, nullptr, nullptr);
    }
    // Chunk partials summed in chunk order: deterministic for a given thread count.
    grad_w2.copy_(w2_partial.sum(0).narrow(1, 0, H));
    grad_b2.copy_(b2_partial.sum(0));
    if (w_edge_partial.defined()) grad_w_edge.copy_(w_edge_partial.sum(0).narrow(1, 0, F));
  });
  return {grad_p_src, grad_p_dst, grad_edge_term, grad_w_edge, grad_w2, grad_b2};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastsim, CPU, m) {
  m.impl("gn_edge_aggregate", &gn_edge_aggregate_cpu);
  m.impl("gn_edge_aggregate_backward", &gn_edge_aggregate_backward_cpu);
}

}  // namespace fastsim
