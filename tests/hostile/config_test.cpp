// Hostile config.json / processor_config.json: every bad value is an Error
// naming the file and the key, never a crash or a giant allocation later.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "hostile_util.h"
#include "io/model_config.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

using json = nlohmann::json;
using test::fails_with;

json base_config() {
  return json::parse(R"({
    "candidate_resolutions": [[384, 384], [384, 768]], "tile_tag": "2D", "global_view_pos": "head",
    "vision_config": {"layers": 2, "width": 32, "heads": 2, "mlp_ratio": 3.7362, "patch_size": 14, "image_size": 384},
    "projector_config": {"input_dim": 32, "n_embed": 64, "depth": 2, "mlp_ratio": 1, "downsample_ratio": 2},
    "language_config": {"hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4,
      "num_key_value_heads": 4, "vocab_size": 128, "intermediate_size": 128, "moe_intermediate_size": 32,
      "n_routed_experts": 8, "n_shared_experts": 2, "num_experts_per_tok": 3, "first_k_dense_replace": 1,
      "use_mla": false, "kv_lora_rank": null, "q_lora_rank": null}})");
}

::testing::AssertionResult rejects(const json& j, std::initializer_list<std::string> needles) {
  return fails_with([&] { parse_vl_config(j.dump(), "bad/config.json"); }, needles);
}

TEST(HostileConfig, BaseConfigIsAccepted) { EXPECT_NO_THROW(parse_vl_config(base_config().dump(), "config.json")); }

TEST(HostileConfig, NumHiddenLayersOutOfRange) {
  for (json v : {json(-1), json(0), json(513), json(1'000'000'000'000LL), json(18446744073709551615ULL)}) {
    json j = base_config();
    j["language_config"]["num_hidden_layers"] = v;
    EXPECT_TRUE(rejects(j, {"bad/config.json", "num_hidden_layers", "out of range"})) << v.dump();
  }
}

TEST(HostileConfig, HugeDimensions) {
  for (const char* k : {"hidden_size", "vocab_size", "intermediate_size", "n_routed_experts", "num_attention_heads"}) {
    json j = base_config();
    j["language_config"][k] = 2147483647;
    EXPECT_TRUE(rejects(j, {k})) << k;
  }
  json j = base_config();
  j["vision_config"]["width"] = 1 << 30;
  EXPECT_TRUE(rejects(j, {"vision_config", "width"}));
  j = base_config();
  j["candidate_resolutions"] = json::array({json::array({384, 1 << 20})});
  EXPECT_TRUE(rejects(j, {"candidate_resolutions"}));
}

TEST(HostileConfig, HeadsDoNotDivide) {
  json j = base_config();
  j["language_config"]["num_attention_heads"] = 5;  // 64 / 5
  EXPECT_TRUE(rejects(j, {"hidden_size 64", "5 heads"}));
  j = base_config();
  j["language_config"]["num_key_value_heads"] = 3;
  EXPECT_TRUE(rejects(j, {"num_key_value_heads 3"}));
  j = base_config();
  j["vision_config"]["heads"] = 3;
  EXPECT_TRUE(rejects(j, {"vision width 32", "heads 3"}));
  j = base_config();
  j["language_config"]["n_group"] = 3;  // 8 experts into 3 groups
  EXPECT_TRUE(rejects(j, {"n_group 3"}));
  j = base_config();
  j["language_config"]["num_experts_per_tok"] = 9;
  EXPECT_TRUE(rejects(j, {"num_experts_per_tok 9"}));
}

TEST(HostileConfig, WrongTypes) {
  json j = base_config();
  j["language_config"]["hidden_size"] = "64";
  EXPECT_TRUE(rejects(j, {"hidden_size", "expected an integer"}));
  j = base_config();
  j["language_config"]["hidden_size"] = 64.5;
  EXPECT_TRUE(rejects(j, {"hidden_size", "expected an integer"}));
  j = base_config();
  j["language_config"]["use_mla"] = "false";
  EXPECT_TRUE(rejects(j, {"use_mla", "true/false"}));
  j = base_config();
  j["language_config"]["rms_norm_eps"] = "tiny";
  EXPECT_TRUE(rejects(j, {"rms_norm_eps", "number"}));
  j = base_config();
  j["vision_config"] = json::array();
  EXPECT_TRUE(rejects(j, {"vision_config", "object"}));
  j = base_config();
  j["language_config"]["rope_scaling"] = "yarn";
  EXPECT_TRUE(rejects(j, {"rope_scaling"}));
  j = base_config();
  j["candidate_resolutions"] = json::array({json::array({384})});
  EXPECT_TRUE(rejects(j, {"candidate_resolutions", "[height, width]"}));
  j = base_config();
  j["language_config"]["rms_norm_eps"] = -1;
  EXPECT_TRUE(rejects(j, {"rms_norm_eps", "out of range"}));
}

TEST(HostileConfig, MissingLanguageConfig) {
  json j = base_config();
  j.erase("language_config");
  EXPECT_TRUE(rejects(j, {"bad/config.json", "language_config"}));
  j = base_config();
  j["language_config"] = nullptr;
  EXPECT_TRUE(rejects(j, {"language_config"}));
}

TEST(HostileConfig, NotJsonOrNotObject) {
  EXPECT_TRUE(fails_with([] { parse_vl_config("{\"language_config\": ", "bad/config.json"); }, {"bad/config.json", "invalid JSON"}));
  EXPECT_TRUE(fails_with([] { parse_vl_config("[1,2]", "bad/config.json"); }, {"expected a JSON object"}));
  EXPECT_TRUE(fails_with([] { parse_vl_config("", "bad/config.json"); }, {"invalid JSON"}));
}

TEST(HostileConfig, UnsupportedVariants) {
  json j = base_config();
  j["language_config"]["hidden_act"] = "gelu";
  EXPECT_TRUE(rejects(j, {"hidden_act"}));
  j = base_config();
  j["tile_tag"] = "1D";
  EXPECT_TRUE(rejects(j, {"tile_tag"}));
  j = base_config();
  j["projector_config"]["n_embed"] = 32;
  EXPECT_TRUE(rejects(j, {"n_embed 32", "hidden_size 64"}));
  j = base_config();
  j["language_config"]["use_mla"] = true;
  j["language_config"]["kv_lora_rank"] = 32;
  j["language_config"]["qk_rope_head_dim"] = 7;  // RoPE needs pairs
  EXPECT_TRUE(rejects(j, {"MLA"}));
}

TEST(HostileConfig, ProcessorConfig) {
  EXPECT_TRUE(fails_with([] { parse_processor_config(R"({"image_std":[0.5,0,0.5]})", "p.json"); }, {"p.json", "image_std"}));
  EXPECT_TRUE(fails_with([] { parse_processor_config(R"({"image_mean":[0.5,0.5]})", "p.json"); }, {"image_mean"}));
  EXPECT_TRUE(fails_with([] { parse_processor_config(R"({"patch_size":0})", "p.json"); }, {"patch_size"}));
  EXPECT_TRUE(fails_with([] { parse_processor_config(R"({"candidate_resolutions":[]})", "p.json"); }, {"candidate_resolutions"}));
}

}  // namespace
}  // namespace dsvl2
