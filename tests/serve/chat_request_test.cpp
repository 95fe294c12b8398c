// The request parser: what a well-formed body becomes (content with image
// tags in part order, visual prompts drawn and named, grounding prompts,
// sampling and its penalty mapping), and a 4xx naming the field for each of
// many malformed or oversized bodies, images included.
#include <gtest/gtest.h>


#include "core/base64.h"
#include "core/file.h"
#include "serve/chat_request.h"
#include "serve/responses.h"
#include "test_util.h"

namespace dsvl2::serve {
namespace {

std::string demo_png_url() {
  const std::string b = read_file(std::string(DSVL2_SOURCE_DIR) + "/demo/demo.png");
  return "data:image/png;base64," + base64_encode(reinterpret_cast<const uint8_t*>(b.data()), b.size());
}

std::string image_part(const std::string& url, const std::string& extra = "") {
  return R"({"type":"image_url","image_url":{"url":")" + url + "\"}" + extra + "}";
}

std::string user(const std::string& content_json, const std::string& more = "") {
  return R"({"model":"m","messages":[{"role":"user","content":)" + content_json + "}]" + more + "}";
}

TEST(ChatRequest, PartsBecomeContentWithImageTagsInOrder) {
  const std::string url = demo_png_url();
  ChatRequest r = parse_chat_request(
      R"({"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[)" + image_part(url) +
          R"(,{"type":"text","text":"Describe."}]},{"role":"assistant","content":"A cat."},{"role":"user","content":"And the colour?"}],"max_tokens":7,"temperature":0.5,"top_p":0.9,"top_k":40,"seed":3,"stop":["END"]})",
      {});
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].role, ChatRole::kSystem);
  EXPECT_EQ(r.messages[1].content, "<image>\nDescribe.");
  EXPECT_EQ(r.messages[1].n_images, 1);
  EXPECT_EQ(r.messages[3].n_images, 0);
  ASSERT_EQ(r.images.size(), 1u);
  EXPECT_EQ(r.images[0].image.width, 640);
  EXPECT_EQ(r.images[0].message, 1);
  EXPECT_EQ(r.gen.max_new_tokens, 7);
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 0.5f);
  EXPECT_EQ(r.gen.sampling.top_k, 40);
  EXPECT_EQ(r.gen.sampling.seed, 3u);
  EXPECT_TRUE(r.seeded);
  EXPECT_EQ(r.gen.stop_strings.back(), "END");
  EXPECT_FLOAT_EQ(r.gen.sampling.repetition_penalty, 1.0f);
}

TEST(ChatRequest, PenaltiesMapToTheRepetitionPenalty) {
  EXPECT_FLOAT_EQ(parse_chat_request(user("\"hi\"", R"(,"presence_penalty":0.4)"), {}).gen.sampling.repetition_penalty, 1.1f);
  EXPECT_FLOAT_EQ(parse_chat_request(user("\"hi\"", R"(,"frequency_penalty":-2,"presence_penalty":-2)"), {})
                      .gen.sampling.repetition_penalty, 0.5f);
  EXPECT_FLOAT_EQ(parse_chat_request(user("\"hi\"", R"(,"presence_penalty":1,"repetition_penalty":1.3)"), {})
                      .gen.sampling.repetition_penalty, 1.3f);
}

TEST(ChatRequest, VisualPromptIsDrawnAndNamesTheMark) {
  const std::string url = demo_png_url();
  ChatRequest plain = parse_chat_request(user("[" + image_part(url) + "]"), {});
  ChatRequest r = parse_chat_request(
      user("[" + image_part(url, R"(,"visual_prompt":{"shape":"ellipse","box":[100,100,300,250],"color":"red","seed":1})") +
           R"j(,{"type":"text","text":"What is within {mark}? ({mark1})"}])j"),
      {});
  EXPECT_EQ(r.images[0].mark_phrase, "the red ellipse");
  EXPECT_EQ(r.messages[0].content, "<image>\nWhat is within the red ellipse? (the red ellipse)");
  EXPECT_NE(r.images[0].image.rgb, plain.images[0].image.rgb);  // drawn
  ResponseContext ctx = response_context(r, "chatcmpl-1", "m", 0);
  Completion c;
  c.text = "x";
  c.finish_reason = "stop";
  EXPECT_NE(completion_body(ctx, c).find(R"("visual_prompts":[{"image":0,"phrase":"the red ellipse"}])"), std::string::npos);
}

