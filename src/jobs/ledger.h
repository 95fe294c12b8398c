// A job's memory of what it has finished, in SQLite: one row per output
// shard (status, items, bytes of output committed, errors) and one per item
// (status, attempts, error). Progress is committed in transactions together
// with the output's committed length, so a job killed at any instant resumes
// exactly where its last commit left it: nothing lost, nothing twice.
//
//   Ledger ledger(out_dir + "/synth.ledger.sqlite");
//   Ledger::ShardState st = ledger.shard("synth-00001-of-00004");
//   ledger.begin();  ledger.item_done(shard, 17, "");  ledger.commit_shard(shard, items, bytes);  ledger.commit();
#pragma once
#include <cstdint>
#include <string>
#include <vector>

struct sqlite3;

namespace dsvl2::jobs {

class Ledger {
 public:
  // Opens or creates the ledger file. Throws Error.
  explicit Ledger(const std::string& path);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  struct ShardState {
    bool done = false;
    int64_t items = 0, bytes = 0, errors = 0;  // committed
  };
  ShardState shard(const std::string& name);
  // Whether `item` of `shard` was committed (done or failed).
  bool item_committed(const std::string& shard, int64_t item);
  // Every committed item of `shard`, ascending (a resume loads them once).
  std::vector<int64_t> committed_items(const std::string& shard);

  void begin();
  // Within a transaction: an item finished (error empty) or failed.
  void item_done(const std::string& shard, int64_t item, const std::string& error);
  void commit_shard(const std::string& shard, int64_t items, int64_t bytes, int64_t errors, bool done);
  void commit();
  void rollback();

 private:
  void exec(const char* sql);
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace dsvl2::jobs
