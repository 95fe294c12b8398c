#include "train/sft_jsonl.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <tuple>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "core/json_depth.h"
#include "ground/grounding_parser.h"
#include "text/tokenizer.h"

namespace dsvl2 {
namespace {

using json = nlohmann::json;

constexpr std::string_view kRefObject = "<ref-object>";
constexpr std::string_view kBboxTag = "<bbox>";
// Deeper JSON than a conversation needs is refused before parsing: nlohmann's
// parser recurses once per level, so a hostile line could exhaust the stack.
constexpr int kMaxJsonDepth = 32;

size_t count_of(std::string_view s, std::string_view what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string_view::npos; p = s.find(what, p + what.size())) n++;
  return n;
}

void check_nesting(std::string_view s) {
  if (!json_depth_within(s, kMaxJsonDepth)) DSVL2_FAIL("JSON nested deeper than %d levels", kMaxJsonDepth);
}

bool is_blank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

const std::string& string_member(const json& o, const char* key, const char* what) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_string()) DSVL2_FAIL("%s has no string \"%s\"", what, key);
  return it->get_ref<const std::string&>();
}

// A list of image paths (a single string is taken as a list of one), resolved.
std::vector<std::string> image_paths(const json& v, const std::string& base_dir, const char* what) {
  std::vector<std::string> out;
  const bool one = v.is_string();
  if (!one && !v.is_array()) DSVL2_FAIL("%s \"images\" must be a list of paths", what);
  for (size_t i = 0; i < (one ? 1 : v.size()); i++) {
    const json& p = one ? v : v[i];
    if (!p.is_string() || p.get_ref<const std::string&>().empty())
      DSVL2_FAIL("%s image %zu is not a path (a non-empty string)", what, i);
    const std::string& s = p.get_ref<const std::string&>();
    if (s.find("://") != std::string::npos || s.rfind("data:", 0) == 0)
      DSVL2_FAIL("%s image %zu '%s': only local files are read (no URLs or data URIs)", what, i, s.c_str());
    out.push_back(s.front() == '/' ? s : path_join(base_dir, s));
  }
  return out;
}

SwiftObjects parse_objects(const json& o) {
  if (!o.is_object()) DSVL2_FAIL("\"objects\" must be an object {\"ref\", \"bbox\", ...}");
  SwiftObjects r;
  if (auto it = o.find("ref"); it != o.end() && !it->is_null()) {
    if (!it->is_array()) DSVL2_FAIL("objects.ref must be a list of strings");
    for (const json& s : *it) {
      if (!s.is_string()) DSVL2_FAIL("objects.ref %zu is not a string", r.ref.size());
      if (count_of(s.get_ref<const std::string&>(), kImageTag))
        DSVL2_FAIL("objects.ref %zu holds an <image> tag", r.ref.size());
      r.ref.push_back(s.get<std::string>());
    }
  }
  if (auto it = o.find("bbox"); it != o.end() && !it->is_null()) {
    if (!it->is_array()) DSVL2_FAIL("objects.bbox must be a list of boxes");
    for (const json& b : *it) {
      const size_t i = r.bbox.size();
      if (b.is_array() && b.size() == 2)
        DSVL2_FAIL("objects.bbox %zu is a point; DeepSeek-VL2 grounding takes boxes [x1, y1, x2, y2]", i);
      if (!b.is_array() || b.size() != 4) DSVL2_FAIL("objects.bbox %zu is not 4 numbers [x1, y1, x2, y2]", i);
      std::array<double, 4> v{};
      for (size_t k = 0; k < 4; k++) {
        if (!b[k].is_number()) DSVL2_FAIL("objects.bbox %zu is not 4 numbers [x1, y1, x2, y2]", i);
        v[k] = b[k].get<double>();
      }
      // ms-swift (_check_objects) puts the corners in order.
      if (v[0] > v[2]) std::swap(v[0], v[2]);
      if (v[1] > v[3]) std::swap(v[1], v[3]);
      r.bbox.push_back(v);
    }
  }
  if (auto it = o.find("bbox_type"); it != o.end() && !it->is_null()) {
    const std::string t = it->is_string() ? it->get<std::string>() : "";
    if (t == "real") r.bbox_type = SwiftObjects::BoxType::kReal;
    else if (t == "norm1") r.bbox_type = SwiftObjects::BoxType::kNorm1;
    else if (t == "norm1000") r.bbox_type = SwiftObjects::BoxType::kNorm1000;
    else DSVL2_FAIL("objects.bbox_type must be \"real\", \"norm1\" or \"norm1000\"");
  }
  if (auto it = o.find("image_id"); it != o.end() && !it->is_null()) {
    if (!it->is_array() || it->size() > r.bbox.size()) DSVL2_FAIL("objects.image_id must be a list, one per box");
    for (const json& v : *it) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (1 << 20))
        DSVL2_FAIL("objects.image_id %zu is not an image index", r.image_id.size());
      r.image_id.push_back(int(v.get<int64_t>()));
    }
    r.image_id.resize(r.bbox.size(), 0);  // ms-swift pads the list with image 0
  }
  return r;
}

