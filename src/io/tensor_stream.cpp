#include "io/tensor_stream.h"

#include <algorithm>

#include "core/error.h"

namespace dsvl2 {

TensorStream::TensorStream(const std::string& path, std::string_view header, std::vector<std::string> names,
                           std::vector<uint64_t> sizes, uint32_t alignment)
    : path_(path), names_(std::move(names)), sizes_(std::move(sizes)), alignment_(std::max<uint32_t>(1, alignment)) {
  DSVL2_CHECK(names_.size() == sizes_.size(), "%s: %zu names for %zu sizes", path.c_str(), names_.size(), sizes_.size());
  out_.open(path, std::ios::binary | std::ios::trunc);
  if (!out_) DSVL2_FAIL("%s: cannot create", path.c_str());
  out_.write(header.data(), std::streamsize(header.size()));
  if (!out_) DSVL2_FAIL("%s: write error (disk full?)", path.c_str());
  skip_empty();
}

TensorStream::~TensorStream() {
  if (!closed_ && out_.is_open()) out_.close();
}

void TensorStream::skip_empty() {
  while (current_ < sizes_.size() && sizes_[current_] == 0) current_++;
}

void TensorStream::pad_current() {
  static const char zeros[256] = {};
  uint64_t pad = (alignment_ - sizes_[current_] % alignment_) % alignment_;
  while (pad > 0) {
    size_t k = size_t(std::min<uint64_t>(pad, sizeof(zeros)));
    out_.write(zeros, std::streamsize(k));
    pad -= k;
  }
}

void TensorStream::write(const void* bytes, size_t n) {
  const char* p = static_cast<const char*>(bytes);
  while (n > 0) {
    DSVL2_CHECK(current_ < sizes_.size(), "%s: more bytes written than declared", path_.c_str());
    uint64_t room = sizes_[current_] - written_in_current_;
    size_t take = size_t(std::min<uint64_t>(room, n));
    out_.write(p, std::streamsize(take));
    p += take;
    n -= take;
    written_in_current_ += take;
    if (written_in_current_ == sizes_[current_]) {
      pad_current();
      current_++;
      written_in_current_ = 0;
      skip_empty();
    }
  }
  if (!out_) DSVL2_FAIL("%s: write error (disk full?)", path_.c_str());
}

void TensorStream::close() {
  if (closed_) return;
  closed_ = true;
  DSVL2_CHECK(current_ == sizes_.size(), "%s: tensor \"%s\" not fully written", path_.c_str(),
              current_ < names_.size() ? names_[current_].c_str() : "");
  out_.close();
  if (!out_) DSVL2_FAIL("%s: write error on close", path_.c_str());
}

}  // namespace dsvl2
