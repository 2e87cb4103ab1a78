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

// The cut falls where the context ends whatever whitespace the context and
// the question carry, in plain and chat prompts; an empty context is no
// error (there is nothing to cut).
TEST(CliRun, QuestionWithWhitespaceAndAnEmptyContext) {
  KVSIEVE_REQUIRE_SHARED("stories260K/stories260K.bin");
  testing::TempDir d;
  const std::string src = testing::shared_data() + "/stories260K";
  const std::string model = "-m " + q(src + "/stories260K.bin") + " --tokenizer " + q(src + "/tok512.bin");
  auto tok = Tokenizer::create(load_vocab_file(src + "/tok512.bin"));
  const std::string context = "  Once upon a time, Lily played in the park. Where did the ball go? It "
                              "rolled away.  \n";
  const std::string question = "\n  Where did the ball go?  ";
  for (const std::string chat : {"", "llama2", "mistral"}) {
    const std::string dump = d.file("kept.json");
    auto r = testing::run_kvsieve("run " + model + " -p " + q(context) + " --question " + q(question) +
                                  (chat.empty() ? "" : " --chat-template " + chat) +
                                  " -n 2 --kv snapkv:window=4 --kv-budget 12 --dump-kept " + q(dump));
    ASSERT_EQ(r.exit_code, 0) << chat << ": " << r.err;
    // The whole text, tokenized as one, is the prompt; the cut saw the tokens
    // up to the end of the context (the context's own text ends with "away.").
    std::string whole = context + question, ctx_text = context;
    if (!chat.empty()) {
      const ChatSplit c = format_chat_split(chat_format_from_name(chat), "", context, question);
      whole = c.context + c.question;
      ctx_text = c.context;
    }
    ASSERT_NE(ctx_text.find("away."), std::string::npos);
    EXPECT_EQ(ctx_text.find("ball go?", ctx_text.find("away.")), std::string::npos) << chat;
    const auto all = tok->encode(whole, true);
    EXPECT_EQ(reported_prompt_tokens(r.err), int64_t(all.size())) << chat << ": " << r.err;
    const auto ctx_ids = tok->encode(ctx_text, true);
    const std::string kept = testing::read_file(dump);
    const std::regex pt("\"prompt_tokens\":([0-9]+)");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(kept, m, pt)) << kept.substr(0, 200);
    const int64_t cut_at = std::stoll(m[1]);
    // The cut covers the context's tokens (the last one may merge with the
    // whitespace that follows it, never with the question's words).
    EXPECT_GE(cut_at, int64_t(ctx_ids.size()) - 1) << chat;
    EXPECT_LE(cut_at, int64_t(ctx_ids.size()) + 1) << chat;
    EXPECT_LT(cut_at + 4, int64_t(all.size())) << chat << ": the question must come after the cut";
  }
  for (const std::string chat : {"", " --chat-template llama2"}) {
    auto r = testing::run_kvsieve("run " + model + " -p '' --question " + q(question) + chat +
                                  " -n 2 --kv snapkv:window=4 --kv-budget 12");
    EXPECT_EQ(r.exit_code, 0) << chat << ": " << r.err;
    EXPECT_NE(r.err.find("nothing to cut"), std::string::npos) << chat << ": " << r.err;
  }
}

}  // namespace
}  // namespace kvsieve
