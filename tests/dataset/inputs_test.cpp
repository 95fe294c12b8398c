#include <gtest/gtest.h>

#include <filesystem>

#include "dataset/dataset_fixture.h"
#include "dataset/inputs.h"

namespace dsvl2::dataset {
namespace {

std::string describe(const std::vector<InputUnit>& units) {
  std::string out;
  for (const InputUnit& u : units) {
    const char* kind = u.kind == InputKind::kTar ? "tar" : u.kind == InputKind::kManifest ? "manifest" : "folder";
    out += (out.empty() ? "" : " ") + u.stem + ":" + kind;
  }
  return out;
}

std::string error_of(const std::vector<std::string>& args) {
  try {
    expand_inputs(args);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Inputs, FilesFoldersAndBraces) {
  const std::string dir = test::test_dir();
  namespace fs = std::filesystem;
  for (const char* f : {"/data-000.tar", "/data-001.tar", "/data-002.tar", "/m.jsonl", "/n.json"})
    test::write_bytes(dir + f, "");
  fs::create_directories(dir + "/wds");  // an img2dataset webdataset output: tars and summaries
  test::write_bytes(dir + "/wds/00001.tar", "");
  test::write_bytes(dir + "/wds/00000.tar", "");
  test::write_bytes(dir + "/wds/00000_stats.json", "{}");
  fs::create_directories(dir + "/files/00000");  // img2dataset's "files" output: one unit
  test::write_bytes(dir + "/files/00000/000000000.jpg", "");

  const auto units = expand_inputs({dir + "/data-{000..001}.tar", dir + "/m.jsonl", dir + "/n.json",
                                    dir + "/wds", dir + "/files/", dir + "/data-002.tar"});
  EXPECT_EQ(describe(units), "data-000:tar data-001:tar m:manifest n:manifest 00000:tar 00001:tar files:folder data-002:tar");
  EXPECT_EQ(units[0].path, dir + "/data-000.tar");
  EXPECT_EQ(units[4].path, dir + "/wds/00000.tar");
  EXPECT_EQ(units[6].path, dir + "/files/");
  EXPECT_TRUE(expand_inputs({}).empty());
}

TEST(Inputs, MissingPathsAreNamed) {
  const std::string dir = test::test_dir();
  test::write_bytes(dir + "/s-1.tar", "");
  const std::string e = error_of({dir + "/s-{0..2}.tar"});
  EXPECT_NE(e.find("2 input paths not found"), std::string::npos) << e;
  EXPECT_NE(e.find(dir + "/s-0.tar"), std::string::npos) << e;
  EXPECT_NE(e.find(dir + "/s-2.tar"), std::string::npos) << e;
  EXPECT_EQ(e.find("s-1.tar"), std::string::npos) << e;
}

TEST(Inputs, DuplicateStemsAndUnknownFilesAreRefused) {
  const std::string dir = test::test_dir();
  std::filesystem::create_directories(dir + "/x");
  std::filesystem::create_directories(dir + "/y");
  test::write_bytes(dir + "/x/a.tar", "");
  test::write_bytes(dir + "/y/a.tar", "");
  test::write_bytes(dir + "/a.jsonl", "");
  test::write_bytes(dir + "/notes.txt", "");
  std::string e = error_of({dir + "/{x,y}/a.tar"});
  EXPECT_NE(e.find(dir + "/x/a.tar"), std::string::npos) << e;
  EXPECT_NE(e.find(dir + "/y/a.tar"), std::string::npos) << e;
  EXPECT_NE(error_of({dir + "/x/a.tar", dir + "/a.jsonl"}), "");
  EXPECT_NE(error_of({dir + "/x/a.tar", dir + "/x/a.tar"}), "");
  e = error_of({dir + "/notes.txt"});
  EXPECT_NE(e.find("notes.txt: not a .tar shard"), std::string::npos) << e;
  EXPECT_NE(error_of({dir + "/{a,b"}), "");
}

}  // namespace
}  // namespace dsvl2::dataset
