#include "ocr/tesseract_ocr.h"

#include <dlfcn.h>
#include <leptonica/allheaders.h>
#include <tesseract/baseapi.h>
#include <tesseract/resultiterator.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <mutex>

#include "core/error.h"
#include "core/file.h"
#include "ocr/ocr_image.h"
#include "ocr/text_match.h"

namespace dsvl2::ocr {
namespace {

using Box = std::array<int, 4>;

// Makes the calling thread's OpenMP regions serial. OMP_THREAD_LIMIT is read
// once when libgomp loads (before main), so it cannot be set from here; the
// max-active-levels ICV is per thread and 0 makes every region run on the
// encountering thread alone. Looked up at run time so that a Tesseract built
// without OpenMP needs nothing.
void serialise_openmp() {
  using SetInt = void (*)(int);
  static const SetInt set_levels = reinterpret_cast<SetInt>(dlsym(RTLD_DEFAULT, "omp_set_max_active_levels"));
  static const SetInt set_threads = reinterpret_cast<SetInt>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (set_levels) set_levels(0);
  if (set_threads) set_threads(1);
}

std::vector<std::string> split_langs(const std::string& lang) {
  std::vector<std::string> out;
  size_t at = 0;
  for (;;) {
    const size_t plus = lang.find('+', at);
    out.push_back(lang.substr(at, plus - at));
    if (plus == std::string::npos) return out;
    at = plus + 1;
  }
}

int64_t area(const Box& b) { return int64_t(std::max(0, b[2] - b[0])) * std::max(0, b[3] - b[1]); }

// Intersection over the smaller box: a line inside (or around) another one
// is the same text read again, by another pass or as a fragment.
double overlap(const Box& a, const Box& b) {
  const Box i{std::max(a[0], b[0]), std::max(a[1], b[1]), std::min(a[2], b[2]), std::min(a[3], b[3])};
  const int64_t m = std::min(area(a), area(b));
  return m > 0 ? double(area(i)) / double(m) : 0.0;
}

}  // namespace

std::string find_tessdata(const std::string& lang) {
  DSVL2_REQUIRE(!lang.empty() && lang.size() <= 200, "OCR language \"%s\": want e.g. \"eng\" or \"eng+deu\"",
                lang.c_str());
  for (const std::string& l : split_langs(lang)) {
    const bool ok = !l.empty() && std::all_of(l.begin(), l.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
    DSVL2_REQUIRE(ok, "OCR language \"%s\": want names like eng or chi_sim joined by +", lang.c_str());
  }
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("TESSDATA_PREFIX"); env && *env) {
    dirs = {env};  // an explicit choice: no silent fallback to the system data
  } else {
    dirs = {"/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata", "/usr/share/tessdata"};
  }
  for (const std::string& d : dirs) {
    bool all = true;
    for (const std::string& l : split_langs(lang)) all = all && file_exists(path_join(d, l + ".traineddata"));
    if (all) return d;
  }
  for (const std::string& l : split_langs(lang)) {
    bool found = false;
    for (const std::string& d : dirs) found = found || file_exists(path_join(d, l + ".traineddata"));
    if (!found)
      DSVL2_FAIL(
          "OCR language data %s not found (looked in %s%s; Debian: apt-get install tesseract-ocr-%s, or set "
          "TESSDATA_PREFIX to the folder holding it)",
          path_join(dirs[0], l + ".traineddata").c_str(), dirs[0].c_str(),
          dirs.size() > 1 ? " and the other standard tessdata folders" : "", l.c_str());
  }
  DSVL2_FAIL("OCR languages %s are not all in one tessdata folder", lang.c_str());
}

struct OcrEngine::Impl {
  tesseract::TessBaseAPI api;
};

OcrEngine::OcrEngine(const OcrOptions& o) : options_(o), impl_(std::make_unique<Impl>()) {
  DSVL2_REQUIRE(o.min_conf >= 0 && o.min_conf <= 100, "OCR min_conf %g: want 0..100", double(o.min_conf));
  DSVL2_REQUIRE(o.min_text_px >= 0 && o.upscale_below >= 0, "OCR sizes must not be negative");
  DSVL2_REQUIRE(o.max_side >= 64 && o.max_pixels >= 64 * 64, "OCR size limits too small (%d px, %lld pixels)",
                o.max_side, (long long)o.max_pixels);
  DSVL2_REQUIRE(o.extra_angles.size() <= 8, "OCR extra_angles: at most 8 (each is a full pass)");
  for (double a : o.extra_angles)
    DSVL2_REQUIRE(a != 0 && std::abs(a) <= 90, "OCR extra angle %g: want 0 < |angle| <= 90 degrees", a);
  // Leptonica reports to stderr from inside Tesseract's layout analysis
  // ("Error in boxClipToRectangle" on harmless edge cases); its threshold is
  // process-wide, and nothing else in dsvl2 uses Leptonica.
  static std::once_flag quiet;
  std::call_once(quiet, [] { setMsgSeverity(L_SEVERITY_NONE); });
  const std::string dir = find_tessdata(o.lang);
  // Passed to Init so that its own messages are silenced as well.
  const std::vector<std::string> names{"debug_file"}, values{"/dev/null"};
  if (impl_->api.Init(dir.c_str(), o.lang.c_str(), tesseract::OEM_LSTM_ONLY, nullptr, 0, &names, &values, false) != 0)
    DSVL2_FAIL_KIND(kInternal, "Tesseract could not load language %s from %s", o.lang.c_str(), dir.c_str());
  // Automatic layout: on the rendered set it read as much as sparse text (11)
  // and more than a single block (6), small text especially (docs/ocr-check.md).
  impl_->api.SetPageSegMode(tesseract::PSM_AUTO);
}

OcrEngine::~OcrEngine() { impl_->api.End(); }

namespace {

// Reads the lines of the last Recognize() call, boxes in the input's pixels.
std::vector<OcrLine> read_lines(tesseract::TessBaseAPI& api, const PassGeometry& geo, const OcrOptions& o) {
  std::vector<OcrLine> lines;
  std::unique_ptr<tesseract::ResultIterator> it(api.GetIterator());
  if (!it) return lines;
  OcrLine line;
  const auto flush = [&] {
    if (!line.words.empty()) {
      double conf = 0;
      line.box = line.words[0].box;
      for (const OcrWord& wd : line.words) {
        line.text += (line.text.empty() ? "" : " ") + wd.text;
        conf += wd.conf;
        for (int k = 0; k < 2; ++k) line.box[k] = std::min(line.box[k], wd.box[k]);
        for (int k = 2; k < 4; ++k) line.box[k] = std::max(line.box[k], wd.box[k]);
      }
      line.conf = float(conf / double(line.words.size()));
      line.small = std::min(line.box[2] - line.box[0], line.box[3] - line.box[1]) < o.min_text_px;
      if (count_word_chars(decode_utf8(line.text)) > 0) lines.push_back(std::move(line));
    }
    line = OcrLine{};
  };
  do {
    if (it->Empty(tesseract::RIL_WORD)) continue;
    if (it->IsAtBeginningOf(tesseract::RIL_TEXTLINE)) flush();
    std::unique_ptr<char[]> text(it->GetUTF8Text(tesseract::RIL_WORD));
    OcrWord word;
    word.text = text ? sanitize_utf8(text.get()) : std::string();
    // Tesseract's words never hold spaces; a stray control character would
    // corrupt JSON consumers' lines, so keep printable text only.
    std::erase_if(word.text, [](char c) { return uint8_t(c) < 0x20 || c == 0x7f; });
    word.conf = std::clamp(it->Confidence(tesseract::RIL_WORD), 0.0f, 100.0f);
    int l = 0, t = 0, r = 0, b = 0;
    if (!it->BoundingBox(tesseract::RIL_WORD, &l, &t, &r, &b)) continue;
    word.box = geo.to_input(l, t, r, b);
    if (word.text.empty() || word.conf < o.min_conf) continue;
    line.words.push_back(std::move(word));
  } while (it->Next(tesseract::RIL_WORD));
  flush();
  return lines;
}

// Whether `frag` repeats part of `whole`'s text (Tesseract sometimes reads a
// tilted line twice, whole and as a fragment: "City Library", "y Librar").
bool repeats(const OcrLine& frag, const OcrLine& whole) {
  const std::u32string f = normalize_text(std::string_view(frag.text)),
                       g = normalize_text(std::string_view(whole.text));
  if (f.empty() || f.size() > g.size() || g.size() > 400) return false;
  for (size_t at = 0; at + f.size() <= g.size(); ++at)
    if (similarity(f, std::u32string_view(g).substr(at, f.size()), 0.7) >= 0.7) return true;
  return false;
}

// How much text a set of lines reads: letters and digits weighted by confidence.
double reading_score(const std::vector<const OcrLine*>& lines) {
  double s = 0;
  for (const OcrLine* l : lines) s += count_word_chars(decode_utf8(l->text)) * double(l->conf) / 100;
  return s;
}

// Merges the lines of several passes over the same image. Lines that overlap
// (> half the smaller box) across or within passes form a region; each region
// keeps the lines of the pass that reads most there (reading_score), so a
// line read whole by one pass replaces the fragments another pass made of it.
// Order: the first pass's reading order, a replaced region's lines at its
// place, then regions only later passes found.
std::vector<OcrLine> merge_passes(std::vector<std::vector<OcrLine>> passes) {
  struct Ref {
    size_t pass, index;
  };
  std::vector<Ref> refs;
  for (size_t p = 0; p < passes.size(); ++p)
    for (size_t i = 0; i < passes[p].size(); ++i) refs.push_back({p, i});
  const auto line = [&](size_t r) -> OcrLine& { return passes[refs[r].pass][refs[r].index]; };
  std::vector<size_t> parent(refs.size());
  for (size_t i = 0; i < refs.size(); ++i) parent[i] = i;
  const auto find = [&](size_t i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
  };
  for (size_t i = 0; i < refs.size(); ++i)
    for (size_t j = i + 1; j < refs.size(); ++j)
      if (overlap(line(i).box, line(j).box) > 0.5) parent[find(i)] = find(j);
  // The winning pass of each region.
  std::vector<size_t> winner(refs.size(), SIZE_MAX);
  for (size_t root = 0; root < refs.size(); ++root) {
    if (find(root) != root) continue;
    double best = -1;
    for (size_t p = 0; p < passes.size(); ++p) {
      std::vector<const OcrLine*> mine;
      for (size_t i = 0; i < refs.size(); ++i)
        if (refs[i].pass == p && find(i) == root) mine.push_back(&line(i));
      if (mine.empty()) continue;
      if (const double sc = reading_score(mine); sc > best) best = sc, winner[root] = p;
    }
  }
  // Within the winning pass, a line that repeats a better line it overlaps goes.
  std::vector<bool> keep(refs.size(), false);
  for (size_t root = 0; root < refs.size(); ++root) {
    if (find(root) != root) continue;
    std::vector<size_t> mine;
    for (size_t i = 0; i < refs.size(); ++i)
      if (find(i) == root && refs[i].pass == winner[root]) mine.push_back(i);
    std::stable_sort(mine.begin(), mine.end(),
                     [&](size_t a, size_t b) { return reading_score({&line(a)}) > reading_score({&line(b)}); });
    for (size_t k = 0; k < mine.size(); ++k) {
      keep[mine[k]] = true;
      for (size_t q = 0; q < k && keep[mine[k]]; ++q)
        if (keep[mine[q]] && overlap(line(mine[k]).box, line(mine[q]).box) > 0.5 &&
            repeats(line(mine[k]), line(mine[q])))
          keep[mine[k]] = false;
    }
  }
  std::vector<OcrLine> out;
  std::vector<bool> emitted(refs.size(), false);
  for (size_t i = 0; i < refs.size(); ++i) {
    const size_t root = find(i);
    if (emitted[root]) continue;
    emitted[root] = true;
    for (size_t j = 0; j < refs.size(); ++j)
      if (find(j) == root && keep[j]) out.push_back(std::move(line(j)));
  }
  return out;
}

}  // namespace

OcrResult OcrEngine::recognize(const Image& rgb) {
  DSVL2_REQUIRE(rgb.width > 0 && rgb.height > 0 && rgb.rgb.size() == size_t(rgb.width) * rgb.height * 3,
                "OCR wants a non-empty RGB image (got %dx%d with %zu bytes)", rgb.width, rgb.height, rgb.rgb.size());
  serialise_openmp();
  const int w = rgb.width, h = rgb.height;
  // 2x for small images, then within the side and pixel limits.
  double scale = std::max(w, h) < options_.upscale_below ? 2.0 : 1.0;
  scale = std::min(scale, double(options_.max_side) / std::max(w, h));
  scale = std::min(scale, std::sqrt(double(options_.max_pixels) / (double(w) * h)));
  const int nw = std::max(1, int(std::lround(w * scale))), nh = std::max(1, int(std::lround(h * scale)));
  GreyImage grey = to_grey(rgb);
  if (nw != w || nh != h) grey = resize_grey(grey, nw, nh);
  auto& api = impl_->api;
  std::vector<std::vector<OcrLine>> passes;
  std::vector<double> angles{0.0};
  angles.insert(angles.end(), options_.extra_angles.begin(), options_.extra_angles.end());
  for (double deg : angles) {
    PassGeometry geo;
    geo.scale_x = double(nw) / w, geo.scale_y = double(nh) / h;  // the exact factors after rounding
    geo.w = w, geo.h = h;
    geo.src_cx = geo.dst_cx = nw / 2.0, geo.src_cy = geo.dst_cy = nh / 2.0;
    const GreyImage rotated = deg != 0 ? rotate_grey(grey, deg, &geo) : GreyImage{};
    const GreyImage& g = deg != 0 ? rotated : grey;
    // Otsu (one threshold for the image) reads flat and coloured backgrounds
    // best; Sauvola (local thresholds) gradients and uneven light. Light text
    // on dark needs no pass of its own: Tesseract retries dim lines inverted.
    for (const char* method : {"0", "2"}) {
      if (method[0] == '2' && !options_.sauvola_pass) continue;
      api.SetVariable("thresholding_method", method);
      api.SetImage(g.px.data(), g.width, g.height, 1, g.width);
      passes.push_back(api.Recognize(nullptr) == 0 ? read_lines(api, geo, options_) : std::vector<OcrLine>{});
    }
  }
  OcrResult result;
  result.width = w;
  result.height = h;
  result.lines = merge_passes(std::move(passes));
  api.Clear();
  return result;
}

}  // namespace dsvl2::ocr
