// Broken tokenizer files and text: every one must give an Error with a clear
// message, never a crash or another kind of exception.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "io/gguf.h"
#include "test_tokenizer_cases.h"
#include "test_vocab_util.h"
#include "tokenizer/unicode/byte_level.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve::testing {
namespace {

const std::string kSp = "\xE2\x96\x81";

// ---------------------------------------------------------------- tokenizer.json

void expect_json_error(const std::string& doc, const std::string& part) {
  TempDir dir;
  write_file(dir.file("tokenizer.json"), doc);
  expect_error([&] { vocab_from_tokenizer_json(dir.file("tokenizer.json")); }, part);
  // Through format sniffing the message may differ, but it names the file.
  expect_error([&] { Tokenizer::create(load_vocab_file(dir.file("tokenizer.json"))); }, "tokenizer.json");
}

std::string byte_level_doc(const std::string& vocab_extra, const std::string& merges,
                           const std::string& added = "[]") {
  std::string v = "{";
  for (int b = 0; b < 256; ++b)
    v += nlohmann::json(std::string(byte_level::encode_byte(uint8_t(b)))).dump() + ":" + std::to_string(b) + ",";
  v += vocab_extra + "}";
  return R"({"added_tokens":)" + added +
         R"(,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false},"model":{"type":"BPE","vocab":)" + v +
         R"(,"merges":)" + merges + "}}";
}

TEST(VocabBadInput, BrokenTokenizerJson) {
  expect_json_error("{ this is not json", "not valid JSON");
  expect_json_error("", "not valid JSON");
  expect_json_error("[1, 2, 3]", "JSON object");
  expect_json_error(R"({"version": "1.0"})", "no 'model'");
  expect_json_error(R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})", "WordPiece");
  expect_json_error(R"({"model": {"type": "BPE", "vocab": ["a", "b"]}})", "model.vocab");
  // Ids out of range, not integers, duplicated, with gaps.
  expect_json_error(byte_level_doc(R"("ab": -1)", R"(["a b"])"), "id -1");
  expect_json_error(byte_level_doc(R"("ab": 99999999999)", R"(["a b"])"), "out of range");
  expect_json_error(byte_level_doc(R"("ab": "x")", R"(["a b"])"), "non-integer id");
  expect_json_error(byte_level_doc(R"("ab": 300)", R"(["a b"])"), "no token has id 256");
  expect_json_error(byte_level_doc(R"("ab": 5)", R"(["a b"])"), "id 5 is given to both");
  expect_json_error(byte_level_doc(R"("ab": 256)", R"(["a b"])",
                                   R"([{"id": 1000000, "content": "<x>", "special": true}])"),
                    "no token has id 257");
  expect_json_error(byte_level_doc(R"("ab": 256)", R"(["a b"])", R"([{"id": 257}])"), "lacks");
  // Merges that do not make sense.
  expect_json_error(byte_level_doc(R"("ab": 256)", R"(["a b", "x yz"])"), "merge 1 'x yz'");
  expect_json_error(byte_level_doc(R"("ab": 256)", R"(["ab"])"), "merge 0 'ab'");
  expect_json_error(byte_level_doc(R"("ab": 256)", R"([["a", "b", "c"]])"), "merge 0");
  expect_json_error(byte_level_doc(R"("ab": 256)", R"("a b")"), "merges should be an array");
  // A field of the wrong JSON type deep inside.
  expect_json_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "byte_fallback": "yes"}})",
                    "tokenizer.json");
  // Neither byte-level nor SentencePiece-style.
  expect_json_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})", "cannot tell");
  // A bad tokenizer_config.json beside a good tokenizer.json.
  TempDir dir;
  write_file(dir.file("tokenizer.json"), byte_level_doc(R"("ab": 256)", R"(["a b"])"));
  EXPECT_NO_THROW(vocab_from_tokenizer_json(dir.file("tokenizer.json")));
  write_file(dir.file("tokenizer_config.json"), "{ nope");
  expect_error([&] { vocab_from_tokenizer_json(dir.file("tokenizer.json")); }, "tokenizer_config.json");
}

