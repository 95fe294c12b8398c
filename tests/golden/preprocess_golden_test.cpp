// Preprocessing against the official processor's tiles (PIL 9.4): every tile
// must match the golden PNG bit for bit, along with grids and token counts.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/file.h"
#include "image/image.h"
#include "image/preprocess.h"
#include "io/model_config.h"
#include "sha256.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

using json = nlohmann::json;

struct TileStats {
  int tiles = 0, exact = 0, hash_ok = 0, max_diff = 0;
};

// Compares tile t of `res` (float CHW) with the expected PNG and CHW hash.
void check_tile(const PreprocessResult& res, int64_t t, const ProcessorConfig& cfg, const std::string& case_dir,
                const json& want, const std::string& label, TileStats& stats) {
  const int S = cfg.image_size;
  const size_t plane = size_t(S) * S;
  const float* v = res.pixel_values.f32() + size_t(t) * 3 * plane;
  std::vector<uint8_t> chw(3 * plane);
  for (int c = 0; c < 3; ++c)
    for (size_t i = 0; i < plane; ++i) {
      const double u = (double(v[c * plane + i]) * cfg.image_std[c] + cfg.image_mean[c]) * 255.0;
      chw[c * plane + i] = uint8_t(std::lround(std::clamp(u, 0.0, 255.0)));
    }
  Image png = load_image(case_dir + "/" + want["png"].get<std::string>());
  ASSERT_EQ(png.width, S);
  ASSERT_EQ(png.height, S);
  int max_diff = 0;
  int64_t first_bad = -1;
  for (int c = 0; c < 3; ++c)
    for (size_t i = 0; i < plane; ++i) {
      const int d = std::abs(int(chw[c * plane + i]) - int(png.rgb[i * 3 + c]));
      if (d > max_diff) max_diff = d;
      if (d && first_bad < 0) first_bad = int64_t(c * plane + i);
    }
  stats.tiles++;
  stats.exact += max_diff == 0;
  stats.max_diff = std::max(stats.max_diff, max_diff);
  EXPECT_EQ(max_diff, 0) << label << " tile " << t << " (" << want["png"] << "): first mismatch at CHW index "
                         << first_bad;
  // The float tensor itself: ToTensor + Normalize in float32, summed in double
  // by the generator, so any other float formula shows up here.
  double sum = 0, sumsq = 0;
  for (size_t i = 0; i < 3 * plane; ++i) {
    sum += double(v[i]);
    sumsq += double(v[i]) * double(v[i]);
  }
  EXPECT_NEAR(sum, want["sum_f32"].get<double>(), 1e-6) << label << " tile " << t;
  if (want.contains("sumsq_f32")) {
    EXPECT_NEAR(sumsq, want["sumsq_f32"].get<double>(), 1e-6) << label << " tile " << t;
  }
  const bool hash_ok = test::sha256_hex(chw.data(), chw.size()) == want["u8_chw_sha256"].get<std::string>();
  stats.hash_ok += hash_ok;
  EXPECT_TRUE(hash_ok) << label << " tile " << t;
}

void check_grid(const PreprocessResult& res, const json& crops, const std::string& label) {
  ASSERT_EQ(res.images_spatial_crop.dim(0), int64_t(crops.size())) << label;
  for (size_t i = 0; i < crops.size(); ++i) {
    EXPECT_EQ(res.images_spatial_crop.as<int64_t>()[2 * i + 0], crops[i][0].get<int64_t>()) << label << " image " << i;
    EXPECT_EQ(res.images_spatial_crop.as<int64_t>()[2 * i + 1], crops[i][1].get<int64_t>()) << label << " image " << i;
  }
}

TEST(PreprocessGolden, ProcessorItemsMatchTilesExactly) {
  DSVL2_REQUIRE_GOLDEN();
  const std::string dir = test::golden_dir() + "/preprocess";
  const ProcessorConfig cfg = load_processor_config(dir);
  const json expected = json::parse(read_file(dir + "/expected.json"));
  TileStats stats;
  int items = 0;
  ASSERT_FALSE(expected["items"].empty()) << "no cases: the loop below would pass vacuously";
  for (const auto& [name, item] : expected["items"].items()) {
    SCOPED_TRACE(name);
    const Image img = load_image(dir + "/" + item["image"].get<std::string>());
    EXPECT_EQ(img.width, item["size_wh"][0].get<int>());
    EXPECT_EQ(img.height, item["size_wh"][1].get<int>());
    const CropMode crop = item["cropping"].get<bool>() ? CropMode::kOn : CropMode::kOff;
    const PreprocessResult res = preprocess_images({img}, cfg, crop);
    check_grid(res, json::array({item["images_spatial_crop"]}), name);
    EXPECT_EQ(res.num_image_tokens.as<int64_t>()[0], item["num_image_tokens"].get<int64_t>());
    const json& tiles = item["tiles"];
    ASSERT_EQ(res.pixel_values.dim(0), int64_t(tiles.size()));
    ASSERT_EQ(res.pixel_values.dim(0), item["n_tiles"].get<int64_t>());
    for (size_t t = 0; t < tiles.size(); ++t) check_tile(res, int64_t(t), cfg, dir, tiles[t], name, stats);
    items++;
  }
  std::printf("preprocess golden: %d items, %d/%d tiles exact, %d/%d CHW hashes equal, max |u8 diff| %d\n", items,
              stats.exact, stats.tiles, stats.hash_ok, stats.tiles, stats.max_diff);
  EXPECT_GT(items, 0);
}

TEST(PreprocessGolden, ModelCasePromptsMatchTilesExactly) {
  DSVL2_REQUIRE_GOLDEN();
  TileStats stats;
  int prompts = 0;
  for (const char* name : {"tiny_like", "small_like", "base_like"}) {
    const std::string dir = test::golden_dir() + "/" + name;
    if (!is_directory(dir)) continue;
    const ProcessorConfig cfg = load_processor_config(dir);
    const json expected = json::parse(read_file(dir + "/expected.json"));
    ASSERT_FALSE(expected["prompts"].empty()) << "no cases: the loop below would pass vacuously";
    for (const auto& [pname, p] : expected["prompts"].items()) {
      const std::string label = std::string(name) + "." + pname;
      SCOPED_TRACE(label);
      std::vector<Image> images;
      for (const auto& path : p["images"]) images.push_back(load_image(dir + "/" + path.get<std::string>()));
      // The recorded flag must agree with the automatic policy (<= 2 images).
      EXPECT_EQ(cropping_enabled(CropMode::kAuto, images.size()), p["cropping"].get<bool>());
      const PreprocessResult res = preprocess_images(images, cfg, CropMode::kAuto);
      check_grid(res, p["images_spatial_crop"], label);
      int64_t tokens = 0;
      for (size_t i = 0; i < images.size(); ++i) tokens += res.num_image_tokens.as<int64_t>()[i];
      EXPECT_EQ(tokens, p["num_image_tokens"].get<int64_t>());
      const json& tiles = p["tiles"];
      ASSERT_EQ(res.pixel_values.dim(0), int64_t(tiles.size()));
      for (size_t t = 0; t < tiles.size(); ++t) check_tile(res, int64_t(t), cfg, dir, tiles[t], label, stats);
      prompts++;
    }
  }
  std::printf("model-case golden: %d prompts, %d/%d tiles exact, %d/%d CHW hashes equal, max |u8 diff| %d\n", prompts,
              stats.exact, stats.tiles, stats.hash_ok, stats.tiles, stats.max_diff);
  EXPECT_GT(prompts, 0);
}

}  // namespace
}  // namespace dsvl2
