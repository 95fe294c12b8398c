// Tar members for WebDataset output shards, written by libarchive so that
// every tar reader agrees with them. Deterministic: mtime 0, uid/gid 0, mode
// 0644, no user or group names; the same name and data always give the same
// bytes. A shard is its members concatenated, then tar_end():
//
//   std::string shard = tar_member("000001.jpg", jpeg) + tar_member("000001.txt", caption) + tar_end();
//
// A name that fits ustar's fields (100 bytes, or a 155-byte prefix + '/' +
// 100) gives one plain ustar header; a longer or non-ASCII one is preceded by
// a pax extended header carrying the exact name (libarchive's restricted pax
// format), which every reader after 2001 understands.
#pragma once
#include <string>
#include <string_view>

namespace dsvl2::dataset {

// One regular-file member: header(s), data, zero padding to 512 bytes.
// Throws dsvl2::Error for an empty name or one libarchive refuses.
std::string tar_member(const std::string& name, std::string_view data);

// The end-of-archive marker: two 512-byte zero blocks.
std::string tar_end();

}  // namespace dsvl2::dataset
