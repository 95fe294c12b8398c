#include "test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <vector>

#include "core/file.h"
#include "model/sequence.h"

namespace dsvl2::test {

namespace fs = std::filesystem;

std::string shared_dir() {
  if (const char* e = std::getenv("DSVL2_SHARED_DIR"); e && *e) return is_directory(e) ? e : "";
  std::string d = DSVL2_SHARED_DIR_DEFAULT;
  return is_directory(d) ? d : "";
}

std::string golden_dir() {
  if (const char* e = std::getenv("DSVL2_GOLDEN_DIR"); e && *e) return is_directory(e) ? e : "";
  std::string s = shared_dir();
  if (s.empty()) return "";
  std::string d = s + "/golden";
  return is_directory(d) ? d : "";
}

std::string tokenizer_dir() {
  std::string s = shared_dir();
  if (s.empty()) return "";
  std::string d = s + "/tokenizer";
  return is_directory(d) ? d : "";
}

std::string binary_dir() { return DSVL2_BINARY_DIR; }

namespace {
// Removes every temp_dir() of this process when it exits normally (a test that
// crashes keeps its files for a look). Only the creating process removes: a
// forked child that exits must not delete what its parent still uses.
// DSVL2_KEEP_TEST_TMP=1 keeps them.
class TempDirs {
 public:
  void add(const fs::path& p) {
    std::lock_guard<std::mutex> lock(mu_);
    dirs_.push_back(p);
  }
  ~TempDirs() {
    const char* keep = std::getenv("DSVL2_KEEP_TEST_TMP");
    if (::getpid() != owner_ || (keep && *keep && std::string(keep) != "0")) return;
    std::error_code ec;
    for (const fs::path& p : dirs_) fs::remove_all(p, ec);
  }

 private:
  std::mutex mu_;
  std::vector<fs::path> dirs_;
  const pid_t owner_ = ::getpid();
};
TempDirs& temp_dirs() {
  static TempDirs dirs;
  return dirs;
}
}  // namespace

std::string temp_dir(const std::string& tag) {
  fs::path p = fs::temp_directory_path() / ("dsvl2_test_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  temp_dirs().add(p);
  return p.string();
}

std::string dsvl2_binary() { return binary_dir() + "/dsvl2"; }

CommandResult run_command(const std::string& cmd, const std::string& stdin_text) {
  static int counter = 0;
  std::string base = temp_dir("cmd" + std::to_string(counter++));
  std::string in = base + "/stdin", out = base + "/stdout", err = base + "/stderr";
  write_file(in, stdin_text);
  std::string full = cmd + " <" + in + " >" + out + " 2>" + err;
  int status = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  fs::remove_all(base);
  return r;
}

DiffStats diff(const float* a, const float* b, int64_t n) {
  DiffStats s;
  double sum = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = std::fabs(double(a[i]) - double(b[i]));
    if (std::isnan(d)) d = INFINITY;
    sum += d;
    if (d > s.max_abs || s.argmax_at < 0) {
      s.max_abs = std::max(s.max_abs, d);
      s.argmax_at = i;
    }
  }
  s.mean_abs = n ? sum / double(n) : 0;
  return s;
}

GreedyRun greedy(const LanguageModel& lm, const float* embeds, int T, KVCache& cache, const Ops& ops, int max_new,
                 int prefill_chunk) {
  GenerateRequest req;
  req.max_new_tokens = max_new;
  req.prefill_chunk = prefill_chunk;
  GreedyRun run;
  req.on_logits = [&](const float* l, int vocab) { run.step_logits.insert(run.step_logits.end(), l, l + vocab); };
  Sequence seq(nullptr, cache, req);
  seq.set_prompt(embeds, T, lm.config().hidden_size);
  run_to_end(lm, seq, ops, prefill_chunk);
  for (int32_t id : seq.result().ids) run.ids.push_back(id);
  run.finish_reason = seq.result().finish_reason;
  return run;
}

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && (std::string(ci) == "true" || std::string(ci) == "1");
}

std::vector<const KernelTable*> simd_tables() {
  std::vector<const KernelTable*> out;
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512})
    if (const KernelTable* t = kernels_for(isa)) out.push_back(t);
  return out;
}

std::vector<const KernelTable*> all_tables() {
  std::vector<const KernelTable*> out = simd_tables();
  out.insert(out.begin(), &kernels_ref());
  return out;
}

}  // namespace dsvl2::test
