// Grounded conversation: "<|grounding|>Can you describe the content of the
// image?" answered by the caption with each grounded phrase inline as
// <|ref|>phrase<|/ref|><|det|>[[...]]<|/det|> (paper section 3.2; design note 4.2).
#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "ground/prompts.h"
#include "synth/tasks_internal.h"
#include "core/utf8.h"

namespace dsvl2::synth::detail {
namespace {

// A phrase placed in the caption: [begin, end) and the objects it names.
struct Span {
  size_t begin, end;
  std::vector<const AnnotatedObject*> objs;
};

bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || (c & 0x80); }

// The first whole-word occurrence of `word` at or after `from`, or npos.
size_t find_word(const std::string& text, const std::string& word, size_t from) {
  for (size_t at = text.find(word, from); at != std::string::npos; at = text.find(word, at + 1)) {
    const bool left = at == 0 || !word_char(text[at - 1]);
    const size_t e = at + word.size();
    if (left && (e == text.size() || !word_char(text[e]))) return at;
  }
  return std::string::npos;
}

// Flickr30k Entities: phrases with caption offsets (or, without offsets, the
// phrase text found in the caption). Phrases naming a crowd box or an unknown
// id are left as plain text.
std::vector<Span> phrase_spans(const AnnotatedImage& img, const std::string& caption) {
  std::vector<Span> out;
  size_t search_from = 0;
  for (const Phrase& p : img.phrases) {
    Span s{0, 0, {}};
    bool ok = !p.object_ids.empty();
    for (int64_t id : p.object_ids) {
      const AnnotatedObject* o = find_object(img, id);
      if (!o || o->crowd) ok = false;
      else s.objs.push_back(o);
    }
    if (!ok) continue;
    if (p.caption_begin >= 0 && p.caption_end > p.caption_begin && size_t(p.caption_end) <= caption.size()) {
      s.begin = size_t(p.caption_begin), s.end = size_t(p.caption_end);
    } else {
      const size_t at = p.text.empty() ? std::string::npos : find_word(caption, p.text, search_from);
      if (at == std::string::npos) continue;
      s.begin = at, s.end = at + p.text.size();
      search_from = s.end;
    }
    out.push_back(std::move(s));
  }
  return out;
}

// Captions + category boxes (e.g. COCO captions beside COCO instances): each
// category name found as a word (or with a plural "s"/"es") is grounded with
// every instance of that category, at its first mention.
std::vector<Span> category_spans(const AnnotatedImage& img, const std::string& caption) {
  std::vector<Span> out;
  for (const std::string& name : present_categories(img)) {
    std::vector<const AnnotatedObject*> t = category_targets(img, name);
    if (t.empty()) continue;
    size_t best = std::string::npos, len = 0;
    for (const std::string& form : {name, name + "s", name + "es"}) {
      const size_t at = find_word(caption, form, 0);
      if (at < best) best = at, len = form.size();
    }
    if (best != std::string::npos) out.push_back({best, best + len, std::move(t)});
  }
  return out;
}

// Spans in caption order, overlapping ones dropped (the earlier one wins),
// and only spans that cut the caption at UTF-8 character boundaries.
std::vector<Span> usable_spans(const AnnotatedImage& img, const std::string& caption) {
  std::vector<Span> spans = img.phrases.empty() ? category_spans(img, caption) : phrase_spans(img, caption);
  std::stable_sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  std::vector<Span> out;
  size_t last_end = 0;
  for (Span& s : spans) {
    if (s.begin < last_end || s.end <= s.begin) continue;
    const std::string text = caption.substr(s.begin, s.end - s.begin);
    if (!utf8::is_valid(text) || !clean_text(text)) continue;
    last_end = s.end;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

bool gcg_applicable(const AnnotatedImage& img) {
  if (img.captions.empty()) return false;
  // The caption goes into the answer as written (offsets point into it), so
  // it must only be free of special tokens and valid UTF-8.
  return clean_text(img.captions[0]).has_value() && !usable_spans(img, img.captions[0]).empty();
}

Record make_gcg(const AnnotatedImage& img, const TaskContext& ctx, Rng& rng) {
  require_image_file(ctx, img);
  // captions[0]: the caption the phrases' offsets refer to (annotations.h).
  const std::string& caption = img.captions[0];
  std::string answer;
  std::vector<int64_t> ids;
  size_t at = 0;
  for (const Span& s : usable_spans(img, caption)) {
    answer.append(caption, at, s.begin - at);
    GroundedAnswer a = ground_objects(caption.substr(s.begin, s.end - s.begin), s.objs, img.width, img.height);
    answer.append(a.text);
    ids.insert(ids.end(), a.ids.begin(), a.ids.end());
    at = s.end;
  }
  answer.append(caption, at, std::string::npos);

  Record r;
  add_turn(r, with_images(ground::grounded_conversation_prompt(), 1), {original_path(ctx, img)}, answer);
  nlohmann::ordered_json src;
  src["dataset"] = img.source;
  src["image_id"] = img.id;
  src["annotation_ids"] = ids;
  src["caption"] = caption;
  r.source_json = src.dump();
  return r;
}

}  // namespace dsvl2::synth::detail
