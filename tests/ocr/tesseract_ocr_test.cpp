// The Tesseract engine on rendered text: what it reads and where, light on
// dark, size limits, tilted text, language data errors, threads.
#include "ocr/tesseract_ocr.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "ocr/render_text.h"
#include "ocr/validation_set.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

using ocr::OcrEngine;
using ocr::OcrResult;

std::string all_text(const OcrResult& r) {
  std::string s;
  for (const auto& l : r.lines) s += l.text + "\n";
  return s;
}

// A line whose text matches exactly and whose box lies within `slack` px of `box`.
bool has_line(const OcrResult& r, const std::string& text, std::array<int, 4> box, int slack = 6) {
  for (const auto& l : r.lines) {
    if (l.text != text) continue;
    bool near = true;
    for (int k = 0; k < 4; ++k) near = near && std::abs(l.box[size_t(k)] - box[size_t(k)]) <= slack;
    if (near) return true;
  }
  return false;
}

int thread_count() {
  int n = 0;
  DIR* d = opendir("/proc/self/task");
  if (!d) return -1;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

TEST(TesseractOcr, ReadsLinesWordsAndBoxes) {
  test::TextCanvas c(384, 384);
  c.fill({250, 250, 245});
  test::TextStyle s;
  s.size_px = 30;
  const auto b1 = c.text("SUMMER SALE", 30, 40, s);
  s.font = "Liberation Serif";
  s.size_px = 22;
  s.color = {150, 20, 20};
  const auto b2 = c.text("Fresh bread daily", 40, 200, s);
  s.size_px = 12;  // under PixelProse's 15 px: flagged small
  const auto b3 = c.text("small print here", 40, 330, s);
  OcrEngine engine;
  const OcrResult r = engine.recognize(c.image());
  EXPECT_TRUE(has_line(r, "SUMMER SALE", b1)) << all_text(r);
  EXPECT_TRUE(has_line(r, "Fresh bread daily", b2)) << all_text(r);
  for (const auto& l : r.lines) {
    EXPECT_GE(l.conf, 0.0f);
    EXPECT_LE(l.conf, 100.0f);
    EXPECT_FALSE(l.words.empty());
    EXPECT_EQ(l.small, std::min(l.box[2] - l.box[0], l.box[3] - l.box[1]) < 15);
    if (l.text == "SUMMER SALE") {
      ASSERT_EQ(l.words.size(), 2u);
      EXPECT_EQ(l.words[0].text, "SUMMER");
      EXPECT_LT(l.words[0].box[2], l.words[1].box[0]);
    }
    if (l.box[1] >= b3[1] - 4 && l.box[3] <= b3[3] + 4) {
      EXPECT_TRUE(l.small) << l.text;
    }
  }
  EXPECT_EQ(ocr::ocr_from_json(ocr::ocr_to_json(r)).lines.size(), r.lines.size());
}

TEST(TesseractOcr, LightOnDarkGradientAndBlank) {
  test::TextCanvas c(384, 384);
  c.gradient({10, 20, 60}, {60, 20, 10}, true);
  test::TextStyle s;
  s.size_px = 26;
  s.color = {240, 240, 200};
  const auto b = c.text("Jazz Night", 60, 80, s);
  test::TextCanvas g(384, 384);
  g.gradient({250, 250, 250}, {150, 150, 170}, true);
  s.color = {20, 20, 20};
  s.font = "DejaVu Serif";
  const auto bg = g.text("Winter Festival 2024", 20, 200, s);
  OcrEngine engine;
  const OcrResult r = engine.recognize(c.image());
  // Tesseract's inverted retry of a dim line pads its box (by ~20 px measured).
  EXPECT_TRUE(has_line(r, "Jazz Night", b, 24)) << ocr::ocr_to_json(r).dump();
  const OcrResult rg = engine.recognize(g.image());
  EXPECT_TRUE(has_line(rg, "Winter Festival 2024", bg)) << all_text(rg);
  test::TextCanvas blank(200, 100);
  EXPECT_TRUE(engine.recognize(blank.image()).lines.empty());
}

TEST(TesseractOcr, BigImagesAreShrunkAndBoxesMappedBack) {
  test::TextCanvas c(2400, 600);
  c.fill({255, 255, 255});
  test::TextStyle s;
  s.size_px = 120;
  const auto b = c.text("HELLO WORLD", 1100, 200, s);
  ocr::OcrOptions o;
  o.max_side = 1200;  // read at half size
  OcrEngine engine(o);
  const OcrResult r = engine.recognize(c.image());
  EXPECT_EQ(r.width, 2400);
  EXPECT_TRUE(has_line(r, "HELLO WORLD", b, 10)) << all_text(r);
}

TEST(TesseractOcr, TiltedTextAndExtraAngles) {
  test::TextCanvas c(384, 384);
  c.fill({245, 245, 240});
  test::TextStyle s;
  s.size_px = 28;
  s.angle_deg = 22;
  c.text("Harbor Lights", 60, 250, s);
  ocr::OcrOptions o;
  o.extra_angles = {-22, 22};
  OcrEngine engine(o);
  const OcrResult r = engine.recognize(c.image());
  bool found = false;
  for (const auto& l : r.lines) {
    found = found || l.text == "Harbor Lights";
    for (int k = 0; k < 4; ++k) EXPECT_GE(l.box[size_t(k)], 0);
    EXPECT_LE(l.box[2], 384);
    EXPECT_LE(l.box[3], 384);
  }
  EXPECT_TRUE(found) << all_text(r);
  o.extra_angles = {0};
  EXPECT_THROW(OcrEngine{o}, Error);
}

TEST(TesseractOcr, LanguageDataErrorsNameTheFile) {
  const std::string dir = test::temp_dir("tessdata_empty");
  const char* old = std::getenv("TESSDATA_PREFIX");
  const std::string saved = old ? old : "";
  ::setenv("TESSDATA_PREFIX", dir.c_str(), 1);
  try {
    OcrEngine e;
    ADD_FAILURE() << "no error for an empty TESSDATA_PREFIX";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/eng.traineddata"), std::string::npos) << e.what();
  }
  if (old)
    ::setenv("TESSDATA_PREFIX", saved.c_str(), 1);
  else
    ::unsetenv("TESSDATA_PREFIX");
  ocr::OcrOptions o;
  o.lang = "xx_none";
  try {
    OcrEngine e(o);
    ADD_FAILURE() << "no error for a missing language";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("xx_none.traineddata"), std::string::npos) << e.what();
  }
  o.lang = "../../etc/passwd";
  EXPECT_THROW(OcrEngine{o}, Error);
  o.lang = "eng+";
  EXPECT_THROW(OcrEngine{o}, Error);
}

