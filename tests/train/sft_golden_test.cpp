// Training samples against the official processor in training mode
// (inference_mode=False, mask_prompt=True): input_ids, labels, images_seq_mask
// and images_spatial_crop of <case>/train_expected.safetensors. The golden
// used the stub byte tokenizer that ../text/stub_tokenizer.h rebuilds as a
// tokenizer.json; image token counts come from preprocessing the listed images
// with the case's processor_config.json.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "../text/stub_tokenizer.h"
#include "core/file.h"
#include "image/image.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "test_util.h"
#include "text/tokenizer.h"
#include "train/sft_sample.h"

namespace dsvl2 {
namespace {

template <class T>
std::vector<int64_t> widen(const SafetensorsTensor* t) {
  std::vector<int64_t> v;
  const size_t n = t->view.numel();
  for (size_t i = 0; i < n; i++) {
    T x;
    std::memcpy(&x, static_cast<const uint8_t*>(t->view.data) + i * sizeof(T), sizeof(T));  // may be unaligned
    v.push_back(int64_t(x));
  }
  return v;
}

template <class T>
std::vector<int64_t> widen(const std::vector<T>& a) {
  return std::vector<int64_t>(a.begin(), a.end());
}

TEST(SftGolden, IdsLabelsAndImageLayoutMatchTheOfficialProcessor) {
  DSVL2_REQUIRE_GOLDEN();
  Tokenizer tok = Tokenizer::from_json_text(test::stub_tokenizer().dump(), "stub");
  ASSERT_EQ(tok.token_to_id("<image>"), 100);
  int checked = 0;
  for (const char* c : {"tiny_like", "small_like", "base_like"}) {
    const std::string dir = test::golden_dir() + "/" + c;
    ASSERT_TRUE(file_exists(dir + "/train_expected.json")) << dir;
    const auto j = nlohmann::json::parse(read_file(dir + "/train_expected.json"));
    const ProcessorConfig proc = load_processor_config(dir);
    SafetensorsFile st(dir + "/train_expected.safetensors");
    ASSERT_FALSE(j["samples"].empty()) << "no samples: the loop below would pass vacuously";
    for (const auto& [name, s] : j["samples"].items()) {
      SCOPED_TRACE(std::string(c) + "/" + name);
      std::vector<ChatMessage> conv;
      for (const auto& t : s["turns"])
        conv.push_back({conv.size() % 2 ? ChatRole::kAssistant : ChatRole::kUser, t.get<std::string>(), -1});
      std::vector<Image> images;
      for (const auto& p : s["images"]) images.push_back(load_image(dir + "/" + p.get<std::string>()));

      const SftSample got = build_sft_sample(tok, conv, images, proc);
      auto tensor = [&](const char* key) {
        const SafetensorsTensor* t = st.find(name + "." + key);
        EXPECT_NE(t, nullptr) << key;
        return t;
      };
      const auto* ids = tensor("input_ids");
      const auto* labels = tensor("labels");
      const auto* seq_mask = tensor("images_seq_mask");
      const auto* crop = tensor("images_spatial_crop");
      ASSERT_TRUE(ids && labels && seq_mask && crop);
      ASSERT_EQ(ids->view.dtype, DType::kI64);
      ASSERT_EQ(labels->view.dtype, DType::kI64);
      EXPECT_EQ(widen(got.input_ids), widen<int64_t>(ids));
      EXPECT_EQ(widen(got.labels), widen<int64_t>(labels));
      EXPECT_EQ(widen(got.image_mask), widen<uint8_t>(seq_mask));
      const int64_t* sc = got.images.images_spatial_crop.as<int64_t>();
      EXPECT_EQ(std::vector<int64_t>(sc, sc + got.images.images_spatial_crop.numel()), widen<int64_t>(crop));
      EXPECT_EQ(got.size(), s["seq_len"].get<int64_t>());
      EXPECT_EQ(got.n_supervised(), s["n_supervised_positions"].get<int64_t>());
      // The official code leaves BOS unmasked (its own id) and keeps the final EOS.
      EXPECT_EQ(got.labels.front(), tok.bos_id());
      EXPECT_EQ(got.input_ids.back(), tok.eos_id());
      checked++;
    }
  }
  EXPECT_EQ(checked, 6);
}

}  // namespace
}  // namespace dsvl2
