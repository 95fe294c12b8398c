// The vision path against the official implementation's outputs: SigLIP tower
// (vision_output), projector (projector_output) and token layout + splice
// (inputs_embeds), for every prompt of the model cases, in both numeric modes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file.h"
#include "core/thread_pool.h"
#include "image/image.h"
#include "io/checkpoint.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "ops/ops.h"
#include "test_util.h"
#include "vision/vision_model.h"

namespace dsvl2 {
namespace {

// The processor's pixel values: ToTensor (k / 255) then Normalize(0.5, 0.5), in f32.
Tensor load_tiles(const std::string& dir, const nlohmann::json& tiles, int size) {
  const int64_t n = int64_t(tiles.size());
  Tensor px = Tensor::f32({n, 3, size, size});
  for (int64_t t = 0; t < n; t++) {
    const std::string path = dir + "/" + tiles[t]["png"].get<std::string>();
    Image img = load_image(path);
    EXPECT_EQ(img.width, size) << path;
    EXPECT_EQ(img.height, size) << path;
    if (img.width != size || img.height != size) continue;
    float* dst = px.f32() + t * 3 * size * size;
    double sum = 0;
    for (int c = 0; c < 3; c++)
      for (int64_t i = 0; i < int64_t(size) * size; i++) {
        float v = (float(img.rgb[i * 3 + c]) / 255.f - 0.5f) / 0.5f;
        dst[c * size * size + i] = v;
        sum += v;
      }
    EXPECT_NEAR(sum, tiles[t]["sum_f32"].get<double>(), 1e-3) << path;
  }
  return px;
}

Tensor expect_tensor(const SafetensorsFile& f, const std::string& name) {
  const SafetensorsTensor* t = f.find(name);
  if (!t) ADD_FAILURE() << f.path() << ": missing " << name;
  return t ? to_f32(t->view) : Tensor();
}

std::vector<int64_t> expect_ids(const SafetensorsFile& f, const std::string& name) {
  const SafetensorsTensor* t = f.find(name);
  if (!t || t->view.dtype != DType::kI64) {
    ADD_FAILURE() << f.path() << ": missing I64 " << name;
    return {};
  }
  std::vector<int64_t> ids(size_t(t->view.numel()));
  std::memcpy(ids.data(), t->view.data, ids.size() * sizeof(int64_t));
  return ids;
}

double check(const char* what, const Tensor& got, const Tensor& want, double tol, const std::string& tag) {
  EXPECT_EQ(got.shape(), want.shape()) << tag << " " << what;
  if (got.shape() != want.shape()) return INFINITY;
  test::DiffStats d = test::diff(got.f32(), want.f32(), got.numel());
  std::printf("  %-28s %-16s max %.3g  mean %.3g\n", tag.c_str(), what, d.max_abs, d.mean_abs);
  EXPECT_LE(d.max_abs, tol) << tag << " " << what << " worst at flat index " << d.argmax_at;
  return d.max_abs;
}

struct Tolerance {
  double vision, projector, embeds;
};

class VisionGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(VisionGolden, MatchesOfficialOutputs) {
  DSVL2_REQUIRE_GOLDEN();
  const std::string dir = test::golden_dir() + "/" + GetParam();
  const VLConfig cfg = load_vl_config(dir);
  const Checkpoint ckpt(dir);
  const nlohmann::json exp = nlohmann::json::parse(read_file(dir + "/expected.json"));
  const SafetensorsFile ref(dir + "/expected.safetensors");
  const int64_t image_token_id = exp["image_token_id"].get<int64_t>();

  const VisionModel vm = VisionModel::load(ckpt, cfg);
  // The same model with its matrices repacked for bf16 at load (the CLI's
  // default) and the checkpoint pages they replace dropped: both modes must
  // still hold their tolerances (f32 reads the re-mapped source bytes).
  VisionModel prepared = VisionModel::load(ckpt, cfg);
  const int64_t hidden = cfg.language.hidden_size;
  const Tensor embed_table = to_f32(ckpt.require("language.model.embed_tokens.weight", {cfg.language.vocab_size, hidden}));

