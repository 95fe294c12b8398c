// Every regular member of a tar, in order, with its bytes: for reading back
// a job's own output (a finished shard's statistics), not for untrusted
// input (dataset::SampleReader is that reader).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace dsvl2::dataset {

// Members over `max_member_bytes` are passed with empty data; members whose
// name ends in none of `suffixes` (when given) are skipped unread. Throws
// Error when the file cannot be read as a tar.
void for_each_tar_member(const std::string& path,
                         const std::function<void(const std::string& name, std::string_view data)>& fn,
                         const std::vector<std::string>& suffixes = {}, int64_t max_member_bytes = int64_t(64) << 20);

}  // namespace dsvl2::dataset
