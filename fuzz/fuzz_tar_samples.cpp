// libFuzzer target for the recaption pipeline's input readers
// (dataset::SampleReader): the bytes are written to a scratch file, read as a
// WebDataset tar (x.tar), then as a JSON Lines manifest (x.jsonl), under
// small limits so that every limit is reachable. Build: cmake --preset fuzz &&
// cmake --build build-fuzz --target fuzz_tar_samples; run:
// build-fuzz/fuzz/fuzz_tar_samples -dict=fuzz/tar.dict -timeout=10 -rss_limit_mb=2048 CORPUS/ fuzz/corpus_tar
// The constructor may throw only dsvl2::Error, next() never throws; a crash,
// sanitizer report, other exception, hang or a sample breaking the invariants
// below (checked with __builtin_trap) is a bug. The scratch folder holds two
// images a manifest may name: a.jpg (small) and big.jpg (over the limit), and
// a folder, dir.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_set>

#include "core/error.h"
#include "core/utf8.h"
#include "dataset/inputs.h"
#include "dataset/sample.h"
#include "dataset/sample_reader.h"

namespace {

using namespace dsvl2;
using namespace dsvl2::dataset;
namespace fs = std::filesystem;

std::string g_dir;
ReadLimits g_lim;

void remove_dir() {
  std::error_code ec;
  fs::remove_all(g_dir, ec);
}

void write_file(const std::string& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) abort();
  for (size_t at = 0; at < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + at, bytes.size() - at);
    if (n <= 0) abort();
    at += size_t(n);
  }
  ::close(fd);
}

// One scratch folder per process (the pid in its name, so -jobs=N runs apart).
void make_scratch_dir() {
  std::string tmpl = (fs::temp_directory_path() / ("dsvl2-fuzz-tar-" + std::to_string(getpid()) + "-XXXXXX")).string();
  if (!mkdtemp(tmpl.data())) abort();
  g_dir = tmpl;
  std::atexit(remove_dir);
  write_file(g_dir + "/a.jpg", "\xFF\xD8\xFF\xE0 not really a JPEG \xFF\xD9");
  write_file(g_dir + "/big.jpg", std::string(size_t(g_lim.max_member_bytes) + 1, 'x'));
  fs::create_directory(g_dir + "/dir");
}

bool all_zero(std::string_view s) { return s.find_first_not_of('\0') == std::string_view::npos; }

// Reads every sample of `unit` and checks each; returns how many there were.
size_t read_all(const InputUnit& unit) {
  std::unique_ptr<SampleReader> reader;
  try {
    reader = std::make_unique<SampleReader>(unit, g_lim);
  } catch (const Error&) {
    return 0;  // the unit could not be opened at all (the file is there: not expected, but allowed)
  }
  const bool tar = unit.kind == InputKind::kTar;
  // Each tar member or manifest record gives at most one sample, then one
  // error sample may end the unit: more means the reader loops.
  const size_t max_samples = size_t(g_lim.max_members) + 1;
  const int64_t max_alt = tar ? g_lim.max_meta_bytes : std::max(g_lim.max_line_bytes, g_lim.max_array_manifest_bytes);
  std::unordered_set<std::string> ok_keys;
  size_t n = 0;
  for (Sample s; reader->next(s);) {
    if (++n > max_samples) __builtin_trap();
    if (s.key.empty()) __builtin_trap();
    if (!utf8::is_valid(s.error)) __builtin_trap();
    if (int64_t(s.image_bytes.size()) > g_lim.max_member_bytes) __builtin_trap();
    if (s.alt_text && int64_t(s.alt_text->size()) > max_alt) __builtin_trap();
    if (!s.source_meta.is_null() && !s.source_meta.is_object()) __builtin_trap();
    // Strict dump: the metadata came from a JSON parser and must be valid UTF-8.
    (void)s.source_meta.dump();
    if (!s.error.empty()) {
      // An error sample carries its key, message and image name only.
      if (!s.image_bytes.empty() || s.alt_text || !s.source_meta.is_null()) __builtin_trap();
    } else {
      if (s.image_name.empty()) __builtin_trap();
      // Duplicate keys are error samples: the good ones are unique.
      if (!ok_keys.insert(s.key).second) __builtin_trap();
    }
  }
  Sample after;
  if (reader->next(after)) __builtin_trap();  // the end stays the end
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_lim.max_member_bytes = 1024;
  g_lim.max_meta_bytes = 512;
  g_lim.max_members = 32;
  g_lim.max_line_bytes = 1024;
  g_lim.max_array_manifest_bytes = 8192;
  g_lim.max_json_depth = 8;
  make_scratch_dir();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  const std::string tar = g_dir + "/x.tar";
  write_file(tar, bytes);
  const size_t n = read_all(InputUnit{tar, "x", InputKind::kTar});
  if (size == 0 && n != 1) __builtin_trap();                        // a zero-length file is one error sample
  if (size == 1024 && all_zero(bytes) && n != 0) __builtin_trap();  // only the end marker: no samples

  const std::string manifest = g_dir + "/x.jsonl";
  write_file(manifest, bytes);
  read_all(InputUnit{manifest, "x", InputKind::kManifest});
  return 0;
}
