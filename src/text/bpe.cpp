#include "text/bpe.h"

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/tokenizer_json.h"
#include "core/utf8.h"

namespace dsvl2 {
namespace {

using json = nlohmann::json;
constexpr int32_t kMaxId = 1 << 24;           // ids beyond this are rejected as malformed
constexpr int64_t kMaxIdGap = 1 << 16;        // nor may ids run this far past the entry count
constexpr size_t kCacheMaxWords = 1 << 16;    // cleared when full
constexpr size_t kCacheMaxWordBytes = 256;    // longer words are not cached

struct ByteTables {
  uint32_t to_cp[256];
  int16_t from_cp[512];  // every mapped code point is < 324
  ByteTables() {
    int n = 0;
    for (int b = 0; b < 256; b++) {
      bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cp[b] = keep ? uint32_t(b) : uint32_t(256 + n++);
    }
    for (auto& v : from_cp) v = -1;
    for (int b = 0; b < 256; b++) from_cp[to_cp[b]] = int16_t(b);
  }
};
const ByteTables& tables() {
  static const ByteTables t;
  return t;
}

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
uint64_t mix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  return k;
}

}  // namespace

struct BpeModel::Cache {
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::mutex mu;
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, Hash, std::equal_to<>> map;
  std::vector<int32_t> ids;
};

BpeModel::BpeModel() : cache_(std::make_unique<Cache>()) {
  for (auto& v : byte_id_) v = -1;
}
BpeModel::~BpeModel() = default;
BpeModel::BpeModel(BpeModel&&) noexcept = default;
BpeModel& BpeModel::operator=(BpeModel&&) noexcept = default;

uint32_t byte_to_unicode(uint8_t b) { return tables().to_cp[b]; }
int unicode_to_byte(uint32_t cp) { return cp < 512 ? tables().from_cp[cp] : -1; }

std::optional<std::string> byte_level_decode(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    int b = unicode_to_byte(utf8::next(token, i));
    if (b < 0) return std::nullopt;
    out += char(b);
  }
  return out;
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  for (char c : bytes) utf8::append(out, byte_to_unicode(uint8_t(c)));
  return out;
}

const BpeModel::PairSlot* BpeModel::find_pair(int32_t a, int32_t b) const {
  if (pairs_.empty()) return nullptr;
  const uint64_t key = pair_key(a, b);
  for (uint64_t h = mix(key) & pair_mask_;; h = (h + 1) & pair_mask_) {
    const PairSlot& s = pairs_[h];
    if (s.key == key) return &s;
    if (s.key == ~uint64_t(0)) return nullptr;
  }
}

void BpeModel::insert_pair(int32_t a, int32_t b, int32_t rank, int32_t id) {
  const uint64_t key = pair_key(a, b);
  for (uint64_t h = mix(key) & pair_mask_;; h = (h + 1) & pair_mask_) {
    PairSlot& s = pairs_[h];
    if (s.key == key) return;  // duplicate merge: the first (lowest rank) wins
    if (s.key == ~uint64_t(0)) {
      s = PairSlot{key, rank, id};
      return;
    }
  }
}

