// expand_inputs: arguments -> braces -> files and folders -> units.
#include "dataset/inputs.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <system_error>

#include "core/error.h"
#include "dataset/braces.h"

namespace dsvl2::dataset {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "shards/a.tar" -> "a"; a folder's own name, also for "out/" and ".".
std::string folder_name(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  if (p.has_filename() && p.filename() != "." && p.filename() != "..") return p.filename().string();
  p = p.parent_path();  // "out/" normalizes to "out/" with an empty file name
  if (p.has_filename() && p.filename() != "." && p.filename() != "..") return p.filename().string();
  std::error_code ec;
  const fs::path abs = fs::weakly_canonical(path, ec);
  return ec || abs.filename().empty() ? std::string("root") : abs.filename().string();
}

// The *.tar shards directly inside a folder, sorted by name.
std::vector<std::string> tars_in(const std::string& dir) {
  std::vector<std::string> tars;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) DSVL2_FAIL("%s: cannot list the folder: %s", dir.c_str(), ec.message().c_str());
  for (; it != end; it.increment(ec)) {
    if (ec) DSVL2_FAIL("%s: cannot list the folder: %s", dir.c_str(), ec.message().c_str());
    const std::string name = it->path().filename().string();
    std::error_code tec;
    if (name[0] != '.' && ends_with(name, ".tar") && it->is_regular_file(tec)) tars.push_back(it->path().string());
  }
  if (ec) DSVL2_FAIL("%s: cannot list the folder: %s", dir.c_str(), ec.message().c_str());
  std::sort(tars.begin(), tars.end());
  return tars;
}

InputUnit file_unit(const std::string& path) {
  const std::string name = fs::path(path).filename().string();
  for (auto [ext, kind] : {std::pair{".tar", InputKind::kTar}, std::pair{".jsonl", InputKind::kManifest},
                           std::pair{".json", InputKind::kManifest}}) {
    if (ends_with(name, ext) && name.size() > std::string(ext).size())
      return {path, name.substr(0, name.size() - std::string(ext).size()), kind};
  }
  DSVL2_FAIL("%s: not a .tar shard, a .jsonl/.json manifest or a folder", path.c_str());
}

}  // namespace

std::vector<InputUnit> expand_inputs(const std::vector<std::string>& args) {
  std::vector<InputUnit> units;
  std::vector<std::string> missing;
  for (const std::string& arg : args) {
    for (const std::string& path : expand_braces(arg)) {
      std::error_code ec;
      const fs::file_status st = fs::status(path, ec);
      if (ec || !fs::exists(st)) {
        missing.push_back(path);
      } else if (fs::is_directory(st)) {
        const std::vector<std::string> tars = tars_in(path);
        if (tars.empty()) {
          units.push_back({path, folder_name(path), InputKind::kFolder});
        } else {
          for (const std::string& t : tars) units.push_back(file_unit(t));
        }
      } else {
        units.push_back(file_unit(path));
      }
    }
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 10; i++) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 10) list += strformat(" and %zu more", missing.size() - 10);
    DSVL2_FAIL("%zu input path%s not found: %s", missing.size(), missing.size() == 1 ? "" : "s", list.c_str());
  }
  // Each unit writes the shard named by its stem: two equal stems would collide.
  std::map<std::string, const InputUnit*> by_stem;
  for (const InputUnit& u : units) {
    auto [it, fresh] = by_stem.emplace(u.stem, &u);
    if (!fresh)
      DSVL2_FAIL("inputs %s and %s have the same name %s (their output shards would collide)",
                 it->second->path.c_str(), u.path.c_str(), u.stem.c_str());
  }
  return units;
}

}  // namespace dsvl2::dataset
