#include "dataset/tar_scan.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <memory>

#include "core/error.h"

namespace dsvl2::dataset {

void for_each_tar_member(const std::string& path,
                         const std::function<void(const std::string& name, std::string_view data)>& fn,
                         const std::vector<std::string>& suffixes, int64_t max_member_bytes) {
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK)
    DSVL2_FAIL("%s: %s", path.c_str(), archive_error_string(a.get()));
  archive_entry* e = nullptr;
  std::string data;
  for (;;) {
    const int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) return;
    if (rc < ARCHIVE_WARN) DSVL2_FAIL("%s: %s", path.c_str(), archive_error_string(a.get()));
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    const std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    auto wanted = [&](const std::string& suffix) {
      return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (!suffixes.empty() && std::none_of(suffixes.begin(), suffixes.end(), wanted)) continue;
    const int64_t size = archive_entry_size(e);
    data.clear();
    if (size >= 0 && size <= max_member_bytes) {
      data.resize(size_t(size));
      const la_ssize_t got = archive_read_data(a.get(), data.data(), data.size());
      if (got != la_ssize_t(size)) DSVL2_FAIL("%s: member %s is cut short", path.c_str(), archive_entry_pathname(e));
    }
    fn(name, data);
  }
}

}  // namespace dsvl2::dataset
