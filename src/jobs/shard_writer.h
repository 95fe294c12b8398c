// One output shard of a job, written so that `kill -9` at any instant and a
// resume lose nothing and repeat nothing. Lines go to NAME.jsonl.partial;
// every `batch` items the file is flushed to disk and then the ledger
// (NAME.ledger.sqlite beside it) commits the items and the file's length in
// one transaction. A resumed run truncates the file to the committed length
// (dropping lines whose items were not committed) and skips committed items.
// The finished shard is renamed to NAME.jsonl. Other formats whose records
// are appended bytes (a tar of members, then its end marker) use the same
// writer with their own suffix, add_raw() and a trailer.
//
//   ShardWriter out(dir, spec.name("synth"), resume);
//   for (item ...) { if (out.committed(item)) continue; out.add(item, line, error); }
//   out.finish();
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "jobs/ledger.h"

namespace dsvl2::jobs {

class ShardWriter {
 public:
  // Without `resume`, existing output or ledger of this name is an Error
  // (nothing is overwritten by accident). A shard another live process is
  // writing (its NAME.lock held) is an Error too.
  ShardWriter(const std::string& dir, const std::string& name, bool resume, int batch = 64,
              const std::string& suffix = ".jsonl");
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  bool finished() const { return finished_; }  // by this run or an earlier one
  bool committed(int64_t item);
  // Every item committed so far, ascending (for a reader on another thread).
  std::vector<int64_t> committed_items() { return ledger_->committed_items(name_); }
  // An item's output line (no newline; empty for none) or its error.
  void add(int64_t item, const std::string& line, const std::string& error = "");
  // The same for a record already encoded as bytes (written as they are).
  void add_raw(int64_t item, std::string_view bytes, const std::string& error = "");
  // Writes `trailer` (e.g. a tar's end marker), commits the rest and renames
  // the output. Returns the final path.
  std::string finish(std::string_view trailer = {});
  // The output so far, before finish() (e.g. to read back what was committed).
  const std::string& partial_path() const { return partial_; }

  int64_t items() const { return items_; }
  int64_t errors() const { return errors_; }
  const std::vector<std::pair<int64_t, std::string>>& new_errors() const { return new_errors_; }
  const std::string& output_path() const { return final_; }

 private:
  void checkpoint(bool done);
  void write(std::string_view bytes);
  std::string name_, final_, partial_;
  int batch_;
  std::unique_ptr<Ledger> ledger_;
  // NAME.lock, flock()ed while this writer lives; a member (not a body
  // local) so that a constructor that throws still lets it go.
  struct LockFd {
    int fd = -1;
    ~LockFd();
  } lock_;
  std::FILE* file_ = nullptr;
  bool finished_ = false, in_tx_ = false;
  int64_t items_ = 0, errors_ = 0, bytes_ = 0, pending_ = 0;
  std::vector<std::pair<int64_t, std::string>> new_errors_;  // this run's
};

}  // namespace dsvl2::jobs
