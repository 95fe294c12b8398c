// Vision in schedulable pieces: advancing a VisionEncoding one or a few
// blocks at a time, with decode steps of another sequence in between, gives
// exactly the image tokens of one embed_images() pass.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/file.h"
#include "model/vl_model.h"
#include "vision/vision_encoding.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

Tensor copy_of(const Tensor& t) {
  Tensor c(t.dtype(), t.shape());
  std::memcpy(c.data(), t.data(), t.nbytes());
  return c;
}

TEST(VisionPieces, AdvancingInPiecesEqualsOnePass) {
  DSVL2_REQUIRE_GOLDEN();
  const std::string dir = test::golden_dir() + "/tiny_like";
  nlohmann::json exp = nlohmann::json::parse(read_file(dir + "/expected.json"));
  VisionLanguageModel model(dir);
  ThreadPool pool(2);
  for (Compute mode : {Compute::kF32, Compute::kBF16}) {
    Ops ops{&kernels_best(), &pool, mode};
    ASSERT_FALSE(exp["prompts"].empty());
    const auto& p = exp["prompts"].begin().value();
    std::vector<Image> images;
    for (const auto& f : p["images"]) images.push_back(load_image(dir + "/" + f.get<std::string>()));
    PreprocessResult pre = preprocess_images(images, model.processor(), CropMode::kAuto);
    Tensor want = model.vision().embed_images(pre.pixel_values, pre.images_spatial_crop, ops);

    // Another sequence decodes between the pieces, sharing the pool.
    const LanguageConfig& L = model.config().language;
    KVCache other(L, 64);
    std::vector<int> ids = {3, 4, 5};
    model.language().forward(model.language().embed(ids).f32(), 3, other, ops, LogitsMode::kNone);

    for (int piece : {1, 3, 100}) {
      VisionEncoding enc(model.vision(), copy_of(pre.pixel_values), copy_of(pre.images_spatial_crop));
      int calls = 0;
      while (!enc.advance(ops, piece)) {
        calls++;
        EXPECT_GT(enc.scratch_bytes(), 0u);
        if (other.can_grow(1)) model.language().step(7, other, ops);
      }
      EXPECT_EQ(calls + 1, (enc.blocks() + piece - 1) / piece) << "piece " << piece;
      EXPECT_EQ(enc.blocks_done(), enc.blocks());
      Tensor got = enc.take_tokens();
      ASSERT_EQ(got.shape(), want.shape());
      EXPECT_EQ(test::diff(got.f32(), want.f32(), want.numel()).max_abs, 0.0) << "piece " << piece;
    }
    // Split by tiles too: one block on at most 2 tiles a call.
    VisionEncoding enc(model.vision(), copy_of(pre.pixel_values), copy_of(pre.images_spatial_crop));
    int calls = 1;
    while (!enc.advance(ops, 1, 2)) calls++;
    const int64_t per_block = (enc.tiles() + 1) / 2;
    ASSERT_GT(enc.tiles(), 2);
    EXPECT_EQ(calls, enc.blocks() * per_block);
    Tensor got = enc.take_tokens();
    EXPECT_EQ(test::diff(got.f32(), want.f32(), want.numel()).max_abs, 0.0) << "split by tiles";
    // Two encodings, one after the other, in one kept scratch.
    VisionScratch kept;
    for (int round = 0; round < 2; round++) {
      VisionEncoding shared(model.vision(), copy_of(pre.pixel_values), copy_of(pre.images_spatial_crop), &kept);
      while (!shared.advance(ops, 1, 3)) {
      }
      Tensor t = shared.take_tokens();
      EXPECT_EQ(test::diff(t.f32(), want.f32(), want.numel()).max_abs, 0.0) << "kept scratch, round " << round;
      EXPECT_GT(kept.rows, 0);
    }
    // Started by tiles, finished whole (a scheduler whose other work ended).
    VisionEncoding mixed(model.vision(), copy_of(pre.pixel_values), copy_of(pre.images_spatial_crop));
    EXPECT_FALSE(mixed.advance(ops, 1, 1));
    EXPECT_TRUE(mixed.advance(ops, mixed.blocks()));
    Tensor got_mixed = mixed.take_tokens();
    EXPECT_EQ(test::diff(got_mixed.f32(), want.f32(), want.numel()).max_abs, 0.0) << "tiles, then whole";
  }
  // A bad tile count is refused before any work.
  Tensor crops = Tensor(DType::kI64, {1, 2});
  crops.as<int64_t>()[0] = 3;
  crops.as<int64_t>()[1] = 3;
  Tensor pixels = Tensor::f32({2, 3, 384, 384});
  EXPECT_THROW(VisionEncoding(model.vision(), std::move(pixels), std::move(crops)), Error);
}

}  // namespace
}  // namespace dsvl2
