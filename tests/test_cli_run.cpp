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

namespace kvsieve {
namespace {

// Query-agnostic (default with --question): the context alone is cut, the
// question is read after. Query-aware: context and question are cut together.
TEST(CliRun, QuestionAfterTheCutOrInsideIt) {
  KVSIEVE_REQUIRE_SHARED("stories260K/stories260K.bin");
  testing::TempDir d;
  const std::string src = testing::shared_data() + "/stories260K", model = d.file("s.gguf");
  auto r = testing::run_kvsieve("convert --llama2c " + q(src + "/stories260K.bin") +
                                " --tokenizer " + q(src + "/tok512.bin") + " -o " + q(model));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string context =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
      "park with her red ball. One day, her ball rolled into the pond and she was sad.";
  const std::string question = " Where did the ball go?";
  auto run = [&](const std::string& extra) {
    const std::string dump = d.file("kept.json");
    auto res = testing::run_kvsieve("run -m " + q(model) + " -p " + q(context) + " --question " +
                                    q(question) + " -n 4 --kv snapkv:window=8 --kv-budget 24 " +
                                    extra + " --dump-kept " + q(dump));
    EXPECT_EQ(res.exit_code, 0) << res.err;
    return std::make_pair(res, testing::read_file(dump));
  };
  const auto [agnostic, kept_a] = run("");
  const auto [aware, kept_b] = run("--query-aware");
  const int64_t n_ctx = reported_prompt_tokens(agnostic.err);
  const int64_t n_all = reported_prompt_tokens(aware.err);
  // Context + question are the tokens of the whole text either way; the cut
  // saw only the context without --query-aware.
  auto tok = Tokenizer::create(load_vocab_file(model));
  const int64_t n_question = int64_t(tok->encode(context + question, true).size()) -
                             int64_t(tok->encode(context, true).size());
  EXPECT_EQ(n_ctx, n_all);
  EXPECT_GT(n_question, 3);
  EXPECT_NE(kept_a.find("\"prompt_tokens\":" + std::to_string(n_all - n_question)), std::string::npos)
      << "question tokens must come after the cut: " << kept_a.substr(0, 300);
  EXPECT_NE(kept_b.find("\"prompt_tokens\":" + std::to_string(n_all)), std::string::npos)
      << kept_b.substr(0, 300);
}

}  // namespace
}  // namespace kvsieve
