#include "dataset/sample_reader.h"

#include "dataset/grouping.h"

namespace dsvl2::dataset {

SampleReader::SampleReader(const InputUnit& unit, const ReadLimits& limits) : limits_(limits) {
  switch (unit.kind) {
    case InputKind::kTar: source_ = detail::open_tar(unit, limits_); break;
    case InputKind::kManifest: source_ = detail::open_manifest(unit, limits_); break;
    case InputKind::kFolder: source_ = detail::open_folder(unit, limits_); break;
  }
}

SampleReader::~SampleReader() = default;

bool SampleReader::next(Sample& out) {
  out = Sample{};
  return source_ && source_->next(out);
}

}  // namespace dsvl2::dataset
