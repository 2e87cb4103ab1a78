// `kvsieve run` end to end: chat prompts. The prompt token count reported on
// stderr must be the count of the chat text the formatter writes, and chat
// formats whose markers the vocabulary lacks are refused.
#include <gtest/gtest.h>

#include <regex>

#include "test_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve {
namespace {

std::string q(const std::string& s) { return "'" + s + "'"; }

int64_t reported_prompt_tokens(const std::string& err) {
  std::smatch m;
  if (!std::regex_search(err, m, std::regex("prompt ([0-9]+) tokens"))) return -1;
  return std::stoll(m[1]);
}

TEST(CliRun, ChatPromptIsTheFormattedConversation) {
  KVSIEVE_REQUIRE_SHARED("tokenizers/llama3/tokenizer.model");
  const std::string vocab = testing::shared_data() + "/tokenizers/llama3/tokenizer.model";
  testing::TempDir d;
  const std::string model = d.file("m.gguf");
  auto r = testing::run_kvsieve("random-model -o " + q(model) +
                                " --dim 32 --layers 1 --heads 2 --kv-heads 1 --ff 64 --vocab " +
                                q(vocab));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto tok = Tokenizer::create(vocab_from_tiktoken(vocab));
  const std::string text = format_chat(
      ChatFormat::kLlama3, {{"system", "Be brief."}, {"user", "Where is Paris?"}});
  const int64_t expect = int64_t(tok->encode(text, true).size());

  r = testing::run_kvsieve("run -m " + q(model) +
                           " -p 'Where is Paris?' --chat --system 'Be brief.' -n 2 --print-ids");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("chat format llama3"), std::string::npos) << r.err;
  EXPECT_EQ(reported_prompt_tokens(r.err), expect) << r.err;

  r = testing::run_kvsieve("run -m " + q(model) + " -p 'Hi' --chat-template chatml -n 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no <|im_start|> token"), std::string::npos) << r.err;
  r = testing::run_kvsieve("run -m " + q(model) + " -p 'Hi' --system x -n 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--system needs --chat"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kvsieve
