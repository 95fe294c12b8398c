// A finished record as the job writes it: KEY.json (field list in
// docs/recaption.md) and, with --copy-images, the image beside it, as tar
// members of the unit's output shard.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "recaption/record.h"

namespace dsvl2::recaption {

nlohmann::json record_to_json(const Record& r, RecaptionTask task);

// The member name stem for a record: its key made safe for a tar and for
// WebDataset's grouping (no "..", no leading "/", no control bytes, and no
// '.' in the last component, which WebDataset would read as an extension);
// the JSON keeps the original key.
std::string member_stem(const std::string& key);

// The extension an image copy is stored under: jpg, jpeg, png, webp, bmp or
// gif from the input's extension, else "img".
std::string image_extension(const std::string& ext);

// The record's tar members: MEMBER.json, then MEMBER.<ext> with the image
// bytes when the record kept them (Record::member, set by the preparer).
std::string record_members(const Record& r, const nlohmann::json& j);

}  // namespace dsvl2::recaption
