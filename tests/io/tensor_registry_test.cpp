#include "io/tensor_registry.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/error.h"
#include "io/model_config.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

std::map<std::string, TensorSpec> by_name(const VLConfig& c) {
  std::map<std::string, TensorSpec> m;
  for (const TensorSpec& s : expected_tensors(c)) EXPECT_TRUE(m.emplace(s.name, s).second) << "duplicate " << s.name;
  return m;
}

// The registry must describe each golden checkpoint exactly: same names, same shapes.
class GoldenRegistry : public ::testing::TestWithParam<const char*> {};

TEST_P(GoldenRegistry, EqualsTheFilesTensorSet) {
  DSVL2_REQUIRE_GOLDEN();
  std::string dir = test::golden_dir() + "/" + GetParam();
  VLConfig cfg = load_vl_config(dir);
  Checkpoint ckpt(dir);
  auto specs = by_name(cfg);
  std::set<std::string> file_names;
  for (const std::string& n : ckpt.names()) file_names.insert(n);
  std::set<std::string> reg_names;
  for (const auto& [n, s] : specs) reg_names.insert(n);
  EXPECT_EQ(reg_names, file_names);
  for (const auto& [n, s] : specs) {
    TensorView v;
    ASSERT_TRUE(ckpt.get(n, s.shape, &v)) << n;  // throws on a shape mismatch
  }
  EXPECT_TRUE(validate_checkpoint(ckpt, cfg).empty());
}

INSTANTIATE_TEST_SUITE_P(All, GoldenRegistry, ::testing::Values("tiny_like", "small_like", "base_like"));

VLConfig cfg_from(const std::string& lang) {
  return parse_vl_config(R"({"vision_config":{"layers":1,"width":32,"heads":2},
    "projector_config":{"input_dim":32,"n_embed":64},"language_config":)" + lang + "}", "config.json");
}

TEST(TensorRegistry, MhaShapesFollowKvHeads) {
  auto m = by_name(cfg_from(R"({"hidden_size":64,"num_attention_heads":4,"num_key_value_heads":2,
      "use_mla":false,"num_hidden_layers":1,"vocab_size":10,"intermediate_size":96,"attention_bias":true})"));
  EXPECT_EQ(m.at("language.model.layers.0.self_attn.k_proj.weight").shape, (Shape{32, 64}));
  EXPECT_EQ(m.at("language.model.layers.0.self_attn.v_proj.bias").shape, (Shape{32}));
  EXPECT_EQ(m.at("language.model.layers.0.self_attn.o_proj.weight").shape, (Shape{64, 64}));
  EXPECT_EQ(m.at("language.model.layers.0.mlp.down_proj.weight").shape, (Shape{64, 96}));
  EXPECT_EQ(m.at("language.model.layers.0.mlp.down_proj.weight").fan_in, 96);
  EXPECT_FALSE(m.count("language.model.layers.0.mlp.gate.weight"));  // dense model
}

TEST(TensorRegistry, MlaWithQLoraAndNoauxGate) {
  auto m = by_name(cfg_from(R"({"hidden_size":64,"num_attention_heads":4,"num_hidden_layers":2,"vocab_size":10,
      "kv_lora_rank":32,"q_lora_rank":24,"qk_nope_head_dim":16,"qk_rope_head_dim":8,"v_head_dim":12,
      "n_routed_experts":8,"num_experts_per_tok":2,"n_shared_experts":3,"moe_intermediate_size":20,
      "first_k_dense_replace":1,"topk_method":"noaux_tc","scoring_func":"sigmoid"})"));
  const std::string a = "language.model.layers.1.self_attn.";
  EXPECT_EQ(m.at(a + "q_a_proj.weight").shape, (Shape{24, 64}));
  EXPECT_EQ(m.at(a + "q_a_layernorm.weight").shape, (Shape{24}));
  EXPECT_EQ(m.at(a + "q_b_proj.weight").shape, (Shape{4 * 24, 24}));
  EXPECT_EQ(m.at(a + "kv_a_proj_with_mqa.weight").shape, (Shape{40, 64}));
  EXPECT_EQ(m.at(a + "kv_b_proj.weight").shape, (Shape{4 * 28, 32}));
  EXPECT_EQ(m.at(a + "o_proj.weight").shape, (Shape{64, 48}));
  EXPECT_FALSE(m.count(a + "q_proj.weight"));
  const std::string g = "language.model.layers.1.mlp.";
  EXPECT_EQ(m.at(g + "gate.e_score_correction_bias").shape, (Shape{8}));
  EXPECT_EQ(m.at(g + "experts.7.up_proj.weight").shape, (Shape{20, 64}));
  EXPECT_EQ(m.at(g + "shared_experts.down_proj.weight").shape, (Shape{64, 60}));
  EXPECT_FALSE(m.count(g + "experts.8.up_proj.weight"));
  EXPECT_EQ(m.at("language.model.layers.0.mlp.gate_proj.weight").shape, (Shape{11008, 64}));  // class default
  EXPECT_FALSE(m.at("vision.attn_pool.latent").required);
}

TEST(TensorRegistry, ProjectorDepthAndRatio) {
  VLConfig c = cfg_from(R"({"hidden_size":64,"num_attention_heads":4,"num_key_value_heads":4,"num_hidden_layers":1,"vocab_size":10,"use_mla":false})");
  c.projector.depth = 3;
  c.projector.mlp_ratio = 2;
  auto m = by_name(c);
  EXPECT_EQ(m.at("projector.layers.0.weight").shape, (Shape{128, 128}));
  EXPECT_EQ(m.at("projector.layers.2.weight").shape, (Shape{128, 128}));
  EXPECT_EQ(m.at("projector.layers.4.weight").shape, (Shape{64, 128}));
  EXPECT_FALSE(m.count("projector.layers.6.weight"));
  c.projector.depth = 1;  // the official loop still appends the final Linear
  m = by_name(c);
  EXPECT_TRUE(m.count("projector.layers.2.weight"));
}

}  // namespace
}  // namespace dsvl2
