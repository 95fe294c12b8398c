// Reading WebDataset tars: grouping by key, the fields of a sample, and tars
// written by libarchive directly (GNU and pax formats, folders, links).
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include "dataset/dataset_fixture.h"

namespace dsvl2::dataset {
namespace {

using test::keys_of;
using test::make_tar;
using test::read_tar_bytes;

TEST(TarReader, ConsecutiveMembersOfAKeyFormOneSample) {
  const std::string jpg = test::tiny_jpeg();
  const auto s = read_tar_bytes(test::test_dir(), make_tar({{"000.jpg", jpg},
                                                            {"000.txt", "a red bus"},
                                                            {"000.json", R"({"url": "http://x/0.jpg", "width": 16})"},
                                                            {"001.png", "png bytes"},
                                                            {"001.txt", ""},
                                                            {"002.webp", "webp bytes"}}));
  ASSERT_EQ(keys_of(s), "000 001 002");
  EXPECT_EQ(s[0].image_name, "000.jpg");
  EXPECT_EQ(s[0].image_bytes, jpg);
  ASSERT_TRUE(s[0].alt_text);
  EXPECT_EQ(*s[0].alt_text, "a red bus");
  EXPECT_EQ(s[0].source_meta["url"], "http://x/0.jpg");
  EXPECT_EQ(s[0].source_meta["width"], 16);
  ASSERT_TRUE(s[1].alt_text);
  EXPECT_EQ(*s[1].alt_text, "");  // an empty KEY.txt is an empty alt text, not a missing one
  EXPECT_TRUE(s[1].source_meta.is_null());
  EXPECT_FALSE(s[2].alt_text);
  EXPECT_EQ(s[2].image_bytes, "webp bytes");  // not an image: the reader passes bytes, decoding is the caller's
}

TEST(TarReader, KeyIsThePathUpToTheFirstDotOfTheBaseName) {
  const auto s = read_tar_bytes(test::test_dir(), make_tar({{"a/b/000123.jpg", "i"},
                                                            {"a/b/000123.txt", "t"},
                                                            {"a/b/000123.seg.png", "a mask, not the image"},
                                                            {"./v1.0/x.JPEG", "j"},
                                                            {"v1.0/y.gif", "g"},
                                                            {"z.bmp", "b"}}));
  ASSERT_EQ(keys_of(s), "a/b/000123 v1.0/x v1.0/y z");
  EXPECT_EQ(s[0].image_bytes, "i");  // "seg.png" is another field of the sample, ignored
  EXPECT_EQ(s[1].image_name, "./v1.0/x.JPEG");
  EXPECT_EQ(s[1].image_bytes, "j");
}

TEST(TarReader, MembersWebDatasetSkipsAreSkipped) {
  const auto s = read_tar_bytes(test::test_dir(), make_tar({{"README", "no extension"},
                                                            {"__index__", "webdataset metadata"},
                                                            {".hidden.jpg", "dot file"},
                                                            {"k.jpg", "i"},
                                                            {"k.cls", "3"}}));
  ASSERT_EQ(keys_of(s), "k");
  EXPECT_EQ(s[0].image_bytes, "i");
}

TEST(TarReader, EmptyTarHasNoSamples) {
  EXPECT_TRUE(read_tar_bytes(test::test_dir(), tar_end()).empty());
  // Python's tarfile and GNU tar pad to a 10240-byte record: more zeros are fine.
  EXPECT_TRUE(read_tar_bytes(test::test_dir(), std::string(10240, '\0')).empty());
}

TEST(TarReader, AltTextIsPassedRaw) {
  const std::string bad_utf8 = "caf\xE9 \xFF\xFE end\r\n";
  const auto s = read_tar_bytes(test::test_dir(), make_tar({{"k.jpg", "i"}, {"k.txt", bad_utf8}}));
  ASSERT_EQ(keys_of(s), "k");
  ASSERT_TRUE(s[0].alt_text);
  EXPECT_EQ(*s[0].alt_text, bad_utf8);
}

TEST(TarReader, BadMetadataMakesAnErrorSample) {
  const auto s = read_tar_bytes(test::test_dir(), make_tar({{"a.jpg", "i"},
                                                            {"a.json", "[1, 2]"},
                                                            {"b.jpg", "i"},
                                                            {"b.json", "{not json"},
                                                            {"c.jpg", "i"},
                                                            {"c.json", std::string(100, '[') + std::string(100, ']')},
                                                            {"d.jpg", "i"},
                                                            {"d.json", "{\"ok\": true}"}}));
  ASSERT_EQ(keys_of(s), "a! b! c! d");
  EXPECT_NE(s[0].error.find("a.json"), std::string::npos) << s[0].error;
  EXPECT_NE(s[0].error.find("not an object"), std::string::npos) << s[0].error;
  EXPECT_NE(s[1].error.find("not valid JSON"), std::string::npos) << s[1].error;
  EXPECT_NE(s[2].error.find("nested"), std::string::npos) << s[2].error;
  EXPECT_TRUE(s[0].image_bytes.empty()) << "an error sample carries no bytes";
  EXPECT_EQ(s[0].image_name, "a.jpg");
}

TEST(TarReader, AKeyWithoutOrWithTwoImagesIsAnErrorSample) {
  const auto s = read_tar_bytes(test::test_dir(), make_tar({{"a.txt", "no image"},
                                                            {"a.json", "{}"},
                                                            {"b.jpg", "1"},
                                                            {"b.png", "2"},
                                                            {"c.jpg", "3"}}));
  ASSERT_EQ(keys_of(s), "a! b! c");
  EXPECT_NE(s[0].error.find("no image"), std::string::npos) << s[0].error;
  EXPECT_NE(s[1].error.find("two images"), std::string::npos) << s[1].error;
}

TEST(TarReader, AKeySeenAgainLaterIsADuplicate) {
  const auto s = read_tar_bytes(test::test_dir(), make_tar({{"a.jpg", "1"},
                                                            {"b.jpg", "2"},
                                                            {"a.txt", "late"},
                                                            {"a.json", "{}"},
                                                            {"c.jpg", "3"}}));
  ASSERT_EQ(keys_of(s), "a b a! c");
  EXPECT_FALSE(s[0].alt_text) << "the first 'a' is not changed by the later members";
  EXPECT_NE(s[2].error.find("duplicate"), std::string::npos) << s[2].error;
}

// A tar written the way other tools write them: GNU format with a folder
// entry, a symlink, a hard link and a name over ustar's 100 bytes.
std::string libarchive_tar(int format) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format(a, format);
  archive_write_add_filter_none(a);
  archive_write_open2(
      a, &out, nullptr,
      [](archive*, void* client, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
        return la_ssize_t(n);
      },
      nullptr, nullptr);
  auto add = [&](const std::string& name, unsigned type, const std::string& data, const char* link = nullptr,
                 bool hard = false) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, la_int64_t(data.size()));
    if (link && hard) archive_entry_set_hardlink(e, link);
    if (link && !hard) archive_entry_set_symlink(e, link);
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
    if (!data.empty()) archive_write_data(a, data.data(), data.size());
    archive_entry_free(e);
  };
  const std::string long_dir = std::string(120, 'd') + "/";
  add("shard/", AE_IFDIR, "");
  add("shard/000.jpg", AE_IFREG, "img0");
  add("shard/000.txt", AE_IFREG, "caption 0");
  add("shard/000.lnk.jpg", AE_IFLNK, "", "000.jpg");
  add("shard/001.jpg", AE_IFREG, "", "shard/000.jpg", true);  // a hard link: no data of its own
  add("shard/002.jpg", AE_IFREG, "img2");
  add(long_dir + "003.jpg", AE_IFREG, "img3");
  add(long_dir + "003.json", AE_IFREG, "{\"n\": 3}");
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

TEST(TarReader, ReadsTarsLibarchiveWritesInOtherFormats) {
  for (int format : {ARCHIVE_FORMAT_TAR_GNUTAR, ARCHIVE_FORMAT_TAR_PAX_INTERCHANGE}) {
    SCOPED_TRACE(format);
    const auto s = read_tar_bytes(test::test_dir(), libarchive_tar(format));
    const std::string long_key = std::string(120, 'd') + "/003";
    ASSERT_EQ(keys_of(s), "shard/000 shard/002 " + long_key);
    EXPECT_EQ(s[0].image_bytes, "img0");
    EXPECT_EQ(*s[0].alt_text, "caption 0");
    EXPECT_EQ(s[1].image_bytes, "img2");
    EXPECT_EQ(s[2].source_meta["n"], 3);
  }
}

TEST(TarReader, ReaderThrowsOnlyWhenTheUnitCannotBeOpened) {
  const std::string dir = test::test_dir();
  EXPECT_THROW(SampleReader({dir + "/missing.tar", "missing", InputKind::kTar}), Error);
  EXPECT_THROW(SampleReader({dir, "dir", InputKind::kTar}), Error);  // a folder is no tar file
}

TEST(TarReader, NextReplacesTheWholeSample) {
  const std::string dir = test::test_dir();
  test::write_bytes(dir + "/s.tar", make_tar({{"a.jpg", "1"}, {"a.txt", "t"}, {"a.json", "{\"x\":1}"}, {"b.jpg", "2"}}));
  SampleReader r({dir + "/s.tar", "s", InputKind::kTar});
  Sample s;
  ASSERT_TRUE(r.next(s));
  ASSERT_TRUE(r.next(s));
  EXPECT_EQ(s.key, "b");
  EXPECT_FALSE(s.alt_text);
  EXPECT_TRUE(s.source_meta.is_null());
  EXPECT_FALSE(r.next(s));
  EXPECT_FALSE(r.next(s)) << "the end stays the end";
}

}  // namespace
}  // namespace dsvl2::dataset
