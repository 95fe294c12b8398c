#include "core/file.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

// write_file replaces the file whole (temporary name + rename) and leaves no
// temporary behind, on success or on error.
TEST(WriteFile, ReplacesWholeAndLeavesNoTemporary) {
  const std::string dir = test::temp_dir("write_file");
  const std::string path = dir + "/out.json";
  write_file(path, "first version, longer than the second");
  write_file(path, "second");
  EXPECT_EQ(read_file(path), "second");
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) entries += e.is_regular_file();
  EXPECT_EQ(entries, 1);
  EXPECT_THROW(write_file(dir + "/no/such/folder/x", "y"), Error);
  // A path that is a folder: the write fails and the folder is untouched.
  std::filesystem::create_directory(dir + "/sub");
  EXPECT_THROW(write_file(dir + "/sub", "z"), Error);
  EXPECT_TRUE(is_directory(dir + "/sub"));
  entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) entries += e.is_regular_file();
  EXPECT_EQ(entries, 1) << "no temporary left behind";
}

TEST(SyncPath, SyncsFilesAndFoldersAndNamesWhatIsMissing) {
  const std::string dir = test::temp_dir("sync_path");
  write_file(dir + "/f", "x");
  EXPECT_NO_THROW(sync_path(dir + "/f"));
  EXPECT_NO_THROW(sync_path(dir));
  try {
    sync_path(dir + "/missing");
    ADD_FAILURE() << "a missing path was synced";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dsvl2
