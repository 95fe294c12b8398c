// tar_member: libarchive writes one entry into a string. The archive is
// written unblocked (bytes_per_block 0) so nothing is padded to a 10240-byte
// record, and the bytes are taken after the entry is finished but before
// close, which would append the end-of-archive marker.
#include "dataset/tar_writer.h"

#include <archive.h>
#include <archive_entry.h>

#include <memory>

#include "core/error.h"
#include "core/utf8.h"
#include "dataset/text_util.h"

namespace dsvl2::dataset {

namespace {

la_ssize_t append_to_string(archive*, void* client, const void* buf, size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return la_ssize_t(n);
}

struct ArchiveFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

}  // namespace

std::string tar_member(const std::string& name, std::string_view data) {
  if (name.empty()) DSVL2_FAIL("tar member: empty name");
  const detail::ScopedUtf8Locale utf8;  // before the archive exists: libarchive keeps the charset it sees first
  std::string out;
  std::unique_ptr<archive, ArchiveFree> a(archive_write_new());
  std::unique_ptr<archive_entry, EntryFree> e(archive_entry_new());
  if (!a || !e) DSVL2_FAIL_KIND(kOutOfResources, "tar member %s: libarchive could not allocate", detail::printable(name).c_str());
  auto check = [&](int r, const char* what) {
    if (r != ARCHIVE_OK) {
      const char* m = archive_error_string(a.get());
      DSVL2_FAIL("tar member %s: %s: %s", detail::printable(name).c_str(), what,
                 detail::printable(m ? m : "libarchive error").c_str());
    }
  };
  check(archive_write_set_format_pax_restricted(a.get()), "set format");
  check(archive_write_add_filter_none(a.get()), "set filter");
  check(archive_write_set_bytes_per_block(a.get(), 0), "set block size");
  check(archive_write_set_bytes_in_last_block(a.get(), 1), "set last block");
  check(archive_write_open2(a.get(), &out, nullptr, append_to_string, nullptr, nullptr), "open");

  // A UTF-8 name is stored as such (in a pax header when it is not ASCII),
  // other bytes as they are, with a pax hdrcharset=BINARY record.
  if (name.find('\0') != std::string::npos) DSVL2_FAIL("tar member: a NUL byte in the name");
  if (utf8::is_valid(name)) {
    archive_entry_set_pathname_utf8(e.get(), name.c_str());
  } else {
    archive_entry_set_pathname(e.get(), name.c_str());
  }
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), 0644);
  archive_entry_set_size(e.get(), la_int64_t(data.size()));
  archive_entry_set_mtime(e.get(), 0, 0);
  archive_entry_set_uid(e.get(), 0);
  archive_entry_set_gid(e.get(), 0);
  // A warning is a name that is not UTF-8, written raw (see above).
  const int header = archive_write_header(a.get(), e.get());
  check(header == ARCHIVE_WARN ? ARCHIVE_OK : header, "write header");
  for (size_t at = 0; at < data.size();) {
    const la_ssize_t n = archive_write_data(a.get(), data.data() + at, data.size() - at);
    if (n <= 0) check(ARCHIVE_FATAL, "write data");
    at += size_t(n);
  }
  check(archive_write_finish_entry(a.get()), "finish entry");
  const size_t member_bytes = out.size();
  archive_write_close(a.get());  // appends the end marker, dropped below
  out.resize(member_bytes);
  if (out.empty() || out.size() % 512 != 0)
    DSVL2_FAIL_KIND(kInternal, "tar member %s: libarchive wrote %zu bytes, not whole blocks",
                    detail::printable(name).c_str(), out.size());
  return out;
}

std::string tar_end() { return std::string(1024, '\0'); }

}  // namespace dsvl2::dataset
