// `dsvl2 recaption` end to end: the command-line contract (outputs, fields,
// exit status), sharding (two shards give the records of one run), and
// kill -9 in the middle of a shard, then --resume: every record exactly
// once, the same records an uninterrupted run writes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "core/file.h"
#include "recaption/fixtures.h"

namespace dsvl2 {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// Records of `shard` the ledger has committed (read-only, beside a running writer).
int64_t committed_records(const std::string& ledger, const std::string& shard) {
  sqlite3* db = nullptr;
  int64_t n = 0;
  if (sqlite3_open_v2(ledger.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 1000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT items FROM shard WHERE name = ?1", -1, &st, nullptr) == SQLITE_OK) {
      sqlite3_bind_text(st, 1, shard.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

class RecaptionCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::toy_model_dir().empty()) {
      if (test::in_ci()) FAIL() << "shared/tokenizer not found, and CI=true requires it";
      GTEST_SKIP() << "shared/tokenizer not found";
    }
    dir_ = test::temp_dir("recaption_cli");
    const char* words[] = {"OPEN", "EXIT", "SALE", "PARK", "STOP", "CAFE", "BANK", "TAXI", "HOTEL", "MUSEUM", "BAKERY", "PHARMACY"};
    for (int s = 0; s < 2; s++) {
      std::vector<std::pair<std::string, std::string>> members;
      for (int i = 0; i < 12; i++) {
        char key[32];
        std::snprintf(key, sizeof key, "s%d_%d", s, 1000 + i);
        members.push_back({std::string(key) + ".png", test::text_png(words[(i + 5 * s) % 12], 256, 128, 32)});
        members.push_back({std::string(key) + ".txt", std::string("photo of a ") + words[i]});
      }
      write_file(dir_ + "/shard-" + std::to_string(s) + ".tar", test::make_tar(members));
    }
  }
  std::string cmd(const std::string& out, const std::string& extra = "") const {
    return test::dsvl2_binary() + " recaption -m " + test::toy_model_dir() + " --input '" + dir_ +
           "/shard-{0..1}.tar' --out " + out + " -n 6 --seed 3 -t 2 --batch 2 -q " + extra;
  }
  // key -> record (timings dropped) over every output tar; fails on a repeat.
  std::map<std::string, json> records(const std::string& out) const {
    std::map<std::string, json> by_key;
    for (int s = 0; s < 2; s++)
      for (const json& r : test::read_records(out + "/shard-" + std::to_string(s) + ".tar")) {
        EXPECT_FALSE(by_key.count(r["key"])) << "record twice: " << r["key"];
        by_key[r["key"]] = test::without_timings(r);
      }
    return by_key;
  }
  std::string dir_;
};

TEST_F(RecaptionCli, WritesEveryShardAndItsStats) {
  const test::CommandResult r = test::run_command(cmd(dir_ + "/out"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto recs = records(dir_ + "/out");
  EXPECT_EQ(recs.size(), 24u);
  for (const auto& [key, j] : recs) {
    EXPECT_TRUE(j["error"].is_null()) << j.dump();
    EXPECT_TRUE(j["caption"].is_string());
    EXPECT_TRUE(j["ocr"]["lines"].is_array());
    EXPECT_TRUE(j["meta"].is_object());
  }
  for (int s = 0; s < 2; s++) {
    const json st = json::parse(read_file(dir_ + "/out/shard-" + std::to_string(s) + "_stats.json"));
    EXPECT_EQ(st["count"], 12);
    EXPECT_EQ(st["failed"], 0);
  }
  // Output of an earlier run is never overwritten without --resume.
  const test::CommandResult again = test::run_command(cmd(dir_ + "/out"));
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("--resume"), std::string::npos) << again.err;
  // A resume of a finished job does nothing and changes nothing.
  const test::CommandResult resumed = test::run_command(cmd(dir_ + "/out", "--resume"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(records(dir_ + "/out"), recs);
  // Two shards write the same records as one run.
  for (int i = 0; i < 2; i++) {
    const test::CommandResult sh =
        test::run_command(cmd(dir_ + "/sharded", "--shard-index " + std::to_string(i) + " --num-shards 2"));
    ASSERT_EQ(sh.exit_code, 0) << sh.err;
  }
  EXPECT_EQ(records(dir_ + "/sharded"), recs);
  // A job that cannot run says why and exits non-zero.
  const test::CommandResult missing = test::run_command(test::dsvl2_binary() + " recaption -m " + test::toy_model_dir() +
                                                        " --input " + dir_ + "/nope-{0..3}.tar --out " + dir_ + "/x -q");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("nope-0.tar"), std::string::npos) << missing.err;
  const test::CommandResult system = test::run_command(cmd(dir_ + "/sys", "--system hello"));
  EXPECT_NE(system.exit_code, 0);
  EXPECT_NE(system.err.find("--system"), std::string::npos) << system.err;
}

TEST_F(RecaptionCli, KillNineThenResumeLosesAndRepeatsNothing) {
  const test::CommandResult ref = test::run_command(cmd(dir_ + "/ref"));
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  const auto want = records(dir_ + "/ref");
  ASSERT_EQ(want.size(), 24u);

  const std::string out = dir_ + "/killed";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd(out)).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Kill once the first shard has committed some records but not all.
  const std::string ledger = out + "/shard-0.ledger.sqlite";
  bool killed = false;
  for (int i = 0; i < 6000 && !killed; i++) {
    std::error_code ec;
    if (fs::exists(ledger, ec) && committed_records(ledger, "shard-0") > 0) {
      kill(pid, SIGKILL);
      killed = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(killed) << "the run ended before it could be killed";
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_FALSE(fs::exists(out + "/shard-0.tar")) << "an unfinished shard is never under its final name";

  const test::CommandResult resumed = test::run_command(cmd(out, "--resume"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(records(out), want);
  const json st = json::parse(read_file(out + "/shard-0_stats.json"));
  EXPECT_EQ(st["count"], 12);
  EXPECT_GT(st["this_run"]["skipped_done_earlier"].get<int>(), 0) << "the resume reused committed records";
}

}  // namespace
}  // namespace dsvl2
