// Hostile image inputs: every one must end in dsvl2::Error (never a crash, an
// abort, or a huge allocation). Run under the asan preset for full value.
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "core/file.h"
#include "image/image.h"
#include "image/test_encoders.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

void expect_error(const std::string& bytes, const std::string& label) {
  try {
    decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), label);
    ADD_FAILURE() << label << ": decoded without an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(label), std::string::npos) << "error should name the input: " << e.what();
  }
}

// Decoding must either succeed with a consistent image or throw Error.
void expect_no_crash(const std::string& bytes, const std::string& label) {
  try {
    const Image img = decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), label);
    EXPECT_GT(img.width, 0);
    EXPECT_GT(img.height, 0);
    EXPECT_EQ(img.rgb.size(), size_t(img.width) * img.height * 3);
  } catch (const Error&) {
  }
}

std::string sample_png() {
  test::PngSpec s;
  s.width = 40;
  s.height = 30;
  for (int i = 0; i < 40 * 30 * 3; ++i) s.pixels.push_back(uint8_t(i * 7));
  return test::encode_png(s);
}

std::string sample_jpeg() {
  std::vector<uint8_t> px(64 * 48 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 13 + (i / 97));
  return test::encode_jpeg(px.data(), 64, 48, 3, 85);
}

std::string sample_gif() {
  std::vector<GifColorType> pal(4, GifColorType{10, 20, 30});
  std::vector<uint8_t> idx(20 * 10);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = uint8_t(i % 4);
  return test::encode_gif(20, 10, 0, 0, 20, 10, idx, pal);
}

std::string sample_webp() {
  std::vector<uint8_t> rgba(24 * 16 * 4);
  for (size_t i = 0; i < rgba.size(); ++i) rgba[i] = uint8_t(i * 31);
  return test::encode_webp_lossless_rgba(rgba.data(), 24, 16);
}

std::string sample_bmp() {
  std::vector<std::vector<uint8_t>> rows(8, std::vector<uint8_t>(10 * 3, 77));
  return test::encode_bmp(10, 8, 24, rows);
}

TEST(ImageHostile, EmptyAndUnknownInputs) {
  expect_error("", "empty");
  expect_error(std::string(1, '\x89'), "one-byte");
  expect_error("GIF89a", "gif-signature-only");
  expect_error("RIFF\x10\0\0\0WEBPVP8 ", "webp-header-only");
  expect_error("BM", "bmp-signature-only");
  expect_error("\xff\xd8\xff", "jpeg-soi-only");
  expect_error("\x89PNG\r\n\x1a\n", "png-signature-only");
  std::mt19937 rng(7);
  for (int i = 0; i < 50; ++i) {
    std::string junk(size_t(1 + rng() % 512), '\0');
    for (char& c : junk) c = char(rng());
    expect_error(junk, "random-" + std::to_string(i));
  }
  for (const char* magic : {"GIF89a", "RIFF\x40\0\0\0WEBP", "\xff\xd8\xff\xe0", "BM", "\x89PNG\r\n\x1a\n"}) {
    std::string junk(magic);
    for (int i = 0; i < 300; ++i) junk.push_back(char(rng()));
    expect_no_crash(junk, "magic-then-garbage");
  }
}

TEST(ImageHostile, TruncatedFilesAreErrors) {
  const std::pair<const char*, std::string> samples[] = {{"png", sample_png()},   {"jpeg", sample_jpeg()},
                                                         {"gif", sample_gif()},   {"webp", sample_webp()},
                                                         {"bmp", sample_bmp()}};
  for (const auto& [name, full] : samples) {
    expect_no_crash(full, name);  // the intact file decodes
    // Cut anywhere before the last few bytes: always an error, never padded output.
    for (size_t cut = 0; cut + 4 < full.size(); cut += 1 + full.size() / 40)
      expect_error(full.substr(0, cut), std::string(name) + "-cut-" + std::to_string(cut));
  }
}

TEST(ImageHostile, CorruptedBytesNeverCrash) {
  std::mt19937 rng(1234);
  for (const std::string& full : {sample_png(), sample_jpeg(), sample_gif(), sample_webp(), sample_bmp()}) {
    for (int trial = 0; trial < 150; ++trial) {
      std::string m = full;
      const int flips = 1 + int(rng() % 6);
      for (int f = 0; f < flips; ++f) m[rng() % m.size()] = char(rng());
      expect_no_crash(m, "corrupted");
    }
  }
}

TEST(ImageHostile, DecompressionBombsAreRefusedFromTheHeader) {
  test::PngSpec s;
  s.width = 100000;
  s.height = 100000;
  s.header_only = true;  // IHDR claims 10^10 pixels; no data follows
  expect_error(test::encode_png(s), "png-bomb");
  // A GIF whose screen is 65535 x 65535 (4.3 G pixels).
  std::vector<GifColorType> pal(2, GifColorType{0, 0, 0});
  expect_error(test::encode_gif(65535, 65535, 0, 0, 1, 1, {0}, pal), "gif-bomb");
  // A BMP header of 50000 x 50000 with no pixel data.
  std::string bmp = test::encode_bmp(1, 1, 24, {{0, 0, 0}});
  for (int i = 0; i < 4; ++i) bmp[18 + i] = bmp[22 + i] = char((50000 >> (8 * i)) & 0xff);
  expect_error(bmp, "bmp-bomb");
}

TEST(ImageHostile, ZeroSizedImagesAreErrors) {
  std::string bmp = test::encode_bmp(1, 1, 24, {{0, 0, 0}});
  for (int i = 0; i < 4; ++i) bmp[18 + i] = 0;  // width 0
  expect_error(bmp, "bmp-zero");
  std::vector<GifColorType> pal(2, GifColorType{0, 0, 0});
  expect_error(test::encode_gif(0, 0, 0, 0, 0, 0, {}, pal), "gif-zero");
}

TEST(ImageHostile, MissingFileNamesThePath) {
  try {
    load_image("/nonexistent/dir/picture.png");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("picture.png"), std::string::npos);
  }
}

}  // namespace
}  // namespace dsvl2
