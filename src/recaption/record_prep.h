// The CPU stage of a recaption job before the model: read the input unit in
// order, skip what an earlier run committed, and for each sample decode the
// image (the bomb-safe decoders), read its EXIF meta, run OCR and plan and
// write its prompt. It runs on its own thread, a few records ahead of the
// model, so OCR overlaps captioning.
//
//   RecordPreparer prep(unit, writer.committed_items(), opts, 8);
//   while (std::optional<Record> r = prep.next(true)) { ... }
#pragma once
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "dataset/sample_reader.h"
#include "recaption/record.h"

namespace dsvl2::recaption {

struct PrepareOptions {
  RecaptionTask task = RecaptionTask::kCaption;
  uint64_t seed = 0;
  double p_alt = 0.5, p_neg = 0.2;
  bool ocr = true;
  ocr::OcrOptions ocr_options;
  bool keep_image_bytes = false;    // --copy-images
  size_t max_alt_chars = 1000;      // longer alt-text is cut (at a UTF-8 boundary) and flagged
  size_t max_queued_bytes = size_t(1) << 30;  // decoded pixels waiting for the model
};

// One sample to a record ready for the model, or to a failed record (error
// set). Never throws for bad data. `ocr` may be null when OCR is off.
Record prepare_record(dataset::Sample&& s, int64_t item, const std::string& source, const PrepareOptions& o,
                      ocr::OcrEngine* ocr);

class RecordPreparer {
 public:
  // `committed`: items an earlier run wrote (ascending); they are read past.
  RecordPreparer(const dataset::InputUnit& unit, std::vector<int64_t> committed, const PrepareOptions& o,
                 size_t ahead);
  ~RecordPreparer();
  RecordPreparer(const RecordPreparer&) = delete;
  RecordPreparer& operator=(const RecordPreparer&) = delete;

  // The next record in input order; nullopt at the end, or (wait false) when
  // none is ready yet. Rethrows the error that stopped the reader (an input
  // unit that cannot be opened at all).
  std::optional<Record> next(bool wait);
  bool finished();            // nothing more will come
  int64_t skipped() const { return skipped_; }  // committed earlier

 private:
  void run();
  dataset::InputUnit unit_;
  std::vector<int64_t> committed_;
  PrepareOptions opt_;
  size_t ahead_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Record> ready_;
  size_t ready_bytes_ = 0;
  bool done_ = false, stop_ = false;
  std::exception_ptr error_;
  int64_t skipped_ = 0;
  std::thread thread_;
};

}  // namespace dsvl2::recaption
