// Each decoder layer's backward (src/train) against central differences of
// L = sum(y * R) (+ the MoE balance loss) on toy checkpoints: RoPE, MHA and
// MLA attention, the SwiGLU MLP, the three MoE routings, and LoRA on a Linear.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "fd_util.h"
#include "llm/rope.h"
#include "train/attention_train.h"
#include "train/ffn_train.h"
#include "train/rope_grad.h"

namespace dsvl2 {
namespace {

using fd::json;

RopeScaling yarn_scaling() {
  RopeScaling y;
  y.type = "yarn";
  y.factor = 4;
  y.original_max_position_embeddings = 64;
  y.mscale = 1.0;
  y.mscale_all_dim = 0.5;  // magnitude mscale(4, 1) / mscale(4, 0.5) != 1: not a rotation
  return y;
}

json yarn_json() {
  const RopeScaling y = yarn_scaling();
  return {{"type", "yarn"},           {"factor", y.factor},
          {"original_max_position_embeddings", y.original_max_position_embeddings},
          {"beta_fast", y.beta_fast}, {"beta_slow", y.beta_slow},
          {"mscale", y.mscale},       {"mscale_all_dim", y.mscale_all_dim}};
}

TEST(LayerGrad, RopeBackwardMatchesFiniteDifferencesOfApply) {
  for (bool yarn : {false, true})
    for (RopeStyle style : {RopeStyle::kNeox, RopeStyle::kInterleaved}) {
      const Rope rope(8, 10000.0, yarn ? yarn_scaling() : RopeScaling{});
      if (yarn) {
        EXPECT_GT(std::fabs(rope.magnitude() - 1.f), 0.03f);
      }
      // Strided heads with gaps: the gaps pass through apply unchanged, so
      // their gradient is R itself, which rope_backward must leave alone.
      const int T = 5, H = 3, pos0 = 7;
      const int64_t sh = 10, st = 32, n = T * st;
      std::vector<float> x = fd::randn(size_t(n), 1), R = fd::randn(size_t(n), 2), g = R;
      rope_backward(rope, g.data(), T, H, st, sh, pos0, style);
      auto loss = [&] {
        std::vector<float> y = x;
        rope.apply(y.data(), T, H, st, sh, pos0, style);
        return fd::dot(y.data(), R.data(), n);
      };
      const std::string tag = std::string(yarn ? "yarn " : "plain ") + (style == RopeStyle::kNeox ? "neox" : "interleaved");
      fd::check(tag, x.data(), g.data(), n, loss, 3, fd::Opts().tol_(1e-3).samples_(60).must_({8, 9, 31}));
    }
}

// forward / backward of one attention layer, then every input and parameter entry sampled.
void check_attention(const std::string& tag, const std::function<void(json&)>& edit) {
  SCOPED_TRACE(tag);
  auto toy = fd::make_toy("attn_" + tag, edit);
  ThreadPool pool(1);
  const TrainOps t = fd::train_ops(pool);
  const LanguageConfig& c = toy->cfg.language;
  const std::string prefix = "language.model.layers.0.self_attn.";
  const AttentionTrain attn(c, *toy->ps, prefix);
  const int T = 7;
  const int64_t n = T * int64_t(c.hidden_size);
  std::vector<float> x = fd::randn(size_t(n), 11), R = fd::randn(size_t(n), 12), y(x.size()), dx(x.size(), 0.f);
  AttentionTrain::Acts a;
  attn.forward(x.data(), T, y.data(), a, t);
  attn.backward(x.data(), a, R.data(), T, dx.data(), t);
  auto loss = [&] {
    AttentionTrain::Acts b;
    std::vector<float> z(x.size());
    attn.forward(x.data(), T, z.data(), b, t);
    return fd::dot(z.data(), R.data(), n);
  };
  fd::check(tag + " dx", x.data(), dx.data(), n, loss, 1);
  const std::vector<Param*> ps = fd::params_under(*toy->ps, prefix);
  EXPECT_GE(ps.size(), 5u);
  uint32_t seed = 2;
  for (Param* p : ps) fd::check(tag + " " + p->name, p->f32_mut(), p->grad.f32(), p->numel(), loss, seed++);
}

TEST(LayerGrad, AttentionMhaWithGqaAndBias) {
  check_attention("mha", [](json& c) {
    json& l = c["language_config"];
    l["use_mla"] = false;
    l["kv_lora_rank"] = nullptr;
    l["q_lora_rank"] = nullptr;
    l["qk_nope_head_dim"] = 0;
    l["qk_rope_head_dim"] = 0;
    l["v_head_dim"] = 0;
    l["num_key_value_heads"] = 2;
    l["attention_bias"] = true;
  });
}

TEST(LayerGrad, AttentionMla) { check_attention("mla", {}); }

TEST(LayerGrad, AttentionMlaWithYarn) {
  check_attention("mla_yarn", [](json& c) { c["language_config"]["rope_scaling"] = yarn_json(); });
}

TEST(LayerGrad, AttentionMlaWithQLoraYarnAndBias) {
  check_attention("mla_qlora", [](json& c) {
    c["language_config"]["q_lora_rank"] = 24;
    c["language_config"]["rope_scaling"] = yarn_json();
    c["language_config"]["attention_bias"] = true;
  });
}

TEST(LayerGrad, DenseMlp) {
  auto toy = fd::make_toy("mlp");
  ThreadPool pool(1);
  const TrainOps t = fd::train_ops(pool);
  const std::string prefix = "language.model.layers.0.mlp.";
  const MlpTrain mlp(*toy->ps, prefix);
  const int T = 6;
  const int64_t n = T * int64_t(toy->cfg.language.hidden_size);
  std::vector<float> x = fd::randn(size_t(n), 21), R = fd::randn(size_t(n), 22), y(x.size()), dx(x.size(), 0.f);
  MlpTrain::Acts a;
  mlp.forward(x.data(), T, y.data(), a, t);
  mlp.backward(x.data(), a, R.data(), T, dx.data(), t);
  auto loss = [&] {
    MlpTrain::Acts b;
    std::vector<float> z(x.size());
    mlp.forward(x.data(), T, z.data(), b, t);
    return fd::dot(z.data(), R.data(), n);
  };
  fd::check("mlp dx", x.data(), dx.data(), n, loss, 1);
  uint32_t seed = 2;
  const std::vector<Param*> ps = fd::params_under(*toy->ps, prefix);
  ASSERT_EQ(ps.size(), 3u);
  for (Param* p : ps) fd::check(p->name, p->f32_mut(), p->grad.f32(), p->numel(), loss, seed++);
}

// L = sum(y * R) + aux_scale * aux. Entries whose perturbation changes the
// picked experts (or group_limited_greedy's masking) are skipped.
void check_moe(const std::string& tag, const std::function<void(json&)>& edit, bool expect_aux, bool expect_masked) {
  SCOPED_TRACE(tag);
  auto toy = fd::make_toy("moe_" + tag, edit);
  ThreadPool pool(1);
  const TrainOps t = fd::train_ops(pool);
  const std::string prefix = "language.model.layers.1.mlp.";
  const MoeTrain moe(toy->cfg.language, *toy->ps, prefix);
  const int T = 8;
  const float aux_scale = 0.7f;
  const int64_t n = T * int64_t(toy->cfg.language.hidden_size);
  std::vector<float> x = fd::randn(size_t(n), 31), R = fd::randn(size_t(n), 32), y(x.size()), dx(x.size(), 0.f);
  MoeTrain::Acts a;
  moe.forward(x.data(), T, y.data(), a, t);
  moe.backward(x.data(), a, R.data(), T, dx.data(), aux_scale, t);
  EXPECT_EQ(a.aux > 0, expect_aux) << a.aux;
  int masked = 0, used = 0;
  for (uint8_t m : a.masked) masked += m;
  for (const auto& r : a.rows) used += !r.empty();
  EXPECT_EQ(masked > 0, expect_masked) << masked;
  EXPECT_GE(used, 3);
  double R_scale = 1;  // 0 for the balance-loss-only pass below
  auto loss = [&]() -> double {
    MoeTrain::Acts b;
    std::vector<float> z(x.size());
    moe.forward(x.data(), T, z.data(), b, t);
    if (b.idx != a.idx || b.masked != a.masked) return fd::kInadmissible;
    return R_scale * fd::dot(z.data(), R.data(), n) + aux_scale * b.aux;
  };
  const fd::Opts o = fd::Opts().eps_(3e-3f);
  fd::check(tag + " dx", x.data(), dx.data(), n, loss, 1, o);
  uint32_t seed = 2;
  int nonzero_experts = 0;
  for (Param* p : fd::params_under(*toy->ps, prefix)) {
    // Experts nobody picked (or picked only masked) and the correction bias
    // (selection only) have no gradient: their finite differences must be 0 too.
    const bool routed = p->name.find(".experts.") != std::string::npos;
    fd::Opts po = o;
    po.allow_zero_(routed || p->name.find("e_score_correction_bias") != std::string::npos);
    fd::check(tag + " " + p->name, p->f32_mut(), p->grad.f32(), p->numel(), loss, seed++, po);
    if (routed && p->name.ends_with("down_proj.weight"))
      for (int64_t i = 0; i < p->numel(); i++)
        if (p->grad.f32()[i] != 0) {
          nonzero_experts++;
          break;
        }
  }
  EXPECT_GE(nonzero_experts, 3);
  if (!expect_aux) return;
  // The balance loss alone: its gradient reaches the gate and x.
  toy->ps->zero_grad();
  std::vector<float> zero(x.size(), 0.f), dx_aux(x.size(), 0.f);
  moe.backward(x.data(), a, zero.data(), T, dx_aux.data(), aux_scale, t);
  R_scale = 0;
  Param& gate = toy->ps->at(prefix + "gate.weight");
  fd::check(tag + " aux-only gate", gate.f32_mut(), gate.grad.f32(), gate.numel(), loss, 90, o);
  fd::check(tag + " aux-only dx", x.data(), dx_aux.data(), n, loss, 91, o);
}

TEST(LayerGrad, MoeSoftmaxGreedyWithBalanceLoss) {
  check_moe("greedy", [](json& c) { c["language_config"]["aux_loss_alpha"] = 0.5; }, true, false);
}

TEST(LayerGrad, MoeGroupLimitedGreedyNormalized) {
  auto edit = [](int k) {
    return [k](json& c) {
      json& l = c["language_config"];
      l["topk_method"] = "group_limited_greedy";
      l["n_group"] = 4;
      l["topk_group"] = 2;  // 4 experts kept a token
      l["num_experts_per_tok"] = k;
      l["norm_topk_prob"] = true;
      l["routed_scaling_factor"] = 1.5;
      l["aux_loss_alpha"] = 0.5;
    };
  };
  check_moe("group3", edit(3), true, false);
  check_moe("group5", edit(5), true, true);  // a fifth pick from a dropped group weighs 0
}

TEST(LayerGrad, MoeSigmoidNoauxTc) {
  check_moe("noaux", [](json& c) {
    json& l = c["language_config"];
    l["scoring_func"] = "sigmoid";
    l["topk_method"] = "noaux_tc";
    l["n_group"] = 4;
    l["topk_group"] = 2;
    l["norm_topk_prob"] = true;
    l["routed_scaling_factor"] = 2.5;
  }, false, false);
}

// y = x W^T + b + s (x A^T) B^T with W frozen (stored BF16) or trained.
TEST(LayerGrad, LoraOnALinear) {
  for (bool frozen : {true, false}) {
    SCOPED_TRACE(frozen ? "frozen W" : "trained W");
    auto toy = fd::make_toy(frozen ? "lora_frozen" : "lora_trained");
    ThreadPool pool(1);
    const TrainOps t = fd::train_ops(pool);
    ParamStore& ps = *toy->ps;
    const std::string w = "vision.blocks.0.attn.qkv.weight", b = "vision.blocks.0.attn.qkv.bias";
    ps.set_trainable([&](const std::string& name) { return name == b || (!frozen && name == w); });
    const int64_t r = 4, in = ps.at(w).shape[1], out = ps.at(w).shape[0], M = 6;
    Tensor av = Tensor::f32({r, in}), bv = Tensor::f32({out, r});
    const std::vector<float> ra = fd::randn(size_t(r * in), 41, 0.3f), rb = fd::randn(size_t(out * r), 42, 0.3f);
    std::copy(ra.begin(), ra.end(), av.f32());
    std::copy(rb.begin(), rb.end(), bv.f32());
    Param& A = ps.add("lora.A", std::move(av));
    Param& B = ps.add("lora.B", std::move(bv));
    const LinearRef l{&ps.at(w), &ps.at(b), LoraRef{&A, &B, 8.f / float(r)}};
    EXPECT_EQ(l.w->trainable, !frozen);
    std::vector<float> x = fd::randn(size_t(M * in), 43), R = fd::randn(size_t(M * out), 44), y(size_t(M * out)),
                       dx(size_t(M * in), 0.f);
    linear_forward(t, l, x.data(), M, y.data());
    linear_backward(t, l, x.data(), R.data(), M, dx.data());
    auto loss = [&] {
      std::vector<float> z(y.size());
      linear_forward(t, l, x.data(), M, z.data());
      return fd::dot(z.data(), R.data(), M * out);
    };
    fd::check("lora dx", x.data(), dx.data(), M * in, loss, 1);
    for (Param* p : {&A, &B, l.b}) fd::check(p->name, p->f32_mut(), p->grad.f32(), p->numel(), loss, 2);
    if (frozen) {
      EXPECT_EQ(l.w->grad_or_null(), nullptr);
      EXPECT_EQ(l.w->grad.data(), nullptr);
      EXPECT_EQ(l.w->weight().dtype, DType::kBF16);
    } else {
      fd::check(w, l.w->f32_mut(), l.w->grad.f32(), l.w->numel(), loss, 3);
    }
  }
}

// Freezing an adapter that ParamStore::add created must keep its values:
// they live nowhere else.
TEST(LayerGrad, FreezingAnAddedParameterKeepsItsValues) {
  auto toy = fd::make_toy("lora_freeze");
  const std::vector<float> v = fd::randn(64 * 32, 51);
  Tensor a = Tensor::f32({64, 32});
  std::copy(v.begin(), v.end(), a.f32());
  Param& A = toy->ps->add("lora.A", std::move(a));
  toy->ps->set_trainable([](const std::string& name) { return name != "lora.A"; });
  EXPECT_FALSE(A.trainable);
  const Weight w = A.weight();
  ASSERT_EQ(w.dtype, DType::kF32);
  const float* got = static_cast<const float*>(w.data);
  for (size_t i = 0; i < v.size(); i++) ASSERT_EQ(got[i], v[i]) << i;
}

}  // namespace
}  // namespace dsvl2