// ms-swift's tag rules for its top-level "images" (Template._add_default_tags,
// DeepseekVL2Template.image_placeholder = "<image>\n").
void swift_image_tags(std::vector<ChatMessage>& msgs, size_t n_images) {
  size_t tags = 0;
  for (const ChatMessage& m : msgs) tags += count_of(m.content, kImageTag);
  if (tags == 0 && n_images > 0) {
    for (ChatMessage& m : msgs) {
      if (m.role == ChatRole::kSystem) continue;
      std::string pre;
      for (size_t i = 0; i < n_images; i++) pre += kImageTag;
      m.content.insert(0, pre);
      break;
    }
  } else if (tags != n_images) {
    DSVL2_FAIL("the messages have %zu <image> tags but there are %zu images", tags, n_images);
  }
  for (ChatMessage& m : msgs) {
    std::string out;
    size_t pos = 0;
    for (size_t t = m.content.find(kImageTag); t != std::string::npos; t = m.content.find(kImageTag, pos)) {
      out.append(m.content, pos, t + kImageTag.size() - pos);
      out += '\n';
      pos = t + kImageTag.size();
    }
    out.append(m.content, pos);
    m.content = std::move(out);
  }
}

}  // namespace

SftRecord parse_sft_line(std::string_view line, const std::string& base_dir) {
  check_nesting(line);
  json j;
  try {
    j = json::parse(line);
  } catch (const json::exception& e) {
    DSVL2_FAIL("not valid JSON: %s", e.what());
  }
  if (!j.is_object()) DSVL2_FAIL("a line must be one JSON object");
  auto msgs = j.find("messages");
  if (msgs == j.end() || !msgs->is_array() || msgs->empty()) DSVL2_FAIL("no \"messages\" list (or it is empty)");
  bool per_message = false;
  for (const json& m : *msgs) per_message |= m.is_object() && m.contains("images");
  const bool swift = j.contains("images") || j.contains("objects");
  if (per_message && swift)
    DSVL2_FAIL("images both in the messages and at the top level (\"images\"/\"objects\"): use one form");

  SftRecord r;
  for (size_t i = 0; i < msgs->size(); i++) {
    const json& m = (*msgs)[i];
    const std::string what = strformat("message %zu", i);
    if (!m.is_object()) DSVL2_FAIL("%s is not an object", what.c_str());
    ChatMessage c;
    c.role = parse_chat_role(string_member(m, "role", what.c_str()));
    c.content = string_member(m, "content", what.c_str());
    if (per_message) {  // a message without "images" carries none
      std::vector<std::string> p;
      if (auto im = m.find("images"); im != m.end() && !im->is_null()) p = image_paths(*im, base_dir, what.c_str());
      const size_t tags = count_of(c.content, kImageTag);
      if (tags != p.size())
        DSVL2_FAIL("%s has %zu <image> tags but %zu images", what.c_str(), tags, p.size());
      r.images.insert(r.images.end(), p.begin(), p.end());
    }
    r.messages.push_back(std::move(c));
  }
  if (!per_message) {
    if (auto im = j.find("images"); im != j.end() && !im->is_null()) r.images = image_paths(*im, base_dir, "top-level");
    swift_image_tags(r.messages, r.images.size());
    // Always set in this form, so that placeholders without objects are an error.
    auto ob = j.find("objects");
    r.objects = ob != j.end() && !ob->is_null() ? parse_objects(*ob) : SwiftObjects{};
  }
  return r;
}

