// ocr_to_json / ocr_from_json (tesseract_ocr.h): the "ocr" object of the
// ocr-check output, a CLI contract.
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "ocr/tesseract_ocr.h"
#include "ocr/text_match.h"

namespace dsvl2::ocr {

nlohmann::json ocr_to_json(const OcrResult& r) {
  nlohmann::json lines = nlohmann::json::array();
  for (const OcrLine& l : r.lines)
    lines.push_back({{"text", l.text},
                     {"box", {l.box[0], l.box[1], l.box[2], l.box[3]}},
                     {"conf", std::round(double(l.conf) * 10) / 10},
                     {"small", l.small}});
  return {{"lines", std::move(lines)}};
}

OcrResult ocr_from_json(const nlohmann::json& j) {
  DSVL2_REQUIRE(j.is_object() && j.contains("lines") && j["lines"].is_array(), "OCR JSON: want {\"lines\": [...]}");
  OcrResult r;
  for (const auto& l : j["lines"]) {
    DSVL2_REQUIRE(l.is_object() && l.size() == 4, "OCR JSON: a line wants exactly text, box, conf, small");
    DSVL2_REQUIRE(l.contains("text") && l["text"].is_string(), "OCR JSON: a line's text must be a string");
    DSVL2_REQUIRE(l.contains("box") && l["box"].is_array() && l["box"].size() == 4,
                  "OCR JSON: a line's box must be [x1,y1,x2,y2]");
    DSVL2_REQUIRE(l.contains("conf") && l["conf"].is_number(), "OCR JSON: a line's conf must be a number");
    DSVL2_REQUIRE(l.contains("small") && l["small"].is_boolean(), "OCR JSON: a line's small must be true or false");
    OcrLine line;
    line.text = l["text"].get<std::string>();
    DSVL2_REQUIRE(valid_utf8(line.text), "OCR JSON: a line's text is not valid UTF-8");
    for (int k = 0; k < 4; ++k) {
      const auto& v = l["box"][size_t(k)];
      DSVL2_REQUIRE(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= (1 << 30),
                    "OCR JSON: box coordinates must be integers in 0..2^30");
      line.box[size_t(k)] = v.get<int>();
    }
    DSVL2_REQUIRE(line.box[0] <= line.box[2] && line.box[1] <= line.box[3], "OCR JSON: box must have x1<=x2, y1<=y2");
    const double conf = l["conf"].get<double>();
    DSVL2_REQUIRE(conf >= 0 && conf <= 100, "OCR JSON: conf %g outside 0..100", conf);
    line.conf = float(conf);
    line.small = l["small"].get<bool>();
    r.lines.push_back(std::move(line));
  }
  return r;
}

}  // namespace dsvl2::ocr
