// `dsvl2 ocr-check`: the automated OCR check of captions (docs/ocr-check.md).
// Each input JSONL line {"key", "image", "caption"} comes out as the same
// object plus "ocr" (what Tesseract read) and "ocr_check" (the verdicts), in
// input order. A line that cannot be checked (bad JSON, missing keys, an
// image path outside --images, a missing or undecodable image) comes out with
// "error" instead, and the job goes on: the exit code is 0 when the job ran,
// 1 only when it could not (no input file, an unwritable output).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "command.h"
#include "core/error.h"
#include "core/file.h"
#include "core/thread_pool.h"
#include "image/image.h"
#include "jobs/progress.h"
#include "ocr/ocr_check.h"
#include "ocr/tesseract_ocr.h"
#include "ocr/text_match.h"

namespace dsvl2::cli {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxLineBytes = 1 << 20;      // a record with more is an error line, not a stopped job
constexpr size_t kMaxCaptionBytes = 64 << 10;  // the check's cost grows with caption words x OCR lines

struct Flags {
  std::string input, images, out, stats, lang = "eng";
  int threads = 0;
  double extra_angle = 0;
  bool quiet = false;
};

// Streams lines to a temporary file beside `path` and renames it over `path`
// on commit(): a reader sees the old output or the whole new one. Without
// commit() the temporary file is removed.
class AtomicOutput {
 public:
  explicit AtomicOutput(const std::string& path) : path_(path), tmp_(path + ".tmp." + std::to_string(::getpid())) {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) DSVL2_FAIL("%s: cannot create: %s", path.c_str(), std::strerror(errno));
  }
  ~AtomicOutput() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  void write(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0)
        throw Error(strformat("%s: write error: %s", path_.c_str(), std::strerror(n < 0 ? errno : EIO)),
                    errno == ENOSPC ? ErrorKind::kOutOfResources : ErrorKind::kInvalidInput);
      bytes.remove_prefix(size_t(n));
    }
  }
  void commit() {
    if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
      fd_ = -1;
      DSVL2_FAIL("%s: write error: %s", path_.c_str(), std::strerror(errno));
    }
    fd_ = -1;
    if (::rename(tmp_.c_str(), path_.c_str()) != 0)
      DSVL2_FAIL("%s: cannot replace: %s", path_.c_str(), std::strerror(errno));
    committed_ = true;
    const size_t slash = path_.find_last_of('/');
    const std::string folder = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
    if (const int dfd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
      ::fsync(dfd);  // the rename itself reaches the disk
      ::close(dfd);
    }
  }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// A relative path that stays inside the images folder: not absolute, no ".."
// component, no NUL. (Checked on the text: a symbolic link inside the folder
// is followed, as the folder's owner put it there.)
bool safe_relative(const std::string& p) {
  if (p.empty() || p[0] == '/' || p.find('\0') != std::string::npos) return false;
  size_t at = 0;
  for (;;) {
    const size_t slash = p.find('/', at);
    if (p.compare(at, slash == std::string::npos ? std::string::npos : slash - at, "..") == 0 &&
        (slash == std::string::npos ? p.size() - at : slash - at) == 2)
      return false;
    if (slash == std::string::npos) return true;
    at = slash + 1;
  }
}

struct Checked {
  std::string line;  // the output line, no newline
  bool error = false;
};

// The record with "error" added, or {"line": N, "error"} when the line holds
// no JSON object to add it to.
Checked error_line(int64_t line_no, const json* record, const std::string& why) {
  json out = record ? *record : json::object();
  if (!record) out["line"] = line_no;
  out["error"] = ocr::sanitize_utf8(why);  // nlohmann's messages can quote the bad bytes
  return {out.dump(-1, ' ', false, json::error_handler_t::replace), true};
}

struct Worker {
  std::unique_ptr<ocr::OcrEngine> engine;
  ocr::OcrCheckTotals totals;
};

