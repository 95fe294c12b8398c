// WebDataset member conventions and the helpers shared by the readers.
#include "dataset/grouping.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/json_depth.h"
#include "dataset/text_util.h"

namespace dsvl2::dataset::detail {

std::optional<KeyExt> split_key(std::string_view name) {
  while (name.substr(0, 2) == "./") name.remove_prefix(2);
  const size_t slash = name.rfind('/');
  const std::string_view dir = slash == std::string_view::npos ? std::string_view() : name.substr(0, slash + 1);
  const std::string_view base = name.substr(dir.size());
  if (dir.empty() && base.size() >= 4 && base.substr(0, 2) == "__" && base.substr(base.size() - 2) == "__")
    return std::nullopt;
  const size_t dot = base.find('.');
  if (base.empty() || dot == 0 || dot == std::string_view::npos) return std::nullopt;
  return KeyExt{std::string(dir) + std::string(base.substr(0, dot)), std::string(base.substr(dot + 1))};
}

bool unsafe_member_path(std::string_view name) {
  if (!name.empty() && name[0] == '/') return true;
  for (size_t at = 0; at <= name.size();) {
    size_t end = name.find('/', at);
    if (end == std::string_view::npos) end = name.size();
    if (name.substr(at, end - at) == "..") return true;
    at = end + 1;
  }
  return false;
}

MemberRole member_role(std::string_view ext) {
  std::string e(ext);
  for (char& c : e) c = (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
  if (e == "jpg" || e == "jpeg" || e == "png" || e == "webp" || e == "bmp" || e == "gif") return MemberRole::kImage;
  if (e == "txt") return MemberRole::kText;
  if (e == "json") return MemberRole::kJson;
  return MemberRole::kOther;
}

std::optional<nlohmann::json> parse_json(std::string_view text, int max_depth, std::string& why) {
  if (!json_depth_within(text, max_depth)) {
    why = strformat("JSON nested more than %d deep", max_depth);
    return std::nullopt;
  }
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    why = "not valid JSON: " + printable(e.what());
    return std::nullopt;
  }
  return value;
}

std::optional<nlohmann::json> parse_json_object(std::string_view text, int max_depth, std::string& why) {
  std::optional<nlohmann::json> value = parse_json(text, max_depth, why);
  if (value && !value->is_object()) {
    why = std::string("JSON ") + value->type_name() + ", not an object";
    return std::nullopt;
  }
  return value;
}

int open_regular_file(const std::string& path, int64_t* size, std::string& why) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    why = std::string("cannot open: ") + std::strerror(errno);
    return -1;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    why = std::string("cannot stat: ") + std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    why = "not a regular file";
  } else {
    *size = int64_t(st.st_size);
    return fd;
  }
  ::close(fd);
  return -1;
}

bool read_file_bounded(const std::string& path, int64_t max_bytes, std::string& out, std::string& why) {
  out.clear();
  int64_t size = 0;
  const int fd = open_regular_file(path, &size, why);
  if (fd < 0) return false;
  bool ok = false;
  if (size > max_bytes) {
    why = strformat("%lld bytes, over the limit of %lld", (long long)size, (long long)max_bytes);
  } else {
    out.resize(size_t(size));
    size_t got = 0;
    ok = true;
    // One byte of room past the size seen by fstat catches a file that grew.
    char extra = 0;
    while (ok) {
      const bool in_body = got < out.size();
      const ssize_t n = in_body ? ::read(fd, out.data() + got, out.size() - got) : ::read(fd, &extra, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        why = std::string("read failed: ") + std::strerror(errno);
        ok = false;
      } else if (n == 0) {
        out.resize(got);  // shrank while reading: what is there is the file
        break;
      } else if (in_body) {
        got += size_t(n);
      } else {
        why = "grew while being read";
        ok = false;
      }
    }
  }
  ::close(fd);
  if (!ok) out.clear();
  return ok;
}

void SampleBuilder::add(MemberRole role, const std::string& name, std::string bytes) {
  if (failed()) return;
  switch (role) {
    case MemberRole::kImage:
      if (has_image_) return fail(strformat("two images: %s and %s", printable(sample_.image_name).c_str(),
                                            printable(name).c_str()));
      has_image_ = true;
      sample_.image_name = name;
      sample_.image_bytes = std::move(bytes);
      return;
    case MemberRole::kText:
      if (has_text_) return fail(strformat("two texts: %s and %s", printable(text_name_).c_str(), printable(name).c_str()));
      has_text_ = true;
      text_name_ = name;
      sample_.alt_text = std::move(bytes);
      return;
    case MemberRole::kJson:
      if (has_json_)
        return fail(strformat("two JSON members: %s and %s", printable(json_name_).c_str(), printable(name).c_str()));
      has_json_ = true;
      json_name_ = name;
      json_bytes_ = std::move(bytes);
      return;
    case MemberRole::kOther:
      return;
  }
}

Sample SampleBuilder::finish() {
  if (!failed() && has_json_) {
    std::string why;
    if (auto meta = parse_json_object(json_bytes_, limits_.max_json_depth, why)) {
      sample_.source_meta = std::move(*meta);
    } else {
      fail(printable(json_name_) + ": " + why);
    }
  }
  if (!failed() && !has_image_)
    fail(strformat("%s: no image (jpg, jpeg, png, webp, bmp or gif) among the members of this key",
                   printable(sample_.key).c_str()));
  if (failed()) {
    // An error sample carries its key, its message and the image name if known.
    Sample broken;
    broken.key = std::move(sample_.key);
    broken.image_name = std::move(sample_.image_name);
    broken.error = std::move(sample_.error);
    return broken;
  }
  return std::move(sample_);
}

}  // namespace dsvl2::dataset::detail
