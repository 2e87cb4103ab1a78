// tokenizer.json files written by Hugging Face transformers/tokenizers (see
// tests/fixtures/tokenizers/README.md) and the ids those libraries produced for
// llama.cpp's test inputs: our loader + tokenizer must give the same ids.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_tokenizer_cases.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve::testing {
namespace {

namespace fs = std::filesystem;

class TokenizerJsonFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerJsonFixture, MatchesHuggingFaceIds) {
  const fs::path dir = fs::path(fixtures()) / "tokenizers" / GetParam();
  if (!fs::exists(dir / "tokenizer.json") || !fs::exists(dir / "expected_ids.json"))
    GTEST_SKIP() << "fixture not present: " << dir.string();
  const Tokenizer& tok = cached_tokenizer("json:" + GetParam(), [&] {
    return vocab_from_tokenizer_json((dir / "tokenizer.json").string());
  });
  const auto cases = nlohmann::json::parse(read_file((dir / "expected_ids.json").string()));
  ASSERT_TRUE(cases.is_array());
  ASSERT_GT(cases.size(), 0u);
  int ok = 0;
  for (const auto& c : cases) {
    const std::string text = c["text"].get<std::string>();
    const auto want = c["ids"].get<std::vector<int32_t>>();
    const auto got = tok.encode(text, false, false, false);
    EXPECT_EQ(ids_str(got), ids_str(want)) << GetParam() << " text: '" << text << "'";
    ok += got == want;
    // Hugging Face gives the text back except where Metaspace skipped the
    // dummy prefix of a text starting with a space (its decoder strips one).
    const bool hf_round_trips = tok.spec().prefix_scheme.empty() || text.empty() || text[0] != ' ';
    if (hf_round_trips) {
      EXPECT_EQ(tok.decode(got), text) << GetParam() << " round trip";
    }
  }
  std::printf("tokenizer.json %s: %d of %zu cases match\n", GetParam().c_str(), ok, cases.size());
}

// The same vocabulary read from tokenizer.json and from the file it was
// converted from must agree on tokens, special ids and flags.
void expect_same_vocab(const VocabSpec& a, const VocabSpec& b, bool same_merges) {
  EXPECT_EQ(a.model, b.model);
  ASSERT_EQ(a.tokens.size(), b.tokens.size());
  size_t diff = 0;
  for (size_t i = 0; i < a.tokens.size(); ++i) diff += a.tokens[i] != b.tokens[i];
  EXPECT_EQ(diff, 0u) << "tokens differ";
  EXPECT_EQ(a.bos, b.bos);
  EXPECT_EQ(a.eos, b.eos);
  EXPECT_EQ(a.add_bos, b.add_bos);
  EXPECT_EQ(a.add_eos, b.add_eos);
  EXPECT_EQ(a.add_space_prefix, b.add_space_prefix);
  if (same_merges) {
    EXPECT_EQ(a.merges, b.merges);
  }
}

TEST(TokenizerJsonFixtureVocab, AgreesWithOtherSources) {
  const fs::path root = fs::path(fixtures()) / "tokenizers";
  if (!fs::exists(root)) GTEST_SKIP() << "fixtures not present: " << root.string();
  int compared = 0;
  if (fs::exists(root / "gpt-2/tokenizer.json") &&
      fs::exists(shared_data() + "/tokenizers/gpt-2/ggml-vocab-gpt-2.gguf")) {
    const VocabSpec j = vocab_from_tokenizer_json((root / "gpt-2/tokenizer.json").string());
    const VocabSpec g = load_vocab_file(shared_data() + "/tokenizers/gpt-2/ggml-vocab-gpt-2.gguf");
    expect_same_vocab(j, g, /*same_merges=*/true);
    EXPECT_EQ(j.pre, "gpt2");
    ++compared;
  }
  if (fs::exists(root / "llama-spm/tokenizer.json") &&
      fs::exists(shared_data() + "/tokenizers/llama-spm/tokenizer.model")) {
    const VocabSpec j = vocab_from_tokenizer_json((root / "llama-spm/tokenizer.json").string());
    const VocabSpec s = load_vocab_file(shared_data() + "/tokenizers/llama-spm/tokenizer.model");
    expect_same_vocab(j, s, /*same_merges=*/true);
    EXPECT_EQ(j.types, s.types);
    EXPECT_EQ(j.unk, s.unk);
    ++compared;
  }
  if (fs::exists(root / "llama3/tokenizer.json") &&
      fs::exists(shared_data() + "/tokenizers/llama3/tokenizer.model")) {
    const VocabSpec j = vocab_from_tokenizer_json((root / "llama3/tokenizer.json").string());
    const VocabSpec t = load_vocab_file(shared_data() + "/tokenizers/llama3/tokenizer.model");
    // Merges derived from tiktoken ranks are the ones Hugging Face's converter writes.
    expect_same_vocab(j, t, /*same_merges=*/true);
    EXPECT_EQ(j.pre, "llama3");
    EXPECT_EQ(j.types, t.types);
    EXPECT_EQ(j.eot, t.eot);
    ++compared;
  }
  if (compared == 0) GTEST_SKIP() << "no fixture with a matching shared source";
}

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  const fs::path root = fs::path(fixtures()) / "tokenizers";
  std::error_code ec;
  if (fs::is_directory(root, ec))
    for (const auto& e : fs::directory_iterator(root, ec))
      if (e.is_directory() && fs::exists(e.path() / "tokenizer.json")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  if (names.empty()) names.push_back("missing");  // reported as a skip
  return names;
}

INSTANTIATE_TEST_SUITE_P(HF, TokenizerJsonFixture, ::testing::ValuesIn(fixture_names()),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s) if (!std::isalnum(uint8_t(c))) c = '_';
                           return s;
                         });

}  // namespace
}  // namespace kvsieve::testing