void apply_grounding(SftRecord& r, const std::vector<std::pair<int, int>>& image_sizes) {
  if (!r.objects) return;  // the official form: <bbox> is just text there
  const SwiftObjects& o = *r.objects;
  size_t n_ref = 0, n_box = 0;
  for (const ChatMessage& m : r.messages) {
    n_ref += count_of(m.content, kRefObject);
    n_box += count_of(m.content, kBboxTag);
  }
  if (n_ref != o.ref.size()) DSVL2_FAIL("%zu <ref-object> placeholders but %zu objects.ref", n_ref, o.ref.size());
  if (n_box != o.bbox.size()) DSVL2_FAIL("%zu <bbox> placeholders but %zu objects.bbox", n_box, o.bbox.size());

  // Every box on the 0-999 grid: its coordinate space's size, then
  // ground::normalise_box (round(v / size * 999), clamped).
  std::vector<std::array<int, 4>> grid;
  for (size_t i = 0; i < o.bbox.size(); i++) {
    int w = 1, h = 1;
    if (o.bbox_type == SwiftObjects::BoxType::kNorm1000) {
      w = h = 1000;
    } else if (o.bbox_type == SwiftObjects::BoxType::kReal) {
      const size_t img = o.image_id.empty() ? 0 : size_t(o.image_id[i]);
      if (img >= image_sizes.size())
        DSVL2_FAIL("objects.bbox %zu is on image %zu but the sample has %zu images (pixel boxes need their image)",
                   i, img, image_sizes.size());
      std::tie(w, h) = image_sizes[img];
    }
    const auto& b = o.bbox[i];
    grid.push_back(ground::normalise_box(b[0], b[1], b[2], b[3], w, h));
  }

  size_t ri = 0, bi = 0;
  for (ChatMessage& m : r.messages) {
    const std::string& s = m.content;
    std::string out;
    size_t pos = 0;
    for (;;) {
      const size_t rp = s.find(kRefObject, pos), bp = s.find(kBboxTag, pos);
      const size_t at = std::min(rp, bp);
      out.append(s, pos, at == std::string::npos ? std::string::npos : at - pos);
      if (at == std::string::npos) break;
      if (at == rp) {
        out += "<|ref|>";
        out += o.ref[ri++];
        out += "<|/ref|>";
        pos = at + kRefObject.size();
        continue;
      }
      // Adjacent <bbox>es are one object's several instances: one block, as
      // DeepSeek-VL2 writes them ("<|det|>[[...], [...]]<|/det|>").
      std::vector<std::array<int, 4>> run;
      for (pos = at; s.compare(pos, kBboxTag.size(), kBboxTag) == 0; pos += kBboxTag.size()) run.push_back(grid[bi++]);
      out += "<|det|>";
      out += ground::format_boxes(run);
      out += "<|/det|>";
    }
    m.content = std::move(out);
  }
}

SftJsonlReader::SftJsonlReader(std::string path, const Tokenizer& tok, const ProcessorConfig& proc,
                               SftReadOptions opt)
    : path_(std::move(path)), tok_(tok), proc_(proc), opt_(std::move(opt)) {
  if (is_directory(path_)) DSVL2_FAIL("%s: is a folder, not a JSONL file", path_.c_str());
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) DSVL2_FAIL("%s: cannot open: %s", path_.c_str(), std::strerror(errno));
  const size_t slash = path_.find_last_of('/');
  base_dir_ = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
  buf_.resize(size_t(1) << 20);
}

SftJsonlReader::~SftJsonlReader() {
  if (fd_ >= 0) ::close(fd_);
}

void SftJsonlReader::rewind() {
  if (::lseek(fd_, 0, SEEK_SET) < 0) DSVL2_FAIL("%s: cannot seek: %s", path_.c_str(), std::strerror(errno));
  buf_pos_ = buf_len_ = 0;
  buf_offset_ = 0;
  line_ = 0;
  last_ = {};
  bad_ = {};
}

