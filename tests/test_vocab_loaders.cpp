// Loaders: GGUF write/read round trip, tokenizer.json documents written here,
// a SentencePiece model built here, llama2.c's tok512.bin, format sniffing.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "test_tokenizer_cases.h"
#include "test_vocab_util.h"
#include "tokenizer/unicode/byte_level.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve::testing {
namespace {

const std::string kSp = "\xE2\x96\x81";

void expect_equal_specs(const VocabSpec& a, const VocabSpec& b) {
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.pre, b.pre);
  EXPECT_TRUE(a.tokens == b.tokens);
  EXPECT_TRUE(a.scores == b.scores);
  EXPECT_TRUE(a.types == b.types);
  EXPECT_TRUE(a.merges == b.merges);
  EXPECT_EQ(a.bos, b.bos);
  EXPECT_EQ(a.eos, b.eos);
  EXPECT_EQ(a.unk, b.unk);
  EXPECT_EQ(a.pad, b.pad);
  EXPECT_EQ(a.eot, b.eot);
  EXPECT_EQ(a.add_bos, b.add_bos);
  EXPECT_EQ(a.add_eos, b.add_eos);
  EXPECT_EQ(a.add_space_prefix, b.add_space_prefix);
  EXPECT_EQ(a.prefix_scheme, b.prefix_scheme);
  EXPECT_EQ(a.chat_template, b.chat_template);
}

VocabSpec gguf_round_trip(const VocabSpec& v, const TempDir& dir) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  vocab_to_gguf(v, w);
  const std::string path = dir.file("vocab.gguf");
  w.write(path);
  return vocab_from_gguf(GgufFile(path));
}

TEST(VocabGguf, WritesAndReadsBackEveryField) {
  KVSIEVE_REQUIRE_SHARED("tokenizers/llama3/tokenizer.model");
  TempDir dir;
  // From tiktoken (byte-level, merges, eot/pad) and from SentencePiece (scores, byte tokens).
  VocabSpec l3 = vocab_from_tiktoken(shared_data() + "/tokenizers/llama3/tokenizer.model");
  l3.chat_template = "{{ '<|start_header_id|>' }}";
  const VocabSpec back3 = gguf_round_trip(l3, dir);
  expect_equal_specs(l3, back3);
  VocabSpec spm = vocab_from_sentencepiece(shared_data() + "/tokenizers/llama-spm/tokenizer.model");
  spm.prefix_scheme = "first";
  spm.bos = -1;  // "none" must survive although BOS has a default in GGUF
  spm.add_bos = false;
  const VocabSpec backs = gguf_round_trip(spm, dir);
  expect_equal_specs(spm, backs);
  // And the tokenizer built from the copy gives the same ids.
  const std::string text = "Hello world, F\xC3\xBChrer \xF0\x9F\xA6\x99!\n  x";
  EXPECT_EQ(Tokenizer::create(l3)->encode(text, true), Tokenizer::create(back3)->encode(text, true));
}

TEST(VocabGguf, FileWithoutVocabularyIsAnError) {
  TempDir dir;
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.write(dir.file("novocab.gguf"));
  GgufFile f(dir.file("novocab.gguf"));
  EXPECT_FALSE(gguf_has_vocab(f));
  expect_error([&] { vocab_from_gguf(f); }, "tokenizer.ggml.tokens");
}

// ---------------------------------------------------------------- tokenizer.json by hand

