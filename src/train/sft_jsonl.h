// Supervised training data from JSONL, one conversation per line, in either of
// two forms (docs/train-data.md):
//  * official / `dsvl2 synth`: "messages" whose entries carry their own
//    "images" (roles "<|User|>"/"<|Assistant|>" or user/assistant/system);
//    each message has exactly one <image> tag per image it carries.
//  * ms-swift: "messages" plus top-level "images" and optional "objects"
//    ({"ref", "bbox", "bbox_type", "image_id"}). As ms-swift's deepseek_vl2
//    template does, each <image> stands for "<image>\n", and with no tag at all
//    the tags go in front of the first message. <ref-object> and <bbox> become
//    <|ref|>NAME<|/ref|> and <|det|>[[x1, y1, x2, y2]]<|/det|> on DeepSeek-VL2's
//    0-999 grid (adjacent <bbox>es share one <|det|> block).
// Relative image paths are resolved against the JSONL file's folder. The file
// is streamed; a first pass can record where the good lines are (SftLineRef)
// so that each epoch reads them back in any order with read_at().
//
//   SftJsonlReader r("train.jsonl", tok, model.processor(), {.limits = {.max_length = 4096}});
//   while (auto s = r.next()) train_on(*s);
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "image/image.h"
#include "io/model_config.h"
#include "text/chat_template.h"
#include "train/sft_sample.h"

namespace dsvl2 {

class Tokenizer;

// ms-swift's "objects" member.
struct SwiftObjects {
  enum class BoxType { kReal, kNorm1, kNorm1000 };  // pixels; 0-1; 0-1000
  std::vector<std::string> ref;
  std::vector<std::array<double, 4>> bbox;  // x1, y1, x2, y2 (swapped into order, as ms-swift does)
  BoxType bbox_type = BoxType::kReal;
  std::vector<int> image_id;  // per box, which image a kReal box is on; empty: image 0
};

// One line, parsed, before any file is read.
struct SftRecord {
  std::vector<ChatMessage> messages;  // <image> tags final; ms-swift grounding placeholders still in
  std::vector<std::string> images;    // paths in <image> order
  std::optional<SwiftObjects> objects;  // set in the ms-swift form (empty without "objects")
};

// Parses one JSONL line of either form; `base_dir` resolves relative image
// paths. Throws Error (the message names neither file nor line).
SftRecord parse_sft_line(std::string_view line, const std::string& base_dir);

// Replaces ms-swift's <ref-object> and <bbox> in all messages, in order. Their
// counts must equal the ref and bbox counts. image_sizes[i] = (width, height)
// of image i, for kReal boxes. Throws Error.
void apply_grounding(SftRecord& r, const std::vector<std::pair<int, int>>& image_sizes);

enum class BadLinePolicy {
  kStop,  // the first bad line throws Error "FILE:LINE: reason"
  kSkip,  // bad lines are counted, the first few reasons kept, and reading goes on
};

struct SftReadOptions {
  SftLimits limits;  // max_length
  BadLinePolicy on_bad_line = BadLinePolicy::kStop;
  size_t max_reasons = 5;                     // kSkip: reasons kept
  size_t max_line_bytes = size_t(64) << 20;   // a longer line is bad (and is not held in memory)
  DecodeLimits decode;
};

// Where a good line is, for reading it again.
struct SftLineRef {
  uint64_t offset = 0;  // of the line's first byte
  int64_t line = 0;     // 1-based
  int64_t length = 0;   // tokens of its sample
};

struct SftBadLines {
  int64_t count = 0;
  std::vector<std::string> first;  // "FILE:LINE: reason", at most max_reasons
};

class SftJsonlReader {
 public:
  // Opens the file (Error if it cannot be read). tok and proc must outlive the reader.
  SftJsonlReader(std::string path, const Tokenizer& tok, const ProcessorConfig& proc, SftReadOptions opt = {});
  ~SftJsonlReader();
  SftJsonlReader(const SftJsonlReader&) = delete;
  SftJsonlReader& operator=(const SftJsonlReader&) = delete;

  // The next good sample in file order; nullopt at the end. Blank lines are
  // skipped. preprocess=false: ids and labels only (images decoded for their
  // sizes, not resampled), for an indexing pass.
  std::optional<SftSample> next(bool preprocess = true);
  // The line of the sample next() returned last.
  const SftLineRef& last() const { return last_; }
  // Back to the first line; the bad-line report starts over.
  void rewind();

  // The sample of an indexed line. Safe to call from several threads at once
  // (pread, no shared cursor). Always throws on a bad line (policy aside): the
  // line was good when it was indexed, so the file has changed.
  SftSample read_at(const SftLineRef& ref, bool preprocess = true) const;

  const SftBadLines& bad_lines() const { return bad_; }
  int64_t lines_read() const { return line_; }
  const std::string& path() const { return path_; }

 private:
  bool read_line(std::string& out, bool& too_long, uint64_t& offset);
  SftSample build(std::string_view line, int64_t line_no, bool preprocess) const;

  std::string path_, base_dir_;
  const Tokenizer& tok_;
  const ProcessorConfig& proc_;
  SftReadOptions opt_;
  int fd_ = -1;
  std::vector<char> buf_;
  size_t buf_pos_ = 0, buf_len_ = 0;
  uint64_t buf_offset_ = 0;  // file offset of buf_[0]
  int64_t line_ = 0;
  SftLineRef last_;
  SftBadLines bad_;
};

// One pass of next(false) over the whole file: every good line and the report.
struct SftIndex {
  std::vector<SftLineRef> lines;
  SftBadLines bad;
  int64_t total_lines = 0;
};
SftIndex index_sft_jsonl(const std::string& path, const Tokenizer& tok, const ProcessorConfig& proc,
                         const SftReadOptions& opt = {});

}  // namespace dsvl2
