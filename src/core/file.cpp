#include "core/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace dsvl2 {

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(strformat("%s: cannot open: %s", path.c_str(), std::strerror(errno)));
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw Error(strformat("%s: read error", path.c_str()));
  return ss.str();
}

void write_file(const std::string& path, std::string_view bytes) {
  // A temporary name in the same folder, renamed over `path` once complete
  // and synced (the folder too): a reader or a crash sees the old file or the
  // new one, never a torn one. The name is unique per process and call.
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(strformat("%s: cannot create: %s", path.c_str(), std::strerror(errno)));
  auto fail = [&](const char* what, int e) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(strformat("%s: %s: %s", path.c_str(), what, std::strerror(e)),
                e == ENOSPC || e == EDQUOT ? ErrorKind::kOutOfResources : ErrorKind::kInvalidInput);
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("write error", errno);
    if (n == 0) fail("write error", EIO);
    done += size_t(n);
  }
  if (::fsync(fd) != 0) fail("write error", errno);
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(strformat("%s: write error: %s", path.c_str(), std::strerror(e)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(strformat("%s: cannot replace: %s", path.c_str(), std::strerror(e)));
  }
  const size_t slash = path.find_last_of('/');
  const std::string folder = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int dfd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // the rename itself reaches the disk
    ::close(dfd);
  }
}

void sync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(strformat("%s: cannot open to sync: %s", path.c_str(), std::strerror(errno)));
  const int r = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (r != 0) throw Error(strformat("%s: cannot sync: %s", path.c_str(), std::strerror(e)));
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string path_join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  return a.back() == '/' ? a + b : a + "/" + b;
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(strformat("%s: cannot open: %s", path.c_str(), std::strerror(errno)));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(strformat("%s: not a regular file", path.c_str()));
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw Error(strformat("%s: mmap failed: %s", path.c_str(), std::strerror(errno)));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  fd_ = fd;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

bool MappedFile::populate() const {
  if (!data_ || size_ == 0) return true;
  void* p = const_cast<uint8_t*>(data_);
  if (::madvise(p, size_, MADV_POPULATE_READ) == 0) return true;
  ::madvise(p, size_, MADV_WILLNEED);
  return false;
}

size_t MappedFile::release(const void* p, size_t n, bool drop_cache) const {
  if (!contains(p)) return 0;
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t lo = uintptr_t(p), hi = std::min(lo + n, uintptr_t(data_ + size_));
  const uintptr_t a = (lo + page - 1) & ~(page - 1), b = hi & ~(page - 1);
  if (b <= a) return 0;
  if (::madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED) != 0) return 0;
  if (drop_cache && fd_ >= 0) ::posix_fadvise(fd_, off_t(a - uintptr_t(data_)), off_t(b - a), POSIX_FADV_DONTNEED);
  return size_t(b - a);
}

size_t memory_available_bytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  size_t kb = 0;
  std::string unit;
  while (f >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
}

MappedFile::MappedFile(MappedFile&& o) noexcept : path_(std::move(o.path_)), data_(o.data_), size_(o.size_), fd_(o.fd_) {
  o.data_ = nullptr;
  o.size_ = 0;
  o.fd_ = -1;
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(o.path_);
    data_ = o.data_;
    size_ = o.size_;
    fd_ = o.fd_;
    o.data_ = nullptr;
    o.size_ = 0;
    o.fd_ = -1;
  }
  return *this;
}

}  // namespace dsvl2
