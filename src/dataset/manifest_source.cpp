// Manifests: JSON Lines read line by line in bounded memory (a line over the
// limit is skipped to its end, never held whole), or, for a .json file whose
// first character is '[', one JSON array read whole under its own limit.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <unordered_set>

#include "core/error.h"
#include "dataset/grouping.h"
#include "dataset/text_util.h"

namespace dsvl2::dataset::detail {

namespace {

bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

class ManifestSource : public Source {
 public:
  ManifestSource(const InputUnit& unit, const ReadLimits& limits) : path_(unit.path), limits_(limits) {
    dir_ = std::filesystem::path(path_).parent_path().string();
    std::string why;
    int64_t size = 0;
    fd_ = open_regular_file(path_, &size, why);
    if (fd_ < 0) DSVL2_FAIL("%s: %s", path_.c_str(), why.c_str());
    // The first non-blank byte (after a UTF-8 byte order mark) picks the form;
    // the peek reads at most one line's worth and consumes nothing.
    if (!fill()) return;
    const size_t start = buf_.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
    size_t i = start;  // pos_ stays 0 while peeking, so fill() only appends
    for (;;) {
      if (i == buf_.size()) {
        if (int64_t(i) >= limits_.max_line_bytes || !fill()) break;
      } else if (blank(buf_[i])) {
        i++;
      } else {
        break;
      }
    }
    pos_ = start;
    // Only a .json manifest may be one JSON array; in a .jsonl file a first
    // line that is an array is a bad line like any other.
    const bool json_file = path_.size() >= 5 && path_.compare(path_.size() - 5, 5, ".json") == 0;
    if (json_file && i < buf_.size() && buf_[i] == '[') read_array();
  }

  ~ManifestSource() override { ::close(fd_); }

  bool next(Sample& out) override {
    if (array_) {
      if (done_ || item_ == items_.size() || count_record()) return take(out);
      const size_t n = ++item_;
      out = make(std::move(items_[n - 1]), "", strformat("item %zu", n), strformat("item-%zu", n));
      return true;
    }
    std::string line;
    while (!done_) {
      bool too_long = false;
      if (!read_line(line, too_long)) break;
      line_no_++;
      size_t b = 0, e = line.size();
      while (b < e && blank(line[b])) b++;
      while (e > b && blank(line[e - 1])) e--;
      if (b == e && !too_long) continue;
      if (count_record()) return take(out);
      const std::string where = strformat("line %lld", (long long)line_no_);
      const std::string fallback = strformat("line-%lld", (long long)line_no_);
      if (too_long) {
        out.key = fallback;
        out.error = strformat("%s: over the limit of %lld bytes", where.c_str(), (long long)limits_.max_line_bytes);
        return true;
      }
      std::string why;
      std::optional<nlohmann::json> rec = parse_json_object(std::string_view(line).substr(b, e - b),
                                                            limits_.max_json_depth, why);
      out = make(rec ? std::move(*rec) : nlohmann::json(), why, where, fallback);
      return true;
    }
    return take(out);
  }

 private:
  // Appends the next chunk of the file; false at its end or on a read error
  // (then the error is queued as the last sample).
  bool fill() {
    if (pos_ > 0 && pos_ == buf_.size()) buf_.clear(), pos_ = 0;
    char chunk[64 * 1024];
    for (;;) {
      const ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) finish_with_error(strformat("read failed: %s", std::strerror(errno)));
      if (n <= 0) return false;
      buf_.append(chunk, size_t(n));
      return true;
    }
  }

  // The next line without its '\n'; a line over the limit comes back empty
  // with too_long set, its bytes skipped. False at the end of the file.
  bool read_line(std::string& line, bool& too_long) {
    line.clear();
    bool any = false;
    for (;;) {
      if (pos_ == buf_.size() && !fill()) return any && !done_;
      any = true;
      const size_t nl = buf_.find('\n', pos_);
      const size_t end = nl == std::string::npos ? buf_.size() : nl;
      if (!too_long) {
        if (int64_t(line.size() + end - pos_) > limits_.max_line_bytes) {
          too_long = true;
          line.clear();
        } else {
          line.append(buf_, pos_, end - pos_);
        }
      }
      pos_ = end;
      if (nl != std::string::npos) {
        pos_++;
        return true;
      }
    }
  }

