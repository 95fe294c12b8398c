// Progress of a long job on stderr: a bar with rate and ETA redrawn in place
// on a terminal, or a plain line every few seconds otherwise (logs, Slurm).
//
//   Progress p("synth", total);
//   p.advance();        // per item
//   p.finish();
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace dsvl2::jobs {

class Progress {
 public:
  // total < 0: unknown (a stream): the count and rate, no bar or ETA.
  Progress(std::string label, int64_t total, bool quiet = false);
  void advance(int64_t n = 1);
  void finish();
  // The line as it would be printed now (tests).
  std::string line() const;

 private:
  void print(bool final);
  std::string label_;
  int64_t total_, done_ = 0;
  bool quiet_, tty_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace dsvl2::jobs
