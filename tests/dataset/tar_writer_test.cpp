// tar_member / tar_end: the bytes themselves, a round trip through
// libarchive's reader, and one through GNU tar when it is installed.
#include <gtest/gtest.h>

#include <cstring>

#include "dataset/dataset_fixture.h"

namespace dsvl2::dataset {
namespace {

std::string field(const std::string& header, size_t at, size_t n) {
  return std::string(header.c_str() + at, strnlen(header.c_str() + at, n));
}

TEST(TarWriter, OneUstarMemberWithDeterministicFields) {
  const std::string data = "hello, tar";
  const std::string m = tar_member("000001.txt", data);
  ASSERT_EQ(m.size(), 1024u);  // header + one padded data block
  EXPECT_EQ(m, tar_member("000001.txt", data)) << "the same input gives the same bytes";
  EXPECT_EQ(field(m, 0, 100), "000001.txt");
  EXPECT_EQ(field(m, 100, 8), "000644 ");      // mode
  EXPECT_EQ(field(m, 108, 8), "000000 ");      // uid
  EXPECT_EQ(field(m, 116, 8), "000000 ");      // gid
  EXPECT_EQ(field(m, 124, 12), "00000000012 ");  // size, octal
  EXPECT_EQ(field(m, 136, 12), "00000000000 ");  // mtime 0
  EXPECT_EQ(m[156], '0');                        // regular file
  EXPECT_EQ(std::string(m.data() + 257, 6), std::string("ustar\0", 6));
  EXPECT_EQ(field(m, 265, 32), "");  // no user name
  EXPECT_EQ(field(m, 297, 32), "");  // no group name
  EXPECT_EQ(m.substr(512, data.size()), data);
  EXPECT_EQ(m.substr(512 + data.size()), std::string(512 - data.size(), '\0'));
  // Data of a whole number of blocks gets no padding; empty data no data block.
  EXPECT_EQ(tar_member("a.bin", std::string(1024, 'x')).size(), 512u + 1024u);
  EXPECT_EQ(tar_member("a.bin", "").size(), 512u);
  EXPECT_EQ(tar_end(), std::string(1024, '\0'));
  EXPECT_THROW(tar_member("", "x"), Error);
}

TEST(TarWriter, RoundTripThroughTheReader) {
  std::string binary(70000, '\0');
  for (size_t i = 0; i < binary.size(); i++) binary[i] = char(i * 131 + 7);
  const std::string long_name = std::string(150, 'p') + "/" + std::string(90, 'n') + ".jpg";
  const std::string longer_name = std::string(300, 'q') + "/k.jpg";  // beyond ustar: a pax header carries it
  const std::string utf8_name = "caf\xC3\xA9/\xE6\x97\xA5\xE6\x9C\xAC.jpg";
  const auto s = test::read_tar_bytes(test::test_dir(), test::make_tar({{"bin.jpg", binary},
                                                                        {"bin.txt", std::string("\0\x01", 2)},
                                                                        {long_name, "long"},
                                                                        {longer_name, "longer"},
                                                                        {utf8_name, "utf8"}}));
  ASSERT_EQ(s.size(), 4u) << test::keys_of(s);
  EXPECT_EQ(s[0].image_bytes, binary);
  EXPECT_EQ(*s[0].alt_text, std::string("\0\x01", 2));
  EXPECT_EQ(s[1].image_name, long_name);
  EXPECT_EQ(s[1].image_bytes, "long");
  EXPECT_EQ(s[2].image_name, longer_name);
  EXPECT_EQ(s[2].image_bytes, "longer");
  EXPECT_EQ(s[3].image_name, utf8_name);
  EXPECT_EQ(s[3].image_bytes, "utf8");
  for (const Sample& x : s) EXPECT_TRUE(x.error.empty()) << x.error;
}

TEST(TarWriter, GnuTarListsAndExtractsIt) {
  if (dsvl2::test::run_command("tar --version").exit_code != 0) GTEST_SKIP() << "GNU tar not installed";
  const std::string dir = test::test_dir();
  const std::string long_name = std::string(300, 'q') + "/k.txt";
  const std::string utf8_name = "caf\xC3\xA9/\xE6\x97\xA5.txt";
  test::write_bytes(dir + "/s.tar", test::make_tar({{"000.jpg", test::tiny_jpeg()},
                                                    {"000.txt", "a caption"},
                                                    {long_name, "deep"},
                                                    {utf8_name, "utf8"}}));
  auto r = dsvl2::test::run_command("LC_ALL=C.UTF-8 TZ=UTC0 tar tvf " + dir + "/s.tar");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("-rw-r--r-- 0/0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1970-01-01 00:00 000.jpg"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(long_name), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(utf8_name), std::string::npos) << r.out;
  EXPECT_TRUE(r.err.empty()) << r.err;  // no "lone zero block", unknown keyword or other warnings
  r = dsvl2::test::run_command("tar xOf " + dir + "/s.tar 000.txt");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "a caption");
  r = dsvl2::test::run_command("tar xOf " + dir + "/s.tar " + long_name);
  EXPECT_EQ(r.out, "deep");
  r = dsvl2::test::run_command("LC_ALL=C.UTF-8 tar xOf " + dir + "/s.tar " + utf8_name);
  EXPECT_EQ(r.out, "utf8");
}

}  // namespace
}  // namespace dsvl2::dataset