BpeModel BpeModel::from_json(const json& m, const std::string& where, BpeTables* tables) {
  const char* w = where.c_str();
  if (!m.is_object()) DSVL2_FAIL("%s: 'model' must be an object", w);
  if (auto t = m.find("type"); t != m.end() && !(t->is_string() && t->get<std::string>() == "BPE"))
    DSVL2_FAIL("%s: unsupported model type %s (only BPE)", w, t->dump().c_str());
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = m.find(k);
    if (it != m.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty()))
      DSVL2_FAIL("%s: BPE '%s' is not supported", w, k);
  }
  if (auto d = m.find("dropout"); d != m.end() && !d->is_null()) {
    if (!d->is_number()) DSVL2_FAIL("%s: BPE 'dropout' must be a number or null", w);
    if (d->get<double>() != 0.0) DSVL2_FAIL("%s: BPE dropout is not supported", w);
  }
  BpeModel bpe;
  if (auto im = m.find("ignore_merges"); im != m.end() && !im->is_null()) {
    if (!im->is_boolean()) DSVL2_FAIL("%s: BPE 'ignore_merges' must be a boolean", w);
    bpe.ignore_merges_ = im->get<bool>();
  }

  BpeTables local;
  BpeTables& t = tables ? *tables : local;
  if (!t.has_vocab) {
    auto v = m.find("vocab");
    if (v == m.end() || !v->is_object()) DSVL2_FAIL("%s: BPE model has no 'vocab' object", w);
    for (auto it = v->begin(); it != v->end(); ++it) {
      if (!it.value().is_number_integer()) DSVL2_FAIL("%s: vocab entry '%s' has a non-integer id", w, it.key().c_str());
      t.vocab.emplace_back(it.key(), it.value().get<int64_t>());
    }
  }
  if (!t.has_merges) {
    auto mg = m.find("merges");
    if (mg == m.end() || !mg->is_array()) DSVL2_FAIL("%s: BPE model has no 'merges' array", w);
    for (const auto& e : *mg) {
      const int rank = int(t.merges.size());
      if (e.is_string()) {
        const std::string& s = e.get_ref<const std::string&>();
        size_t sp = s.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size())
          DSVL2_FAIL("%s: merge %d '%s' is not two tokens separated by a space", w, rank, s.c_str());
        t.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        t.merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
      } else {
        DSVL2_FAIL("%s: merge %d must be a string \"a b\" or a pair of strings", w, rank);
      }
    }
  }

  if (t.vocab.empty()) DSVL2_FAIL("%s: BPE vocab is empty", w);
  int32_t max_id = -1;
  bpe.vocab_.reserve(t.vocab.size());
  bpe.by_bytes_.reserve(t.vocab.size());
  for (auto& [tok, id] : t.vocab) {
    // Ids are dense in real files; a sparse id would only make the tables huge.
    if (id < 0 || id >= kMaxId || id >= int64_t(t.vocab.size()) + kMaxIdGap)
      DSVL2_FAIL("%s: vocab id %lld out of range (%zu entries)", w, (long long)id, t.vocab.size());
    if (!utf8::is_valid(tok)) DSVL2_FAIL("%s: vocab token with invalid UTF-8", w);
    max_id = std::max(max_id, int32_t(id));
  }
  bpe.tokens_.assign(size_t(max_id) + 1, std::string());
  for (auto& [tok, id64] : t.vocab) {
    const auto id = int32_t(id64);
    if (!bpe.vocab_.emplace(tok, id).second) continue;
    if (auto bytes = byte_level_decode(tok)) {
      if (bytes->size() == 1) {
        int32_t& slot = bpe.byte_id_[uint8_t((*bytes)[0])];
        if (slot < 0 || id < slot) slot = id;
      }
      bpe.by_bytes_.emplace(std::move(*bytes), id);
    }
    bpe.tokens_[size_t(id)] = std::move(tok);
  }

  size_t cap = 16;
  while (cap < t.merges.size() * 2 + 16) cap <<= 1;
  bpe.pairs_.assign(cap, PairSlot{});
  bpe.pair_mask_ = cap - 1;
  int32_t rank = 0;
  std::string merged;
  for (const auto& [sa, sb] : t.merges) {
    auto ia = bpe.vocab_.find(sa), ib = bpe.vocab_.find(sb);
    merged.assign(sa);
    merged += sb;
    auto im = bpe.vocab_.find(merged);
    if (ia == bpe.vocab_.end() || ib == bpe.vocab_.end() || im == bpe.vocab_.end())
      DSVL2_FAIL("%s: merge %d ('%s' '%s') uses a token missing from the vocab", w, rank, sa.c_str(), sb.c_str());
    bpe.insert_pair(ia->second, ib->second, rank, im->second);
    rank++;
  }
  bpe.n_merges_ = size_t(rank);
  return bpe;
}

