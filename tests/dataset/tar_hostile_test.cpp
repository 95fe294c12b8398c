// Hostile tars: truncated at every offset, corrupt, garbage, oversized or
// escaping members. The reader must never throw or crash on them, give every
// sample it could read whole, and end with one error sample.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "core/rng.h"
#include "dataset/dataset_fixture.h"

namespace dsvl2::dataset {
namespace {

using test::keys_of;
using test::Members;
using test::make_tar;
using test::read_tar_bytes;

bool same_sample(const Sample& a, const Sample& b) {
  return a.key == b.key && a.image_name == b.image_name && a.image_bytes == b.image_bytes &&
         a.alt_text == b.alt_text && a.source_meta == b.source_meta && a.error == b.error;
}

// Makes a changed ustar header's checksum right again.
void fix_checksum(char* h) {
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (int i = 0; i < 512; i++) sum += uint8_t(h[i]);
  std::snprintf(h + 148, 8, "%06o", sum);
}

// Three samples whose images span several blocks.
std::string three_samples() {
  Members m;
  for (int i = 0; i < 3; i++) {
    const std::string k = "00" + std::to_string(i);
    m.push_back({k + ".jpg", std::string(700 + 300 * i, char('a' + i))});
    m.push_back({k + ".txt", "caption " + k});
    m.push_back({k + ".json", "{\"i\": " + std::to_string(i) + "}"});
  }
  return make_tar(m);
}

TEST(TarHostile, TruncatedAnywhere) {
  const std::string dir = test::test_dir();
  const std::string full = three_samples();
  const std::vector<Sample> whole = read_tar_bytes(dir, full);
  ASSERT_EQ(keys_of(whole), "000 001 002");
  // Every block boundary and its neighbours, and a stride through the rest
  // (every offset would take ~12 s: rewriting a file costs ~1 ms on ext4).
  std::vector<size_t> cuts;
  for (size_t b = 0; b < full.size(); b += 512)
    for (size_t d : {size_t(0), size_t(1), size_t(100), size_t(257), size_t(511)}) cuts.push_back(b + d);
  for (size_t c = 0; c < full.size(); c += 23) cuts.push_back(c);
  for (size_t cut : cuts) {
    SCOPED_TRACE(cut);
    std::vector<Sample> s;
    ASSERT_NO_THROW(s = read_tar_bytes(dir, full.substr(0, cut)));
    // The samples read whole, then exactly one error sample.
    ASSERT_FALSE(s.empty());
    ASSERT_FALSE(s.back().error.empty()) << keys_of(s);
    ASSERT_LE(s.size(), whole.size() + 1);
    for (size_t i = 0; i + 1 < s.size(); i++) ASSERT_TRUE(same_sample(s[i], whole[i])) << keys_of(s);
    if (HasFatalFailure()) return;
  }
}

TEST(TarHostile, TheErrorSampleNamesTheBrokenPart) {
  const std::string dir = test::test_dir();
  const std::string full = three_samples();
  // Inside the first header: nothing was read.
  auto s = read_tar_bytes(dir, full.substr(0, 100));
  EXPECT_EQ(keys_of(s), "__truncated_after_0!");
  // Inside the data of 001.jpg (its header starts after sample 000's 3584 bytes).
  s = read_tar_bytes(dir, full.substr(0, 3584 + 512 + 100));
  EXPECT_EQ(keys_of(s), "000 001!");
  EXPECT_NE(s[1].error.find("001.jpg"), std::string::npos) << s[1].error;
  // Inside the header after 001.json: that member might have been 001's too,
  // so 001 is the error sample.
  s = read_tar_bytes(dir, full.substr(0, 2 * 3584 + 200));
  EXPECT_EQ(keys_of(s), "000 001!");
  EXPECT_NE(s[1].error.find("after member 001.json"), std::string::npos) << s[1].error;
  // Cut exactly at a member boundary: libarchive sees a clean end, the
  // missing end-of-archive marker gives the cut away.
  s = read_tar_bytes(dir, full.substr(0, 3584 + 1536));
  EXPECT_EQ(keys_of(s), "000 001!");
  EXPECT_NE(s[1].error.find("end-of-archive"), std::string::npos) << s[1].error;
}

TEST(TarHostile, CorruptHeaderEndsTheShardWithOneError) {
  std::string tar = three_samples();
  tar[2 * 3584 + 10] ^= 0x55;  // inside 002.jpg's name: its checksum no longer matches
  const auto s = read_tar_bytes(test::test_dir(), tar);
  EXPECT_EQ(keys_of(s), "000 001!");
  EXPECT_NE(s[1].error.find("after member 001.json"), std::string::npos) << s[1].error;
}

TEST(TarHostile, GarbageAndEmptyFilesAreErrorSamples) {
  const std::string dir = test::test_dir();
  auto s = read_tar_bytes(dir, "");
  EXPECT_EQ(keys_of(s), "__truncated_after_0!");
  EXPECT_NE(s[0].error.find("empty"), std::string::npos) << s[0].error;
  for (uint64_t seed = 1; seed <= 20; seed++) {
    const size_t n = 1 + seed * 977 % 6000;
    std::string junk(n, '\0');
    Rng rng(seed, 0);
    for (char& c : junk) c = char(rng.next());
    ASSERT_NO_THROW(s = read_tar_bytes(dir, junk)) << seed;
    ASSERT_EQ(s.size(), 1u) << seed;
    EXPECT_FALSE(s[0].error.empty());
    // Good samples, then garbage: the samples, then one error.
    const std::string good = tar_member("ok.jpg", "i");
    ASSERT_NO_THROW(s = read_tar_bytes(dir, good + junk)) << seed;
    EXPECT_EQ(keys_of(s), "ok!") << seed;
  }
  // Not a tar at all: a JPEG.
  s = read_tar_bytes(dir, test::tiny_jpeg());
  EXPECT_EQ(keys_of(s), "__truncated_after_0!");
}

TEST(TarHostile, OversizedMembersAreSkippedUnread) {
  ReadLimits limits;
  limits.max_member_bytes = 1000;
  limits.max_meta_bytes = 10;
  const auto s = read_tar_bytes(test::test_dir(),
                                make_tar({{"a.jpg", std::string(1001, 'x')},
                                          {"a.txt", "t"},
                                          {"b.jpg", std::string(1000, 'y')},
                                          {"b.txt", "0123456789"},
                                          {"c.jpg", "i"},
                                          {"c.txt", "01234567890"},
                                          {"d.jpg", "i"},
                                          {"d.mp4", std::string(5000, 'v')}}),  // unused members have no limit
                                limits);
  ASSERT_EQ(keys_of(s), "a! b c! d");
  EXPECT_NE(s[0].error.find("a.jpg: 1001 bytes, over the limit of 1000"), std::string::npos) << s[0].error;
  EXPECT_EQ(s[1].image_bytes.size(), 1000u);
  EXPECT_NE(s[2].error.find("c.txt"), std::string::npos) << s[2].error;
}

// A header claiming 8 GiB of data that is not there, for a member that is
// skipped (over the limit, or not used): never allocated, and the cut is seen.
TEST(TarHostile, LyingSizeField) {
  for (const char* name : {"b.jpg", "b.mp4"}) {
    std::string lie = tar_member(name, "x");
    std::memcpy(lie.data() + 124, "77777777777", 11);
    fix_checksum(lie.data());
    const auto s = read_tar_bytes(test::test_dir(), tar_member("a.jpg", "1") + lie + tar_end());
    EXPECT_EQ(keys_of(s), "a b!") << name;
  }
}

TEST(TarHostile, EscapingMemberPathsAreErrorSamples) {
  const auto s = read_tar_bytes(test::test_dir(), make_tar({{"../evil.jpg", "1"},
                                                            {"ok.jpg", "2"},
                                                            {"/etc/abs.jpg", "3"},
                                                            {"a/../../b.jpg", "4"},
                                                            {"x/..", "5"},
                                                            {"a..b/c.jpg", "6"}}));
  ASSERT_EQ(keys_of(s), "../evil! ok /etc/abs! a/../../b! x/..! a..b/c");
  EXPECT_NE(s[0].error.find("'..'"), std::string::npos) << s[0].error;
  EXPECT_EQ(s[5].image_bytes, "6") << "two dots in a folder name are no '..' component";
}

TEST(TarHostile, TooManyMembers) {
  ReadLimits limits;
  limits.max_members = 3;
  const auto s = read_tar_bytes(test::test_dir(),
                                make_tar({{"a.jpg", "1"}, {"a.txt", "t"}, {"b.jpg", "2"}, {"c.jpg", "3"}}), limits);
  EXPECT_EQ(keys_of(s), "a b!");
  EXPECT_NE(s[1].error.find("more than 3 members"), std::string::npos) << s[1].error;
}

TEST(TarHostile, ErrorMessagesAreValidUtf8) {
  const std::string name = "bad\xFF\x01name.jpg";
  const auto s = read_tar_bytes(test::test_dir(), make_tar({{name, "1"}, {"bad\xFF\x01name.png", "2"}}));
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].key, "bad\xFF\x01name") << "keys stay raw";
  EXPECT_NE(s[0].error.find("bad\\xFF\\x01name.jpg"), std::string::npos) << s[0].error;
  EXPECT_NO_THROW(nlohmann::json(s[0].error).dump());
}

