// Resumable shards: a writer killed with SIGKILL at random instants and
// resumed, again and again, ends with every item exactly once and in order;
// a resume never overwrites a finished shard; shard specs cover every item
// once for any count, from flags or from Slurm's array variables.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "jobs/progress.h"
#include "jobs/shard_spec.h"
#include "jobs/shard_writer.h"
#include "test_util.h"

namespace dsvl2::jobs {
namespace {

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(f, l);) out.push_back(l);
  return out;
}

// Items 0..n-1; every 7th fails; the others write "item N".
void run_job(const std::string& dir, int n, bool resume, int batch, int sleep_us) {
  ShardWriter w(dir, "part", resume, batch);
  for (int i = 0; i < n; i++) {
    if (w.committed(i)) continue;
    if (sleep_us) ::usleep(useconds_t(sleep_us));
    if (i % 7 == 3) w.add(i, "", "item " + std::to_string(i) + " failed");
    else w.add(i, "{\"item\": " + std::to_string(i) + "}");
  }
  w.finish();
}

TEST(ShardWriter, KilledAtRandomAndResumedLosesNothingAndRepeatsNothing) {
  const std::string dir = test::temp_dir("shard_kill");
  const int n = 400;
  int kills = 0;
  bool first = true;
  for (int round = 0; round < 40; round++) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      try {
        run_job(dir, n, !first, 16, 300);
      } catch (...) {
        ::_exit(3);
      }
      ::_exit(0);
    }
    first = false;
    ::usleep(useconds_t(5000 + (round * 7919) % 40000));  // 5-45 ms in
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) kills++;
    else ASSERT_EQ(WEXITSTATUS(status), 0) << "the job failed on resume";
  }
  run_job(dir, n, true, 16, 0);  // finish whatever is left
  EXPECT_GT(kills, 3);
  std::vector<std::string> lines = lines_of(dir + "/part.jsonl");
  std::vector<std::string> want;
  for (int i = 0; i < n; i++)
    if (i % 7 != 3) want.push_back("{\"item\": " + std::to_string(i) + "}");
  EXPECT_EQ(lines, want);
  Ledger ledger(dir + "/part.ledger.sqlite");
  Ledger::ShardState st = ledger.shard("part");
  EXPECT_TRUE(st.done);
  EXPECT_EQ(st.items, n);
  EXPECT_EQ(st.errors, (n + 3) / 7);
}

TEST(ShardWriter, RefusesToOverwriteWithoutResumeAndSkipsAFinishedShard) {
  const std::string dir = test::temp_dir("shard_refuse");
  run_job(dir, 20, false, 4, 0);
  EXPECT_THROW(run_job(dir, 20, false, 4, 0), Error);
  const std::vector<std::string> before = lines_of(dir + "/part.jsonl");
  ShardWriter again(dir, "part", true);
  EXPECT_TRUE(again.finished());
  EXPECT_TRUE(again.committed(5));
  again.finish();
  EXPECT_EQ(lines_of(dir + "/part.jsonl"), before);
}

TEST(ShardWriter, UncommittedLinesAreDroppedOnResume) {
  const std::string dir = test::temp_dir("shard_partial");
  {
    ShardWriter w(dir, "part", false, 100);
    for (int i = 0; i < 10; i++) w.add(i, "line " + std::to_string(i));
    // Destroyed without a checkpoint: as if killed. The bytes may be on disk.
  }
  { std::ofstream(dir + "/part.jsonl.partial", std::ios::app) << "torn li"; }
  run_job(dir, 3, true, 100, 0);
  EXPECT_EQ(lines_of(dir + "/part.jsonl"), (std::vector<std::string>{"{\"item\": 0}", "{\"item\": 1}", "{\"item\": 2}"}));
}

TEST(ShardWriter, OneWriterPerShardAtATime) {
  const std::string dir = test::temp_dir("shard_lock");
  {
    ShardWriter a(dir, "part", false);
    EXPECT_THROW(ShardWriter(dir, "part", true), Error) << "a second writer of a live shard";
    ShardWriter other(dir, "other", false);  // another shard is free
  }
  // The lock goes with the writer, also when its constructor throws.
  EXPECT_THROW(ShardWriter(dir, "part", false), Error);  // output there, no resume
  ShardWriter again(dir, "part", true);
  EXPECT_FALSE(again.finished());
}

TEST(ShardSpec, EveryCountCoversEveryItemOnce) {
  for (int count : {1, 2, 3, 4, 7}) {
    std::multiset<size_t> seen;
    for (int index = 0; index < count; index++) {
      ShardSpec s = ShardSpec::resolve(index, count);
      for (size_t i = 0; i < 100; i++)
        if (s.owns(i)) seen.insert(i);
    }
    EXPECT_EQ(seen.size(), 100u);
    for (size_t i = 0; i < 100; i++) EXPECT_EQ(seen.count(i), 1u);
  }
  EXPECT_EQ(ShardSpec::resolve(2, 4).name("synth"), "synth-00002-of-00004");
  EXPECT_EQ(ShardSpec::resolve(-1, 1).name("synth"), "synth");
  EXPECT_THROW(ShardSpec::resolve(4, 4), Error);
}

TEST(ShardSpec, TakesSlurmArrayVariablesWhenNoFlags) {
  ::setenv("SLURM_ARRAY_TASK_ID", "5", 1);
  ::setenv("SLURM_ARRAY_TASK_MIN", "3", 1);
  ::setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
  ShardSpec s = ShardSpec::resolve(-1, 1);
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 4);
  EXPECT_EQ(ShardSpec::resolve(0, 2).count, 2);  // flags win
  EXPECT_EQ(ShardSpec::resolve(0, 2).index, 0);
  // With the count given, the task id is the shard: `--array=5` resubmitted
  // alone (Slurm: COUNT 1, MIN 5) is still shard 5 of 8.
  ::setenv("SLURM_ARRAY_TASK_MIN", "5", 1);
  ::setenv("SLURM_ARRAY_TASK_COUNT", "1", 1);
  s = ShardSpec::resolve(-1, 8);
  EXPECT_EQ(s.index, 5);
  EXPECT_EQ(s.count, 8);
  EXPECT_THROW(ShardSpec::resolve(-1, 4), Error) << "task 5 of a 4-shard job";
  ::setenv("SLURM_ARRAY_TASK_MIN", "3", 1);
  ::setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
  ::setenv("SLURM_ARRAY_TASK_ID", "9", 1);
  EXPECT_THROW(ShardSpec::resolve(-1, 1), Error);
  ::unsetenv("SLURM_ARRAY_TASK_ID");
  ::unsetenv("SLURM_ARRAY_TASK_MIN");
  ::unsetenv("SLURM_ARRAY_TASK_COUNT");
  EXPECT_EQ(ShardSpec::resolve(-1, 3).index, 0) << "outside Slurm, the count alone means shard 0";
}

TEST(Progress, LineCarriesCountRateAndEta) {
  Progress p("synth", 200, true);
  p.advance(50);
  const std::string l = p.line();
  EXPECT_NE(l.find("50/200"), std::string::npos) << l;
  EXPECT_NE(l.find("25%"), std::string::npos) << l;
  EXPECT_NE(l.find("ETA"), std::string::npos) << l;
}

}  // namespace
}  // namespace dsvl2::jobs