Checked check_line(int64_t line_no, const std::string& text, const std::string& images, Worker& w) {
  if (text.size() > kMaxLineBytes)
    return error_line(line_no, nullptr, strformat("line over the %zu-byte limit", kMaxLineBytes));
  json rec;
  try {
    rec = json::parse(text);
  } catch (const json::exception& e) {
    return error_line(line_no, nullptr, std::string("bad JSON: ") + e.what());
  }
  if (!rec.is_object()) return error_line(line_no, nullptr, "not a JSON object");
  for (const char* k : {"key", "image", "caption"})
    if (!rec.contains(k)) return error_line(line_no, &rec, strformat("missing \"%s\"", k));
  if (!rec["image"].is_string() || !rec["caption"].is_string())
    return error_line(line_no, &rec, "\"image\" and \"caption\" must be strings");
  const std::string image = rec["image"].get<std::string>(), caption = rec["caption"].get<std::string>();
  if (!safe_relative(image))
    return error_line(line_no, &rec, "image path must be relative to the images folder, without ..");
  if (caption.size() > kMaxCaptionBytes)
    return error_line(line_no, &rec, strformat("caption over %zu bytes", kMaxCaptionBytes));
  try {
    const Image img = load_image(path_join(images, image));
    const auto t0 = std::chrono::steady_clock::now();
    const ocr::OcrResult r = w.engine->recognize(img);
    w.totals.ocr_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const ocr::OcrCheck c = ocr::check_caption(caption, r);
    w.totals.add(c, r);
    rec["ocr"] = ocr::ocr_to_json(r);
    rec["ocr_check"] = ocr::check_to_json(c);
    return {rec.dump(-1, ' ', false, json::error_handler_t::replace), false};
  } catch (const Error& e) {
    return error_line(line_no, &rec, e.what());
  } catch (const std::bad_alloc&) {
    return error_line(line_no, &rec, "out of memory");
  } catch (const std::exception& e) {  // anything else stays this record's error too
    return error_line(line_no, &rec, e.what());
  }
}

// Reads one line without its '\n', keeping at most max + 1 bytes of it (a
// longer line is then reported as too long), so that one huge line cannot
// exhaust memory. False at the end of the input.
bool read_line(std::istream& in, std::string& out, size_t max) {
  out.clear();
  std::streambuf* sb = in.rdbuf();
  for (bool any = false;;) {
    const int c = sb->sbumpc();
    if (c == std::char_traits<char>::eof()) return any;
    any = true;
    if (c == '\n') return true;
    if (out.size() <= max) out.push_back(char(c));
  }
}

std::string default_stats_path(const std::string& out) {
  const std::string ext = ".jsonl";
  const bool has = out.size() > ext.size() && out.compare(out.size() - ext.size(), ext.size(), ext) == 0;
  return (has ? out.substr(0, out.size() - ext.size()) : out) + "_stats.json";
}

