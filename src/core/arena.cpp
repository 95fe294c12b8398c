#include "core/arena.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace dsvl2 {

Arena::Arena(size_t bytes, bool huge_pages) : cap_((bytes + 63) & ~size_t(63)) {
  if (cap_ == 0) return;
  void* p = ::mmap(nullptr, cap_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    DSVL2_FAIL_KIND(kOutOfResources, "cannot reserve %zu bytes of memory: %s", cap_, std::strerror(errno));
  // Hints: without THP it stays 4 KiB pages; with THP "always", NOHUGEPAGE
  // keeps a cache from committing 2 MiB for its first position.
  ::madvise(p, cap_, huge_pages ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  base_ = static_cast<char*>(p);
}

Arena::~Arena() {
  if (base_) ::munmap(base_, cap_);
}

void* Arena::take(size_t bytes) {
  const size_t n = (bytes + 63) & ~size_t(63);
  DSVL2_CHECK(n <= cap_ - used_, "arena: %zu bytes asked, %zu of %zu left", bytes, cap_ - used_, cap_);
  void* p = base_ + used_;
  used_ += n;
  return p;
}

}  // namespace dsvl2
