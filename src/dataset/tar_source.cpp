// WebDataset tars through libarchive: it reads ustar, pax (long and UTF-8
// names) and GNU tars, and reports truncation; we add the grouping, the
// limits and the rule that a broken archive ends in one error sample.
//
// Only the tar format and no compression filter are enabled: libarchive's
// other filters may run external programs (lrzip, lzop) on the input.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <unordered_set>

#include "core/error.h"
#include "dataset/grouping.h"
#include "dataset/text_util.h"

namespace dsvl2::dataset::detail {

namespace {

class TarSource : public Source {
 public:
  TarSource(const InputUnit& unit, const ReadLimits& limits) : path_(unit.path), limits_(limits) {
    std::string why;
    int64_t size = 0;
    fd_ = open_regular_file(path_, &size, why);
    if (fd_ < 0) DSVL2_FAIL("%s: %s", path_.c_str(), why.c_str());
    if (size == 0) {
      broken("empty file (0 bytes), not a tar archive");
      return;
    }
    const ScopedUtf8Locale utf8;  // see text_util.h: member names come back as UTF-8
    a_ = archive_read_new();
    if (!a_) {
      ::close(fd_);
      DSVL2_FAIL_KIND(kOutOfResources, "%s: libarchive could not allocate a reader", path_.c_str());
    }
    archive_read_support_format_tar(a_);
    if (archive_read_open_fd(a_, fd_, 64 * 1024) != ARCHIVE_OK) broken("not readable as a tar: " + archive_message());
  }

  ~TarSource() override {
    const ScopedUtf8Locale utf8;
    if (a_) archive_read_free(a_);
    if (fd_ >= 0) ::close(fd_);
  }

  bool next(Sample& out) override {
    const ScopedUtf8Locale utf8;
    while (ready_.empty() && !done_) step();
    if (ready_.empty()) return false;
    out = std::move(ready_.front());
    ready_.pop_front();
    return true;
  }

 private:
  std::string archive_message() const {
    const char* m = a_ ? archive_error_string(a_) : nullptr;
    return printable(m ? m : "unknown libarchive error");
  }

  // Reads one header and, when the member is used, its data.
  void step() {
    archive_entry* entry = nullptr;
    const int r = archive_read_next_header(a_, &entry);
    if (r == ARCHIVE_EOF) {
      if (!end_marker_read())
        return broken("tar archive ends without its end-of-archive marker" + after() + " (truncated?)");
      flush();
      done_ = true;
      return;
    }
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return broken("tar archive broken" + after() + ": " + archive_message());
    if (++members_ > limits_.max_members)
      return broken(strformat("more than %lld members in one tar", (long long)limits_.max_members));

    const char* utf8 = archive_entry_pathname_utf8(entry);
    const char* raw = utf8 ? utf8 : archive_entry_pathname(entry);
    const std::string name = raw ? raw : "";
    const bool regular = archive_entry_filetype(entry) == AE_IFREG && archive_entry_hardlink(entry) == nullptr;
    if (!regular || name.empty()) return skip_data();  // folders, links, devices: not members of samples
    last_member_ = name;

    const std::optional<KeyExt> kx = split_key(name);
    if (unsafe_member_path(name)) {
      join(kx ? kx->key : name);
      pending_->fail(printable(name) + ": absolute member path or '..' component");
      return skip_data();
    }
    if (!kx) return skip_data();  // no extension: webdataset skips such members too
    join(kx->key);
    const MemberRole role = member_role(kx->ext);
    if (pending_->failed() || role == MemberRole::kOther) return skip_data();

    // Sizes are checked from the header, so an oversized member is never read.
    const int64_t limit = role == MemberRole::kImage ? limits_.max_member_bytes : limits_.max_meta_bytes;
    if (archive_entry_size_is_set(entry) && archive_entry_size(entry) > limit) {
      pending_->fail(strformat("%s: %lld bytes, over the limit of %lld", printable(name).c_str(),
                               (long long)archive_entry_size(entry), (long long)limit));
      return skip_data();
    }
    std::string bytes;
    if (archive_entry_size_is_set(entry)) bytes.reserve(size_t(archive_entry_size(entry)));
    char buf[64 * 1024];
    for (;;) {
      const la_ssize_t n = archive_read_data(a_, buf, sizeof buf);
      if (n == 0) break;
      if (n < 0) return broken(printable(name) + ": " + archive_message());
      if (int64_t(bytes.size()) + n > limit) {
        pending_->fail(strformat("%s: over the limit of %lld bytes", printable(name).c_str(), (long long)limit));
        return skip_data();
      }
      bytes.append(buf, size_t(n));
    }
    pending_->add(role, name, std::move(bytes));
  }

  // Skips the rest of the current member; a failure there breaks the tar.
  void skip_data() {
    if (archive_read_data_skip(a_) != ARCHIVE_OK) broken(printable(last_member_) + ": " + archive_message());
  }

  // Makes `key` the pending sample's key, flushing the previous one.
  void join(const std::string& key) {
    if (pending_ && pending_->key() == key) return;
    flush();
    pending_.emplace(key, limits_);
    if (!seen_.insert(key).second)
      pending_->fail(printable(key) + ": duplicate key (seen earlier in this tar, its members not consecutive)");
  }

  void flush() {
    if (!pending_) return;
    ready_.push_back(pending_->finish());
    pending_.reset();
    samples_++;
  }

  std::string after() const {
    return last_member_.empty() ? std::string(" at its start") : " after member " + printable(last_member_);
  }

  // The end: the samples so far, then one error sample, then nothing. A
  // sample still being read takes the error, named by its key: until a member
  // of another key starts, nothing says that all of its members were read.
  void broken(const std::string& why) {
    if (pending_) {
      pending_->fail_also(why);
      flush();
    } else {
      Sample s;
      s.key = strformat("__truncated_after_%lld", (long long)samples_);
      s.error = why;
      ready_.push_back(std::move(s));
      samples_++;
    }
    done_ = true;
  }

  // libarchive accepts a tar that just stops at a member boundary ("there are
  // tools that do this"), which is also what a copy cut there looks like.
  // Writers of WebDataset shards (Python's tarfile, GNU tar, tar_end()) always
  // end with two zero blocks, so their absence is reported.
  // At libarchive's end: were the last 1024 bytes it consumed zeros?
  bool end_marker_read() const {
    const int64_t end = archive_filter_bytes(a_, 0);
    char tail[1024];
    bool ok = end >= int64_t(sizeof tail) &&
              ::pread(fd_, tail, sizeof tail, off_t(end - int64_t(sizeof tail))) == ssize_t(sizeof tail);
    for (size_t i = 0; ok && i < sizeof tail; i++) ok = tail[i] == 0;
    return ok;
  }

  std::string path_;
  const ReadLimits& limits_;
  int fd_ = -1;
  archive* a_ = nullptr;
  bool done_ = false;
  std::deque<Sample> ready_;
  std::optional<SampleBuilder> pending_;
  std::unordered_set<std::string> seen_;
  std::string last_member_;
  int64_t members_ = 0, samples_ = 0;
};

}  // namespace

std::unique_ptr<Source> open_tar(const InputUnit& unit, const ReadLimits& limits) {
  return std::make_unique<TarSource>(unit, limits);
}

}  // namespace dsvl2::dataset::detail
