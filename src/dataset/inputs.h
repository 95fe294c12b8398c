// From command-line arguments to the units of a recaptioning job, each of
// which becomes one output shard:
//
//   expand_inputs({"shards/data-{00000..00009}.tar", "extra.jsonl", "img2ds-out/"})
//
//  * braces are expanded first (dataset/braces.h);
//  * a `.tar` file is a WebDataset shard (kTar), a `.jsonl` or `.json` file a
//    manifest (kManifest);
//  * a directory is an img2dataset output folder: if it holds `*.tar` files,
//    each of them (sorted by name) is a unit; otherwise the folder itself is
//    one unit (kFolder) whose KEY.jpg / KEY.txt / KEY.json files, in any
//    subfolder, are read in sorted key order.
// Throws dsvl2::Error naming every path that does not exist, a file of another
// type, or two units with the same stem (their output shards would collide).
#pragma once
#include <string>
#include <vector>

#include "dataset/sample.h"

namespace dsvl2::dataset {

std::vector<InputUnit> expand_inputs(const std::vector<std::string>& args);

}  // namespace dsvl2::dataset
