// llama.cpp's and Meta's test vectors from ../shared/data/tokenizers, run from
// every source format the data comes in.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

#include "io/gguf.h"
#include "test_tokenizer_cases.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve::testing {
namespace {

const std::string kSpm = "tokenizers/llama-spm/";
const std::string kGpt2 = "tokenizers/gpt-2/";
const std::string kLlama3 = "tokenizers/llama3/";

const Tokenizer& spm_from_gguf() {
  return cached_tokenizer("spm-gguf", [] {
    return vocab_from_gguf(GgufFile(shared_data() + "/" + kSpm + "ggml-vocab-llama-spm.gguf"));
  });
}
const Tokenizer& spm_from_model() {
  return cached_tokenizer("spm-model", [] {
    return vocab_from_sentencepiece(shared_data() + "/" + kSpm + "tokenizer.model");
  });
}
const Tokenizer& gpt2_from_gguf() {
  return cached_tokenizer("gpt2-gguf", [] {
    return vocab_from_gguf(GgufFile(shared_data() + "/" + kGpt2 + "ggml-vocab-gpt-2.gguf"));
  });
}
const Tokenizer& llama3_from_tiktoken() {
  return cached_tokenizer("llama3-tiktoken", [] {
    return vocab_from_tiktoken(shared_data() + "/" + kLlama3 + "tokenizer.model");
  });
}

// Runs every case; returns the number that matched. Round trip: byte-level
// BPE always gives the text back; SentencePiece too unless <unk> appears.
int run_cases(const Tokenizer& tok, const std::string& base, int* n_cases) {
  const auto cases = read_vocab_cases(shared_data() + "/" + base);
  int ok = 0;
  for (const VocabCase& c : cases) {
    const std::vector<int32_t> got = tok.encode(c.text, /*add_bos=*/false, false, /*parse_special=*/false);
    EXPECT_EQ(ids_str(got), ids_str(c.ids)) << "text: '" << c.text << "'";
    ok += got == c.ids;
    const bool has_unk = std::find(got.begin(), got.end(), tok.spec().unk) != got.end();
    if (!has_unk) {
      EXPECT_EQ(tok.decode(got), c.text) << "round trip of '" << c.text << "'";
    }
  }
  *n_cases = int(cases.size());
  std::printf("%s: %d of %zu cases match\n", base.c_str(), ok, cases.size());
  return ok;
}

TEST(TokenizerVectors, LlamaSpmFromGguf) {
  KVSIEVE_REQUIRE_SHARED(kSpm + "ggml-vocab-llama-spm.gguf");
  int n = 0;
  const int ok = run_cases(spm_from_gguf(), kSpm + "ggml-vocab-llama-spm.gguf", &n);
  EXPECT_EQ(ok, n);
  EXPECT_GE(n, 30);
  RecordProperty("cases", n);
}

TEST(TokenizerVectors, LlamaSpmFromSentencePieceModel) {
  KVSIEVE_REQUIRE_SHARED(kSpm + "tokenizer.model");
  int n = 0;
  const int ok = run_cases(spm_from_model(), kSpm + "ggml-vocab-llama-spm.gguf", &n);
  EXPECT_EQ(ok, n);
  EXPECT_GE(n, 30);
}

TEST(TokenizerVectors, Gpt2FromGguf) {
  KVSIEVE_REQUIRE_SHARED(kGpt2 + "ggml-vocab-gpt-2.gguf");
  int n = 0;
  const int ok = run_cases(gpt2_from_gguf(), kGpt2 + "ggml-vocab-gpt-2.gguf", &n);
  EXPECT_EQ(ok, n);
  EXPECT_GE(n, 30);
}

TEST(TokenizerVectors, Llama3FromTiktoken) {
  KVSIEVE_REQUIRE_SHARED(kLlama3 + "tokenizer.model");
  int n = 0;
  const int ok = run_cases(llama3_from_tiktoken(), kLlama3 + "ggml-vocab-llama-bpe.gguf", &n);
  EXPECT_EQ(ok, n);
  EXPECT_GE(n, 30);
}

// llama2.c's test.c expectations: encode with BOS and the dummy prefix.
void run_llama2c_golden(const Tokenizer& tok) {
  const auto j = nlohmann::json::parse(read_file(shared_data() + "/" + kSpm + "golden_encodings_llama2c_test.json"));
  ASSERT_GE(j["cases"].size(), 5u);
  for (const auto& c : j["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const std::vector<int32_t> want = c["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> got = tok.encode(text, /*add_bos=*/true, false);
    EXPECT_EQ(ids_str(got), ids_str(want)) << "text: '" << text << "'";
    EXPECT_EQ(tok.decode(got), text);
  }
}

TEST(TokenizerVectors, Llama2cGoldenFromGguf) {
  KVSIEVE_REQUIRE_SHARED(kSpm + "golden_encodings_llama2c_test.json");
  run_llama2c_golden(spm_from_gguf());
}

TEST(TokenizerVectors, Llama2cGoldenFromSentencePieceModel) {
  KVSIEVE_REQUIRE_SHARED(kSpm + "golden_encodings_llama2c_test.json");
  KVSIEVE_REQUIRE_SHARED(kSpm + "tokenizer.model");
  run_llama2c_golden(spm_from_model());
}

TEST(TokenizerVectors, Llama3GoldenWithBosEosAndSpecials) {
  KVSIEVE_REQUIRE_SHARED(kLlama3 + "golden_encodings.json");
  KVSIEVE_REQUIRE_SHARED(kLlama3 + "tokenizer.model");
  const Tokenizer& tok = llama3_from_tiktoken();
  const auto j = nlohmann::json::parse(read_file(shared_data() + "/" + kLlama3 + "golden_encodings.json"));
  for (const auto& c : j["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const auto want = c["ids"].get<std::vector<int32_t>>();
    const auto got = tok.encode(text, c["bos"].get<bool>(), c["eos"].get<bool>());
    EXPECT_EQ(ids_str(got), ids_str(want)) << text;
  }
  for (const auto& [name, id] : j["special"].items()) {
    EXPECT_EQ(tok.find_token(name), id.get<int32_t>()) << name;
    // Written in the text, a special token is one id only when asked for.
    EXPECT_EQ(tok.encode(name, false, false, true), std::vector<int32_t>{id.get<int32_t>()});
    EXPECT_GT(tok.encode(name, false, false, false).size(), 1u) << name;
    EXPECT_EQ(tok.token_to_piece(id.get<int32_t>()), "") << "control tokens decode to nothing";
  }
  EXPECT_EQ(tok.bos(), j["special"]["<|begin_of_text|>"].get<int32_t>());
  EXPECT_EQ(tok.eos(), j["special"]["<|end_of_text|>"].get<int32_t>());
  EXPECT_TRUE(tok.is_eog(j["special"]["<|eot_id|>"].get<int32_t>()));
  EXPECT_TRUE(tok.is_eog(j["special"]["<|end_of_text|>"].get<int32_t>()));
  EXPECT_FALSE(tok.is_eog(j["special"]["<|start_header_id|>"].get<int32_t>()));
  EXPECT_EQ(tok.n_vocab(), 128256);
}

}  // namespace
}  // namespace kvsieve::testing
