// The OCR check's rendered validation set: images with known text (several
// fonts, sizes, colours, small rotations, plain / gradient / textured / dark /
// coloured backgrounds) and PixelProse-style captions whose quotes are known
// to be right, wrong, or missing. Deterministic: make_validation_set(n, seed)
// gives the same samples on every run.
#pragma once
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include "core/rng.h"
#include "ocr/render_text.h"
#include "ocr/text_match.h"

namespace dsvl2::test {

enum class Truth { kQuoted, kMisquoted, kMissing };

struct TextItem {
  std::string text;  // what the image shows
  std::array<int, 4> box{};
  Truth truth = Truth::kQuoted;
  TextStyle style;
};

struct TruthQuote {
  std::string quote;
  bool correct = false;  // the image shows it
};

struct Sample {
  Image image;
  std::string caption;
  std::vector<TextItem> items;
  std::vector<TruthQuote> quotes;  // in caption order
  std::string background;          // plain, gradient, textured, dark, coloured
};

inline const std::vector<std::string>& phrases() {
  static const std::vector<std::string> p = {"SUMMER SALE",
                                             "Fresh Bread Daily",
                                             "Open 24 Hours",
                                             "GRAND OPENING",
                                             "Happy Birthday",
                                             "Welcome Home",
                                             "Merry Christmas",
                                             "No Parking",
                                             "Free Wi-Fi",
                                             "Room 204",
                                             "Fresh Fruit Market",
                                             "Live Music Tonight",
                                             "Coffee & Tea",
                                             "EXIT",
                                             "Thank You",
                                             "Good Morning",
                                             "Lost and Found",
                                             "Keep Calm",
                                             "City Library",
                                             "Main Street",
                                             "Jazz Night",
                                             "Ice Cream",
                                             "Best Friends Forever",
                                             "Hello World",
                                             "Stay Curious",
                                             "The Daily News",
                                             "Farmers Market",
                                             "Pizza Palace",
                                             "Sunset Boulevard",
                                             "Grandma's Kitchen",
                                             "Winter Festival 2024",
                                             "Call 555-0142",
                                             "Bakery",
                                             "PHARMACY",
                                             "Garden Center",
                                             "Book Club",
                                             "Train Station",
                                             "Blue Moon Cafe",
                                             "Vintage Records",
                                             "Ocean View Hotel",
                                             "Please Knock",
                                             "Staff Only",
                                             "Mountain Trail",
                                             "Fire Station 9",
                                             "Closed on Sundays",
                                             "Fresh Flowers",
                                             "Happy New Year",
                                             "Science Fair",
                                             "Gift Shop",
                                             "Sale 50% Off",
                                             "Dream Big",
                                             "Wild Berries",
                                             "Silver Lake",
                                             "Art Gallery",
                                             "Pet Supplies",
                                             "Golden Gate",
                                             "Harbor Lights",
                                             "Breakfast Menu",
                                             "Quiet Please",
                                             "Bike Repair"};
  return p;
}

// Replacement words for wrong quotes: plausible, and far from any word they replace.
inline const std::vector<std::string>& other_words() {
  static const std::vector<std::string> w = {"Winter", "Autumn", "Pasta",  "Bridge",  "Candle",  "Rocket", "Violet",
                                             "Tiger",  "Copper", "Meadow", "Lantern", "Pepper",  "Castle", "Orbit",
                                             "Velvet", "Falcon", "Marble", "Cactus",  "Harvest", "Thunder"};
  return w;
}

inline std::string misquote(const std::string& text, Rng& rng) {
  std::vector<std::string> words;
  size_t at = 0;
  for (;;) {
    const size_t sp = text.find(' ', at);
    words.push_back(text.substr(at, sp - at));
    if (sp == std::string::npos) break;
    at = sp + 1;
  }
  size_t longest = 0;
  for (size_t i = 1; i < words.size(); ++i)
    if (words[i].size() > words[longest].size()) longest = i;
  const std::u32string old = ocr::normalize_text(std::string_view(words[longest]));
  std::string repl;
  do {
    repl = other_words()[rng.next() % other_words().size()];
  } while (ocr::similarity(ocr::normalize_text(std::string_view(repl)), old) >= 0.5);
  bool upper = true;
  for (char c : words[longest]) upper = upper && !(c >= 'a' && c <= 'z');
  if (upper)
    for (char& c : repl) c = char(std::toupper(uint8_t(c)));
  words[longest] = repl;
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) out += (i ? " " : "") + words[i];
  return out;
}

