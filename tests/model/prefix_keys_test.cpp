// Prefix-reuse keys: two prompts with equal token ids but different images
// must part at the first image position; the same image gives the same keys.
#include "model/prefix_keys.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace dsvl2 {
namespace {

Image solid(int w, int h, uint8_t v) {
  Image im;
  im.width = w;
  im.height = h;
  im.rgb.assign(size_t(w) * h * 3, v);
  return im;
}

TEST(PrefixKeys, ImagesWithEqualIdsGetDifferentKeys) {
  PromptIds p;
  p.ids = {1, 2, 9, 9, 9, 9, 3, 4};
  p.images = {{2, 4}};
  const Image a = solid(32, 24, 10), b = solid(32, 24, 11), a2 = solid(32, 24, 10);
  const uint64_t ha = image_content_hash(a), hb = image_content_hash(b);
  EXPECT_EQ(ha, image_content_hash(a2));
  EXPECT_NE(ha, hb);
  EXPECT_NE(image_content_hash(solid(24, 32, 10)), ha) << "same bytes, other size";
  EXPECT_NE(image_content_hash(a, 1), ha) << "another encoding variant";
  // Differences in the top bit of two words must not cancel.
  Image c = solid(32, 24, 10);
  c.rgb[7] ^= 0x80;
  c.rgb[15] ^= 0x80;
  EXPECT_NE(image_content_hash(c), ha);
  const uint64_t ka[] = {ha}, kb[] = {hb};
  auto keys_a = prefix_keys(p, ka), keys_b = prefix_keys(p, kb), keys_a2 = prefix_keys(p, ka);
  EXPECT_EQ(common_prefix(keys_a, keys_b), 2u) << "reuse must stop at the first image position";
  EXPECT_EQ(common_prefix(keys_a, keys_a2), p.ids.size());
  for (size_t i = 0; i < 2; i++) EXPECT_EQ(keys_a[i], uint64_t(p.ids[i]));
  for (size_t i = 2; i < 6; i++) EXPECT_GE(keys_a[i], 1ull << 63) << "an image key never equals a token id";
  EXPECT_NE(keys_a[2], keys_a[3]) << "positions within an image differ";
  const uint64_t none[] = {0};
  EXPECT_THROW(prefix_keys(p, std::span<const uint64_t>(none, 0)), Error);
}

}  // namespace
}  // namespace dsvl2