// Random bytes changed anywhere (names, sizes, checksums, data): whatever the
// reader makes of it, it does not throw, and its messages are valid UTF-8.
TEST(TarHostile, MutatedTarsNeverThrow) {
  const std::string dir = test::test_dir();
  const std::string full = three_samples();
  for (uint64_t seed = 0; seed < 1000; seed++) {
    Rng rng(seed, 3);
    std::string tar = full;
    for (int k = 0; k < 1 + int(seed % 5); k++) {
      // Mostly inside headers, where the structure is.
      const size_t block = rng.next() % (tar.size() / 512);
      tar[block * 512 + (seed % 2 ? rng.next() % 512 : rng.next() % 160)] = char(rng.next());
      // Half of the time the header's checksum is made right again, so that
      // the changed fields are believed rather than the header refused.
      if (seed % 4 < 2 && full.compare(block * 512 + 257, 5, "ustar") == 0) fix_checksum(tar.data() + block * 512);
    }
    std::vector<Sample> s;
    ASSERT_NO_THROW(s = read_tar_bytes(dir, tar)) << seed;
    for (const Sample& x : s) ASSERT_NO_THROW(nlohmann::json(x.error).dump()) << seed;
  }
}

TEST(TarHostile, DataAfterTheEndMarkerIsIgnored) {
  const auto s = read_tar_bytes(test::test_dir(), make_tar({{"a.jpg", "1"}}) + "trailing junk");
  EXPECT_EQ(keys_of(s), "a");
}

}  // namespace
}  // namespace dsvl2::dataset