int run(const Flags& f) {
  DSVL2_REQUIRE(file_exists(f.input), "%s: no such file", f.input.c_str());
  std::ifstream in(f.input, std::ios::binary);
  if (!in) DSVL2_FAIL("%s: cannot open: %s", f.input.c_str(), std::strerror(errno));
  DSVL2_REQUIRE(is_directory(f.images), "%s: not a folder", f.images.c_str());
  AtomicOutput out(f.out);  // before the engines: an unwritable output fails at once
  const std::string stats_path = f.stats.empty() ? default_stats_path(f.out) : f.stats;
  ocr::OcrOptions oo;
  oo.lang = f.lang;
  if (f.extra_angle > 0) oo.extra_angles = {-f.extra_angle, f.extra_angle};
  ThreadPool pool(f.threads > 0 ? f.threads : int(std::max(1u, std::thread::hardware_concurrency())));
  std::vector<Worker> workers(size_t(pool.size()));
  for (Worker& w : workers) w.engine = std::make_unique<ocr::OcrEngine>(oo);  // one each: not thread-safe
  jobs::Progress progress("ocr-check", -1, f.quiet);
  const auto start = std::chrono::steady_clock::now();
  const size_t batch = size_t(16 * pool.size());
  int64_t line_no = 0, errors = 0;
  std::vector<std::pair<int64_t, std::string>> lines;
  std::vector<Checked> results;
  for (bool more = true; more;) {
    lines.clear();
    std::string text;
    while (lines.size() < batch && (more = read_line(in, text, kMaxLineBytes))) {
      ++line_no;
      if (text.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines carry no record
      lines.emplace_back(line_no, std::move(text));
    }
    results.assign(lines.size(), Checked{});
    std::atomic<size_t> next{0};
    pool.run_on_all([&](int tid) {  // dynamic: images differ a lot in OCR time
      for (size_t i; (i = next.fetch_add(1)) < lines.size();)
        results[i] = check_line(lines[i].first, lines[i].second, f.images, workers[size_t(tid)]);
    });
    for (const Checked& r : results) {
      errors += r.error ? 1 : 0;
      out.write(r.line);
      out.write("\n");
    }
    progress.advance(int64_t(results.size()));
  }
  out.commit();
  progress.finish();
  ocr::OcrCheckTotals t;
  for (const Worker& w : workers) t.merge(w.totals);
  t.errors = errors;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  json stats = ocr::totals_to_json(t);
  stats["input"] = f.input, stats["output"] = f.out, stats["threads"] = pool.size();
  stats["seconds"] = std::round(seconds * 1000) / 1000;
  write_file(stats_path, stats.dump(2) + "\n");
  const json& pi = stats["items"]["percent"];
  const json& pr = stats["records_by_category"]["percent_of_records_with_text"];
  std::fprintf(stderr,
               "dsvl2: ocr-check: %lld records checked, %lld errors, %.1f s (%.3f s OCR per image) -> %s, %s\n"
               "dsvl2: items: correct %lld (%.1f %%), incorrect %lld (%.1f %%), not captured %lld (%.1f %%)\n"
               "dsvl2: records with text: correct %lld (%.1f %%), incorrect %lld (%.1f %%), not captured %lld "
               "(%.1f %%); no text %lld\n",
               (long long)t.records, (long long)t.errors, seconds, stats["ocr_seconds_per_record"].get<double>(),
               f.out.c_str(), stats_path.c_str(), (long long)t.correct, pi["correct"].get<double>(),
               (long long)t.incorrect, pi["incorrect"].get<double>(), (long long)t.not_captured,
               pi["not_captured"].get<double>(), (long long)t.category_correct, pr["correct"].get<double>(),
               (long long)t.category_incorrect, pr["incorrect"].get<double>(), (long long)t.category_not_captured,
               pr["not_captured"].get<double>(), (long long)t.category_no_text);
  return 0;
}

Command reg("ocr-check",
            "Check the text captions quote against the text OCR reads in their images (PixelProse categories)",
            [](CLI::App& app) {
              auto f = std::make_shared<Flags>();
              app.add_option("--input", f->input, "JSONL: one {\"key\", \"image\", \"caption\"} per line")->required();
              app.add_option("--images", f->images, "Folder the records' image paths are relative to")->required();
              app.add_option("--out", f->out, "Output JSONL: each record plus \"ocr\" and \"ocr_check\" (or \"error\")")
                  ->required();
              app.add_option("--stats", f->stats, "Run totals as JSON (default: OUT without .jsonl + _stats.json)");
              app.add_option("-t,--threads", f->threads, "Threads, one OCR engine each (default: all cores)")
                  ->check(CLI::Range(0, 256));
              app.add_option("--lang", f->lang, "Tesseract language(s), e.g. eng or eng+deu (default eng)");
              app.add_option("--extra-angle", f->extra_angle,
                             "Also read each image rotated by +-DEG (tilted text; 3x the OCR time)")
                  ->check(CLI::Range(0.0, 45.0));
              app.add_flag("-q,--quiet", f->quiet, "No progress on stderr");
              return std::function<int()>([f] { return run(*f); });
            });

}  // namespace
}  // namespace dsvl2::cli
