#include "recaption/record_json.h"

#include <cctype>

#include "dataset/tar_writer.h"

namespace dsvl2::recaption {
namespace {

using json = nlohmann::json;

json or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

}  // namespace

json record_to_json(const Record& r, RecaptionTask task) {
  const bool ok = r.error.empty();
  const bool prepared = ok || !r.prompt.empty();
  json j;
  j["key"] = r.key;
  j["source"] = r.source;
  j["image"] = r.image_name;
  j["width"] = r.image.width ? json(r.image.width) : json(nullptr);
  j["height"] = r.image.height ? json(r.image.height) : json(nullptr);
  j["task"] = task == RecaptionTask::kVqa ? "vqa" : "caption";
  j["error"] = ok ? json(nullptr) : json(r.error);
  j["alt_text"] = r.alt_text ? json(*r.alt_text) : json(nullptr);
  j["alt_text_truncated"] = r.alt_text_truncated;
  j["prompt_id"] = prepared && task == RecaptionTask::kCaption ? json(r.plan.prompt_id) : json(nullptr);
  j["alt_text_inserted"] = r.plan.alt_text_inserted;
  j["asked_negatives"] = r.plan.asked_negatives;
  j["prompt"] = or_null(r.prompt);
  j["meta"] = r.meta.is_object() ? r.meta : json::object();
  j["source_meta"] = r.source_meta;
  j["ocr"] = ocr::ocr_to_json(r.ocr);
  j["ocr_check"] = r.ocr_check ? ocr::check_to_json(*r.ocr_check) : json(nullptr);
  const json text = ok ? json(r.caption) : json(nullptr);
  if (task == RecaptionTask::kVqa) {
    j["caption"] = nullptr;
    j["question"] = r.question;
    j["original_answer"] = or_null(r.original_answer);
    j["answer"] = text;
  } else {
    j["caption"] = text;
  }
  if (ok && r.raw_caption != r.caption) j["caption_raw"] = r.raw_caption;
  j["finish_reason"] = or_null(r.finish_reason);
  j["caption_tokens"] = r.caption_tokens;
  j["prompt_tokens"] = r.prompt_tokens;
  j["style_class"] = ok && task == RecaptionTask::kCaption ? json(r.style) : json(nullptr);
  j["pii"] = r.pii.kinds;
  j["pii_redacted"] = !r.pii.kinds.empty();
  j["quality_score"] = r.quality ? json(*r.quality) : json(nullptr);
  if (!r.quality && !r.quality_answer.empty()) j["quality_answer"] = r.quality_answer;
  if (!r.quality_error.empty()) j["quality_error"] = r.quality_error;
  for (const auto& [name, p] : r.screen) j[name] = p;
  j["filtered"] = or_null(r.filtered);
  // Timings differ run to run; everything else is a function of the inputs,
  // the model and the options.
  j["timings"] = {{"prepare_s", r.timings.prepare_s},
                  {"ocr_s", r.timings.ocr_s},
                  {"encode_s", r.timings.encode_s},
                  {"caption_s", r.timings.caption_s},
                  {"quality_s", r.timings.quality_s}};
  return j;
}

std::string image_extension(const std::string& ext) {
  // The input's own extension when it is a plain image one; never one that
  // would read as the record (json) or as alt-text (txt).
  std::string low;
  for (char c : ext.substr(ext.rfind('.') + 1)) low += char(std::tolower(static_cast<unsigned char>(c)));
  for (const char* ok : {"jpg", "jpeg", "png", "webp", "bmp", "gif"})
    if (low == ok) return low;
  return "img";
}

std::string member_stem(const std::string& key) {
  std::string out;
  size_t component_start = 0;
  for (size_t i = 0; i < key.size(); i++) {
    const unsigned char c = static_cast<unsigned char>(key[i]);
    if (c == '/') {
      // Empty, "." and ".." components are dropped: no absolute or escaping paths.
      const std::string comp = out.substr(component_start);
      if (comp.empty() || comp == "." || comp == "..") {
        out.resize(component_start);
        continue;
      }
      out += '/';
      component_start = out.size();
    } else {
      out += c < 0x20 || c == 0x7f || c == '\\' ? '_' : char(c);
    }
  }
  const std::string last = out.substr(component_start);
  if (last.empty() || last == "." || last == "..") out.resize(component_start), out += "_";
  // WebDataset's key ends at the first '.' of the last component.
  for (size_t i = component_start; i < out.size(); i++)
    if (out[i] == '.') out[i] = '_';
  return out;
}

std::string record_members(const Record& r, const json& j) {
  const std::string& stem = r.member.empty() ? r.key : r.member;
  std::string out = dataset::tar_member(stem + ".json", j.dump(-1, ' ', false, json::error_handler_t::replace));
  if (!r.image_bytes.empty()) out += dataset::tar_member(stem + "." + image_extension(r.image_ext), r.image_bytes);
  return out;
}

}  // namespace dsvl2::recaption
