// `dsvl2 preprocess` end to end: the saved tensors equal the library's output
// and the golden grids; bad input gives one error line and a non-zero exit.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/file.h"
#include "image/preprocess.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

// Runs a shell command, returning its exit status and combined output.
int run(const std::string& cmd, std::string* output) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) *output += buf;
  const int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string dsvl2_binary() { return test::binary_dir() + "/dsvl2"; }

TEST(PreprocessCli, WritesTheProcessorTensors) {
  DSVL2_REQUIRE_GOLDEN();
  if (!file_exists(dsvl2_binary())) GTEST_SKIP() << "dsvl2 binary not built";
  const std::string dir = test::golden_dir() + "/preprocess";
  const std::string a = dir + "/images/p_1920x1080.jpg", b = dir + "/images/p_33x777_rgba.png";
  const std::string out = test::temp_dir("pp_cli") + "/out.safetensors";
  std::string log;
  ASSERT_EQ(run(dsvl2_binary() + " preprocess --processor " + dir + " --image " + a + " --image " + b + " --out " + out,
                &log),
            0)
      << log;
  SafetensorsFile f(out);
  const auto* pv = f.find("pixel_values");
  const auto* crop = f.find("images_spatial_crop");
  const auto* tokens = f.find("num_image_tokens");
  ASSERT_TRUE(pv && crop && tokens);
  EXPECT_EQ(pv->view.dtype, DType::kF32);
  EXPECT_EQ(crop->view.dtype, DType::kI64);
  EXPECT_EQ(tokens->view.dtype, DType::kI64);
  EXPECT_EQ(crop->view.shape, (Shape{2, 2}));

  const auto expected = nlohmann::json::parse(read_file(dir + "/expected.json"))["items"];
  int64_t c[4], n[2];
  std::memcpy(c, crop->view.data, sizeof c);
  std::memcpy(n, tokens->view.data, sizeof n);
  EXPECT_EQ(c[0], expected["p_1920x1080.crop"]["images_spatial_crop"][0].get<int64_t>());
  EXPECT_EQ(c[1], expected["p_1920x1080.crop"]["images_spatial_crop"][1].get<int64_t>());
  EXPECT_EQ(c[2], expected["p_33x777_rgba.crop"]["images_spatial_crop"][0].get<int64_t>());
  EXPECT_EQ(c[3], expected["p_33x777_rgba.crop"]["images_spatial_crop"][1].get<int64_t>());
  EXPECT_EQ(n[0], expected["p_1920x1080.crop"]["num_image_tokens"].get<int64_t>());
  EXPECT_EQ(n[1], expected["p_33x777_rgba.crop"]["num_image_tokens"].get<int64_t>());

  const PreprocessResult lib =
      preprocess_images({load_image(a), load_image(b)}, load_processor_config(dir), CropMode::kAuto);
  ASSERT_EQ(pv->view.shape, lib.pixel_values.shape());
  EXPECT_EQ(std::memcmp(pv->view.data, lib.pixel_values.data(), lib.pixel_values.nbytes()), 0);

  // --crop off: one global + one local tile per image.
  log.clear();
  ASSERT_EQ(run(dsvl2_binary() + " preprocess --crop off --processor " + dir + " --image " + a + " --out " + out, &log),
            0)
      << log;
  EXPECT_EQ(SafetensorsFile(out).find("pixel_values")->view.shape, (Shape{2, 3, 384, 384}));
}

TEST(PreprocessCli, BadInputIsOneErrorLine) {
  DSVL2_REQUIRE_GOLDEN();
  if (!file_exists(dsvl2_binary())) GTEST_SKIP() << "dsvl2 binary not built";
  const std::string dir = test::golden_dir() + "/preprocess";
  const std::string tmp = test::temp_dir("pp_cli_bad");
  write_file(tmp + "/bad.png", "\x89PNG\r\n\x1a\n truncated");
  for (const std::string& image : {tmp + "/bad.png", tmp + "/missing.jpg", dir + "/expected.json"}) {
    std::string log;
    EXPECT_NE(run(dsvl2_binary() + " preprocess --processor " + dir + " --image " + image + " --out " + tmp + "/o", &log),
              0);
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
    EXPECT_NE(log.find("error"), std::string::npos) << log;
  }
}

}  // namespace
}  // namespace dsvl2
