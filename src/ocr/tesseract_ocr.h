// OCR with Tesseract 5 (LSTM engine, C++ API), for checking the text that
// captions quote against the text in the image (ocr_check.h, docs/ocr-check.md).
//
//   ocr::OcrEngine engine;                       // one per thread: not thread-safe
//   ocr::OcrResult r = engine.recognize(img);    // lines of words, boxes in img's pixels
//   nlohmann::json j = ocr::ocr_to_json(r);
//
// Language data: $TESSDATA_PREFIX when set (the folder holding
// <lang>.traineddata), else Debian's /usr/share/tesseract-ocr/5/tessdata (and
// the 4.00 and /usr/share/tessdata layouts). A missing file is an Error that
// names it.
//
// What recognize() does (each choice measured on the rendered set of
// tests/ocr; numbers in docs/ocr-check.md):
//  * grey = luma of the RGB image; an image whose longer side is under
//    upscale_below is read at 2x (Tesseract's LSTM misreads x-heights under
//    ~10 px), one over max_side or max_pixels is shrunk to fit (box average);
//  * two passes: Tesseract's global Otsu threshold (flat and coloured
//    backgrounds), then its local Sauvola threshold (gradients, uneven light,
//    where one threshold for the whole image loses half of it). Light text on
//    dark needs no pass of its own: Tesseract retries dim lines inverted;
//  * the passes' lines are merged by region: where lines overlap, the pass
//    that reads more letters (weighted by confidence) wins, and a line that
//    repeats part of a better line it overlaps is dropped;
//  * words under min_conf and lines with no letter or digit are dropped; text
//    is valid UTF-8 without control characters; boxes are in the input's pixels.
// Tilted text: read up to ~10 degrees; extra_angles adds passes over rotated
// copies for more. Threads: Tesseract's LSTM runs OpenMP regions;
// recognize() makes the calling thread's regions serial (max-active-levels 0,
// as OMP_THREAD_LIMIT=1 would, which libgomp reads only at load), so N
// engines on N threads use N cores. Tesseract's diagnostics go to /dev/null
// and Leptonica's message threshold is set to none (process-wide).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "image/image.h"

namespace dsvl2::ocr {

struct OcrWord {
  std::string text;          // UTF-8
  std::array<int, 4> box{};  // x1, y1, x2, y2 in pixels of the input image, exclusive ends
  float conf = 0;            // Tesseract's confidence, 0..100
};

struct OcrLine {
  std::string text;  // the kept words joined by one space
  std::array<int, 4> box{};
  float conf = 0;      // mean of the kept words' confidences, 0..100
  bool small = false;  // box height or width < min_text_px: PixelProse dropped images with such text
  std::vector<OcrWord> words;
};

struct OcrResult {
  std::vector<OcrLine> lines;  // Tesseract's reading order (of the first pass; regions only later passes read follow)
  int width = 0, height = 0;   // of the input image (not serialised)
};

struct OcrOptions {
  std::string lang = "eng";  // Tesseract language(s), e.g. "eng" or "eng+deu"
  float min_conf = 30;       // words below this confidence (0..100) are dropped as noise
  int min_text_px = 15;      // OcrLine::small below this height or width (PixelProse's CRAFT rule)
  bool sauvola_pass = true;  // a second pass with local (Sauvola) thresholds: gradients, uneven light
  // Also read the image rotated by these angles (degrees, counter-clockwise),
  // e.g. {-20, 20} for tilted signs: Tesseract reads text tilted up to ~10
  // degrees. Each angle costs as much as the unrotated passes.
  std::vector<double> extra_angles;
  int upscale_below = 1000;         // longer side below this: read at 2x
  int max_side = 4096;              // longer side above this: shrunk to it
  int64_t max_pixels = 16'000'000;  // and to this many pixels (Tesseract's time and memory grow with area)
};

class OcrEngine {
 public:
  explicit OcrEngine(const OcrOptions& options = {});  // throws Error: missing language data, bad options
  ~OcrEngine();
  OcrEngine(const OcrEngine&) = delete;
  OcrEngine& operator=(const OcrEngine&) = delete;

  OcrResult recognize(const Image& rgb);  // throws Error on an empty or inconsistent image

  const OcrOptions& options() const { return options_; }

 private:
  struct Impl;
  OcrOptions options_;
  std::unique_ptr<Impl> impl_;
};

// The folder that holds <lang>.traineddata for every language of `lang`
// ("eng+deu"); throws Error naming the first missing file.
std::string find_tessdata(const std::string& lang);

// {"lines":[{"text","box":[x1,y1,x2,y2],"conf","small"}]}: conf 0..100 as in
// OcrLine, rounded to 0.1; the words are not written. A CLI contract.
nlohmann::json ocr_to_json(const OcrResult& r);
// Strict inverse: every key present and typed, boxes ordered, conf in 0..100,
// valid UTF-8; throws Error otherwise. Words come back empty.
OcrResult ocr_from_json(const nlohmann::json& j);

}  // namespace dsvl2::ocr
