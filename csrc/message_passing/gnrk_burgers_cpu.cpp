// GNRK's two-round Burgers approximator f_θ (fastsim/models/gnrk.py, BurgersApproximator) evaluated in one call
// on the CPU, for inference (rollouts and evaluation: no autograd). docs/ops.md describes the arguments.
//
// On a 100×100 grid every intermediate of the tensor-op forward (N × 16–64 floats) is larger than the L2 cache,
// so its ≈ 30 ATen calls per evaluation are memory passes; most of the work is GELUs, which ATen evaluates ≈ 2.6×
// slower than common/gelu.h. Here only what crosses nodes goes through memory: a node pass forms the state
// embedding h and the first edge MLP's per-node projections; the fused edge step's tile loop (gn_edge_cpu.h) runs
// round 1 and keeps its messages per edge; then a second node pass does everything else per tile of nodes in
// cache. Round 2 is local to a node: on a grid graph the (node, side) row (i, a) receives the two edges whose
// terms are e2_term[4i + 2a + b], b = 0, 1, both from the row itself, so no graph is needed for it.
//
// With P = 2d (a scalar pair's embedding) and H the hidden width (csrc names in brackets):
//   h = [enc(u), enc(v)],  enc = GELU(GELU(· enc_w1t + enc_b1) enc_w2t + enc_b2)                       (N, P)
//   e1[e] = GELU(GELU(h[j] e1_row_t + h[i] e1_col_t + e1_term[e]) e1_w2ᵀ + e1_b2),  e: j → i            (E, P)
//   bar1[i] = [e1[rev_perm[2i]] + e1[rev_perm[2i+1]],  Σ_{e into i} e1[e]]                             (N, 2P)
//   w1 = MLP_v1(bar1 v1_t + v1_term),  MLP(z) = GELU(GELU(z) w2t + b2)                                    (N, P)
//   bar2[i, a] = Σ_b GELU(GELU(bar1[i, a] e2_far_t + e2_term[4i + 2a + b]) e2_w2t + e2_b2)              (N, 2P)
//   w2 = MLP_v2(bar2 v2_t + v2_term)
//   out = GELU(MLP_ext(h ext_h_t + w2 ext_w2_t + w1 ext_w1_t + ext_term) dec_w1t + dec_b1) dec_w2t + dec_b2  (N, 2)
// weights, in order (every `*t` a Linear's weight transposed, (in, out) contiguous; e1_w2 as (out, in)):
//   enc_w1t, enc_b1, enc_w2t, enc_b2, e1_row_t, e1_col_t, e1_w2, e1_b2, v1_t, v1_w2t, v1_b2,
//   e2_far_t, e2_w2t, e2_b2, v2_t, v2_w2t, v2_b2, ext_t (3P, H: the h, w2, w1 blocks), ext_w2t, ext_b2,
//   dec_w1t, dec_b1, dec_w2t, dec_b2.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "common/checks.h"
#include "message_passing/gn_edge_cpu.h"

namespace fastsim {
namespace {

constexpr int64_t kNodeTile = 32;  // nodes per tile of the second node pass (128 rows in round 2)
constexpr int64_t kWeights = 24;

template <typename scalar_t>
struct BurgersWeights {
  TileLinear<scalar_t> enc1, enc2, e1_row, e1_col;
  EdgeMlp<scalar_t> e1;
  TileLinear<scalar_t> v1, v1_out, e2_far, e2_out, v2, v2_out, ext_h, ext_w2, ext_w1, ext_out, dec1, dec2;

  // A MLP's second half: y (m × outp) = GELU(GELU(z) @ second + b2), z (m × Hp) overwritten with GELU(z).
  static void finish(int64_t m, scalar_t* z, int64_t Hp, const TileLinear<scalar_t>& second, scalar_t* y) {
    gelu_inplace(z, m * Hp);
    second.apply(m, z, Hp, y, true);
  }

