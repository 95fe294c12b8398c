// A contact sheet of records for a person to look at (`synth --preview N`):
// each cell shows the record's first image (marks and erasures included)
// and its question and answer.
#pragma once
#include <string>
#include <vector>

#include "image/image.h"
#include "synth/tasks.h"

namespace dsvl2::synth {

struct PreviewCell {
  Image thumb;       // at most kPreviewSide wide and tall
  std::string text;  // "[task] Q: ... A: ..."
};

inline constexpr int kPreviewSide = 320;

// Loads the record's first image (paths are relative to out_dir) and shrinks it.
PreviewCell preview_cell(const Record& r, const std::string& out_dir);
// Cells in rows of four, text wrapped under each image.
Image contact_sheet(const std::vector<PreviewCell>& cells);

}  // namespace dsvl2::synth