TEST(ChatRequest, GroundingWritesThePromptOrParsesOnly) {
  const std::string url = demo_png_url();
  ChatRequest r = parse_chat_request(
      user("[" + image_part(url) + R"(,{"type":"text","text":"ignored"}])", R"(,"grounding":{"query":"the red car"})"), {});
  EXPECT_EQ(r.grounding, GroundingRequest::kLocate);
  EXPECT_EQ(r.messages[0].content, "Locate <|ref|>the red car<|/ref|> in the given image.");
  EXPECT_EQ(r.messages[0].n_images, 1);
  ChatRequest ic = parse_chat_request(
      user("[" + image_part(url, R"(,"visual_prompt":{"shape":"rectangle","box":[10,10,90,90],"color":"red"})") + "," +
               image_part(url) + "]",
           R"(,"grounding":{"mode":"in_context"})"),
      {});
  EXPECT_EQ(ic.grounding, GroundingRequest::kInContext);
  EXPECT_NE(ic.messages[0].content.find("an object within the red rectangle is marked"), std::string::npos)
      << ic.messages[0].content;
  EXPECT_EQ(parse_chat_request(user("[" + image_part(url) + "]", R"(,"grounding":true)"), {}).grounding,
            GroundingRequest::kParseOnly);
}

TEST(ChatRequest, FileUrlsOnlyUnderTheAllowedFolder) {
  RequestLimits lim;
  EXPECT_THROW(parse_chat_request(user("[" + image_part("file://demo.png") + "]"), lim), ApiError);
  lim.allow_files_dir = std::string(DSVL2_SOURCE_DIR) + "/demo";
  EXPECT_EQ(parse_chat_request(user("[" + image_part("file://demo.png") + "]"), lim).images[0].image.width, 640);
  EXPECT_EQ(parse_chat_request(user("[" + image_part("file:////demo.png") + "]"), lim).images[0].image.width, 640);
  for (const char* escape : {"file://../README.md", "file://./../demo/demo.png/..", "file:///etc/passwd"}) {
    try {
      parse_chat_request(user("[" + image_part(escape) + "]"), lim);
      ADD_FAILURE() << escape;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400) << escape;
    }
  }
}

struct Bad {
  const char* name;
  std::string body;
  std::string param;  // expected param prefix ("" = any)
};

