#include "recaption/run_stats.h"

#include <map>

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "dataset/tar_scan.h"

namespace dsvl2::recaption {
namespace {

using json = nlohmann::json;

struct Totals {
  int64_t records = 0, ok = 0, errors = 0, filtered = 0, unreadable = 0, quality_n = 0;
  int64_t correct = 0, incorrect = 0, not_captured = 0, with_text = 0, small_text = 0;
  double quality_sum = 0, ocr_s = 0, encode_s = 0, caption_s = 0, quality_s = 0;
  int64_t caption_tokens = 0;
  std::map<std::string, int64_t> prompt_ids, styles, quality, error_counts, finish;

  void add(const json& r) {
    records++;
    if (!r.value("error", json()).is_null()) {
      errors++;
      std::string e = r["error"].is_string() ? r["error"].get<std::string>() : "error";
      if (e.size() > 120) e = e.substr(0, 117) + "...";
      error_counts[e]++;
      return;
    }
    ok++;
    if (r.value("filtered", json()).is_string()) filtered++;
    if (r.contains("prompt_id") && r["prompt_id"].is_number()) prompt_ids[std::to_string(int(r["prompt_id"]))]++;
    if (r.value("style_class", json()).is_string()) styles[r["style_class"].get<std::string>()]++;
    if (r.value("finish_reason", json()).is_string()) finish[r["finish_reason"].get<std::string>()]++;
    if (r.value("quality_score", json()).is_number()) {
      const int q = r["quality_score"];
      quality[std::to_string(q)]++;
      quality_sum += q;
      quality_n++;
    }
    caption_tokens += r.value("caption_tokens", int64_t(0));
    const json& c = r.value("ocr_check", json());
    if (c.is_object()) {
      correct += c.value("correct", int64_t(0));
      incorrect += c.value("incorrect", int64_t(0));
      not_captured += c.value("not_captured", int64_t(0));
    }
    const json& lines = r.value("ocr", json()).value("lines", json::array());
    if (!lines.empty()) with_text++;
    for (const json& l : lines)
      if (l.value("small", false)) {
        small_text++;
        break;
      }
    const json& t = r.value("timings", json::object());
    ocr_s += t.value("ocr_s", 0.0);
    encode_s += t.value("encode_s", 0.0);
    caption_s += t.value("caption_s", 0.0);
    quality_s += t.value("quality_s", 0.0);
  }
};

json share(int64_t n, int64_t total) { return total > 0 ? json(double(n) / double(total)) : json(nullptr); }

}  // namespace

void write_run_stats(const std::string& shard_tar, const std::string& stats_path, const RunInfo& info) {
  Totals t;
  // The records only: image copies (--copy-images) are not read.
  dataset::for_each_tar_member(
      shard_tar,
      [&](const std::string&, std::string_view data) {
        json r = json::parse(data, nullptr, false);
        if (r.is_discarded() || !r.is_object()) {
          t.unreadable++;
          return;
        }
        t.add(r);
      },
      {".json"});
  const int64_t checked = t.correct + t.incorrect + t.not_captured;
  json j;
  j["output"] = shard_tar;
  j["count"] = t.records;
  j["successes"] = t.ok;
  j["failed"] = t.errors;
  j["filtered"] = t.filtered;
  j["unreadable_records"] = t.unreadable;
  j["errors"] = t.error_counts;
  j["finish_reasons"] = t.finish;
  j["prompt_ids"] = t.prompt_ids;
  j["style_classes"] = t.styles;
  j["quality_scores"] = t.quality;
  j["quality_mean"] = t.quality_n > 0 ? json(t.quality_sum / double(t.quality_n)) : json(nullptr);
  j["ocr_check"] = {{"correct", t.correct},
                    {"incorrect", t.incorrect},
                    {"not_captured", t.not_captured},
                    {"correct_share", share(t.correct, checked)},
                    {"incorrect_share", share(t.incorrect, checked)},
                    {"not_captured_share", share(t.not_captured, checked)},
                    {"records_with_text", t.with_text},
                    {"records_with_small_text", t.small_text}};
  j["mean_seconds"] = nullptr;
  if (t.ok > 0)
    j["mean_seconds"] = {{"ocr", t.ocr_s / double(t.ok)},
                         {"encode", t.encode_s / double(t.ok)},
                         {"caption", t.caption_s / double(t.ok)},
                         {"quality", t.quality_s / double(t.ok)}};
  j["caption_tokens"] = t.caption_tokens;
  j["this_run"] = {{"records", info.records_this_run},
                   {"skipped_done_earlier", info.skipped},
                   {"seconds", info.seconds_this_run},
                   {"records_per_hour", info.seconds_this_run > 0
                                            ? json(double(info.records_this_run) * 3600.0 / info.seconds_this_run)
                                            : json(nullptr)}};
  write_file(stats_path, j.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
}

}  // namespace dsvl2::recaption