// One line without its "\n" (and "\r"); a line over max_line_bytes is
// consumed but not kept (too_long). False at the end of the file.
bool SftJsonlReader::read_line(std::string& out, bool& too_long, uint64_t& offset) {
  out.clear();
  too_long = false;
  offset = buf_offset_ + buf_pos_;
  bool any = false;
  for (;;) {
    if (buf_pos_ == buf_len_) {
      buf_offset_ += buf_len_;
      buf_pos_ = 0;
      ssize_t n;
      do n = ::read(fd_, buf_.data(), buf_.size());
      while (n < 0 && errno == EINTR);
      if (n < 0) DSVL2_FAIL("%s: read error: %s", path_.c_str(), std::strerror(errno));
      buf_len_ = size_t(n);
      if (n == 0) return any;
    }
    any = true;
    const char* b = buf_.data() + buf_pos_;
    const size_t avail = buf_len_ - buf_pos_;
    const char* nl = static_cast<const char*>(std::memchr(b, '\n', avail));
    const size_t take = nl ? size_t(nl - b) : avail;
    if (!too_long && out.size() + take > opt_.max_line_bytes) {
      too_long = true;
      std::string().swap(out);
    }
    if (!too_long) out.append(b, take);
    buf_pos_ += take + (nl ? 1 : 0);
    if (nl) break;
  }
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return true;
}

SftSample SftJsonlReader::build(std::string_view line, int64_t line_no, bool preprocess) const {
  try {
    SftRecord r = parse_sft_line(line, base_dir_);
    std::vector<Image> images;
    std::vector<std::pair<int, int>> sizes;
    for (const std::string& p : r.images) {
      if (!file_exists(p)) DSVL2_FAIL("image '%s' not found", p.c_str());
      images.push_back(load_image(p, opt_.decode));
      sizes.emplace_back(images.back().width, images.back().height);
    }
    apply_grounding(r, sizes);
    return build_sft_sample(tok_, r.messages, images, proc_, opt_.limits, preprocess);
  } catch (const Error& e) {
    std::string msg = path_;
    msg += ':';
    msg += std::to_string(line_no);
    msg += ": ";
    msg += e.what();
    throw Error(msg, e.kind());
  }
}

std::optional<SftSample> SftJsonlReader::next(bool preprocess) {
  std::string line;
  bool too_long = false;
  uint64_t offset = 0;
  while (read_line(line, too_long, offset)) {
    const int64_t no = ++line_;
    if (!too_long && is_blank(line)) continue;
    try {
      if (too_long) {
        std::string msg = path_;
        msg += ':';
        msg += std::to_string(no);
        msg += strformat(": line longer than %zu bytes", opt_.max_line_bytes);
        throw Error(msg, ErrorKind::kTooLong);
      }
      SftSample s = build(line, no, preprocess);
      last_ = {offset, no, s.size()};
      return s;
    } catch (const Error& e) {
      if (opt_.on_bad_line == BadLinePolicy::kStop) throw;
      bad_.count++;
      if (bad_.first.size() < opt_.max_reasons) bad_.first.push_back(e.what());
    }
  }
  return std::nullopt;
}

SftSample SftJsonlReader::read_at(const SftLineRef& ref, bool preprocess) const {
  std::string line;
  char chunk[65536];
  for (uint64_t at = ref.offset;;) {
    ssize_t n;
    do n = ::pread(fd_, chunk, sizeof chunk, off_t(at));
    while (n < 0 && errno == EINTR);
    if (n < 0) DSVL2_FAIL("%s: read error: %s", path_.c_str(), std::strerror(errno));
    const char* nl = static_cast<const char*>(std::memchr(chunk, '\n', size_t(n)));
    line.append(chunk, nl ? size_t(nl - chunk) : size_t(n));
    if (line.size() > opt_.max_line_bytes)
      throw Error(strformat("%s:%lld: line longer than %zu bytes", path_.c_str(), (long long)ref.line,
                            opt_.max_line_bytes),
                  ErrorKind::kTooLong);
    if (nl || n == 0) break;
    at += uint64_t(n);
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (is_blank(line))
    DSVL2_FAIL("%s:%lld: no sample at byte %llu (has the file changed since it was indexed?)", path_.c_str(),
               (long long)ref.line, (unsigned long long)ref.offset);
  return build(line, ref.line, preprocess);
}

SftIndex index_sft_jsonl(const std::string& path, const Tokenizer& tok, const ProcessorConfig& proc,
                         const SftReadOptions& opt) {
  SftJsonlReader r(path, tok, proc, opt);
  SftIndex idx;
  while (r.next(/*preprocess=*/false)) idx.lines.push_back(r.last());
  idx.bad = r.bad_lines();
  idx.total_lines = r.lines_read();
  return idx;
}

}  // namespace dsvl2