const std::string& BpeModel::token(int32_t id) const {
  static const std::string kEmpty;
  return id >= 0 && id < int32_t(tokens_.size()) ? tokens_[size_t(id)] : kEmpty;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view tok) const {
  auto it = vocab_.find(std::string(tok));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

void BpeModel::merge_word(std::string_view bytes, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    if (auto it = by_bytes_.find(std::string(bytes)); it != by_bytes_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  struct Sym {
    int32_t id, prev, next;
  };
  // Bytes whose symbol is missing from the vocab are dropped (no unk token).
  thread_local std::vector<Sym> sym;
  sym.clear();
  for (char c : bytes) {
    int32_t id = byte_id_[uint8_t(c)];
    if (id < 0) continue;
    int32_t k = int32_t(sym.size());
    sym.push_back({id, k - 1, k + 1});
  }
  if (sym.empty()) return;
  sym.back().next = -1;
  const int32_t n = int32_t(sym.size());
  if (n > 1) {
    struct Cand {
      int32_t rank, pos, id;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    thread_local std::vector<Cand> q;  // min-heap on (rank, pos)
    q.clear();
    auto push = [](Cand c) {
      q.push_back(c);
      std::push_heap(q.begin(), q.end(), std::greater<Cand>{});
    };
    for (int32_t i = 0; i + 1 < n; i++)
      if (const PairSlot* p = find_pair(sym[size_t(i)].id, sym[size_t(i + 1)].id)) push({p->rank, i, p->id});
    while (!q.empty()) {
      std::pop_heap(q.begin(), q.end(), std::greater<Cand>{});
      Cand c = q.back();
      q.pop_back();
      Sym& l = sym[size_t(c.pos)];
      if (l.id < 0 || l.next < 0) continue;
      Sym& r = sym[size_t(l.next)];
      const PairSlot* p = find_pair(l.id, r.id);
      if (!p || p->id != c.id || p->rank != c.rank) continue;  // stale entry
      l.id = c.id;
      r.id = -1;  // removed
      l.next = r.next;
      if (l.next >= 0) sym[size_t(l.next)].prev = c.pos;
      if (l.prev >= 0)
        if (const PairSlot* pp = find_pair(sym[size_t(l.prev)].id, l.id)) push({pp->rank, l.prev, pp->id});
      if (l.next >= 0)
        if (const PairSlot* pn = find_pair(l.id, sym[size_t(l.next)].id)) push({pn->rank, c.pos, pn->id});
    }
  }
  for (int32_t i = 0; i >= 0; i = sym[size_t(i)].next) out.push_back(sym[size_t(i)].id);
}

void BpeModel::encode_word(std::string_view bytes, std::vector<int32_t>& out) const {
  if (bytes.empty()) return;
  if (bytes.size() == 1) {
    int32_t id = byte_id_[uint8_t(bytes[0])];
    if (id >= 0) out.push_back(id);
    return;
  }
  const bool cacheable = bytes.size() <= kCacheMaxWordBytes;
  Cache& c = *cache_;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(c.mu);
    if (auto it = c.map.find(bytes); it != c.map.end()) {
      out.insert(out.end(), c.ids.begin() + it->second.first,
                 c.ids.begin() + it->second.first + it->second.second);
      return;
    }
  }
  const size_t start = out.size();
  merge_word(bytes, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.map.size() >= kCacheMaxWords) {
      c.map.clear();
      c.ids.clear();
    }
    auto off = uint32_t(c.ids.size());
    c.ids.insert(c.ids.end(), out.begin() + long(start), out.end());
    c.map.emplace(std::string(bytes), std::make_pair(off, uint32_t(out.size() - start)));
  }
}

}  // namespace dsvl2
