#include "jobs/progress.h"

#include <unistd.h>

#include <cstdio>

namespace dsvl2::jobs {
namespace {
std::string clock_text(double s) {
  if (!(s >= 0) || s > 1e7) return "--:--";
  const long t = long(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}
}  // namespace

Progress::Progress(std::string label, int64_t total, bool quiet)
    : label_(std::move(label)), total_(total), quiet_(quiet), tty_(::isatty(2)),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

std::string Progress::line() const {
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = s > 0 ? double(done_) / s : 0;
  const double eta = rate > 0 ? double(total_ - done_) / rate : -1;
  const int pct = total_ > 0 ? int(100 * done_ / total_) : 100;
  char buf[256];
  if (total_ < 0) {  // a stream of unknown length: count and rate only
    std::snprintf(buf, sizeof buf, "%s: %lld done, %.1f/s", label_.c_str(), (long long)done_, rate);
    return buf;
  }
  if (tty_) {
    std::string bar(24, ' ');
    for (int i = 0; i < 24 * pct / 100; i++) bar[size_t(i)] = '=';
    std::snprintf(buf, sizeof buf, "%s [%s] %3d%% %lld/%lld %.1f/s ETA %s", label_.c_str(), bar.c_str(), pct,
                  (long long)done_, (long long)total_, rate, clock_text(eta).c_str());
  } else {
    std::snprintf(buf, sizeof buf, "%s: %lld/%lld (%d%%), %.1f/s, ETA %s", label_.c_str(), (long long)done_,
                  (long long)total_, pct, rate, clock_text(eta).c_str());
  }
  return buf;
}

void Progress::print(bool final) {
  if (quiet_) return;
  if (tty_) std::fprintf(stderr, "\r%s%s", line().c_str(), final ? "\n" : "");
  else std::fprintf(stderr, "%s\n", line().c_str());
  std::fflush(stderr);
}

void Progress::advance(int64_t n) {
  done_ += n;
  const auto now = std::chrono::steady_clock::now();
  // A terminal is redrawn 5 times a second; a log gets a line every 10 s.
  if (now - last_ >= (tty_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(10000))) {
    last_ = now;
    print(false);
  }
}

void Progress::finish() { print(true); }

}  // namespace dsvl2::jobs
