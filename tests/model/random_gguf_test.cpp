// make-random-checkpoint --type q8_0 must write exactly what quantizing the
// BF16 random checkpoint of the same seed writes, tensor by tensor, and the
// result must run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/file.h"
#include "io/checkpoint.h"
#include "io/gguf.h"
#include "io/random_checkpoint.h"
#include "model/quantize.h"
#include "model/vl_model.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

class RandomGguf : public ::testing::TestWithParam<const char*> {};

TEST_P(RandomGguf, EqualsQuantizedBf16CheckpointAndRuns) {
  const std::string dir = test::temp_dir(std::string("random_gguf_") + GetParam());
  const std::string cfg = preset_config_json("tiny-test");
  ThreadPool pool(2);
  RandomCheckpointOptions opt;
  opt.seed = 9;
  opt.pool = &pool;
  write_random_checkpoint(dir + "/bf16", cfg, opt);
  QuantizeStats a = quantize_checkpoint(dir + "/bf16", GetParam(), {}, dir + "/quantized.gguf");
  QuantizeStats b = write_random_gguf(dir + "/direct.gguf", cfg, 9, &pool, GetParam());
  EXPECT_EQ(a.tensors, b.tensors);
  EXPECT_EQ(a.quantized, b.quantized);
  EXPECT_GT(b.quantized, 0);

  GgufFile qa(dir + "/quantized.gguf"), qb(dir + "/direct.gguf");
  ASSERT_EQ(qa.tensors().size(), qb.tensors().size());
  for (const auto& t : qa.tensors()) {
    const GgufTensor* u = qb.find(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    ASSERT_EQ(t.view.nbytes, u->view.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(t.view.data, u->view.data, t.view.nbytes), 0) << t.name;
  }

  VisionLanguageModel m(dir + "/direct.gguf");
  Ops ops{&kernels_best(), &pool, Compute::kBF16};
  m.prepare(ops);
  std::vector<int32_t> ids = {0, 1000, 2000, 3000};
  Tensor e = m.embed_prompt(ids, -1, nullptr, ops);
  KVCache cache(m.config().language, 8);
  Tensor logits = m.language().forward(e.f32(), 4, cache, ops, LogitsMode::kLast);
  EXPECT_EQ(logits.dim(1), m.config().language.vocab_size);
  for (int64_t i = 0; i < logits.numel(); i++) ASSERT_TRUE(std::isfinite(logits.f32()[i]));
}

INSTANTIATE_TEST_SUITE_P(Types, RandomGguf, ::testing::Values("q8_0", "q4_0", "iq4_nl", "q4_m"));

// q4_m: the routed experts and lm_head in IQ4_NL; shared experts, dense MLP,
// attention, embed_tokens, vision and projector (when chosen) in Q8_0; the
// rest as stored. general.file_type names the main type
// (LLAMA_FTYPE_MOSTLY_IQ4_NL). The model loads and embeds from the Q8_0 table.
TEST(QuantizeParts, Q4MMixStoresEachPartInItsType) {
  const std::string dir = test::temp_dir("q4_m_mix");
  ThreadPool pool(2);
  RandomCheckpointOptions opt;
  opt.seed = 3;
  opt.pool = &pool;
  write_random_checkpoint(dir + "/bf16", preset_config_json("tiny-test"), opt);
  quantize_checkpoint(dir + "/bf16", "q4_m", parse_quantize_parts("all"), dir + "/mix.gguf", &pool);
  GgufFile f(dir + "/mix.gguf");
  EXPECT_EQ(f.metadata().get<uint32_t>("general.file_type"), 25u);
  auto has = [](const std::string& n, const char* part) { return n.find(part) != std::string::npos; };
  int iq4[2] = {}, q8[5] = {};  // routed experts, lm_head | shared, dense, attention, embed, vision + projector
  for (const GgufTensor& t : f.tensors()) {
    const std::string& n = t.name;
    SCOPED_TRACE(n);
    const bool layer_matrix = n.rfind("language.model.layers.", 0) == 0 && has(n, "_proj.weight");
    int four = -1, eight = -1;
    if (layer_matrix && has(n, ".mlp.experts.")) four = 0;
    else if (n == "language.lm_head.weight") four = 1;
    else if (layer_matrix && has(n, ".mlp.shared_experts.")) eight = 0;
    else if (layer_matrix && has(n, ".mlp.")) eight = 1;
    else if (layer_matrix && has(n, ".self_attn.") && !has(n, "kv_b_proj")) eight = 2;
    else if (n == "language.model.embed_tokens.weight") eight = 3;
    else if ((n.rfind("vision.blocks.", 0) == 0 && has(n, ".attn.qkv.weight")) || n == "projector.layers.0.weight")
      eight = 4;
    if (four >= 0) {
      EXPECT_EQ(t.view.dtype, DType::kIQ4_NL);
      iq4[four]++;
    } else if (eight >= 0) {
      EXPECT_EQ(t.view.dtype, DType::kQ8_0);
      q8[eight]++;
    } else if (has(n, "norm") || has(n, ".mlp.gate.weight")) {
      EXPECT_FALSE(dtype_is_quantized(t.view.dtype));
    }
  }
  for (int c : iq4) EXPECT_GT(c, 0);
  for (int c : q8) EXPECT_GT(c, 0);

  // The embedding rows read back from the Q8_0 table are the BF16 rows to
  // within Q8_0's rounding (half a step of each block's scale).
  VisionLanguageModel bf16(dir + "/bf16"), mix(dir + "/mix.gguf");
  const std::vector<int> ids = {0, 1, 17, int(bf16.config().language.vocab_size) - 1};
  const Tensor a = bf16.language().embed(ids), b = mix.language().embed(ids);
  const int64_t D = a.dim(1);
  for (size_t t = 0; t < ids.size(); t++)
    for (int64_t b0 = 0; b0 < D; b0 += 32) {
      float amax = 0;
      for (int64_t d = b0; d < b0 + 32; d++) amax = std::max(amax, std::fabs(a.f32()[t * D + d]));
      for (int64_t d = b0; d < b0 + 32; d++)
        ASSERT_NEAR(b.f32()[t * D + d], a.f32()[t * D + d], amax / 127.f * 0.5f + amax * 2e-3f) << "id " << ids[t];
    }
}

TEST(QuantizeParts, ParsesListsAndRejectsUnknownNames) {
  const QuantizeParts lang = parse_quantize_parts("language");
  EXPECT_TRUE(lang.experts && lang.shared && lang.dense && lang.attention && lang.head && lang.embed);
  EXPECT_FALSE(lang.vision || lang.projector);
  const QuantizeParts all = parse_quantize_parts("all");
  EXPECT_TRUE(all.vision && all.projector && all.experts && all.head);
  const QuantizeParts some = parse_quantize_parts("experts,vision");
  EXPECT_TRUE(some.experts && some.vision);
  EXPECT_FALSE(some.shared || some.attention || some.head || some.embed || some.projector);
  EXPECT_TRUE(parse_quantize_parts("embed").embed);
  EXPECT_THROW(parse_quantize_parts("experts,eyes"), Error);
  EXPECT_THROW(quantize_checkpoint("/nonexistent", "q5_k", {}, "/tmp/x.gguf"), Error);
}

}  // namespace
}  // namespace dsvl2
