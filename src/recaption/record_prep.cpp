#include "recaption/record_prep.h"

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include "core/error.h"
#include "dataset/exif.h"
#include "recaption/record_json.h"
#include "core/utf8.h"

namespace dsvl2::recaption {
namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string extension(const std::string& name) {
  const size_t slash = name.find_last_of('/');
  const size_t dot = name.find('.', slash == std::string::npos ? 0 : slash + 1);
  return dot == std::string::npos ? "" : name.substr(dot + 1);
}

// A string field of the input's JSON, or "".
std::string field(const nlohmann::json& j, const char* name) {
  if (!j.is_object()) return "";
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// Cuts to at most `n` bytes without splitting a UTF-8 sequence.
std::string cut_utf8(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  while (n > 0 && (uint8_t(s[n]) & 0xC0) == 0x80) n--;
  return s.substr(0, n);
}

void prepare(Record& r, dataset::Sample& s, const PrepareOptions& o, ocr::OcrEngine* engine) {
  if (!s.error.empty()) DSVL2_FAIL("%s", s.error.c_str());
  if (s.alt_text) {
    // A hostile or broken KEY.txt: the record fails visibly rather than the
    // prompt carrying mojibake (or the JSON output breaking).
    const size_t bad = utf8::find_invalid(*s.alt_text);
    if (bad != std::string::npos) DSVL2_FAIL("%s: alt-text is not valid UTF-8 (byte %zu)", s.key.c_str(), bad);
    std::string alt(utf8::python_strip(*s.alt_text));
    r.alt_text_truncated = alt.size() > o.max_alt_chars;
    r.alt_text = cut_utf8(alt, o.max_alt_chars);
  }
  if (o.task == RecaptionTask::kVqa) {
    r.question = field(s.source_meta, "question");
    r.original_answer = field(s.source_meta, "answer");
    if (r.question.empty()) DSVL2_FAIL("%s: --task vqa needs a \"question\" string in the record's JSON", s.key.c_str());
    if (!utf8::is_valid(r.question) || !utf8::is_valid(r.original_answer))
      DSVL2_FAIL("%s: the question or answer is not valid UTF-8", s.key.c_str());
    // Checked before the image is decoded: an over-long question would only
    // fail later, after the costly part.
    if (r.question.size() > o.max_alt_chars)
      DSVL2_FAIL("%s: the question has %zu bytes, over the limit of %zu", s.key.c_str(), r.question.size(),
                 o.max_alt_chars);
    r.original_answer = cut_utf8(r.original_answer, o.max_alt_chars);
  }
  r.image = decode_image(reinterpret_cast<const uint8_t*>(s.image_bytes.data()), s.image_bytes.size(),
                         s.image_name.empty() ? s.key : s.image_name);
  r.meta = dataset::exif_meta(s.image_bytes);
  if (engine) {
    const auto t0 = std::chrono::steady_clock::now();
    r.ocr = engine->recognize(r.image);
    r.timings.ocr_s = since(t0);
  }
  PromptContext ctx;
  ctx.meta = dataset::describe_meta(r.meta);
  // Hints: the lines OCR is surest of, tiny text excluded (PixelProse
  // dropped images with text regions under 15 px; we only leave them out
  // of the hints and flag them in the record).
  std::vector<const ocr::OcrLine*> lines;
  for (const ocr::OcrLine& l : r.ocr.lines)
    if (!l.small && !l.text.empty()) lines.push_back(&l);
  std::stable_sort(lines.begin(), lines.end(), [](auto* a, auto* b) { return a->conf > b->conf; });
  for (const ocr::OcrLine* l : lines) ctx.ocr_lines.push_back(l->text);
  r.plan = plan_prompt(o.seed, r.key, r.alt_text && !r.alt_text->empty(), o.p_alt, o.p_neg);
  if (r.alt_text) ctx.alt_text = *r.alt_text;
  if (o.task == RecaptionTask::kVqa) {
    r.plan.asked_negatives = false;  // neither addition is part of the VQA prompt
    r.plan.alt_text_inserted = false;
    r.prompt = build_vqa_prompt(r.question, r.original_answer, ctx);
  } else {
    r.prompt = build_caption_prompt(r.plan, ctx);
  }
}

}  // namespace

Record prepare_record(dataset::Sample&& s, int64_t item, const std::string& source, const PrepareOptions& o,
                      ocr::OcrEngine* ocr) {
  const auto t0 = std::chrono::steady_clock::now();
  Record r;
  r.item = item;
  r.key = s.key;
  r.image_name = s.image_name;
  r.source = source;
  r.source_meta = s.source_meta;
  try {
    prepare(r, s, o, ocr);
    if (o.keep_image_bytes) {
      r.image_bytes = std::move(s.image_bytes);
      r.image_ext = extension(s.image_name);
    }
  } catch (const std::exception& e) {
    r.error = e.what();
    r.image = {};
  }
  r.timings.prepare_s = since(t0);
  return r;
}

RecordPreparer::RecordPreparer(const dataset::InputUnit& unit, std::vector<int64_t> committed,
                               const PrepareOptions& o, size_t ahead)
    : unit_(unit), committed_(std::move(committed)), opt_(o), ahead_(std::max<size_t>(1, ahead)) {
  thread_ = std::thread([this] { run(); });
}

RecordPreparer::~RecordPreparer() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void RecordPreparer::run() {
  try {
    std::optional<ocr::OcrEngine> engine;
    if (opt_.ocr) engine.emplace(opt_.ocr_options);
    dataset::SampleReader reader(unit_);
    dataset::Sample s;
    // Member names must be unique in the output tar: a repeated key (an
    // error record) or two keys that sanitise alike get "_<item>". Every
    // record of the unit is seen, committed ones too, so a resumed run names
    // them as the first run did.
    std::unordered_set<std::string> members;
    for (int64_t item = 0; reader.next(s); item++) {
      std::string member = member_stem(s.key);
      while (!members.insert(member).second) member.append("_").append(std::to_string(item));
      if (std::binary_search(committed_.begin(), committed_.end(), item)) {
        std::lock_guard<std::mutex> lk(mu_);
        skipped_++;
        continue;
      }
      Record r = prepare_record(std::move(s), item, unit_.path, opt_, engine ? &*engine : nullptr);
      r.member = std::move(member);
      // Bounded by count and by pixel bytes: a run of large (legal) images
      // must not hold gigabytes in the queue. One record always fits.
      const size_t bytes = r.image.rgb.size() + r.image_bytes.size();
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] {
        return stop_ || (ready_.size() < ahead_ && (ready_.empty() || ready_bytes_ + bytes <= opt_.max_queued_bytes));
      });
      if (stop_) return;
      ready_bytes_ += bytes;
      ready_.push_back(std::move(r));
      cv_.notify_all();
      s = {};
    }
  } catch (...) {
    std::lock_guard<std::mutex> lk(mu_);
    error_ = std::current_exception();
  }
  std::lock_guard<std::mutex> lk(mu_);
  done_ = true;
  cv_.notify_all();
}

std::optional<Record> RecordPreparer::next(bool wait) {
  std::unique_lock<std::mutex> lk(mu_);
  if (wait) cv_.wait(lk, [&] { return !ready_.empty() || done_; });
  if (ready_.empty()) {
    if (done_ && error_) std::rethrow_exception(error_);
    return std::nullopt;
  }
  Record r = std::move(ready_.front());
  ready_.pop_front();
  ready_bytes_ -= r.image.rgb.size() + r.image_bytes.size();
  cv_.notify_all();
  return r;
}

bool RecordPreparer::finished() {
  std::lock_guard<std::mutex> lk(mu_);
  return done_ && ready_.empty();
}

}  // namespace dsvl2::recaption
