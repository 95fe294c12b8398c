// End to end, as `dsvl2 trace` runs it: image files -> preprocessing -> vision
// -> splice -> language model -> logits and greedy tokens with the KV cache,
// against the official implementation's outputs for every golden prompt.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/file.h"
#include "io/safetensors.h"
#include "model/vl_model.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

struct Case {
  std::string name;
  Compute compute;
};

class PipelineGolden : public ::testing::TestWithParam<Case> {};

TEST_P(PipelineGolden, MatchesOfficialLogitsAndGreedyTokens) {
  DSVL2_REQUIRE_GOLDEN();
  const Case& c = GetParam();
  const std::string dir = test::golden_dir() + "/" + c.name;
  nlohmann::json exp = nlohmann::json::parse(read_file(dir + "/expected.json"));
  SafetensorsFile ref(dir + "/expected.safetensors");
  VisionLanguageModel model(dir);
  ThreadPool pool(2);
  Ops ops{&kernels_best(), &pool, c.compute};
  const int image_token_id = exp["image_token_id"].get<int>();

  ASSERT_FALSE(exp["prompts"].empty()) << "no cases: the loop below would pass vacuously";
  for (auto& [prompt, p] : exp["prompts"].items()) {
    SCOPED_TRACE(c.name + "." + prompt + (c.compute == Compute::kF32 ? " f32" : " bf16"));
    std::vector<Image> images;
    for (const auto& f : p["images"]) images.push_back(load_image(dir + "/" + f.get<std::string>()));
    PreprocessResult pre = preprocess_images(images, model.processor(), CropMode::kAuto);
    std::vector<int32_t> ids = p["input_ids"].get<std::vector<int32_t>>();
    Tensor embeds = model.embed_prompt(ids, image_token_id, &pre, ops);
    const int T = int(ids.size());
    KVCache cache(model.config().language, T + 8);
    Tensor logits = model.language().forward(embeds.f32(), T, cache, ops, LogitsMode::kAll);
    Tensor want = to_f32(ref.find(prompt + ".logits")->view);
    ASSERT_EQ(logits.shape(), want.shape());
    const int64_t V = logits.dim(1);

    // Greedy continuation through the shipped generation step, from the
    // prompt again in a fresh cache.
    Tensor want_steps = to_f32(ref.find(prompt + ".generated_step_logits")->view);
    KVCache gen_cache(model.config().language, T + 8);
    test::GreedyRun run = test::greedy(model.language(), embeds.f32(), T, gen_cache, ops, 8);
    ASSERT_EQ(run.ids.size(), 8u);
    std::vector<int64_t> gen(run.ids.begin(), run.ids.end());
    double step_max = test::diff(run.step_logits.data(), want_steps.f32(), 8 * V).max_abs;
    EXPECT_LE(test::diff(run.step_logits.data(), logits.f32() + (T - 1) * V, V).max_abs, 1e-5)
        << "the step's first logits differ from the full forward's last row";
    const auto* gv = ref.find(prompt + ".generated_ids");
    std::vector<int64_t> want_gen(static_cast<const int64_t*>(gv->view.data),
                                  static_cast<const int64_t*>(gv->view.data) + 8);
    EXPECT_EQ(gen, want_gen);

    if (c.compute == Compute::kF32) {
      auto d = test::diff(logits.f32(), want.f32(), logits.numel());
      EXPECT_LT(d.max_abs, 1e-3) << "logits max abs diff";
      EXPECT_LT(step_max, 1e-3) << "step logits max abs diff";
      std::printf("[pipeline f32] %s.%s logits max %.3g step max %.3g\n", c.name.c_str(), prompt.c_str(), d.max_abs,
                  step_max);
    } else {
      int agree = 0;
      for (int t = 0; t < T; t++) {
        const float* a = logits.f32() + t * V;
        const float* b = want.f32() + t * V;
        agree += argmax(a, V) == argmax(b, V);
      }
      double frac = double(agree) / T;
      EXPECT_GE(frac, 0.96) << "argmax agreement over all prompt positions";
      std::printf("[pipeline bf16] %s.%s argmax agreement %.4f\n", c.name.c_str(), prompt.c_str(), frac);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllCases, PipelineGolden,
                         ::testing::Values(Case{"tiny_like", Compute::kF32}, Case{"small_like", Compute::kF32},
                                           Case{"base_like", Compute::kF32}, Case{"tiny_like", Compute::kBF16},
                                           Case{"small_like", Compute::kBF16}, Case{"base_like", Compute::kBF16}),
                         [](const auto& info) {
                           return info.param.name + (info.param.compute == Compute::kF32 ? "_f32" : "_bf16");
                         });

}  // namespace
}  // namespace dsvl2
