// One record of a recaption job as it moves through the stages: what the
// input gave, what preparation found (pixels, EXIF meta, OCR, the prompt
// plan), what the model wrote and what post-processing made of it. Its JSON
// (record_json.h) is the job's output.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "image/image.h"
#include "ocr/ocr_check.h"
#include "ocr/tesseract_ocr.h"
#include "recaption/postprocess.h"
#include "recaption/prompts.h"

namespace dsvl2::recaption {

enum class RecaptionTask { kCaption, kVqa };

struct Record {
  int64_t item = 0;              // position in its input unit (the ledger's item)
  std::string key, image_name, source;
  std::string member;            // its tar member stem, unique in the unit (record_json.h)
  std::string error;             // non-empty: the record failed
  // Input.
  std::string image_bytes, image_ext;  // kept only for --copy-images
  Image image;
  std::optional<std::string> alt_text;
  nlohmann::json source_meta;    // the input's KEY.json or manifest fields
  std::string question, original_answer;  // --task vqa
  // Preparation.
  nlohmann::json meta = nlohmann::json::object();  // EXIF (dataset::exif_meta)
  ocr::OcrResult ocr;
  bool alt_text_truncated = false;
  PromptPlan plan;
  std::string prompt;
  // Generation and post-processing.
  std::map<std::string, double> screen;  // "safety", "watermark": P(yes)
  std::string raw_caption, caption, finish_reason;
  int caption_tokens = 0, prompt_tokens = 0;
  Redaction pii;
  std::string style;
  std::optional<ocr::OcrCheck> ocr_check;
  std::optional<int> quality;
  std::string quality_answer, quality_error, filtered;  // filtered: why the record is marked as dropped
  struct Timings {
    double prepare_s = 0, ocr_s = 0, encode_s = 0, caption_s = 0, quality_s = 0;
  } timings;
  bool complete = false;         // every stage done: ready to be written
};

}  // namespace dsvl2::recaption
