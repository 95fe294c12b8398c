// Strict base64: RFC 4648 vectors both ways, and every malformed form refused.
#include <gtest/gtest.h>

#include "core/base64.h"
#include "core/error.h"

namespace dsvl2 {
namespace {

std::string decode(const std::string& s) {
  auto v = base64_decode(s);
  return std::string(v.begin(), v.end());
}

TEST(Base64, Rfc4648VectorsRoundTrip) {
  const std::pair<std::string, std::string> vectors[] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, enc] : vectors) {
    EXPECT_EQ(base64_encode(reinterpret_cast<const uint8_t*>(plain.data()), plain.size()), enc);
    EXPECT_EQ(decode(enc), plain);
  }
  std::string all;
  for (int i = 0; i < 256; i++) all += char(i);
  EXPECT_EQ(decode(base64_encode(reinterpret_cast<const uint8_t*>(all.data()), all.size())), all);
}

TEST(Base64, MalformedInputIsAnError) {
  for (const char* bad : {"Zg", "Zg=", "Z===", "Zm9v\n", "Zm 9", "Zm9v====", "Zh==", "Zm9=", "=Zm9", "Zm=v", "Zm9v!A=="})
    EXPECT_THROW(base64_decode(bad), Error) << bad;
  EXPECT_THROW(base64_decode("Zm9vYmFy", 5), Error);
  EXPECT_EQ(base64_decode("Zm9vYmFy", 6).size(), 6u);
}

}  // namespace
}  // namespace dsvl2
