// libFuzzer target for the grounding output parser and the runaway guard.
// Any crash, sanitizer report or exception is a bug: parse_grounding must
// accept every byte string. Accepted boxes are re-checked (0-999, pixels
// inside [0, size]) and round-tripped through format_boxes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "ground/grounding_parser.h"
#include "ground/prompts.h"

using namespace dsvl2::ground;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  // First bytes choose the image size and the guard's piece length.
  const int width = 1 + data[0] * 37, height = 1 + data[1] * 23;
  const size_t piece = 1 + data[2] % 16;
  std::string_view text(reinterpret_cast<const char*>(data + 3), size - 3);

  ParseResult r = parse_grounding(text, width, height);
  for (const auto& o : r.objects) {
    for (int k = 0; k < 4; ++k) {
      if (o.box[k] < 0 || o.box[k] > 999) abort();
      int limit = (k % 2 == 0) ? width : height;
      if (o.box_px[k] < 0 || o.box_px[k] > limit) abort();
    }
    // Round trip: the official serialisation of an accepted box parses back to it.
    std::string again = std::string(kDetOpen) + format_boxes({o.box}) + std::string(kDetClose);
    ParseResult r2 = parse_grounding(again, width, height);
    if (r2.objects.size() != 1 || !r2.errors.empty() || r2.objects[0].box != o.box) abort();
  }
  // The JSON output is always valid JSON (invalid UTF-8 replaced).
  std::string json = to_json_string(r);
  if (!nlohmann::json::accept(json)) abort();

  RunawayGuard guard;
  for (size_t i = 0; i < text.size(); i += piece)
    if (guard.feed(text.substr(i, piece))) break;
  return 0;
}
