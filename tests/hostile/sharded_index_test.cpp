// model.safetensors.index.json rules (reliability checklist, "Sharded HF
// checkpoints"): plain shard names only, every listed tensor in its shard,
// no tensor in two shards, no unlisted shard tensor, every shard present.
#include <gtest/gtest.h>

#include "core/tensor.h"
#include "hostile_util.h"
#include "io/checkpoint.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

using test::fails_with;

struct Sharded {
  std::string dir;
  explicit Sharded(const std::string& tag) : dir(test::temp_dir(tag)) {
    Tensor a = Tensor::f32({2}), b = Tensor::f32({3}), c = Tensor::f32({1});
    save_safetensors(dir + "/model-00001-of-00002.safetensors", {{"a", &a}, {"b", &b}});
    save_safetensors(dir + "/model-00002-of-00002.safetensors", {{"c", &c}});
  }
  void index(const std::string& weight_map) const {
    write_file(dir + "/model.safetensors.index.json",
               R"({"metadata":{"total_size":24},"weight_map":)" + weight_map + "}");
  }
};

const char* kGoodMap =
    R"({"a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors","c":"model-00002-of-00002.safetensors"})";

TEST(ShardedIndex, AcceptsAWellFormedIndex) {
  Sharded s("shard_ok");
  s.index(kGoodMap);
  Checkpoint ck(s.dir);
  EXPECT_EQ(ck.names().size(), 3u);
  EXPECT_NE(ck.file_of("c").find("model-00002-of-00002.safetensors"), std::string::npos);
  EXPECT_EQ(ck.require("b", {3}).nbytes, 12u);
}

TEST(ShardedIndex, ShardNameWithSlash) {
  Sharded s("shard_slash");
  s.index(R"({"a":"sub/model-00001-of-00002.safetensors"})");
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(s.dir); }, {"not a plain file name", "sub/"}));
}

TEST(ShardedIndex, ShardNameWithDotDot) {
  Sharded s("shard_dotdot");
  s.index(R"({"a":"..model-00001-of-00002.safetensors"})");
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(s.dir); }, {"not a plain file name"}));
  s.index(R"({"a":"../x.safetensors"})");
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(s.dir); }, {"not a plain file name"}));
  s.index(R"({"a":".."})");
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(s.dir); }, {"not a plain file name"}));
  s.index(R"({"a":"."})");
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(s.dir); }, {"not a plain file name"}));
}

TEST(ShardedIndex, AbsoluteShardName) {
  Sharded s("shard_abs");
  s.index(R"({"a":"/etc/passwd"})");
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(s.dir); }, {"not a plain file name", "/etc/passwd"}));
  s.index(R"({"a":"C:\\x.safetensors"})");
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(s.dir); }, {"not a plain file name"}));
  s.index(R"({"a":""})");
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(s.dir); }, {"not a plain file name"}));
}

TEST(ShardedIndex, TensorListedButMissingFromShard) {
  Sharded s("shard_listed_missing");
  s.index(R"({"a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors",)"
          R"("c":"model-00002-of-00002.safetensors","d":"model-00002-of-00002.safetensors"})");
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(s.dir); }, {"\"d\"", "listed in the index but missing", "model-00002"}));
}

TEST(ShardedIndex, TensorInTwoShards) {
  Sharded s("shard_twice");
  Tensor a2 = Tensor::f32({2});
  save_safetensors(s.dir + "/model-00002-of-00002.safetensors", {{"c", &a2}, {"a", &a2}});
  s.index(kGoodMap);
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(s.dir); }, {"\"a\"", "two shards"}));
}

TEST(ShardedIndex, ShardTensorNotInMap) {
  Sharded s("shard_unlisted");
  s.index(R"({"a":"model-00001-of-00002.safetensors","c":"model-00002-of-00002.safetensors"})");
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(s.dir); }, {"\"b\"", "not listed in the index"}));
}

TEST(ShardedIndex, MissingShardFile) {
  Sharded s("shard_missing_file");
  s.index(R"({"a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors",)"
          R"("c":"model-00003-of-00002.safetensors"})");
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(s.dir); }, {"model-00003-of-00002.safetensors"}));
}

TEST(ShardedIndex, MalformedIndex) {
  Sharded s("shard_malformed");
  write_file(s.dir + "/model.safetensors.index.json", "{\"weight_map\": ");
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(s.dir); }, {"index.json", "invalid JSON"}));
  s.index("[]");
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(s.dir); }, {"weight_map"}));
  s.index("{}");
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(s.dir); }, {"lists no tensors"}));
  s.index(R"({"a":1})");
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(s.dir); }, {"not a string"}));
}

TEST(ShardedIndex, BrokenShardIsNamed) {
  Sharded s("shard_broken");
  write_file(s.dir + "/model-00002-of-00002.safetensors", std::string(5, 'x'));
  s.index(kGoodMap);
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(s.dir); }, {"model-00002-of-00002.safetensors", "shorter than"}));
}

TEST(ShardedIndex, EmptyFolder) {
  std::string dir = test::temp_dir("shard_empty");
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(dir); }, {"no model.safetensors"}));
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(dir + "/nope"); }, {"no such checkpoint"}));
}

}  // namespace
}  // namespace dsvl2
