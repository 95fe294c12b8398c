// attention_backward against central finite differences of a double attention
// over the same strided buffers (first checked against kernels_ref().attention):
// causal with an offset (q_pos0 > 0, S > T), non-causal, GQA and MQA, Dk != Dv,
// padded strides, and the vision tower's packed q|k|v rows, each on 1, 2 and
// 4 threads (fewer kv heads than threads takes the split path).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "grad_fixture.h"
#include "ops/grad.h"

namespace dsvl2 {
namespace {

using namespace grad_test;

struct AttnCase {
  const char* name;
  int T, S, H, Hkv, Dk, Dv;
  bool causal;
  int q_pos0;
  bool packed;  // one row per position, q | k | v (needs T == S)
};

// Where q, k and v sit in one input buffer (offsets and strides); out has its own.
struct Layout {
  AttnCase c;
  int64_t q_off = 0, q_st = 0, q_sh = 0, k_off = 0, k_ss = 0, k_sh = 0, v_off = 0, v_ss = 0, v_sh = 0;
  int64_t in_size = 0, o_st = 0, o_sh = 0, out_size = 0;
};

Layout make_layout(const AttnCase& c) {
  Layout L{c};
  if (c.packed) {  // the fused qkv projection's output
    const int64_t row = int64_t(c.H) * c.Dk + int64_t(c.Hkv) * (c.Dk + c.Dv);
    L.q_st = L.k_ss = L.v_ss = row;
    L.q_sh = L.k_sh = c.Dk;
    L.v_sh = c.Dv;
    L.k_off = int64_t(c.H) * c.Dk;
    L.v_off = L.k_off + int64_t(c.Hkv) * c.Dk;
    L.in_size = row * c.T;
  } else {  // separate tensors, padded after every head and every row
    L.q_sh = c.Dk + 1, L.q_st = c.H * L.q_sh + 2;
    L.k_sh = c.Dk + 2, L.k_ss = c.Hkv * L.k_sh + 1, L.k_off = c.T * L.q_st;
    L.v_sh = c.Dv + 1, L.v_ss = c.Hkv * L.v_sh + 3, L.v_off = L.k_off + c.S * L.k_ss;
    L.in_size = L.v_off + c.S * L.v_ss;
  }
  L.o_sh = c.Dv + 1, L.o_st = c.H * L.o_sh + 2, L.out_size = c.T * L.o_st;
  return L;
}

AttentionArgs args_for(const Layout& L, const float* in, float* out, float scale) {
  AttentionArgs a;
  a.q = in + L.q_off, a.q_stride_t = L.q_st, a.q_stride_h = L.q_sh;
  a.k = in + L.k_off, a.k_stride_s = L.k_ss, a.k_stride_h = L.k_sh;
  a.v = in + L.v_off, a.v_stride_s = L.v_ss, a.v_stride_h = L.v_sh;
  a.out = out, a.o_stride_t = L.o_st, a.o_stride_h = L.o_sh;
  a.T = L.c.T, a.S = L.c.S, a.H = L.c.H, a.Hkv = L.c.Hkv, a.Dk = L.c.Dk, a.Dv = L.c.Dv;
  a.scale = scale, a.causal = L.c.causal, a.q_pos0 = L.c.q_pos0;
  return a;
}

// out[t, h, :Dv] (dense) in double.
VecD attention_d(const Layout& L, const VecD& in, double scale) {
  const AttnCase& c = L.c;
  VecD out(size_t(c.T * c.H * c.Dv), 0.0), p(size_t(c.S));
  for (int t = 0; t < c.T; t++)
    for (int h = 0; h < c.H; h++) {
      const int hk = h / (c.H / c.Hkv);
      const int s_end = c.causal ? std::clamp(c.q_pos0 + t + 1, 0, c.S) : c.S;
      const double* q = in.data() + L.q_off + t * L.q_st + h * L.q_sh;
      double mx = -INFINITY, sum = 0;
      for (int s = 0; s < s_end; s++) {
        const double* k = in.data() + L.k_off + s * L.k_ss + hk * L.k_sh;
        double d = 0;
        for (int j = 0; j < c.Dk; j++) d += q[j] * k[j];
        p[size_t(s)] = d * scale;
        mx = std::max(mx, p[size_t(s)]);
      }
      for (int s = 0; s < s_end; s++) sum += (p[size_t(s)] = std::exp(p[size_t(s)] - mx));
      for (int s = 0; s < s_end; s++) {
        const double* v = in.data() + L.v_off + s * L.v_ss + hk * L.v_sh;
        for (int j = 0; j < c.Dv; j++) out[size_t((t * c.H + h) * c.Dv + j)] += p[size_t(s)] / sum * v[j];
      }
    }
  return out;
}

// Dense [T, H, Dv] <-> the strided out layout.
int64_t out_index(const Layout& L, int64_t i) {
  const int64_t j = i % L.c.Dv, th = i / L.c.Dv;
  return (th / L.c.H) * L.o_st + (th % L.c.H) * L.o_sh + j;
}

void check_attention(const AttnCase& c, int threads) {
  SCOPED_TRACE(::testing::Message() << c.name << ", " << threads << " threads");
  ThreadPool pool(threads);
  const Layout L = make_layout(c);
  const float scale = 0.45f;
  const Vec in = randn(size_t(L.in_size), 81);
  VecD ind = to_d(in);
  const size_t n_out = size_t(c.T * c.H * c.Dv);

  Vec out(size_t(L.out_size), 0.f), out_dense(n_out);
  kernels_ref().attention(args_for(L, in.data(), out.data(), scale), pool);
  for (size_t i = 0; i < n_out; i++) out_dense[i] = out[size_t(out_index(L, int64_t(i)))];
  ASSERT_LT(rel_err(out_dense, attention_d(L, ind, scale)), 1e-5);

  // dout holds r where out has values and a huge value in the padding, which
  // must never be read.
  const Vec r = randn(n_out, 82);
  Vec dout(size_t(L.out_size), 1e6f);
  for (size_t i = 0; i < n_out; i++) dout[size_t(out_index(L, int64_t(i)))] = r[i];
  const VecD rd = to_d(r);
  const Vec g0 = randn(size_t(L.in_size), 83);  // dq, dk, dv add (+=) into one buffer
  const VecD fd = fd_grad(ind, [&] { return dot_d(rd, attention_d(L, ind, scale)); });
  for (auto* backward : {&attention_backward, &attention_backward_fast}) {
    Vec g = g0;
    const AttentionGrads grads{dout.data(), g.data() + L.q_off, g.data() + L.k_off, g.data() + L.v_off};
    backward(args_for(L, in.data(), out.data(), scale), grads, pool);
    // The finite differences cover padding too, where the gradient must stay 0.
    EXPECT_LT(rel_err(g, fd, g0), kTol) << c.name << (backward == &attention_backward ? " (ref)" : " (fast)");
  }
}

const AttnCase kCases[] = {
    {"causal GQA, q_pos0 4", 5, 9, 4, 2, 6, 5, true, 4, false},
    {"full GQA", 5, 9, 4, 2, 6, 5, false, 0, false},
    {"causal MQA, q_pos0 4", 5, 9, 4, 1, 6, 5, true, 4, false},
    {"full MQA", 5, 9, 4, 1, 6, 5, false, 0, false},
    {"causal, keys 5..8 unseen", 5, 9, 2, 1, 4, 3, true, 0, false},
    {"vision packed qkv", 7, 7, 3, 3, 4, 4, false, 0, true},
    {"packed causal GQA", 6, 6, 4, 2, 5, 3, true, 0, true},
};

TEST(GradAttention, MatchesFiniteDifferences) {
  for (const AttnCase& c : kCases)
    for (int threads : {1, 2, 4}) check_attention(c, threads);
}

TEST(GradAttention, ThreadSplitMatchesOneThread) {
  // MQA on 4 threads splits each head's queries over private dk/dv buffers;
  // only the summation order may differ from one thread.
  const AttnCase c = {"MQA", 64, 80, 8, 1, 32, 24, true, 16, false};
  const Layout L = make_layout(c);
  const Vec in = randn(size_t(L.in_size), 91), dout = randn(size_t(L.out_size), 92);
  Vec out(size_t(L.out_size));
  Vec g1(size_t(L.in_size), 0.f), g4 = g1;
  for (int threads : {1, 4}) {
    ThreadPool pool(threads);
    Vec& g = threads == 1 ? g1 : g4;
    attention_backward(args_for(L, in.data(), out.data(), 0.2f),
                       {dout.data(), g.data() + L.q_off, g.data() + L.k_off, g.data() + L.v_off}, pool);
  }
  EXPECT_LT(rel_err(g4, g1), 1e-5);
}

TEST(GradAttention, FastMatchesReferenceOnLongSequences) {
  // Longer than one block of query rows (512): the blocks' dK / dV sums must
  // equal the row-by-row reference. A SigLIP-like tile and a causal GQA prefix.
  for (const AttnCase& c : {AttnCase{"tile", 729, 729, 2, 2, 72, 72, false, 0, true},
                            AttnCase{"causal GQA", 600, 700, 4, 2, 24, 16, true, 100, false}}) {
    const Layout L = make_layout(c);
    const Vec in = randn(size_t(L.in_size), 93), dout = randn(size_t(L.out_size), 94);
    Vec out(size_t(L.out_size));
    Vec gr(size_t(L.in_size), 0.f), gf = gr;
    ThreadPool pool(2);
    attention_backward(args_for(L, in.data(), out.data(), 0.1f),
                       {dout.data(), gr.data() + L.q_off, gr.data() + L.k_off, gr.data() + L.v_off}, pool);
    attention_backward_fast(args_for(L, in.data(), out.data(), 0.1f),
                            {dout.data(), gf.data() + L.q_off, gf.data() + L.k_off, gf.data() + L.v_off}, pool);
    EXPECT_LT(rel_err(gf, gr), 1e-5) << c.name;
  }
}

}  // namespace
}  // namespace dsvl2