inline Sample make_sample(uint64_t seed, int index, int w = 384, int h = 384) {
  Rng rng(seed, uint64_t(index));
  const auto pick = [&](int n) { return int(rng.next() % uint64_t(n)); };
  const auto chan = [&](int lo, int hi) { return uint8_t(lo + pick(hi - lo + 1)); };
  Sample s;
  TextCanvas c(w, h);
  // Background, and whether text is light.
  const int bg = pick(5);
  bool light_text = false;
  std::string bg_desc;
  if (bg == 0) {
    c.fill({chan(210, 255), chan(210, 255), chan(210, 255)});
    bg_desc = "a plain pale background";
    s.background = "plain";
  } else if (bg == 1) {
    c.gradient({chan(200, 255), chan(200, 255), chan(200, 255)}, {chan(140, 200), chan(140, 200), chan(140, 200)},
               pick(2) == 0);
    bg_desc = "a soft gradient background";
    s.background = "gradient";
  } else if (bg == 2) {
    c.noise({chan(190, 235), chan(190, 235), chan(190, 235)}, 20 + pick(20), rng.next());
    bg_desc = "a textured, speckled background";
    s.background = "textured";
  } else if (bg == 3) {
    c.gradient({chan(0, 50), chan(0, 50), chan(0, 60)}, {chan(20, 80), chan(20, 80), chan(20, 80)}, pick(2) == 0);
    light_text = true;
    bg_desc = "a dark background";
    s.background = "dark";
  } else {
    static const Rgb colored[] = {{190, 30, 40}, {20, 90, 170}, {30, 130, 60}, {120, 40, 140}, {200, 110, 20}};
    c.fill(colored[pick(5)]);
    light_text = true;
    bg_desc = "a strongly coloured background";
    s.background = "coloured";
  }
  static const char* fonts[] = {"DejaVu Sans",     "DejaVu Serif",     "DejaVu Sans Mono",
                                "Liberation Sans", "Liberation Serif", "Liberation Mono"};
  static const double sizes[] = {14, 16, 18, 20, 22, 24, 28, 32, 36, 40};
  const int n_items = 2 + pick(2);
  const int band = h / n_items;
  std::vector<std::string> used;
  for (int i = 0; i < n_items; ++i) {
    std::string text;
    do {
      text = phrases()[size_t(pick(int(phrases().size())))];
    } while (std::find(used.begin(), used.end(), text) != used.end());
    used.push_back(text);
    TextStyle st;
    st.font = fonts[pick(6)];
    st.size_px = sizes[pick(10)];
    st.bold = pick(4) == 0;
    const bool faint = pick(8) == 0;  // low contrast
    st.color = light_text ? (faint ? Rgb{chan(130, 170), chan(130, 170), chan(130, 170)}
                                   : Rgb{chan(200, 255), chan(200, 255), chan(200, 255)})
                          : (faint ? Rgb{chan(100, 130), chan(100, 130), chan(100, 130)}
                                   : Rgb{chan(0, 90), chan(0, 90), chan(0, 90)});
    st.angle_deg = pick(10) < 7 ? 0 : (pick(2) ? 1 : -1) * (2 + pick(7));  // up to 8 degrees
    auto [tw, th] = c.measure(text, st);
    while (tw > w - 30 && st.size_px > 14) {
      st.size_px -= 2;
      std::tie(tw, th) = c.measure(text, st);
    }
    const double x = 10 + pick(std::max(1, w - 20 - tw));
    const double y = i * band + 12 + pick(std::max(1, band - th - 24 - int(std::abs(st.angle_deg) * tw / 57)));
    const double ty = st.angle_deg > 0 ? y + std::sin(st.angle_deg * M_PI / 180) * tw : y;  // keep inside the band
    TextItem item{text, c.text(text, x, ty, st), Truth::kQuoted, st};
    const int r = pick(20);
    item.truth = r < 9 ? Truth::kQuoted : r < 13 ? Truth::kMisquoted : Truth::kMissing;
    s.items.push_back(item);
  }
  s.image = c.image();
  // The caption: PixelProse's opening, apostrophes outside quotes, the quotes
  // in four styles.
  static const char* open[] = {"“", "\"", "‘", "'"};
  static const char* close[] = {"”", "\"", "’", "'"};
  static const char* where[] = {"at the top", "in the middle", "near the bottom"};
  static const char* lead[] = {"The text %s is written in a clean font %s.", "It's a sign that says %s, placed %s.",
                               "The words %s appear in large letters %s.", "A line reading %s sits %s."};
  s.caption = "This image displays: a graphic design with " + bg_desc + ". It doesn't show any people. ";
  const auto add_quote = [&](const std::string& q, bool correct, int pos) {
    const int st = pick(4);
    char buf[600];
    std::snprintf(buf, sizeof buf, lead[pick(4)], (std::string(open[st]) + q + close[st]).c_str(), where[pos % 3]);
    s.caption += std::string(buf) + " ";
    s.quotes.push_back({q, correct});
  };
  for (size_t i = 0; i < s.items.size(); ++i) {
    const TextItem& it = s.items[i];
    if (it.truth == Truth::kQuoted) add_quote(it.text, true, int(i));
    if (it.truth == Truth::kMisquoted) add_quote(misquote(it.text, rng), false, int(i));
  }
  if (pick(4) == 0) {  // a quote of text the image does not have at all
    std::string q;
    do {
      q = phrases()[size_t(pick(int(phrases().size())))];
    } while (std::find(used.begin(), used.end(), q) != used.end());
    add_quote(q, false, 2);
  }
  s.caption += pick(2) ? "The designers' choice of colours is simple, in a rock 'n' roll poster style."
                       : "The style is that of a flat digital illustration; there's no photograph.";
  return s;
}

}  // namespace dsvl2::test
