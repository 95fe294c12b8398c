#include "io/random_checkpoint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "core/error.h"
#include "core/file.h"
#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "io/model_config.h"
#include "io/tensor_registry.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

struct Moments {
  double mean = 0, std = 0;
};
Moments moments(const TensorView& v) {
  const uint16_t* p = static_cast<const uint16_t*>(v.data);
  double s = 0, s2 = 0;
  int64_t n = v.numel();
  for (int64_t i = 0; i < n; i++) {
    double x = bf16_to_f32(p[i]);
    s += x;
    s2 += x * x;
  }
  Moments m;
  m.mean = s / double(n);
  m.std = std::sqrt(std::max(0.0, s2 / double(n) - m.mean * m.mean));
  return m;
}

TEST(RandomCheckpoint, TestPresetLoadsAndValidates) {
  std::string dir = test::temp_dir("randckpt");
  RandomCheckpointOptions opt;
  opt.seed = 7;
  RandomCheckpointStats st = write_random_checkpoint(dir, preset_config_json("test"), opt);
  EXPECT_EQ(st.shards, 1);
  VLConfig cfg = load_vl_config(dir);
  EXPECT_TRUE(cfg.language.use_mla);
  ProcessorConfig pc = load_processor_config(dir);
  EXPECT_EQ(pc.candidate_resolutions.size(), 23u);
  Checkpoint ck(dir);
  EXPECT_TRUE(validate_checkpoint(ck, cfg).empty());
  EXPECT_EQ(ck.names().size(), expected_tensors(cfg).size());  // the whole state_dict, attn_pool too
  EXPECT_EQ(ck.total_bytes(), st.bytes);
  EXPECT_EQ(st.bytes, st.params * 2);

  // Norms are ones, LayerNorm biases zeros, linears ~ N(0, 1/fan_in).
  TensorView v;
  ASSERT_TRUE(ck.get("language.model.norm.weight", {64}, &v));
  EXPECT_EQ(moments(v).mean, 1.0);
  EXPECT_EQ(moments(v).std, 0.0);
  ASSERT_TRUE(ck.get("vision.blocks.0.norm1.bias", {32}, &v));
  EXPECT_EQ(moments(v).std, 0.0);
  ASSERT_TRUE(ck.get("vision.blocks.0.mlp.fc1.weight", {119, 32}, &v));
  Moments m = moments(v);
  EXPECT_NEAR(m.mean, 0.0, 0.02);
  EXPECT_NEAR(m.std, 1.0 / std::sqrt(32.0), 0.015);
  ASSERT_TRUE(ck.get("language.lm_head.weight", {256, 64}, &v));
  EXPECT_NEAR(moments(v).std, 2.5 / 8.0, 0.02);
}

TEST(RandomCheckpoint, SameSeedSameBytesAnyThreadCount) {
  std::string a = test::temp_dir("randckpt_a"), b = test::temp_dir("randckpt_b"), c = test::temp_dir("randckpt_c");
  ThreadPool pool(3);
  RandomCheckpointOptions o1;
  o1.seed = 1;
  RandomCheckpointOptions o2 = o1;
  o2.pool = &pool;
  write_random_checkpoint(a, preset_config_json("test"), o1);
  write_random_checkpoint(b, preset_config_json("test"), o2);
  RandomCheckpointOptions o3 = o1;
  o3.seed = 2;
  write_random_checkpoint(c, preset_config_json("test"), o3);
  std::string wa = read_file(a + "/model.safetensors");
  EXPECT_TRUE(wa == read_file(b + "/model.safetensors"));
  EXPECT_FALSE(wa == read_file(c + "/model.safetensors"));
}

TEST(RandomCheckpoint, ShardsWithAnIndex) {
  std::string dir = test::temp_dir("randckpt_shards");
  RandomCheckpointOptions opt;
  opt.shard_bytes = 200'000;  // forces several shards
  RandomCheckpointStats st = write_random_checkpoint(dir, preset_config_json("test"), opt);
  ASSERT_GT(st.shards, 2);
  EXPECT_FALSE(file_exists(dir + "/model.safetensors"));
  auto idx = nlohmann::json::parse(read_file(dir + "/model.safetensors.index.json"));
  EXPECT_EQ(idx["metadata"]["total_size"].get<uint64_t>(), st.bytes);
  VLConfig cfg = load_vl_config(dir);
  Checkpoint ck(dir);
  EXPECT_TRUE(validate_checkpoint(ck, cfg).empty());
  EXPECT_NE(ck.file_of("language.lm_head.weight").find(strformat("-of-%05d.safetensors", st.shards)), std::string::npos);
  // Back to one file: the stale index must go.
  opt.shard_bytes = 0;
  write_random_checkpoint(dir, preset_config_json("test"), opt);
  EXPECT_FALSE(file_exists(dir + "/model.safetensors.index.json"));
  EXPECT_TRUE(validate_checkpoint(Checkpoint(dir), cfg).empty());
}

// The presets carry the released dimensions (golden README table).
TEST(RandomCheckpoint, PresetsHaveReleasedDimensions) {
  VLConfig t = parse_vl_config(preset_config_json("tiny"), "tiny");
  EXPECT_FALSE(t.language.use_mla);
  EXPECT_EQ(t.language.num_hidden_layers, 12);
  EXPECT_EQ(t.language.hidden_size, 1280);
  EXPECT_EQ(t.language.head_dim(), 128);
  EXPECT_EQ(t.language.vocab_size, 129280);
  EXPECT_EQ(t.vision.heads, 16);  // class default: the file omits it
  EXPECT_EQ(t.vision.mlp_hidden(), 4304);
  EXPECT_EQ(t.projector.input_dim, 1152);
  auto billions = [](const VLConfig& c) {
    uint64_t n = 0;
    for (const TensorSpec& s : expected_tensors(c)) n += uint64_t(shape_numel(s.shape));
    return double(n) / 1e9;
  };
  EXPECT_NEAR(billions(t), 3.37, 0.05);  // README: 3.37 B

  VLConfig s = parse_vl_config(preset_config_json("small"), "small");
  EXPECT_TRUE(s.language.use_mla);
  EXPECT_EQ(s.language.q_lora_rank, 0);
  EXPECT_EQ(s.language.kv_lora_rank, 512);
  EXPECT_EQ(s.language.vocab_size, 102400);
  EXPECT_EQ(s.language.moe_intermediate_size, 1408);
  EXPECT_NEAR(billions(s), 16.1, 0.5);  // README: about 16 B

  VLConfig b = parse_vl_config(preset_config_json("base"), "base");
  EXPECT_EQ(b.language.topk_method, "noaux_tc");
  EXPECT_EQ(b.language.scoring_func, "sigmoid");
  EXPECT_EQ(b.language.n_routed_experts, 72);
  EXPECT_EQ(b.language.num_attention_heads, 32);
  EXPECT_DOUBLE_EQ(b.language.routed_scaling_factor, 2.0);
  EXPECT_NEAR(billions(b), 27.5, 0.6);  // README: about 27 B
  EXPECT_THROW(preset_config_json("huge"), Error);
}

TEST(RandomCheckpoint, ProcessorConfigMatchesGoldenSchema) {
  DSVL2_REQUIRE_GOLDEN();
  auto mine = nlohmann::json::parse(processor_config_json());
  auto gold = nlohmann::json::parse(read_file(test::golden_dir() + "/tiny_like/processor_config.json"));
  EXPECT_EQ(mine, gold);
}

}  // namespace
}  // namespace dsvl2
