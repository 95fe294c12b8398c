// Files: whole-file reads and read-only memory maps (RAII), errors name the path.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dsvl2 {

std::string read_file(const std::string& path);  // throws Error naming the path
// Atomic: written to a temporary name beside `path`, synced, then renamed
// over it; on any error `path` is left as it was.
void write_file(const std::string& path, std::string_view bytes);
// Flushes a file's or a folder's contents to the disk (fsync); Error when
// it cannot be opened or synced. For files written by other means (streams)
// before a rename makes them visible.
void sync_path(const std::string& path);
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);
// MemAvailable from /proc/meminfo in bytes, 0 when unknown.
size_t memory_available_bytes();
std::string path_join(const std::string& a, const std::string& b);

class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);  // throws Error
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Maps every page now (MADV_POPULATE_READ, reading from disk what the page
  // cache lacks) so that later first touches do not fault one by one. Returns
  // false when the kernel cannot (before Linux 5.14); then it only hints.
  bool populate() const;
  // Drops this process's mapping of the whole pages inside [p, p + n) (bytes
  // another copy now serves); they are read back from the file if touched
  // again. With drop_cache the kernel's page cache of that range goes too
  // (POSIX_FADV_DONTNEED), so the memory is free at once instead of after
  // reclaim, at the price of a disk read the next time the file is used.
  // Ranges outside the mapping are ignored. Returns the bytes dropped.
  size_t release(const void* p, size_t n, bool drop_cache = false) const;
  bool contains(const void* p) const {
    auto* b = static_cast<const uint8_t*>(p);
    return data_ && b >= data_ && b < data_ + size_;
  }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  int fd_ = -1;  // kept open for release(drop_cache)
};

}  // namespace dsvl2