TEST(VocabBadInput, MissingFiles) {
  TempDir dir;
  expect_error([&] { vocab_from_tokenizer_json(dir.file("nope.json")); }, "nope.json");
  expect_error([&] { vocab_from_sentencepiece(dir.file("nope.model")); }, "nope.model");
  expect_error([&] { vocab_from_tiktoken(dir.file("nope.model")); }, "nope.model");
  expect_error([&] { vocab_from_llama2c(dir.file("nope.bin"), 32); }, "nope.bin");
  expect_error([&] { load_vocab_file(dir.file("nope")); }, "nope");
  expect_error([&] { load_vocab_file(dir.path()); }, "no tokenizer.json");
  write_file(dir.file("empty"), "");
  expect_error([&] { load_vocab_file(dir.file("empty")); }, "empty");
  write_file(dir.file("junk.txt"), "hello, this is just some text\nwithout any format\n");
  expect_error([&] { load_vocab_file(dir.file("junk.txt")); }, "unknown tokenizer format");
}

// ---------------------------------------------------------------- SentencePiece protobuf

// Loads a (possibly broken) model; anything but success or Error fails the test.
// When it loads, the tokenizer must work too.
bool try_sentencepiece(const std::string& path) {
  try {
    auto tok = Tokenizer::create(vocab_from_sentencepiece(path));
    tok->decode(tok->encode("Hello w\xC3\xB6rld \xF0\x9F\xA6\x99", true));
    return true;
  } catch (const Error&) {
    return false;
  }
}

TEST(VocabBadInput, TruncatedAndCorruptSentencePieceModel) {
  KVSIEVE_REQUIRE_SHARED("tokenizers/llama-spm/tokenizer.model");
  const std::string good = read_file(shared_data() + "/tokenizers/llama-spm/tokenizer.model");
  TempDir dir;
  const std::string path = dir.file("tokenizer.model");
  // The trainer spec comes after the pieces, so every truncation is missing something.
  std::vector<size_t> cuts = {1, 2, 3, 5, 8, 13, 100, 1000, good.size() / 2, good.size() - 1};
  for (size_t k = 1; k < 16; ++k) cuts.push_back(good.size() - k * 7);
  for (size_t cut : cuts) {
    write_file(path, good.substr(0, cut));
    EXPECT_FALSE(try_sentencepiece(path)) << "truncated at " << cut;
  }
  write_file(path, good.substr(0, 40));
  expect_error([&] { vocab_from_sentencepiece(path); }, "truncated");
  // Random byte flips: must load or fail cleanly.
  std::mt19937 rng(42);
  int loaded = 0;
  for (int trial = 0; trial < 40; ++trial) {
    std::string bad = good;
    for (int k = 0; k < 4; ++k) bad[rng() % bad.size()] = char(rng());
    write_file(path, bad);
    loaded += try_sentencepiece(path);
  }
  std::printf("corrupt tokenizer.model: %d of 40 still loaded\n", loaded);
  write_file(path, good);
  EXPECT_TRUE(try_sentencepiece(path));
}