// A byte-level BPE document: the 256 byte tokens, "h e" -> "he", "he llo"...
std::string tiny_byte_level_json(const std::string& pre_tokenizer, const std::string& extra = "") {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[std::string(byte_level::encode_byte(uint8_t(b)))] = b;
  vocab["he"] = 256;
  vocab["ll"] = 257;
  vocab["llo"] = 258;
  vocab["hello"] = 259;
  vocab["\xC4\xA0hello"] = 260;  // "Ġhello"
  nlohmann::json doc = {
      {"version", "1.0"},
      {"added_tokens", nlohmann::json::array({{{"id", 261}, {"content", "<|endoftext|>"}, {"special", true}},
                                              {{"id", 262}, {"content", "[tag]"}, {"special", false}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer", nlohmann::json::parse(pre_tokenizer)},
      {"model", {{"type", "BPE"}, {"vocab", vocab},
                 {"merges", nlohmann::json::array({"h e", "l l", "ll o", "he llo", "\xC4\xA0 hello"})}}}};
  std::string s = doc.dump();
  if (!extra.empty()) s = extra;
  return s;
}

TEST(VocabTokenizerJson, HandWrittenByteLevelBpe) {
  TempDir dir;
  write_file(dir.file("tokenizer.json"),
             tiny_byte_level_json(R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":true})"));
  const VocabSpec v = vocab_from_tokenizer_json(dir.file("tokenizer.json"));
  EXPECT_EQ(v.model, "gpt2");
  EXPECT_EQ(v.pre, "gpt2");
  EXPECT_EQ(v.tokens.size(), 263u);
  EXPECT_EQ(v.types[261], TokenType::kControl);
  EXPECT_EQ(v.types[262], TokenType::kUserDefined);
  EXPECT_EQ(v.bos, 261);  // GPT-2 convention without tokenizer_config.json
  EXPECT_FALSE(v.add_bos);
  EXPECT_FALSE(v.add_space_prefix);
  auto tok = Tokenizer::create(v);
  EXPECT_EQ(tok->encode("hello hello[tag]<|endoftext|>", false, false, true),
            (std::vector<int32_t>{259, 260, 262, 261}));
  EXPECT_EQ(tok->encode("hellx", false), (std::vector<int32_t>{256, 257, tok->find_token("x")}));
  // tokenizer_config.json beside it sets BOS and add_bos and the chat template.
  write_file(dir.file("tokenizer_config.json"),
             R"({"bos_token": {"content": "<|endoftext|>"}, "eos_token": "<|endoftext|>",
                 "add_bos_token": true, "chat_template": "{% for m in messages %}<|im_start|>{% endfor %}"})");
  const VocabSpec c = vocab_from_tokenizer_json(dir.file("tokenizer.json"));
  EXPECT_TRUE(c.add_bos);
  EXPECT_EQ(c.bos, 261);
  EXPECT_EQ(c.chat_template.substr(0, 6), "{% for");
}

TEST(VocabTokenizerJson, SplitRegexSelectsThePreTokenizer) {
  TempDir dir;
  const std::string llama3 =
      R"({"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]})";
  write_file(dir.file("tokenizer.json"), tiny_byte_level_json(llama3));
  EXPECT_EQ(vocab_from_tokenizer_json(dir.file("tokenizer.json")).pre, "llama3");
  const std::string unknown =
      R"({"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\w+"},"behavior":"Isolated"},{"type":"ByteLevel","use_regex":false}]})";
  write_file(dir.file("tokenizer.json"), tiny_byte_level_json(unknown));
  expect_error([&] { vocab_from_tokenizer_json(dir.file("tokenizer.json")); }, "Split pattern");
}

TEST(VocabTokenizerJson, HandWrittenSentencePieceStyle) {
  TempDir dir;
  nlohmann::json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = 3 + b;
  int next = 259;
  for (const std::string& t : {kSp, std::string("a"), std::string("b"), kSp + "a", std::string("ab"), kSp + "ab"})
    vocab[t] = next++;
  nlohmann::json doc = {
      {"added_tokens", nlohmann::json::array({{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                                              {{"id", 1}, {"content", "<s>"}, {"special", true}},
                                              {{"id", 2}, {"content", "</s>"}, {"special", true}}})},
      {"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "Prepend"}, {"prepend", kSp}},
                                                            {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSp}}}}}},
      {"pre_tokenizer", nullptr},
      {"post_processor", {{"type", "TemplateProcessing"},
                          {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}}},
      // "a b" outranks "▁ a", so "▁ab" is ▁ + ab -> ▁ab only through "▁ ab".
      {"model", {{"type", "BPE"}, {"byte_fallback", true}, {"unk_token", "<unk>"}, {"vocab", vocab},
                 {"merges", {"a b", kSp + " a", kSp + " ab"}}}}};
  write_file(dir.file("tokenizer.json"), doc.dump());
  const VocabSpec v = vocab_from_tokenizer_json(dir.file("tokenizer.json"));
  EXPECT_EQ(v.model, "llama");
  EXPECT_TRUE(v.add_space_prefix);
  EXPECT_TRUE(v.add_bos);
  EXPECT_EQ(v.bos, 1);
  EXPECT_EQ(v.eos, 2);
  EXPECT_EQ(v.unk, 0);
  EXPECT_EQ(v.types[0], TokenType::kUnknown);
  EXPECT_EQ(v.types[3 + 0x41], TokenType::kByte);
  auto tok = Tokenizer::create(v);
  EXPECT_EQ(tok->encode("ab", true), (std::vector<int32_t>{1, tok->find_token(kSp + "ab")}));
  // 'c' is no piece: byte fallback.
  EXPECT_EQ(tok->encode("c", false), (std::vector<int32_t>{tok->find_token(kSp), 3 + 'c'}));
  EXPECT_EQ(tok->decode(tok->encode("ab c", true)), "ab c");
}

// ---------------------------------------------------------------- SentencePiece model by hand