TEST(TesseractOcr, RejectsBadImages) {
  OcrEngine engine;
  EXPECT_THROW(engine.recognize(Image{}), Error);
  Image bad;
  bad.width = 10;
  bad.height = 10;
  bad.rgb.resize(10);
  EXPECT_THROW(engine.recognize(bad), Error);
}

// One engine per thread, each thread one core: Tesseract's OpenMP regions run
// serial (no pool of extra threads appears) and results do not depend on the
// thread. Also prints the time per 384x384 image.
TEST(TesseractOcr, ThreadsAndTiming) {
  std::vector<Image> images;
  for (int i = 0; i < 4; ++i) images.push_back(test::make_sample(99, i).image);
  OcrEngine engine;
  const int before = thread_count();
  std::vector<std::string> one;
  const auto t0 = std::chrono::steady_clock::now();
  for (const Image& img : images) one.push_back(ocr::ocr_to_json(engine.recognize(img)).dump());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(thread_count(), before) << "Tesseract started threads of its own";
  std::printf("OCR: %.3f s per 384x384 image (one thread)\n", secs / double(images.size()));
  std::vector<std::string> two(images.size());
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      OcrEngine e;
      for (size_t i = size_t(t); i < images.size(); i += 2) two[i] = ocr::ocr_to_json(e.recognize(images[i])).dump();
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(one, two);
}

}  // namespace
}  // namespace dsvl2
