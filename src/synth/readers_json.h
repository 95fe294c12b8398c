// Streaming JSON for the annotation readers (internal to synth/). Annotation
// files reach several GB (COCO train, Objects365, Visual Genome), so no reader
// builds the DOM of a whole file: nlohmann's SAX interface streams it, and a
// DOM is built only for one record at a time (one element of the big arrays).
//
// Why nlohmann SAX and not simdjson: nlohmann-json is already a dependency
// (Debian 12: 3.11.2), so this adds no package. simdjson's On-Demand API is
// faster, but Debian 12 ships libsimdjson-dev 3.0.1 (the upstream API has
// changed across major versions since), and parsing is not our bottleneck:
// decoding masks and drawing are.
//
// Limits keep a hostile file from exhausting memory. nlohmann's lexer buffers
// each string and number whole, and the whitespace and brackets between two
// values, before any SAX callback sees them, so those limits are enforced on
// the bytes fed to it (GuardedInput in readers_json.cpp): an over-long string
// reaches the parser cut short and its record is rejected; an over-long number
// or run of brackets stops the read.
//
//   stream_json(path, {"images", "annotations"}, [&](JsonRecord& r) {
//     if (!r.problem.empty()) { ... record r.index of r.section was rejected ... }
//     else use(r.value);
//     return true;  // false stops reading
//   });
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "synth/annotations.h"

namespace dsvl2::synth {

struct JsonLimits {
  size_t max_string_bytes = 8u << 20;  // one string: a compressed RLE of a large mask, a long caption
  size_t max_token_chars = 512;        // one number or literal
  size_t max_gap_bytes = 1u << 20;     // whitespace and brackets between two values
  int max_record_depth = 16;           // nesting inside one record (Flickr30k boxes need 4)
  size_t max_record_values = 4u << 20; // values in one record (uncompressed RLE counts are the largest)
  size_t max_records = 200'000'000;    // records in the whole file
};

// One element of a streamed array.
struct JsonRecord {
  std::string section;   // the top-level key of its array, "" for a top-level array
  size_t index = 0;      // its position in that array
  nlohmann::json value;  // null when `problem` is set
  std::string problem;   // why it was not built (a limit it broke), "" when fine
};

struct JsonStreamResult {
  bool top_is_object = false;
  size_t records = 0;    // records passed to the callback
  std::string stopped;   // why reading stopped before the end (syntax error, limit), or ""
};

// Streams `path`. A top-level array: each element is a record. A top-level
// object: each element of the arrays under `sections` is a record; other
// members are parsed and skipped. `on_top_key` (optional) sees each top-level
// key as it is read; returning false stops the read. Throws Error when the
// file cannot be read or its top level is not an object or array, or a
// section is not an array.
using JsonRecordFn = std::function<bool(JsonRecord&)>;
using JsonKeyFn = std::function<bool(const std::string&)>;
JsonStreamResult stream_json(const std::string& path, const std::vector<std::string>& sections,
                             const JsonRecordFn& on_record, const JsonKeyFn& on_top_key = nullptr,
                             const JsonLimits& limits = {});

// After a stream: a read that stopped early keeps what it read and notes it as
// an error; one that read nothing throws Error (the file is not usable).
void finish_stream(const std::string& path, const JsonStreamResult& r, AnnotationSet& set);

// Field access for one record (readers_fields.cpp); each throws Error naming
// the field.
int64_t json_int(const nlohmann::json& rec, const char* key);
// An image width or height: an integer in 0..kMaxImageSide. Throws Error.
inline constexpr int kMaxImageSide = 1 << 20;
int json_dim(const nlohmann::json& rec, const char* key);
double json_number(const nlohmann::json& rec, const char* key);
std::string json_string(const nlohmann::json& rec, const char* key);
// A finite number from a JSON value (`what` names it in the error).
double json_finite(const nlohmann::json& v, const std::string& what);

// The set's image list from an id-keyed map, in id order, objects by id.
std::vector<AnnotatedImage> sorted_images(std::map<int64_t, AnnotatedImage>&& by_id);

}  // namespace dsvl2::synth
