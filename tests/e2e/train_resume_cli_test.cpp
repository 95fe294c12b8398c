// `dsvl2 train --resume` through the real binary: a run stopped and resumed
// ends bitwise where the same run in one go ends (tensors, adapter, logged
// losses), also after kill -9 at an arbitrary moment; the log never holds a
// step twice; a checkpoint made with other settings is refused.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "train_cli_fixture.h"

namespace dsvl2::train_cli {
namespace {

class TrainResumeCli : public TrainCliBase {
 protected:
  // LoRA and the projector: both the adapter and trained.safetensors, the
  // vision path and the AdamW moments of both kinds of parameter.
  static std::string args(const std::string& out, const std::string& extra) {
    return "train -m " + toy() + " --data " + data("img.jsonl") + " --out " + out +
           " --stage sft --lora 4 --train-projector --seed 7 -q -t 2 " + extra;
  }
  static void expect_same_outputs(const std::string& a, const std::string& b) {
    for (const char* f : {"trained.safetensors", "adapter_model.safetensors"}) {
      const auto ta = read_tensors(a + "/" + f), tb = read_tensors(b + "/" + f);
      ASSERT_EQ(names_of(ta), names_of(tb)) << f;
      for (const auto& [name, t] : ta) EXPECT_TRUE(t == tb.at(name)) << f << ": " << name << " differs";
    }
    const std::vector<json> la = read_log(a), lb = read_log(b);
    ASSERT_EQ(log_steps(la), log_steps(lb));
    for (size_t i = 0; i < la.size(); i++) {
      EXPECT_EQ(la[i]["loss"].get<double>(), lb[i]["loss"].get<double>()) << "step " << i + 1;
      EXPECT_EQ(la[i]["aux_loss"].get<double>(), lb[i]["aux_loss"].get<double>()) << "step " << i + 1;
      EXPECT_EQ(la[i]["grad_norm"].get<double>(), lb[i]["grad_norm"].get<double>()) << "step " << i + 1;
      EXPECT_EQ(la[i]["lr"].get<double>(), lb[i]["lr"].get<double>()) << "step " << i + 1;
    }
  }
  static json state(const std::string& out) { return json::parse(read_file(out + "/checkpoint/state.json")); }
};

// 6 steps in one go vs 3 steps, then --resume to 6. --max-steps sets the
// length of the cosine decay, so the stopped run would follow another
// schedule; a flat one (--min-lr = --lr) makes the two runs the same run.
TEST_F(TrainResumeCli, StoppedAndResumedEqualsOneGo) {
  const std::string dir = test::temp_dir("train_resume_split"), a = dir + "/a", b = dir + "/b";
  const std::string lr = "--lr 1e-3 --min-lr 1e-3 ";
  auto r = dsvl2(args(a, lr + "--max-steps 6 --save-every 3"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = dsvl2(args(b, lr + "--max-steps 3"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(state(b)["step"], 3);
  r = dsvl2(args(b, lr + "--max-steps 6 --resume"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(starts_with(r.out, "resumed: 3 step(s)")) << r.out;
  EXPECT_EQ(log_steps(read_log(b)), one_to(6));
  expect_same_outputs(a, b);
  EXPECT_EQ(state(b)["step"], 6);
  EXPECT_EQ(state(a), state(b));

  // Another LoRA rank: refused, naming both settings; the checkpoint and log stay.
  r = dsvl2("train -m " + toy() + " --data " + data("img.jsonl") + " --out " + b +
            " --stage sft --lora 8 --train-projector --seed 7 -q -t 2 " + lr + "--max-steps 9 --resume");
  expect_one_line_error(r, "other settings");
  EXPECT_NE(r.err.find("lora=4/8"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("lora=8/16"), std::string::npos) << r.err;
  EXPECT_EQ(state(b)["step"], 6);
  EXPECT_EQ(log_steps(read_log(b)), one_to(6));
  remove_if_passed(dir);
}

// kill -9 once a checkpoint exists, then --resume: the run completes, the log
// has each step once, the checkpoint is whole, and everything equals an
// uninterrupted run (cosine schedule, warm-up: the total is the same).
TEST_F(TrainResumeCli, KilledRunResumesExactly) {
  const std::string dir = test::temp_dir("train_resume_kill"), k = dir + "/killed", u = dir + "/uninterrupted";
  const std::string extra = "--lr 1e-3 --warmup 2 --max-steps 24 --save-every 2";
  auto r = dsvl2(args(u, extra));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // The run to kill: started directly (no shell between), output discarded.
  std::vector<std::string> argv{test::dsvl2_binary()};
  {
    std::istringstream words(args(k, extra));
    for (std::string w; words >> w;) argv.push_back(w);
  }
  std::vector<char*> cargv;
  for (std::string& s : argv) cargv.push_back(s.data());
  cargv.push_back(nullptr);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd < 0 || dup2(null_fd, 1) < 0 || dup2(null_fd, 2) < 0) _exit(126);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  bool seen = false;
  while (!(seen = file_exists(k + "/checkpoint/state.json")) && std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) FAIL() << "the run ended before its first checkpoint";
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // somewhere past the first checkpoint
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(seen) << "no checkpoint within the deadline";
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the run finished before the kill; status " << status;

  // What the kill left: one complete checkpoint (checkpoint/, or checkpoint.old/
  // when the kill fell between the renames) at a multiple of --save-every, and
  // a log of consecutive steps reaching at least that far.
  const std::string ck = file_exists(k + "/checkpoint/state.json") ? k + "/checkpoint" : k + "/checkpoint.old";
  const json st = json::parse(read_file(ck + "/state.json"));
  const int64_t at = st.at("step").get<int64_t>();
  EXPECT_TRUE(at >= 2 && at < 24 && at % 2 == 0) << st.dump();
  EXPECT_EQ(st.at("consumed").get<int64_t>(), at);
  EXPECT_EQ(read_tensors(ck + "/trained.safetensors").size(),
            read_tensors(u + "/checkpoint/trained.safetensors").size());
  EXPECT_FALSE(read_tensors(ck + "/optimizer.safetensors").empty());
  const std::vector<int64_t> before = log_steps(read_log(k));
  ASSERT_GE(int64_t(before.size()), at);
  EXPECT_EQ(before, one_to(int64_t(before.size())));

  r = dsvl2(args(k, extra + " --resume"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(starts_with(r.out, "resumed: " + std::to_string(24 - at) + " step(s)")) << r.out << " (from step " << at << ")";
  EXPECT_EQ(log_steps(read_log(k)), one_to(24));
  EXPECT_EQ(state(k)["step"], 24);
  EXPECT_EQ(state(k), state(u));
  EXPECT_FALSE(std::filesystem::exists(k + "/checkpoint.tmp"));
  EXPECT_FALSE(std::filesystem::exists(k + "/checkpoint.old"));
  expect_same_outputs(k, u);
  for (const char* f : {"trained.safetensors", "optimizer.safetensors"})
    EXPECT_TRUE(read_tensors(k + "/checkpoint/" + f) == read_tensors(u + "/checkpoint/" + f)) << f;
  remove_if_passed(dir);
}

}  // namespace
}  // namespace dsvl2::train_cli
