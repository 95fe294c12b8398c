#include "jobs/ledger.h"

#include <sqlite3.h>

#include "core/error.h"

namespace dsvl2::jobs {
namespace {

// A prepared statement, finalized on every path.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK)
      DSVL2_FAIL_KIND(kInternal, "ledger: %s", sqlite3_errmsg(db));
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt& text(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& num(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  bool row() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) DSVL2_FAIL_KIND(kOutOfResources, "ledger: %s", sqlite3_errmsg(db_));
    return false;
  }
  int64_t col(int i) { return sqlite3_column_int64(s_, i); }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

}  // namespace

Ledger::Ledger(const std::string& path) : path_(path) {
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    DSVL2_FAIL("ledger %s: %s", path.c_str(), msg.c_str());
  }
  sqlite3_busy_timeout(db_, 30000);  // shards of one job may share a folder on a cluster
  // FULL sync: a commit that returned is on disk, so the output length it
  // records is never ahead of what a restart finds.
  exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
       "CREATE TABLE IF NOT EXISTS shard(name TEXT PRIMARY KEY, done INTEGER NOT NULL, items INTEGER NOT NULL,"
       " bytes INTEGER NOT NULL, errors INTEGER NOT NULL);"
       "CREATE TABLE IF NOT EXISTS item(shard TEXT NOT NULL, item INTEGER NOT NULL, status TEXT NOT NULL,"
       " attempts INTEGER NOT NULL, error TEXT, PRIMARY KEY(shard, item));");
}

Ledger::~Ledger() { sqlite3_close(db_); }

void Ledger::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    DSVL2_FAIL_KIND(kOutOfResources, "ledger %s: %s", path_.c_str(), msg.c_str());
  }
}

Ledger::ShardState Ledger::shard(const std::string& name) {
  Stmt s(db_, "SELECT done, items, bytes, errors FROM shard WHERE name = ?1");
  s.text(1, name);
  ShardState st;
  if (s.row()) {
    st.done = s.col(0) != 0;
    st.items = s.col(1);
    st.bytes = s.col(2);
    st.errors = s.col(3);
  }
  return st;
}

bool Ledger::item_committed(const std::string& shard, int64_t item) {
  Stmt s(db_, "SELECT 1 FROM item WHERE shard = ?1 AND item = ?2");
  s.text(1, shard).num(2, item);
  return s.row();
}

std::vector<int64_t> Ledger::committed_items(const std::string& shard) {
  Stmt s(db_, "SELECT item FROM item WHERE shard = ?1 ORDER BY item");
  s.text(1, shard);
  std::vector<int64_t> out;
  while (s.row()) out.push_back(s.col(0));
  return out;
}

void Ledger::begin() { exec("BEGIN IMMEDIATE"); }
void Ledger::commit() { exec("COMMIT"); }
void Ledger::rollback() {
  if (!sqlite3_get_autocommit(db_)) exec("ROLLBACK");  // else SQLite already rolled it back
}

void Ledger::item_done(const std::string& shard, int64_t item, const std::string& error) {
  // attempts counts the commits of this item: 1 unless a later run redid it.
  Stmt s(db_,
         "INSERT INTO item(shard, item, status, attempts, error) VALUES(?1, ?2, ?3, 1, ?4)"
         " ON CONFLICT(shard, item) DO UPDATE SET status = ?3, attempts = attempts + 1, error = ?4");
  s.text(1, shard).num(2, item).text(3, error.empty() ? "done" : "error").text(4, error);
  s.row();
}

void Ledger::commit_shard(const std::string& shard, int64_t items, int64_t bytes, int64_t errors, bool done) {
  Stmt s(db_,
         "INSERT INTO shard(name, done, items, bytes, errors) VALUES(?1, ?2, ?3, ?4, ?5)"
         " ON CONFLICT(name) DO UPDATE SET done = ?2, items = ?3, bytes = ?4, errors = ?5");
  s.text(1, shard).num(2, done).num(3, items).num(4, bytes).num(5, errors);
  s.row();
}

}  // namespace dsvl2::jobs