TEST(ChatRequest, MalformedRequestsAre400NamingTheField) {
  const std::string url = demo_png_url();
  RequestLimits lim;
  lim.max_images = 2;
  lim.max_pixels = 1000 * 1000;
  std::string deep(200, '[');
  const std::string truncated = url.substr(0, url.size() / 2);
  const std::vector<Bad> cases = {
      {"not json", "{\"messages\": [", ""},
      {"not an object", "[1, 2]", ""},
      {"invalid utf-8", "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", ""},
      {"depth bomb", "{\"messages\":" + deep, ""},
      {"no messages", R"({"model":"m"})", "messages"},
      {"empty messages", R"({"messages":[]})", "messages"},
      {"message not object", R"({"messages":["hi"]})", "messages[0]"},
      {"unknown role", R"({"messages":[{"role":"bot","content":"hi"}]})", "messages[0].role"},
      {"tool role", R"({"messages":[{"role":"tool","content":"hi"}]})", "messages[0].role"},
      {"system later", R"({"messages":[{"role":"user","content":"a"},{"role":"system","content":"b"},{"role":"user","content":"c"}]})", "messages[1].role"},
      {"last not user", R"({"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]})", "messages"},
      {"content number", user("5"), "messages[0].content"},
      {"no content", R"({"messages":[{"role":"user"}]})", "messages[0].content"},
      {"empty text", user("\"  \""), "messages[0].content"},
      {"part type", user(R"([{"type":"audio"}])"), "messages[0].content[0].type"},
      {"image_url string", user(R"([{"type":"image_url","image_url":"data:image/png;base64,AAAA"}])"), "messages[0].content[0].image_url"},
      {"empty url", user("[" + image_part("") + "]"), "messages[0].content[0].image_url.url"},
      {"http url", user("[" + image_part("https://example.com/a.png") + "]"), "messages[0].content[0].image_url.url"},
      {"file without allow", user("[" + image_part("file://a.png") + "]"), "messages[0].content[0].image_url.url"},
      {"bad base64", user("[" + image_part("data:image/png;base64,@@@@") + "]"), "messages[0].content[0].image_url.url"},
      {"base64 not image", user("[" + image_part("data:image/png;base64,aGVsbG8gd29ybGQh") + "]"), "messages[0].content[0].image_url.url"},
      {"not base64 data url", user("[" + image_part("data:image/png,abc") + "]"), "messages[0].content[0].image_url.url"},
      {"truncated png", user("[" + image_part(truncated.substr(0, truncated.size() / 4 * 4)) + "]"), "messages[0].content[0].image_url.url"},
      {"too many images", user("[" + image_part(url) + "," + image_part(url) + "," + image_part(url) + "]"), "messages"},
      {"image in assistant", R"({"messages":[{"role":"assistant","content":[)" + image_part(url) + R"(]},{"role":"user","content":"x"}]})", "messages[0].content[0]"},
      {"max_tokens negative", user("\"hi\"", R"(,"max_tokens":-1)"), "max_tokens"},
      {"max_tokens huge", user("\"hi\"", R"(,"max_tokens":99999999999)"), "max_tokens"},
      {"max_tokens string", user("\"hi\"", R"(,"max_tokens":"10")"), "max_tokens"},
      {"max_tokens zero", user("\"hi\"", R"(,"max_completion_tokens":0)"), "max_completion_tokens"},
      {"temperature negative", user("\"hi\"", R"(,"temperature":-0.5)"), "temperature"},
      {"temperature huge", user("\"hi\"", R"(,"temperature":1e308)"), "temperature"},
      {"top_p zero", user("\"hi\"", R"(,"top_p":0)"), "top_p"},
      {"top_p over one", user("\"hi\"", R"(,"top_p":1.5)"), "top_p"},
      {"top_k negative", user("\"hi\"", R"(,"top_k":-3)"), "top_k"},
      {"n two", user("\"hi\"", R"(,"n":2)"), "n"},
      {"stop ten", user("\"hi\"", R"(,"stop":["a","b","c","d","e","f","g","h","i","j"])"), "stop"},
      {"stop empty", user("\"hi\"", R"(,"stop":"")"), "stop"},
      {"stream string", user("\"hi\"", R"(,"stream":"yes")"), "stream"},
      {"penalty out of range", user("\"hi\"", R"(,"presence_penalty":3)"), "presence_penalty"},
      {"logprobs", user("\"hi\"", R"(,"logprobs":true)"), "logprobs"},
      {"seed float", user("\"hi\"", R"(,"seed":1.5)"), "seed"},
      {"vp bad shape", user("[" + image_part(url, R"(,"visual_prompt":{"shape":"star","box":[1,1,9,9]})") + "]"), "messages[0].content[0].visual_prompt"},
      {"vp no region", user("[" + image_part(url, R"(,"visual_prompt":{"shape":"ellipse"})") + "]"), "messages[0].content[0].visual_prompt"},
      {"vp inverted box", user("[" + image_part(url, R"(,"visual_prompt":{"shape":"ellipse","box":[9,9,1,1]})") + "]"), "messages[0].content[0].visual_prompt.box"},
      {"vp short polygon", user("[" + image_part(url, R"(,"visual_prompt":{"shape":"mask","mask":[[1,2,3,4]]})") + "]"), "messages[0].content[0].visual_prompt.mask"},
      {"grounding no query", user("[" + image_part(url) + "]", R"(,"grounding":{"mode":"locate"})"), "grounding.query"},
      {"grounding bad mode", user("[" + image_part(url) + "]", R"(,"grounding":{"mode":"x","query":"a"})"), "grounding.mode"},
      {"in-context one image", user("[" + image_part(url) + "]", R"(,"grounding":{"mode":"in_context"})"), "grounding.mode"},
      {"grounding type", user("\"hi\"", R"(,"grounding":5)"), "grounding"},
  };
  for (const Bad& b : cases) {
    try {
      parse_chat_request(b.body, lim);
      ADD_FAILURE() << b.name << ": accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400) << b.name << ": " << e.what();
      EXPECT_EQ(e.param.rfind(b.param, 0), 0u) << b.name << ": param " << e.param << " (" << e.what() << ")";
      EXPECT_FALSE(std::string(e.what()).empty()) << b.name;
      EXPECT_NE(error_body(e).find("\"invalid_request_error\""), std::string::npos) << b.name;
    }
  }
}

TEST(ChatRequest, MasksOverTheCoordinateCapAre400) {
  std::string poly = "[";
  for (int i = 0; i < 20000; i++) poly += std::string(i ? "," : "") + std::to_string(10 + i % 50);
  poly += "]";
  std::string mask = "[" + poly;
  for (int k = 1; k < 6; k++) mask += "," + poly;  // 120,000 values
  mask += "]";
  try {
    parse_chat_request(user("[" + image_part(demo_png_url(), R"(,"visual_prompt":{"shape":"mask","mask":)" + mask + "}") + "]"),
                       {});
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "messages[0].content[0].visual_prompt.mask") << e.what();
  }
}

TEST(ChatRequest, OversizedImagesAreRefusedBeforeDecoding) {
  RequestLimits lim;
  lim.max_pixels = 100 * 100;  // the 640x480 demo is over it: checked from the header
  try {
    parse_chat_request(user("[" + image_part(demo_png_url()) + "]"), lim);
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_NE(std::string(e.what()).find("pixels"), std::string::npos) << e.what();
  }
  lim = {};
  lim.max_image_bytes = 1000;
  try {
    parse_chat_request(user("[" + image_part(demo_png_url()) + "]"), lim);
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_NE(std::string(e.what()).find("larger than 1000 bytes"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dsvl2::serve
