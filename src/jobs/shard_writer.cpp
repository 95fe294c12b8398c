#include "jobs/shard_writer.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <filesystem>

#include "core/error.h"

namespace dsvl2::jobs {

ShardWriter::ShardWriter(const std::string& dir, const std::string& name, bool resume, int batch,
                         const std::string& suffix)
    : name_(name), final_(dir + "/" + name + suffix), partial_(final_ + ".partial"), batch_(std::max(1, batch)) {
  namespace fs = std::filesystem;
  const std::string ledger_path = dir + "/" + name + ".ledger.sqlite";
  std::error_code ec;
  fs::create_directories(dir, ec);
  // One writer per shard: a resubmitted task that starts while the old one
  // is still dying, or two runs given the same shard, would interleave
  // their bytes in the partial file. The lock goes with the process.
  const std::string lock_path = dir + "/" + name + ".lock";
  lock_.fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (lock_.fd < 0) DSVL2_FAIL_KIND(kOutOfResources, "%s: cannot create: %s", lock_path.c_str(), std::strerror(errno));
  if (::flock(lock_.fd, LOCK_EX | LOCK_NB) != 0) {
    DSVL2_FAIL("%s: another process is writing this shard now (%s is locked)", final_.c_str(), lock_path.c_str());
  }
  if (!resume && (fs::exists(final_) || fs::exists(partial_) || fs::exists(ledger_path)))
    DSVL2_FAIL("%s: output of an earlier run is there; pass --resume to continue it, or choose another --out",
               final_.c_str());
  ledger_ = std::make_unique<Ledger>(ledger_path);
  const Ledger::ShardState st = ledger_->shard(name_);
  items_ = st.items;
  errors_ = st.errors;
  bytes_ = st.bytes;
  if (st.done) {
    if (!fs::exists(final_)) {
      fs::rename(partial_, final_, ec);
      if (ec) DSVL2_FAIL("%s: the ledger says done but neither it nor its partial file is there", final_.c_str());
    }
    finished_ = true;
    return;
  }
  // Lines past the committed length belong to items that were not
  // committed: they will be made again.
  if (fs::exists(partial_)) {
    fs::resize_file(partial_, uintmax_t(bytes_), ec);
    if (ec) DSVL2_FAIL("%s: cannot truncate to %lld bytes: %s", partial_.c_str(), (long long)bytes_, ec.message().c_str());
  } else {
    DSVL2_REQUIRE(bytes_ == 0, "%s is missing but the ledger records %lld bytes of it", partial_.c_str(),
                  (long long)bytes_);
  }
  file_ = std::fopen(partial_.c_str(), "ab");
  if (!file_) DSVL2_FAIL_KIND(kOutOfResources, "%s: cannot open for writing", partial_.c_str());
}

ShardWriter::~ShardWriter() {
  // Uncommitted items are redone by a resume. SQLite may have rolled back
  // already (a failed commit); a destructor must not throw.
  if (in_tx_) {
    try {
      ledger_->rollback();
    } catch (const Error&) {
    }
  }
  if (file_) std::fclose(file_);
}

ShardWriter::LockFd::~LockFd() {
  if (fd >= 0) ::close(fd);
}

bool ShardWriter::committed(int64_t item) { return finished_ || ledger_->item_committed(name_, item); }

void ShardWriter::write(std::string_view bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size())
    DSVL2_FAIL_KIND(kOutOfResources, "%s: write failed (disk full?)", partial_.c_str());
  bytes_ += int64_t(bytes.size());
}

void ShardWriter::add(int64_t item, const std::string& line, const std::string& error) {
  add_raw(item, line.empty() ? std::string() : line + "\n", error);
}

void ShardWriter::add_raw(int64_t item, std::string_view bytes, const std::string& error) {
  DSVL2_CHECK(!finished_, "shard %s is finished", name_.c_str());
  if (!in_tx_) {
    ledger_->begin();
    in_tx_ = true;
  }
  write(bytes);
  ledger_->item_done(name_, item, error);
  items_++;
  if (!error.empty()) {
    errors_++;
    new_errors_.emplace_back(item, error);
  }
  if (++pending_ >= batch_) checkpoint(false);
}

void ShardWriter::checkpoint(bool done) {
  // The data reaches the disk before the ledger says it is there.
  if (std::fflush(file_) != 0 || ::fsync(fileno(file_)) != 0)
    DSVL2_FAIL_KIND(kOutOfResources, "%s: flush failed (disk full?)", partial_.c_str());
  if (!in_tx_) {
    ledger_->begin();
    in_tx_ = true;
  }
  ledger_->commit_shard(name_, items_, bytes_, errors_, done);
  ledger_->commit();
  in_tx_ = false;
  pending_ = 0;
}

std::string ShardWriter::finish(std::string_view trailer) {
  if (finished_) return final_;
  write(trailer);
  // Committed as done first, renamed second: a run killed in between finds
  // a done shard under its partial name and only renames it.
  checkpoint(true);
  std::fclose(file_);
  file_ = nullptr;
  std::error_code ec;
  std::filesystem::rename(partial_, final_, ec);
  if (ec) DSVL2_FAIL_KIND(kOutOfResources, "%s: cannot rename: %s", partial_.c_str(), ec.message().c_str());
  finished_ = true;
  return final_;
}

}  // namespace dsvl2::jobs