TEST(VocabBadInput, SentencePieceModelsWeCannotUse) {
  TempDir dir;
  const std::string path = dir.file("t.model");
  auto base = [] {
    ProtoWriter w;
    w.piece("<unk>", 0, 2).piece("<s>", 0, 3).piece("</s>", 0, 3).piece("a", -1, 1);
    return w;
  };
  write_file(path, base().trainer(1, false, 0, 1, 2, -1).bytes());
  expect_error([&] { vocab_from_sentencepiece(path); }, "UNIGRAM is not supported");
  write_file(path, base().trainer(2, false, 0, 7, 2, -1).bytes());
  expect_error([&] { vocab_from_sentencepiece(path); }, "bos id 7 is out of range");
  write_file(path, base().trainer(2, true, 0, 1, 2, -1).bytes());
  expect_error([&] { vocab_from_sentencepiece(path); }, "byte_fallback");
  write_file(path, base().piece("b", 0, 9).trainer(2, false, 0, 1, 2, -1).bytes());
  expect_error([&] { vocab_from_sentencepiece(path); }, "type 9");
  write_file(path, base().piece("", 0, 1).trainer(2, false, 0, 1, 2, -1).bytes());
  expect_error([&] { vocab_from_sentencepiece(path); }, "piece 4 is empty");
  write_file(path, base().piece("\xC0\xAF", 0, 1).trainer(2, false, 0, 1, 2, -1).bytes());
  expect_error([&] { vocab_from_sentencepiece(path); }, "not valid UTF-8");
  write_file(path, base().bytes());
  expect_error([&] { vocab_from_sentencepiece(path); }, "no trainer_spec");
  ProtoWriter wire;
  wire.raw("\x0B");  // field 1 with wire type 3 (groups): not supported
  write_file(path, wire.bytes());
  expect_error([&] { vocab_from_sentencepiece(path); }, "wire type");
  std::string long_varint = "\x48";  // field 9 (skipped), varint
  long_varint += std::string(11, '\xFF');
  write_file(path, long_varint);
  expect_error([&] { vocab_from_sentencepiece(path); }, "varint");
  write_file(path, "");
  expect_error([&] { vocab_from_sentencepiece(path); }, "empty");
}

// ---------------------------------------------------------------- llama2.c tokenizer.bin

TEST(VocabBadInput, TruncatedAndCorruptLlama2cTokenizer) {
  KVSIEVE_REQUIRE_SHARED("stories260K/tok512.bin");
  const std::string good = read_file(shared_data() + "/stories260K/tok512.bin");
  TempDir dir;
  const std::string path = dir.file("tokenizer.bin");
  for (size_t cut : {size_t(0), size_t(3), size_t(4), size_t(7), size_t(11), good.size() / 3,
                     good.size() - 1}) {
    write_file(path, good.substr(0, cut));
    expect_error([&] { vocab_from_llama2c(path, 512); },
                 cut < 4 ? "too small" : cut + 1 == good.size() ? "claims 3 bytes" : "cannot fit");
  }
  write_file(path, good);
  expect_error([&] { vocab_from_llama2c(path, 513); }, "truncated");
  expect_error([&] { vocab_from_llama2c(path, 100000); }, "cannot fit");
  // A negative length, an absurd length, a zero max_token_length.
  std::string bad = good;
  const int32_t neg = -5, huge = 1 << 30, zero = 0;
  std::memcpy(&bad[8], &neg, 4);
  write_file(path, bad);
  expect_error([&] { vocab_from_llama2c(path, 512); }, "claims -5 bytes");
  std::memcpy(&bad[8], &huge, 4);
  write_file(path, bad);
  expect_error([&] { vocab_from_llama2c(path, 512); }, "claims");
  bad = good;
  std::memcpy(&bad[0], &zero, 4);
  write_file(path, bad);
  expect_error([&] { vocab_from_llama2c(path, 512); }, "max_token_length");
  // Invalid UTF-8 inside a token.
  bad = good;
  const size_t at = bad.find("<unk>");
  ASSERT_NE(at, std::string::npos);
  bad[at + 1] = '\xFF';
  write_file(path, bad);
  expect_error([&] { vocab_from_llama2c(path, 512); }, "not valid UTF-8");
}

// ---------------------------------------------------------------- tiktoken

