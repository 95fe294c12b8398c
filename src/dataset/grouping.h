// Internal to dataset/: WebDataset's member conventions, shared by the tar
// and folder readers, and the small helpers every reader uses.
//
// A member "a/b/000123.seg.png" has key "a/b/000123" and extension "seg.png":
// the key is the path up to the first '.' of the base name (webdataset's
// base_plus_ext). Members of one key are collected by a SampleBuilder, which
// turns them into one Sample (or an error sample) when the key ends.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "dataset/sample.h"

namespace dsvl2::dataset::detail {

struct KeyExt {
  std::string key, ext;
};
// Splits a member name after dropping leading "./" parts. nullopt when
// webdataset skips the member: no '.' in the base name, or a base name that
// starts with '.', or a top-level "__name__" (webdataset's metadata files).
std::optional<KeyExt> split_key(std::string_view name);

// An absolute path or a ".." component: never trusted, even only as a key.
bool unsafe_member_path(std::string_view name);

enum class MemberRole { kImage, kText, kJson, kOther };
MemberRole member_role(std::string_view ext);  // jpg/jpeg/png/webp/bmp/gif, txt, json (any case)

// Parses JSON nested at most `max_depth` deep, else nullopt with `why` set.
std::optional<nlohmann::json> parse_json(std::string_view text, int max_depth, std::string& why);
// The same, for a KEY.json member or a manifest line: only an object will do.
std::optional<nlohmann::json> parse_json_object(std::string_view text, int max_depth, std::string& why);

// Reads a regular file of at most `max_bytes` (checked before reading, and
// again while reading, as the file may grow). On failure returns false with
// `why` set; never throws for I/O errors. Opens with O_NONBLOCK so that a FIFO
// cannot block the reader.
// Opens `path` for reading if it is a regular file (O_NONBLOCK, so a FIFO
// planted in a dataset cannot block the open); sets *size. Returns the
// descriptor, or -1 with `why`.
int open_regular_file(const std::string& path, int64_t* size, std::string& why);
bool read_file_bounded(const std::string& path, int64_t max_bytes, std::string& out, std::string& why);

// The members of one key, turned into a Sample by finish().
class SampleBuilder {
 public:
  SampleBuilder(std::string key, const ReadLimits& limits) : limits_(limits) { sample_.key = std::move(key); }
  const std::string& key() const { return sample_.key; }
  bool failed() const { return !sample_.error.empty(); }
  // The first error wins: later members of a failed key are skipped unread.
  void fail(const std::string& why) {
    if (sample_.error.empty()) sample_.error = why;
  }
  // The same, but kept beside an earlier error (the tar broke inside a key
  // that had already failed).
  void fail_also(const std::string& why) { sample_.error += (sample_.error.empty() ? "" : "; then ") + why; }
  // Adds a member of role kImage, kText or kJson, read whole.
  void add(MemberRole role, const std::string& name, std::string bytes);
  // The sample: an error sample when it failed, has no image, or its JSON is bad.
  Sample finish();

 private:
  const ReadLimits& limits_;
  Sample sample_;
  std::string text_name_, json_name_, json_bytes_;
  bool has_image_ = false, has_text_ = false, has_json_ = false;
};

// Where each reader hands out its samples (SampleReader owns one).
class Source {
 public:
  virtual ~Source() = default;
  virtual bool next(Sample& out) = 0;
};
std::unique_ptr<Source> open_tar(const InputUnit& unit, const ReadLimits& limits);       // tar_source.cpp
std::unique_ptr<Source> open_manifest(const InputUnit& unit, const ReadLimits& limits);  // manifest_source.cpp
std::unique_ptr<Source> open_folder(const InputUnit& unit, const ReadLimits& limits);    // folder_source.cpp

}  // namespace dsvl2::dataset::detail
