// The input side of `dsvl2 recaption`: what one input record looks like,
// whatever its source (a WebDataset tar, a JSONL manifest, an img2dataset
// folder), and the limits that keep a hostile input from exhausting memory.
//
//   for (const InputUnit& u : expand_inputs({"data-{00000..00099}.tar"})) {  // dataset/inputs.h
//     SampleReader r(u);                                                     // dataset/sample_reader.h
//     for (Sample s; r.next(s);) {
//       if (!s.error.empty()) { record_failure(u.stem, s.key, s.error); continue; }
//       caption(s.image_bytes, s.alt_text, s.source_meta);
//     }
//   }
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace dsvl2::dataset {

// One input record.
struct Sample {
  std::string key;                      // WebDataset key ("a/b/000123"), manifest key, or folder path without extension
  std::string image_name;               // tar member name or file path, for messages and the extension
  std::string image_bytes;              // the encoded image, "" when missing (then `error` says so)
  std::optional<std::string> alt_text;  // KEY.txt or manifest "alt_text", raw bytes: may be invalid UTF-8
  nlohmann::json source_meta;           // KEY.json object or the manifest line's extra fields; null when none
  std::string error;                    // non-empty: the record is broken; the message names the member or line
};

enum class InputKind { kTar, kManifest, kFolder };

// One unit of input, which becomes one output shard.
struct InputUnit {
  std::string path;
  std::string stem;  // file name without extension; the folder's name for a folder
  InputKind kind = InputKind::kTar;
};

struct ReadLimits {
  int64_t max_member_bytes = int64_t(64) << 20;  // one image: a tar member or a file (larger ones are skipped unread)
  int64_t max_meta_bytes = int64_t(4) << 20;     // one KEY.txt / KEY.json member or file
  int64_t max_members = 10'000'000;              // tar members, folder files or manifest lines in one unit
  int64_t max_line_bytes = int64_t(1) << 20;     // one manifest line
  int64_t max_array_manifest_bytes = int64_t(256) << 20;  // a .json manifest written as one JSON array
  int max_json_depth = 64;                       // nesting of KEY.json / a manifest line
};

}  // namespace dsvl2::dataset
