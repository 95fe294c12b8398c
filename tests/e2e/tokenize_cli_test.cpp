// `dsvl2 tokenize` contract: ids as a one-line JSON array (VL2 tokens by
// default, --raw without), text from --text or all of stdin, --decode, and
// one-line errors with a non-zero exit.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/file.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

struct CliResult {
  int rc;
  std::string out, err;
};

CliResult run_cli(const std::string& args, const std::string& stdin_bytes) {
  const std::string dir = test::temp_dir("tok_cli");
  write_file(dir + "/in", stdin_bytes);
  const std::string cmd = test::binary_dir() + "/dsvl2 " + args + " < " + dir + "/in > " + dir + "/out 2> " + dir + "/err";
  int status = std::system(cmd.c_str());
  return {WEXITSTATUS(status), read_file(dir + "/out"), read_file(dir + "/err")};
}

#define REQUIRE_CLI_AND_TOKENIZER()                                                           \
  const std::string tdir = test::tokenizer_dir();                                             \
  if (tdir.empty()) GTEST_SKIP() << "shared/tokenizer not found";                             \
  if (!file_exists(test::binary_dir() + "/dsvl2")) GTEST_SKIP() << "dsvl2 binary not built"; \
  const std::string tok = " --tokenizer " + tdir + "/deepseek_v3"

TEST(TokenizeCli, GoldenCasesFromStdin) {
  REQUIRE_CLI_AND_TOKENIZER();
  std::istringstream in(read_file(tdir + "/golden.jsonl"));
  std::string line;
  int n = 0;
  while (std::getline(in, line) && n < 4) {
    auto j = nlohmann::json::parse(line);
    const std::string text = j["text"].get<std::string>();
    CliResult r = run_cli("tokenize" + tok, text);
    ASSERT_EQ(r.rc, 0) << r.err;
    ASSERT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
    EXPECT_EQ(nlohmann::json::parse(r.out), j["ids_vl2"]) << text;
    CliResult raw = run_cli("tokenize --raw" + tok + "/tokenizer.json", text);
    EXPECT_EQ(nlohmann::json::parse(raw.out), j["ids"]) << text;
    CliResult dec = run_cli("tokenize --decode" + tok, j["ids"].dump());
    EXPECT_EQ(dec.out, text);
    n++;
  }
  EXPECT_EQ(n, 4);
  CliResult t = run_cli("tokenize" + tok + " --text '<image>\nHi'", "ignored");
  EXPECT_EQ(t.out, "[128815, 201, 23166]\n");
}

TEST(TokenizeCli, Errors) {
  REQUIRE_CLI_AND_TOKENIZER();
  for (const std::string& args : {std::string("tokenize --tokenizer /nonexistent"), "tokenize" + tok + " --decode"}) {
    CliResult r = run_cli(args, "not json");
    EXPECT_NE(r.rc, 0) << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("dsvl2: error: ", 0), 0u) << r.err;
  }
  CliResult bad = run_cli("tokenize" + tok, "\xff\xfe");
  EXPECT_NE(bad.rc, 0);
}

}  // namespace
}  // namespace dsvl2