  explicit BurgersWeights(const at::Tensor* w)
      : enc1(w[0], &w[1]),
        enc2(w[2], &w[3]),
        e1_row(w[4], nullptr),
        e1_col(w[5], nullptr),
        e1(nullptr, w[6], w[7]),
        v1(w[8], nullptr),
        v1_out(w[9], &w[10]),
        e2_far(w[11], nullptr),
        e2_out(w[12], &w[13]),
        v2(w[14], nullptr),
        v2_out(w[15], &w[16]),
        ext_h(w[17].narrow(0, 0, w[17].size(0) / 3), nullptr),
        ext_w2(w[17].narrow(0, w[17].size(0) / 3, w[17].size(0) / 3), nullptr),
        ext_w1(w[17].narrow(0, 2 * (w[17].size(0) / 3), w[17].size(0) / 3), nullptr),
        ext_out(w[18], &w[19]),
        dec1(w[20], &w[21]),
        dec2(w[22], &w[23]) {}
};

at::Tensor gnrk_burgers_f_cpu(const at::Tensor& x, const at::Tensor& indptr, const at::Tensor& src,
                              const at::Tensor& rev_perm, const at::Tensor& e1_term, const at::Tensor& e2_term,
                              const at::Tensor& v1_term, const at::Tensor& v2_term, const at::Tensor& ext_term,
                              at::TensorList weights) {
  check_float(x, "x");
  for (auto* t : {&indptr, &src, &rev_perm}) check_index(*t, "graph index");
  const int64_t N = indptr.numel() - 1, E = src.numel();
  TORCH_CHECK(x.dim() == 2 && x.size(0) == N && x.size(1) == 2, "x must be (N, 2)");
  TORCH_CHECK(E == 2 * N && rev_perm.numel() == E, "a grid graph has two incoming and two outgoing edges per node");
  check_offsets(indptr, E, "indptr");
  check_in_range(src, N, "src");
  check_in_range(rev_perm, E, "rev_perm");
  TORCH_CHECK(int64_t(weights.size()) == kWeights, "weights must hold the ", kWeights,
              " tensors in the documented order");
  for (const auto& w : weights) {
    check_float(w, "weights");
    TORCH_CHECK(w.scalar_type() == x.scalar_type(), "weights must have the dtype of x");
  }
  const int64_t d = weights[0].size(1), P = 2 * d, H = weights[4].size(1);
  const int64_t rows[] = {E, 4 * N, N, N, N};
  const at::Tensor* terms[] = {&e1_term, &e2_term, &v1_term, &v2_term, &ext_term};
  for (int k = 0; k < 5; ++k) {
    check_float(*terms[k], "terms");
    TORCH_CHECK(terms[k]->scalar_type() == x.scalar_type() && terms[k]->dim() == 2 &&
                    terms[k]->size(0) == rows[k] && terms[k]->size(1) == H,
                "the terms must be e1 (E, H), e2 (4N, H), v1, v2, ext (N, H) in the dtype of x");
  }
  TORCH_CHECK(weights[0].size(0) == 1 && weights[4].size(0) == P && weights[6].size(0) == P &&
                  weights[8].size(0) == 2 * P && weights[17].size(0) == 3 * P && weights[22].size(1) == 2,
              "weights do not have the Burgers approximator's shapes");
  at::Tensor out = at::empty({N, 2}, x.options());
  if (N == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gnrk_burgers_f_cpu", [&] {
    const BurgersWeights<scalar_t> w(weights.data());
    const int64_t Hp = padded<scalar_t>(H), Pp = padded<scalar_t>(P), dp = w.enc1.outp;
    std::vector<scalar_t> h(N * P), p_row(N * Hp), p_col(N * Hp), e1_in(N * P, scalar_t(0)), e1(E * P);
    const scalar_t* xs = x.data_ptr<scalar_t>();
    // Pass 1: h, and round 1's per-node projections (u and v encoded as rows of one column).
    at::parallel_for(0, N, kNodeTile, [&](int64_t n0, int64_t n1) {
      std::vector<scalar_t> hidden(2 * kNodeTile * dp), emb(2 * kNodeTile * w.enc2.outp);
      for (int64_t i0 = n0; i0 < n1; i0 += kNodeTile) {
        const int64_t m = std::min(kNodeTile, n1 - i0);
        w.enc1.apply(2 * m, xs + 2 * i0, 1, hidden.data(), true);
        w.enc2.apply(2 * m, hidden.data(), dp, emb.data(), true);
        for (int64_t r = 0; r < 2 * m; ++r)
          copy_row(emb.data() + r * w.enc2.outp, d, h.data() + 2 * i0 * d + r * d);
        std::fill(p_row.begin() + i0 * Hp, p_row.begin() + (i0 + m) * Hp, scalar_t(0));
        std::fill(p_col.begin() + i0 * Hp, p_col.begin() + (i0 + m) * Hp, scalar_t(0));
        w.e1_row.accumulate(m, h.data() + i0 * P, P, p_row.data() + i0 * Hp, Hp);
        w.e1_col.accumulate(m, h.data() + i0 * P, P, p_col.data() + i0 * Hp, Hp);
      }
    });
    // Round 1: messages per edge and their sum into each node.
    const EdgeInputs<scalar_t> in{p_row.data(), p_col.data(), e1_term.data_ptr<scalar_t>(), nullptr, nullptr, H, Hp};
    w.e1.run(indptr.data_ptr<int64_t>(), src.data_ptr<int64_t>(), N, in, nullptr, e1_in.data(), e1.data());
    // Pass 2: the rest, a tile of nodes at a time.
    const int64_t* rp = rev_perm.data_ptr<int64_t>();
    const scalar_t *e2t = e2_term.data_ptr<scalar_t>(), *v1t = v1_term.data_ptr<scalar_t>();
    const scalar_t *v2t = v2_term.data_ptr<scalar_t>(), *extt = ext_term.data_ptr<scalar_t>();
    scalar_t* y = out.data_ptr<scalar_t>();
    at::parallel_for(0, N, kNodeTile, [&](int64_t n0, int64_t n1) {
      const int64_t T = kNodeTile;
      std::vector<scalar_t> bar1(T * 2 * P), bar2(T * 2 * P), z(4 * T * Hp), msg(4 * T * Pp), w1(T * Pp), w2(T * Pp);
      std::vector<scalar_t> ext_out(T * Pp), dec_hidden(T * w.dec1.outp), delta(T * w.dec2.outp);
      for (int64_t i0 = n0; i0 < n1; i0 += T) {
        const int64_t m = std::min(T, n1 - i0);
        for (int64_t k = 0; k < m; ++k) {  // bar1 = [ē1⁺, ē1⁻]
          const int64_t i = i0 + k;
          const scalar_t *a = e1.data() + rp[2 * i] * P, *b = e1.data() + rp[2 * i + 1] * P;
          scalar_t* row = bar1.data() + k * 2 * P;
          for (int64_t c = 0; c < P; ++c) row[c] = a[c] + b[c];
          copy_row(e1_in.data() + i * P, P, row + P);
        }
        // w1 = MLP_v1(bar1 v1_t + v1_term)
        fill_rows_from(z.data(), m, Hp, H, [&](int64_t k) { return v1t + (i0 + k) * H; });
        w.v1.accumulate(m, bar1.data(), 2 * P, z.data(), Hp);
        w.finish(m, z.data(), Hp, w.v1_out, w1.data());
        // round 2: rows (i, a, b) = bar1[i, a] e2_far_t + e2_term[4i + 2a + b]
        fill_rows_from(z.data(), 4 * m, Hp, H, [&](int64_t r) { return e2t + (4 * i0 + r) * H; });
        for (int b = 0; b < 2; ++b)  // the (i, a) rows of bar1 are its P-wide halves; row (i, a, b) = 2 (i, a) + b
          w.e2_far.accumulate(2 * m, bar1.data(), P, z.data() + b * Hp, 2 * Hp);
        w.finish(4 * m, z.data(), Hp, w.e2_out, msg.data());
        for (int64_t r = 0; r < 2 * m; ++r)
          for (int64_t c = 0; c < P; ++c) bar2[r * P + c] = msg[(2 * r) * Pp + c] + msg[(2 * r + 1) * Pp + c];
        // w2 = MLP_v2(bar2 v2_t + v2_term)
        fill_rows_from(z.data(), m, Hp, H, [&](int64_t k) { return v2t + (i0 + k) * H; });
        w.v2.accumulate(m, bar2.data(), 2 * P, z.data(), Hp);
        w.finish(m, z.data(), Hp, w.v2_out, w2.data());
        // out = decoder(MLP_ext(h, w2, w1))
        fill_rows_from(z.data(), m, Hp, H, [&](int64_t k) { return extt + (i0 + k) * H; });
        w.ext_h.accumulate(m, h.data() + i0 * P, P, z.data(), Hp);
        w.ext_w2.accumulate(m, w2.data(), Pp, z.data(), Hp);
        w.ext_w1.accumulate(m, w1.data(), Pp, z.data(), Hp);
        w.finish(m, z.data(), Hp, w.ext_out, ext_out.data());
        w.dec1.apply(m, ext_out.data(), Pp, dec_hidden.data(), true);
        w.dec2.apply(m, dec_hidden.data(), w.dec1.outp, delta.data(), false);
        for (int64_t k = 0; k < m; ++k)
          for (int64_t c = 0; c < 2; ++c) y[(i0 + k) * 2 + c] = delta[k * w.dec2.outp + c];
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastsim, CPU, m) { m.impl("gnrk_burgers_f", &gnrk_burgers_f_cpu); }

// Inference only (GNRK rollouts and evaluation without gradients): not differentiable.
TORCH_LIBRARY_IMPL(fastsim, Autograd, m) { m.impl("gnrk_burgers_f", torch::CppFunction::makeFallthrough()); }

}  // namespace fastsim
