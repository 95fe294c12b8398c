// img2dataset's "files" output: 00000/000000001.jpg with .txt and .json
// beside it. The folder is listed whole first (names only), so the order is
// the sorted order of keys, whatever order the file system lists them in.
#include <algorithm>
#include <filesystem>
#include <map>
#include <system_error>
#include <vector>

#include "core/error.h"
#include "dataset/grouping.h"
#include "dataset/text_util.h"

namespace dsvl2::dataset::detail {

namespace {

namespace fs = std::filesystem;

// img2dataset's per-shard summaries ("00000_stats.json") sit beside the
// shard folders; they describe the download, not a sample.
bool is_stats_file(const std::string& rel) {
  const std::string suffix = "_stats.json";
  if (rel.size() <= suffix.size() || rel.compare(rel.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  for (size_t i = 0; i < rel.size() - suffix.size(); i++)
    if (rel[i] < '0' || rel[i] > '9') return false;
  return true;
}

class FolderSource : public Source {
 public:
  FolderSource(const InputUnit& unit, const ReadLimits& limits) : root_(unit.path), limits_(limits) {
    std::error_code ec;
    if (!fs::is_directory(root_, ec)) DSVL2_FAIL("%s: not a folder", root_.c_str());
    fs::recursive_directory_iterator it(root_, ec), end;
    if (ec) DSVL2_FAIL("%s: cannot list the folder: %s", root_.c_str(), ec.message().c_str());
    int64_t files = 0;
    for (; it != end; it.increment(ec)) {
      if (ec) break;
      const std::string base = it->path().filename().string();
      if (base[0] == '.') {  // hidden files and folders (.ipynb_checkpoints, .DS_Store)
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      if (!it->is_regular_file(ec)) continue;
      const std::string rel = it->path().lexically_relative(root_).string();
      const std::optional<KeyExt> kx = split_key(rel);
      if (!kx || member_role(kx->ext) == MemberRole::kOther || is_stats_file(rel)) continue;
      if (++files > limits_.max_members) {
        error_ = strformat("more than %lld sample files in one folder", (long long)limits_.max_members);
        break;
      }
      keys_[kx->key].push_back({member_role(kx->ext), rel});
    }
    if (ec && error_.empty()) error_ = "cannot list the folder: " + printable(ec.message());
    // A partial listing has no deterministic order: then only the error is given.
    if (!error_.empty()) keys_.clear();
    at_ = keys_.begin();
  }

  bool next(Sample& out) override {
    if (!error_.empty()) {
      out.key = "__truncated_after_0";
      out.error = std::move(error_);
      error_.clear();
      return true;
    }
    if (at_ == keys_.end()) return false;
    auto& [key, members] = *at_++;
    std::sort(members.begin(), members.end(), [](const Member& a, const Member& b) { return a.rel < b.rel; });
    SampleBuilder b(key, limits_);
    for (const Member& m : members) {
      const int64_t limit = m.role == MemberRole::kImage ? limits_.max_member_bytes : limits_.max_meta_bytes;
      std::string bytes, why;
      if (!read_file_bounded(root_ + "/" + m.rel, limit, bytes, why)) {
        b.fail(printable(m.rel) + ": " + why);
        break;
      }
      b.add(m.role, m.rel, std::move(bytes));
    }
    out = b.finish();
    return true;
  }

 private:
  struct Member {
    MemberRole role;
    std::string rel;
  };
  std::string root_;
  const ReadLimits& limits_;
  std::map<std::string, std::vector<Member>> keys_;
  std::map<std::string, std::vector<Member>>::iterator at_;
  std::string error_;
};

}  // namespace

std::unique_ptr<Source> open_folder(const InputUnit& unit, const ReadLimits& limits) {
  return std::make_unique<FolderSource>(unit, limits);
}

}  // namespace dsvl2::dataset::detail