TEST(VocabBadInput, BrokenTiktoken) {
  TempDir dir;
  const std::string path = dir.file("tokenizer.model");
  std::string all_bytes;  // a valid file: the 256 single bytes
  auto b64 = [](const std::string& s) {
    static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string o;
    for (size_t i = 0; i < s.size(); i += 3) {
      const uint32_t n = (uint32_t(uint8_t(s[i])) << 16) | (i + 1 < s.size() ? uint32_t(uint8_t(s[i + 1])) << 8 : 0) |
                         (i + 2 < s.size() ? uint8_t(s[i + 2]) : 0);
      o += t[n >> 18];
      o += t[(n >> 12) & 63];
      o += i + 1 < s.size() ? t[(n >> 6) & 63] : '=';
      o += i + 2 < s.size() ? t[n & 63] : '=';
    }
    return o;
  };
  for (int b = 0; b < 256; ++b) all_bytes += b64(std::string(1, char(b))) + " " + std::to_string(b) + "\n";
  write_file(path, all_bytes + b64("ab") + " 256\n");
  const VocabSpec ok = vocab_from_tiktoken(path);
  EXPECT_EQ(ok.tokens.size(), 257u + 256u);
  EXPECT_EQ(ok.merges, std::vector<std::string>{"a b"});
  EXPECT_EQ(Tokenizer::create(ok)->encode("ab", false), std::vector<int32_t>{256});

  write_file(path, all_bytes + "not*base64 256\n");
  expect_error([&] { vocab_from_tiktoken(path); }, "line 257");
  write_file(path, all_bytes + b64("ab") + " 25x\n");
  expect_error([&] { vocab_from_tiktoken(path); }, "bad rank");
  write_file(path, all_bytes + b64("ab") + " 258\n");
  expect_error([&] { vocab_from_tiktoken(path); }, "rank 256 is missing");
  write_file(path, all_bytes + b64("ab") + " 255\n");
  expect_error([&] { vocab_from_tiktoken(path); }, "rank 255 appears twice");
  write_file(path, all_bytes + b64("a") + " 256\n");
  expect_error([&] { vocab_from_tiktoken(path); }, "listed twice");
  write_file(path, all_bytes.substr(all_bytes.find('\n') + 1));
  expect_error([&] { vocab_from_tiktoken(path); }, "rank 0 is missing");
  write_file(path, all_bytes + b64("ab") + "\n");
  expect_error([&] { vocab_from_tiktoken(path); }, "expected 'base64 rank'");
}

// ---------------------------------------------------------------- GGUF metadata