  void read_array() {
    array_ = true;
    std::string text, why;
    if (!read_file_bounded(path_, limits_.max_array_manifest_bytes, text, why))
      return finish_with_error("JSON array manifest: " + why);
    if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
    // One more level than a line may have: the array itself.
    std::optional<nlohmann::json> value = parse_json(text, limits_.max_json_depth + 1, why);
    if (!value) return finish_with_error("JSON array manifest: " + why);
    items_ = std::move(*value);
  }

  // One record into a sample: the key first (so that an error names it),
  // then the fields, then the image read from disk.
  Sample make(nlohmann::json rec, const std::string& parse_error, const std::string& where,
              const std::string& fallback) {
    Sample s;
    s.key = fallback;
    auto fail = [&](const std::string& why) {
      s.error = where + ": " + why;
      return std::move(s);
    };
    if (!parse_error.empty()) return fail(parse_error);
    if (!rec.is_object()) return fail(std::string("JSON ") + rec.type_name() + ", not an object");
    if (auto k = rec.find("key"); k != rec.end()) {
      std::string key;
      if (k->is_string()) key = k->get<std::string>();
      else if (k->is_number_integer()) key = k->dump();
      else return fail("\"key\" is not a string");
      if (key.empty()) return fail("\"key\" is empty");
      s.key = std::move(key);
    }
    if (!seen_.insert(s.key).second) return fail("duplicate key " + printable(s.key) + " (seen earlier in this manifest)");
    const auto img = rec.find("image");
    if (img == rec.end() || !img->is_string() || img->get<std::string>().empty())
      return fail("no \"image\" path (a non-empty string)");
    const std::string image = img->get<std::string>();
    s.image_name = (image[0] == '/' || dir_.empty()) ? image : dir_ + "/" + image;
    if (auto alt = rec.find("alt_text"); alt != rec.end() && !alt->is_null()) {
      if (!alt->is_string()) return fail("\"alt_text\" is not a string");
      s.alt_text = alt->get<std::string>();
    }
    for (auto it = rec.begin(); it != rec.end(); ++it) {
      if (it.key() != "key" && it.key() != "image" && it.key() != "alt_text") s.source_meta[it.key()] = it.value();
    }
    std::string why;
    if (!read_file_bounded(s.image_name, limits_.max_member_bytes, s.image_bytes, why)) {
      s.alt_text.reset();
      s.source_meta = nullptr;
      return fail("image " + printable(s.image_name) + ": " + why);
    }
    return s;
  }

  // Counts one record against the limit; true when over it (then the limit's
  // error sample is queued and reading stops).
  bool count_record() {
    if (++records_ <= limits_.max_members) return false;
    finish_with_error(strformat("more than %lld records in one manifest", (long long)limits_.max_members));
    return true;
  }

  // Stops reading; the error becomes the last sample, keyed after the
  // records read before it.
  void finish_with_error(const std::string& why) {
    if (done_) return;
    done_ = true;
    pending_error_ = why;
    pending_error_key_ = strformat("__truncated_after_%lld", (long long)std::min(records_, limits_.max_members));
  }

  // The queued error sample, once; false when there is none.
  bool take(Sample& out) {
    done_ = true;
    if (pending_error_.empty()) return false;
    out.key = pending_error_key_;
    out.error = pending_error_;
    pending_error_.clear();
    return true;
  }

  std::string path_, dir_;
  const ReadLimits& limits_;
  int fd_ = -1;
  std::string buf_;
  size_t pos_ = 0;
  int64_t line_no_ = 0, records_ = 0;
  bool done_ = false, array_ = false;
  nlohmann::json items_ = nlohmann::json::array();
  size_t item_ = 0;
  std::string pending_error_, pending_error_key_;
  std::unordered_set<std::string> seen_;
};

}  // namespace

std::unique_ptr<Source> open_manifest(const InputUnit& unit, const ReadLimits& limits) {
  return std::make_unique<ManifestSource>(unit, limits);
}

}  // namespace dsvl2::dataset::detail