TEST(VocabSentencePiece, HandBuiltModelProto) {
  TempDir dir;
  ProtoWriter model;
  model.piece("<unk>", 0, 2).piece("<s>", 0, 3).piece("</s>", 0, 3);
  model.piece(kSp, -1, 1).piece("a", -2, 1).piece("b", -3, 1).piece(kSp + "a", -0.5f, 1).piece("<x>", 0, 4);
  model.trainer(/*model_type=*/2, /*byte_fallback=*/false, 0, 1, 2, -1);
  model.normalizer("identity", /*add_dummy_prefix=*/false);
  write_file(dir.file("tokenizer.model"), model.bytes());
  const VocabSpec v = vocab_from_sentencepiece(dir.file("tokenizer.model"));
  EXPECT_EQ(v.tokens.size(), 8u);
  EXPECT_EQ(v.scores[6], -0.5f);
  EXPECT_EQ(v.types[7], TokenType::kUserDefined);
  EXPECT_FALSE(v.add_space_prefix);
  EXPECT_EQ(v.bos, 1);
  EXPECT_EQ(v.pad, -1);
  auto tok = Tokenizer::create(v);
  EXPECT_EQ(tok->encode(" ab<x>", false), (std::vector<int32_t>{6, 5, 7}));
  EXPECT_EQ(tok->encode("z", false), (std::vector<int32_t>{0})) << "no byte pieces: <unk>";
  EXPECT_EQ(load_vocab_file(dir.file("tokenizer.model")).tokens, v.tokens) << "sniffed as protobuf";
}

// ---------------------------------------------------------------- llama2.c tok512.bin

TEST(VocabLlama2c, Tok512LoadsAndRoundTripsTinyStories) {
  KVSIEVE_REQUIRE_SHARED("stories260K/tok512.bin");
  KVSIEVE_REQUIRE_SHARED("text/tinystories_sample.txt");
  const std::string path = shared_data() + "/stories260K/tok512.bin";
  const VocabSpec v = vocab_from_llama2c(path, 512);
  EXPECT_EQ(v.tokens.size(), 512u);
  EXPECT_EQ(v.bos, 1);
  EXPECT_EQ(v.eos, 2);
  EXPECT_EQ(v.unk, 0);
  EXPECT_EQ(v.tokens[1], "<s>");
  EXPECT_EQ(std::count(v.types.begin(), v.types.end(), TokenType::kByte), 256);
  EXPECT_TRUE(v.add_space_prefix);
  // Sniffing reads every token of the file: the same vocabulary.
  EXPECT_TRUE(load_vocab_file(path).tokens == v.tokens);
  auto tok = Tokenizer::create(v);
  const std::string text = read_file(shared_data() + "/text/tinystories_sample.txt");
  const auto ids = tok->encode(text, true, false, false);
  EXPECT_EQ(ids[0], 1);
  EXPECT_LT(ids.size(), text.size() / 2) << "merges happen";
  EXPECT_TRUE(tok->decode(ids) == text);
  for (int32_t id : ids) EXPECT_LT(id, 512);
  // "Once upon a time" starts stories: one piece per word with the dummy prefix.
  const auto once = tok->encode("Once upon a time", true);
  EXPECT_EQ(tok->decode(once), "Once upon a time");
  EXPECT_EQ(tok->token_to_piece(once[1], once[0]).substr(0, 1), "O") << "space after BOS dropped";
}

TEST(VocabFile, SniffsEveryFormat) {
  KVSIEVE_REQUIRE_SHARED("tokenizers/llama3/tokenizer.model");
  const std::string d = shared_data() + "/tokenizers/";
  EXPECT_EQ(load_vocab_file(d + "gpt-2/ggml-vocab-gpt-2.gguf").model, "gpt2");
  EXPECT_EQ(load_vocab_file(d + "llama-spm/ggml-vocab-llama-spm.gguf").model, "llama");
  EXPECT_EQ(load_vocab_file(d + "llama-spm/tokenizer.model").tokens.size(), 32000u);
  const VocabSpec l3 = load_vocab_file(d + "llama3/tokenizer.model");
  EXPECT_EQ(l3.tokens.size(), 128256u);
  EXPECT_EQ(l3.pre, "llama3");
  TempDir dir;
  write_file(dir.file("tokenizer.json"),
             "  \n" + tiny_byte_level_json(R"({"type":"ByteLevel","add_prefix_space":false})"));
  EXPECT_EQ(load_vocab_file(dir.file("tokenizer.json")).tokens.size(), 263u);
  EXPECT_EQ(load_vocab_file(dir.path()).tokens.size(), 263u) << "a folder: its tokenizer.json";
}

}  // namespace
}  // namespace kvsieve::testing