  ThreadPool pool(2);
  const size_t packed = prepared.prepare(Ops{&kernels_best(), &pool, Compute::kBF16},
                                         [&](const void* p, size_t n) { ckpt.release(p, n); });
  if (kernels_best().isa == Isa::kAvx512) {
    EXPECT_GT(packed, size_t(0));
  }
  // f32 is the same math as the oracle (summation order aside); bf16 rounds the
  // matmul inputs and must stay inside the official bf16-vs-fp32 spread.
  const struct {
    Compute mode;
    Tolerance tol;
  } modes[] = {{Compute::kF32, {1e-4, 1e-4, 1e-4}}, {Compute::kBF16, {0.05, 0.03, 0.03}}};

  ASSERT_FALSE(exp["prompts"].empty()) << "no cases: the loop below would pass vacuously";
  for (const auto& [name, prompt] : exp["prompts"].items()) {
    const Tensor pixels = load_tiles(dir, prompt["tiles"], cfg.vision.image_size);
    const std::vector<int64_t> ids = expect_ids(ref, name + ".input_ids");
    const Tensor want_vision = expect_tensor(ref, name + ".vision_output");
    const Tensor want_proj = expect_tensor(ref, name + ".projector_output");
    const Tensor want_embeds = expect_tensor(ref, name + ".inputs_embeds");
    const SafetensorsTensor* crop_t = ref.find(name + ".images_spatial_crop");
    ASSERT_NE(crop_t, nullptr);
    ASSERT_EQ(crop_t->view.dtype, DType::kI64);
    Tensor crop(DType::kI64, crop_t->view.shape);
    std::memcpy(crop.data(), crop_t->view.data, crop.nbytes());

    for (const auto& m : modes)
    for (const VisionModel* model : {&vm, static_cast<const VisionModel*>(&prepared)}) {
      const std::string tag = std::string(GetParam()) + "." + name + "/" + compute_name(m.mode) +
                              (model == &vm ? "" : "/prepared");
      Ops ops{&kernels_best(), &pool, m.mode};
      VisionTrace trace;
      Tensor image_tokens = model->embed_images(pixels, crop, ops, &trace);
      check("vision_output", trace.vision_output, want_vision, m.tol.vision, tag);
      check("projector_output", trace.projector_output, want_proj, m.tol.projector, tag);
      EXPECT_EQ(image_tokens.dim(0), prompt["num_image_tokens"].get<int64_t>()) << tag;

      Tensor embeds = Tensor::f32({int64_t(ids.size()), hidden});
      for (size_t t = 0; t < ids.size(); t++) {
        ASSERT_TRUE(ids[t] >= 0 && ids[t] < cfg.language.vocab_size);
        std::memcpy(embeds.f32() + t * hidden, embed_table.f32() + ids[t] * hidden, size_t(hidden) * sizeof(float));
      }
      splice_image_embeddings(embeds, ids, image_token_id, image_tokens);
      check("inputs_embeds", embeds, want_embeds, m.tol.embeds, tag);
    }
  }
}

TEST(VisionGoldenLoad, ConfigThatDisagreesWithTheCheckpointIsAnError) {
  DSVL2_REQUIRE_GOLDEN();
  const std::string dir = test::golden_dir() + "/tiny_like";
  const Checkpoint ckpt(dir);
  VLConfig cfg = load_vl_config(dir);
  cfg.vision.mlp_ratio = 4.0;  // fc1 would be [128, 32]; the file has [119, 32]
  try {
    VisionTower::load(ckpt, cfg.vision);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vision.blocks.0.mlp.fc1.weight"), std::string::npos) << e.what();
  }
  cfg = load_vl_config(dir);
  cfg.projector.depth = 3;  // asks for projector.layers.4
  EXPECT_THROW(Projector::load(ckpt, cfg.projector), Error);
  cfg = load_vl_config(dir);
  cfg.tile_tag = "1D";
  EXPECT_THROW(ImageTokenLayout::load(ckpt, cfg), Error);

  // A prompt whose tile count disagrees with images_spatial_crop fails before encoding.
  cfg = load_vl_config(dir);
  const VisionModel vm = VisionModel::load(ckpt, cfg);
  ThreadPool pool(1);
  Ops ops{&kernels_ref(), &pool, Compute::kF32};
  Tensor crop(DType::kI64, {1, 2});
  crop.as<int64_t>()[0] = 2;
  crop.as<int64_t>()[1] = 1;
  EXPECT_THROW(vm.embed_images(Tensor::f32({2, 3, 384, 384}), crop, ops), Error);
}

INSTANTIATE_TEST_SUITE_P(Cases, VisionGolden, ::testing::Values("tiny_like", "small_like", "base_like"));

}  // namespace
}  // namespace dsvl2
