// `dsvl2 trace` end to end against the official outputs: the files a user
// would compare (logits and the greedy steps) match expected.safetensors.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/file.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

TEST(TraceCli, MatchesOfficialLogitsAndGreedySteps) {
  DSVL2_REQUIRE_GOLDEN();
  const std::string dir = test::golden_dir() + "/tiny_like";
  nlohmann::json exp = nlohmann::json::parse(read_file(dir + "/expected.json"));
  SafetensorsFile ref(dir + "/expected.safetensors");
  ASSERT_FALSE(exp["prompts"].empty());
  const auto first = exp["prompts"].begin();
  const std::string name = first.key();
  const nlohmann::json& p = first.value();
  const std::string tmp = test::temp_dir("trace_cli");
  write_file(tmp + "/ids.json", p["input_ids"].dump());
  std::string images;
  for (const auto& f : p["images"]) images += " --image " + dir + "/" + f.get<std::string>();
  const auto r = test::run_command(test::dsvl2_binary() + " trace -m " + dir + images + " --input-ids " + tmp +
                                   "/ids.json --image-token-id " + std::to_string(exp["image_token_id"].get<int>()) +
                                   " --steps 8 -t 2 -o " + tmp + "/out.safetensors");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  SafetensorsFile out(tmp + "/out.safetensors");
  for (const char* t : {"logits", "generated_step_logits"}) {
    Tensor got = to_f32(out.find(t)->view), want = to_f32(ref.find(name + "." + t)->view);
    ASSERT_EQ(got.shape(), want.shape()) << t;
    EXPECT_LT(test::diff(got.f32(), want.f32(), got.numel()).max_abs, 1e-3) << t;
  }
  const auto* g = out.find("generated_ids");
  const auto* w = ref.find(name + ".generated_ids");
  ASSERT_TRUE(g && w);
  ASSERT_EQ(g->view.nbytes, w->view.nbytes);
  EXPECT_EQ(std::memcmp(g->view.data, w->view.data, g->view.nbytes), 0);
}

}  // namespace
}  // namespace dsvl2
