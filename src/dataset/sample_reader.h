// Streams the samples of one input unit (dataset/inputs.h) in a deterministic
// order: a tar's members in file order, a manifest's lines in file order, a
// folder's keys in sorted order.
//
//   SampleReader r(unit);             // throws dsvl2::Error only if the unit cannot be opened at all
//   for (Sample s; r.next(s);) ...    // never throws for bad data: broken records come as error samples
//
// WebDataset tars: consecutive members with the same key (dataset/grouping.h)
// form one sample: KEY.{jpg,jpeg,png,webp,bmp,gif} the image, KEY.txt the alt
// text, KEY.json the source metadata (an object); other members are ignored
// unread, as are directories, links and other non-regular entries. An error
// sample is made for: a key without an image, or with two; a key seen again
// after other keys (a duplicate); a member named by an absolute path or with a
// ".." component; a member over the size limits (skipped, never read into
// memory); a KEY.json that is not a JSON object. A truncated or corrupt tar
// gives the samples known to be whole (each followed by a member of another
// key), then one error sample, then the end: the error goes to the key being
// read when the tar broke (some of its members may be missing), or to
// "__truncated_after_<n>" (n samples before it) when no key was being read.
// So does a tar that ends without its end-of-archive marker (two zero
// blocks), which is how a copy cut at a member boundary looks. A zero-length
// file is an error sample;
// a tar holding only the end marker gives no samples.
//
// Manifests (.jsonl, or .json holding either JSON Lines or one JSON array):
// each record {"key", "image", "alt_text"?, ...extra} gives one sample, the
// image read from "image" (relative to the manifest's folder), the extra
// fields in source_meta. A record without "key" is keyed "line-<n>" (1-based;
// "item-<n>" in an array); blank lines are skipped; a bad record (not JSON, not
// an object, no "image", an unreadable image, a duplicate key) is an error
// sample keyed by its key, or "line-<n>" when it has none.
//
// img2dataset folders: files named like tar members, relative to the folder
// (00000/000000001.jpg, .txt, .json), hidden files and the `*_stats.json`
// summaries skipped, grouped by key in sorted key order.
#pragma once
#include <memory>

#include "dataset/sample.h"

namespace dsvl2::dataset {

namespace detail {
class Source;
}

class SampleReader {
 public:
  explicit SampleReader(const InputUnit& unit, const ReadLimits& limits = {});
  ~SampleReader();
  SampleReader(const SampleReader&) = delete;
  SampleReader& operator=(const SampleReader&) = delete;

  // The next sample into `out` (replacing all of it); false at the end.
  bool next(Sample& out);

 private:
  ReadLimits limits_;  // the sources keep a reference to it
  std::unique_ptr<detail::Source> source_;
};

}  // namespace dsvl2::dataset