TEST(VocabBadInput, InconsistentGgufVocabulary) {
  TempDir dir;
  const std::string path = dir.file("v.gguf");
  auto write = [&](auto edit) {
    GgufWriter w;
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
    w.set_f32s("tokenizer.ggml.scores", {0, 0, 0, -1});
    w.set_i32s("tokenizer.ggml.token_type", {2, 3, 3, 1});
    edit(w);
    w.write(path);
  };
  write([](GgufWriter&) {});
  EXPECT_EQ(vocab_from_gguf(GgufFile(path)).tokens.size(), 4u);
  write([](GgufWriter& w) { w.set_u32("tokenizer.ggml.bos_token_id", 4); });
  expect_error([&] { vocab_from_gguf(GgufFile(path)); }, "bos_token_id = 4 is out of range");
  write([](GgufWriter& w) { w.set_f32s("tokenizer.ggml.scores", {0, 0}); });
  expect_error([&] { vocab_from_gguf(GgufFile(path)); }, "2 entries for 4 tokens");
  write([](GgufWriter& w) { w.set_i32s("tokenizer.ggml.token_type", {2, 3, 3, 8}); });
  expect_error([&] { vocab_from_gguf(GgufFile(path)); }, "token_type[3] = 8");
  write([](GgufWriter& w) { w.set_string("tokenizer.ggml.model", "bert"); });
  expect_error([&] { vocab_from_gguf(GgufFile(path)); }, "'bert' is not supported");
  write([](GgufWriter& w) { w.set_string("tokenizer.ggml.model", "gpt2"); });
  expect_error([&] { vocab_from_gguf(GgufFile(path)); }, "without tokenizer.ggml.merges");
  write([](GgufWriter& w) { w.set_u32("tokenizer.ggml.tokens", 3); });
  expect_error([&] { vocab_from_gguf(GgufFile(path)); }, "array of strings");
  write([](GgufWriter& w) { w.set_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xED\xA0\x80"}); });
  expect_error([&] { vocab_from_gguf(GgufFile(path)); }, "token 3 is not valid UTF-8");
}

TEST(VocabBadInput, VocabSpecValidate) {
  VocabSpec v;
  v.tokens = {"<unk>", "<s>", "</s>", "a"};
  v.bos = 1, v.eos = 2, v.unk = 0;
  EXPECT_NO_THROW(v.validate());
  auto bad = [&](auto edit, const std::string& part) {
    VocabSpec b = v;
    edit(b);
    expect_error([&] { b.validate(); }, part);
    expect_error([&] { Tokenizer::create(b); }, part);
  };
  bad([](VocabSpec& b) { b.tokens.clear(); }, "no tokens");
  bad([](VocabSpec& b) { b.model = "unigram"; }, "'unigram' is not supported");
  bad([](VocabSpec& b) { b.eos = 4; }, "EOS id 4 is out of range");
  bad([](VocabSpec& b) { b.pad = -2; }, "padding id -2");
  bad([](VocabSpec& b) { b.scores = {1, 2}; }, "2 scores for 4 tokens");
  bad([](VocabSpec& b) { b.types = {TokenType::kNormal}; }, "1 token types for 4 tokens");
  bad([](VocabSpec& b) { b.types.assign(4, TokenType(7)); }, "type 7");
  bad([](VocabSpec& b) { b.bos = -1; }, "add_bos is set but there is no BOS");
  bad([](VocabSpec& b) { b.tokens[3] = "\xC3"; }, "token 3 is not valid UTF-8");
  bad([](VocabSpec& b) { b.scores.assign(4, std::nanf("")); }, "NaN");
  bad([](VocabSpec& b) { b.prefix_scheme = "sometimes"; }, "prefix scheme");
  bad([](VocabSpec& b) { b.model = "gpt2"; b.pre = "bloom"; }, "pre-tokenizer 'bloom'");
  bad([](VocabSpec& b) { b.model = "gpt2"; }, "without merges");
  bad([](VocabSpec& b) { b.model = "gpt2"; b.merges = {"a  a"}; }, "one space");
  bad([](VocabSpec& b) { b.model = "gpt2"; b.merges = {"a a"}; }, "'aa' is not a token");
}

// ---------------------------------------------------------------- text

TEST(VocabBadInput, InvalidUtf8TextIsRejectedByEveryTokenizer) {
  KVSIEVE_REQUIRE_SHARED("tokenizers/gpt-2/ggml-vocab-gpt-2.gguf");
  auto spm = Tokenizer::create(vocab_from_gguf(GgufFile(shared_data() + "/tokenizers/llama-spm/ggml-vocab-llama-spm.gguf")));
  auto bpe = Tokenizer::create(vocab_from_gguf(GgufFile(shared_data() + "/tokenizers/gpt-2/ggml-vocab-gpt-2.gguf")));
  const std::vector<std::pair<std::string, size_t>> bad = {
      {"Hello \xC0\x80 world", 6},         // overlong NUL
      {"ok \xED\xB2\x80", 3},              // lone surrogate
      {"cut \xE2\x82", 4},                 // truncated at the end
      {"\x80 stray", 0},                   // stray continuation byte
      {"big \xF4\x90\x80\x80", 4},         // above U+10FFFF
      {"<s>\xFE", 3},                      // after a special token
  };
  for (const Tokenizer* tok : {spm.get(), bpe.get()})
    for (const auto& [text, offset] : bad)
      expect_error([&] { tok->encode(text, true); }, "byte offset " + std::to_string(offset));
}

}  // namespace
}  // namespace kvsieve::testing
