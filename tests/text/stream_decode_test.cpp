// Streaming decode: multi-byte characters split across tokens are held back
// until complete; invalid bytes become U+FFFD exactly as in a full decode.
#include <gtest/gtest.h>

#include "stub_tokenizer.h"
#include "test_util.h"
#include "text/tokenizer.h"
#include "core/utf8.h"

namespace dsvl2 {
namespace {

Tokenizer byte_tokenizer() { return Tokenizer::from_json_text(test::stub_tokenizer({}, true).dump(), "stub"); }

TEST(StreamDecode, HoldsBackSplitCharacters) {
  Tokenizer tok = byte_tokenizer();
  const std::string text = "h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x99\x82!";  // héllo 世界 🙂!
  auto ids = tok.encode(text);
  ASSERT_EQ(ids.size(), text.size());  // one token per byte: no merges
  StreamDecoder sd(tok);
  std::vector<std::string> outs;
  std::string all;
  for (int32_t id : ids) {
    outs.push_back(sd.push(id));
    EXPECT_TRUE(utf8::is_valid(outs.back()));
    all += outs.back();
  }
  all += sd.flush();
  EXPECT_EQ(all, text);
  EXPECT_EQ(all, tok.decode(ids));
  // "é" is bytes 1..2: nothing comes out after its first byte, all of it after the second.
  EXPECT_EQ(outs[1], "");
  EXPECT_EQ(outs[2], "\xC3\xA9");
  // "世" is bytes 7..9, "🙂" 14..17.
  EXPECT_EQ(outs[7], "");
  EXPECT_EQ(outs[8], "");
  EXPECT_EQ(outs[9], "\xE4\xB8\x96");
  EXPECT_EQ(outs[14] + outs[15] + outs[16], "");
  EXPECT_EQ(outs[17], "\xF0\x9F\x99\x82");
}

TEST(StreamDecode, InvalidBytesMatchLossyDecode) {
  Tokenizer tok = byte_tokenizer();
  auto id_of_byte = [&](uint8_t b) { return tok.token_to_id(byte_level_encode(std::string(1, char(b)))).value(); };
  // E4 B8 then 'a': the truncated sequence is one U+FFFD, then 'a'.
  std::vector<int32_t> ids = {id_of_byte(0xE4), id_of_byte(0xB8), id_of_byte('a'), id_of_byte(0xFF), id_of_byte(0xE4)};
  StreamDecoder sd(tok);
  std::string s0 = sd.push(ids[0]), s1 = sd.push(ids[1]), s2 = sd.push(ids[2]), s3 = sd.push(ids[3]);
  std::string s4 = sd.push(ids[4]);
  EXPECT_EQ(s0 + s1, "");
  EXPECT_EQ(s2, "\xEF\xBF\xBD" "a");
  EXPECT_EQ(s3, "\xEF\xBF\xBD");
  EXPECT_EQ(s4, "");
  std::string tail = sd.flush();
  EXPECT_EQ(tail, "\xEF\xBF\xBD");
  EXPECT_EQ(s0 + s1 + s2 + s3 + s4 + tail, tok.decode(ids));
  EXPECT_EQ(tok.decode(ids), "\xEF\xBF\xBD" "a\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(StreamDecode, LossyMaximalSubparts) {
  // from_utf8_lossy examples: surrogates and overlongs are invalid byte by byte
  // after the lead byte's valid prefix.
  EXPECT_EQ(utf8::lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8::lossy("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8::lossy("\xF0\x9F\x99"), "\xEF\xBF\xBD");
  EXPECT_EQ(utf8::lossy("a\xF0\x9F\x99" "b"), "a\xEF\xBF\xBD" "b");
}

TEST(StreamDecode, RealTokenizerMixedText) {
  const std::string dir = test::tokenizer_dir();
  if (dir.empty()) GTEST_SKIP() << "shared/tokenizer not found";
  Tokenizer tok = Tokenizer::load(dir + "/deepseek_v3");
  const std::string text = "Emoji 🙂🙃 and 漢字かな, ünïcödé <|ref|>box<|/ref|> 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 end";
  auto ids = tok.encode(text);
  StreamDecoder sd(tok);
  std::string all;
  int held = 0;
  for (int32_t id : ids) {
    std::string s = sd.push(id);
    EXPECT_TRUE(utf8::is_valid(s));
    held += s.empty();
    all += s;
  }
  all += sd.flush();
  EXPECT_EQ(all, text);
  EXPECT_GT(held, 0);  // some characters do span tokens in this text
}

TEST(StreamDecode, SkipSpecial) {
  Tokenizer tok = byte_tokenizer();
  auto ids = tok.encode("a<|User|>b");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(tok.decode(ids), "a<|User|>b");
  EXPECT_EQ(tok.decode(ids, /*skip_special=*/true), "ab");
  StreamDecoder sd(tok, true);
  EXPECT_EQ(sd.push(ids[0]) + sd.push(ids[1]) + sd.push(ids[2]) + sd.flush(), "ab");
}

}  // namespace
}  // namespace dsvl2
