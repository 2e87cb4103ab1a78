// Tokenizer engines on small hand-made vocabularies, against plain reference
// implementations written here, and UTF-8 handling.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <random>

#include "io/gguf.h"
#include "test_tokenizer_cases.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode/byte_level.h"
#include "tokenizer/unicode/utf8.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve::testing {
namespace {

const std::string kSp = "\xE2\x96\x81";  // U+2581

// ---------------------------------------------------------------- UTF-8

struct BadUtf8 {
  std::string text;
  size_t offset;
  const char* why;
};

TEST(Utf8, AcceptsValidText) {
  for (const std::string& s : {std::string(""), std::string("plain ascii"), std::string("\x7F"),
                              std::string("\xC2\x80"), std::string("\xDF\xBF"), std::string("\xE0\xA0\x80"),
                              std::string("\xED\x9F\xBF"), std::string("\xEE\x80\x80"),
                              std::string("\xEF\xBF\xBF"), std::string("\xF0\x90\x80\x80"),
                              std::string("\xF4\x8F\xBF\xBF"), std::string("F\xC3\xBChrer \xF0\x9F\xA6\x99"),
                              std::string("a\0b", 3)}) {
    EXPECT_EQ(utf8::find_invalid(s), std::string_view::npos) << s;
    EXPECT_NO_THROW(validate_utf8(s));
  }
}

TEST(Utf8, RejectsInvalidTextNamingTheOffset) {
  const std::vector<BadUtf8> bad = {
      {"ab\x80", 2, "continuation"},             // stray continuation byte
      {"\xBF", 0, "continuation"},
      {"x\xC0\xAF", 1, "overlong"},              // overlong '/'
      {"\xC1\xBF", 0, "overlong"},
      {"\xE0\x80\xAF", 0, "overlong"},           // 3-byte overlong
      {"\xE0\x9F\xBF", 0, "overlong"},
      {"ok \xF0\x80\x80\xAF", 3, "overlong"},    // 4-byte overlong
      {"\xED\xA0\x80", 0, "surrogate"},          // U+D800
      {"\xED\xBF\xBF", 0, "surrogate"},          // U+DFFF
      {"\xF4\x90\x80\x80", 0, "U+10FFFF"},       // U+110000
      {"\xF5\x80\x80\x80", 0, "U+10FFFF"},       // F5..F7 lead only to code points above U+10FFFF
      {"\xFF", 0, "0xF8"},
      {"abc\xE2\x82", 3, "end of the text"},     // truncated at the end
      {"\xE2\x28\xA1", 0, "missing continuation"},
      {"\xF0\x9F\xA6", 0, "end of the text"},
      {"\xC3", 0, "end of the text"},
  };
  for (const BadUtf8& b : bad) {
    const char* why = "";
    EXPECT_EQ(utf8::find_invalid(b.text, &why), b.offset) << ids_str({int(b.text.size())});
    try {
      validate_utf8(b.text, "prompt");
      ADD_FAILURE() << "accepted invalid UTF-8 at " << b.offset;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("prompt"), std::string::npos) << msg;
      EXPECT_NE(msg.find("byte offset " + std::to_string(b.offset)), std::string::npos) << msg;
    }
    // Lower-case comparison of the reason is enough to know which rule fired.
    EXPECT_NE(std::string(why).find(b.why), std::string::npos) << why;
  }
}

TEST(ByteLevel, MapIsABijectionOnBytes) {
  std::set<std::string> seen;
  for (int b = 0; b < 256; ++b) {
    const std::string_view t = byte_level::encode_byte(uint8_t(b));
    EXPECT_TRUE(seen.insert(std::string(t)).second);
    EXPECT_EQ(utf8::find_invalid(t), std::string_view::npos);
    std::string back;
    EXPECT_TRUE(byte_level::decode(t, back));
    EXPECT_EQ(back, std::string(1, char(b)));
  }
  EXPECT_EQ(byte_level::encode(" "), "\xC4\xA0");   // 'Ġ'
  EXPECT_EQ(byte_level::encode("\n"), "\xC4\x8A");  // 'Ċ'
  EXPECT_EQ(byte_level::encode("A~"), "A~");
  std::string out;
  EXPECT_FALSE(byte_level::decode("\xE4\xB8\xAD", out)) << "U+4E2D is outside the alphabet";
}

// ---------------------------------------------------------------- SPM engine

// A tiny SentencePiece-style vocabulary with scores chosen so that greedy
// left-to-right longest match would give other answers than best-score merging.
VocabSpec tiny_spm(bool byte_tokens) {
  VocabSpec v;
  v.model = "llama";
  auto add = [&](const std::string& t, float score, TokenType type = TokenType::kNormal) {
    v.tokens.push_back(t);
    v.scores.push_back(score);
    v.types.push_back(type);
  };
  add("<unk>", 0, TokenType::kUnknown);
  add("<s>", 0, TokenType::kControl);
  add("</s>", 0, TokenType::kControl);
  if (byte_tokens)
    for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), 0, TokenType::kByte);
  for (const char* c : {"a", "b", "c", "d"}) add(c, -100);
  add(kSp, -100);
  add("ab", -5);                // 7
  add("bc", -1);                // better than ab: "abc" -> a bc
  add(kSp + "a", -3);
  add("abc", -2);
  add(kSp + "ab", -4);
  add("<tag>", 0, TokenType::kUserDefined);
  v.unk = 0, v.bos = 1, v.eos = 2;
  return v;
}

TEST(SpmTokenizer, MergesByBestScoreNotLength) {
  auto tok = Tokenizer::create(tiny_spm(true));
  auto id = [&](const std::string& t) { return tok->find_token(t); };
  // "▁abc": pairs ▁a(-3) ab(-5) bc(-1): bc first; then a+bc = abc (-2) beats ▁a (-3).
  // (Leftmost-longest matching would give ▁ab c.)
  EXPECT_EQ(tok->encode("abc", false), (std::vector<int32_t>{id(kSp), id("abc")}));
  EXPECT_EQ(tok->encode("abd", false), (std::vector<int32_t>{id(kSp + "ab"), id("d")}));
  // Without the dummy prefix: a bc -> abc (-2).
  VocabSpec nv = tiny_spm(true);
  nv.add_space_prefix = false;
  auto t2 = Tokenizer::create(nv);
  EXPECT_EQ(t2->encode("abc", false), (std::vector<int32_t>{id("abc")}));
  EXPECT_EQ(t2->encode("abd", false), (std::vector<int32_t>{id("ab"), id("d")}));
  // BOS / EOS.
  EXPECT_EQ(tok->encode("d", true, true), (std::vector<int32_t>{1, id(kSp), id("d"), 2}));
  EXPECT_EQ(tok->encode("", true, false), (std::vector<int32_t>{1}));
  EXPECT_TRUE(tok->encode("", false).empty());
}

TEST(SpmTokenizer, ByteFallbackAndUnknown) {
  auto tok = Tokenizer::create(tiny_spm(true));
  // 'é' is no piece: its two UTF-8 bytes.
  const auto ids = tok->encode("\xC3\xA9", false);
  EXPECT_EQ(ids, (std::vector<int32_t>{tok->find_token(kSp), tok->find_token("<0xC3>"),
                                      tok->find_token("<0xA9>")}));
  EXPECT_EQ(tok->decode(ids), "\xC3\xA9");
  EXPECT_EQ(tok->token_to_piece(tok->find_token("<0x0A>")), "\n");
  // Without byte tokens: <unk>, one per unknown character.
  auto nob = Tokenizer::create(tiny_spm(false));
  EXPECT_EQ(nob->encode("a\xC3\xA9z", false),
            (std::vector<int32_t>{nob->find_token(kSp + "a"), 0, 0}));
  EXPECT_EQ(nob->token_to_piece(0), "");
}

TEST(SpmTokenizer, SpecialTokensAndDecode) {
  auto tok = Tokenizer::create(tiny_spm(true));
  auto id = [&](const std::string& t) { return tok->find_token(t); };
  // Control tokens only with parse_special; the dummy prefix follows them.
  EXPECT_EQ(tok->encode("a</s>b", false, false, true),
            (std::vector<int32_t>{id(kSp + "a"), 2, id(kSp), id("b")}));
  const auto plain = tok->encode("a</s>b", false, false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 0);
  EXPECT_EQ(tok->decode(plain), "a</s>b");
  // User-defined tokens are always matched, verbatim.
  EXPECT_EQ(tok->encode("<tag>", false, false, false), (std::vector<int32_t>{id("<tag>")}));
  EXPECT_EQ(tok->token_to_piece(id("<tag>")), "<tag>");
  // The leading space of the first piece (or after BOS) goes away in decode.
  EXPECT_EQ(tok->token_to_piece(id(kSp + "ab"), -1), "ab");
  EXPECT_EQ(tok->token_to_piece(id(kSp + "ab"), 1), "ab");
  EXPECT_EQ(tok->token_to_piece(id(kSp + "ab"), id("c")), " ab");
  EXPECT_EQ(tok->token_to_piece(id(kSp + "ab")), " ab");
  EXPECT_EQ(tok->token_to_piece(1), "");
  EXPECT_EQ(tok->decode(tok->encode(" ab abc", true)), " ab abc");
  EXPECT_THROW(tok->token_to_piece(int32_t(tok->n_vocab())), Error);
  EXPECT_THROW(tok->token_to_piece(-1), Error);
  EXPECT_EQ(tok->find_token("nope"), -1);
}

// llama2.c's encode() (run.c) written plainly: dummy prefix, one id per code
// point (bytes + byte-token offset when the code point is no piece), then the
// best-scoring adjacent pair is merged (first on ties) until none is a piece.
struct NaiveSpm {
  const VocabSpec& v;
  std::map<std::string, int32_t> id;
  std::map<int, int32_t> byte_id;
  explicit NaiveSpm(const VocabSpec& vocab) : v(vocab) {
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      const TokenType t = v.types[i];
      if (t == TokenType::kNormal || t == TokenType::kUserDefined) id[v.tokens[i]] = int32_t(i);
      if (t == TokenType::kByte) byte_id[std::stoi(v.tokens[i].substr(3, 2), nullptr, 16)] = int32_t(i);
    }
  }
  std::vector<int32_t> encode(const std::string& text);
};

std::vector<int32_t> NaiveSpm::encode(const std::string& text) {
  std::vector<int32_t> ids;
  if (text.empty()) return ids;
  std::string s = kSp;
  for (char c : text) s += c == ' ' ? kSp : std::string(1, c);
  for (size_t pos = 0; pos < s.size();) {
    const size_t len = utf8::seq_len(uint8_t(s[pos]));
    const std::string cp = s.substr(pos, len);
    pos += len;
    if (id.count(cp)) ids.push_back(id[cp]);
    else for (char c : cp) ids.push_back(byte_id.at(uint8_t(c)));
  }
  for (;;) {
    float best = -1e30f;
    int best_i = -1, best_id = -1;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      auto it = id.find(v.tokens[size_t(ids[i])] + v.tokens[size_t(ids[i + 1])]);
      if (it != id.end() && v.scores[size_t(it->second)] > best) {
        best = v.scores[size_t(it->second)];
        best_i = int(i);
        best_id = it->second;
      }
    }
    if (best_i < 0) break;
    ids[size_t(best_i)] = best_id;
    ids.erase(ids.begin() + best_i + 1);
  }
  return ids;
}

// Random strings over an alphabet that mixes pieces, spaces, newlines and
// characters outside most vocabularies.
std::vector<std::string> random_texts(int n, uint32_t seed) {
  const std::vector<std::string> alphabet = {"a", "e", "t", "h", "the", " ", " ", "  ", "\n", "\t", "1", "9",
                                             ".", ",", "'", "s", "\xC3\xA9", "\xE4\xB8\xAD",
                                             "\xF0\x9F\xA6\x99", "\xC3\xBC", "A", "Z", "<", ">", "_"};
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  for (int k = 0; k < n; ++k) {
    std::string s;
    const int len = int(rng() % 40);
    for (int i = 0; i < len; ++i) s += alphabet[rng() % alphabet.size()];
    out.push_back(s);
  }
  return out;
}

TEST(SpmTokenizer, MatchesPlainReferenceOnLlama2Vocab) {
  KVSIEVE_REQUIRE_SHARED("tokenizers/llama-spm/ggml-vocab-llama-spm.gguf");
  const VocabSpec v = vocab_from_gguf(GgufFile(shared_data() + "/tokenizers/llama-spm/ggml-vocab-llama-spm.gguf"));
  auto tok = Tokenizer::create(v);
  NaiveSpm ref(v);
  for (const std::string& s : random_texts(300, 7)) {
    const auto got = tok->encode(s, false, false, false);
    EXPECT_EQ(ids_str(got), ids_str(ref.encode(s))) << "'" << s << "'";
    EXPECT_EQ(tok->decode(got), s);
  }
}

// ---------------------------------------------------------------- byte-level BPE engine

// 256 byte tokens plus the given merges (their results become tokens).
VocabSpec tiny_bpe(const std::vector<std::pair<std::string, std::string>>& merges, const std::string& pre = "gpt2") {
  VocabSpec v;
  v.model = "gpt2";
  v.pre = pre;
  v.add_bos = false;
  v.add_space_prefix = false;
  for (int b = 0; b < 256; ++b) v.tokens.emplace_back(byte_level::encode_byte(uint8_t(b)));
  for (const auto& [a, b] : merges) {
    const std::string l = byte_level::encode(a), r = byte_level::encode(b);
    v.merges.push_back(l + " " + r);
    if (std::find(v.tokens.begin(), v.tokens.end(), l + r) == v.tokens.end()) v.tokens.push_back(l + r);
  }
  v.tokens.push_back("<|endoftext|>");
  v.types.assign(v.tokens.size(), TokenType::kNormal);
  v.types.back() = TokenType::kControl;
  v.bos = v.eos = int32_t(v.tokens.size() - 1);
  return v;
}

TEST(BpeTokenizer, MergesByRank) {
  // Rank order: "b c" before "a b", so "abc" -> a bc, not ab c.
  auto tok = Tokenizer::create(tiny_bpe({{"b", "c"}, {"a", "b"}, {"a", "bc"}, {" ", "a"}}));
  auto id = [&](const std::string& raw) { return tok->find_token(byte_level::encode(raw)); };
  EXPECT_EQ(tok->encode("abc", false), (std::vector<int32_t>{id("abc")}));
  EXPECT_EQ(tok->encode("abd", false), (std::vector<int32_t>{id("ab"), id("d")}));
  EXPECT_EQ(tok->encode("ab", false), (std::vector<int32_t>{id("ab")}));
  // " abc" is one pre-token: ' ' + 'a' merges last (rank 3) after "bc" and "a bc" took 'a'.
  EXPECT_EQ(tok->encode(" abc", false), (std::vector<int32_t>{id(" "), id("abc")}));
  // Pre-tokenizer splits words: no merge across "a|.b"
  EXPECT_EQ(tok->encode("a.b", false), (std::vector<int32_t>{id("a"), id("."), id("b")}));
  // Every byte, including invalid-UTF-8-free multi-byte characters, round-trips.
  const std::string text = "F\xC3\xBChrer \xF0\x9F\xA6\x99 abc\n\tend";
  EXPECT_EQ(tok->decode(tok->encode(text, false)), text);
  // Control token: only with parse_special; decodes to nothing.
  const int32_t eot = int32_t(tok->n_vocab() - 1);
  EXPECT_EQ(tok->encode("ab<|endoftext|>", false, false, true), (std::vector<int32_t>{id("ab"), eot}));
  EXPECT_EQ(tok->decode(tok->encode("ab<|endoftext|>", false, false, false)), "ab<|endoftext|>");
  EXPECT_EQ(tok->token_to_piece(eot), "");
  EXPECT_TRUE(tok->is_eog(eot));
}

TEST(BpeTokenizer, Llama3TakesWholeWordsFirst) {
  // "abc" is a token, but no merge chain reaches it: with the llama3
  // pre-tokenizer (ignore_merges) a word that is a token is taken whole.
  VocabSpec v = tiny_bpe({{"a", "b"}});
  v.tokens.push_back(byte_level::encode("abc"));
  v.types.push_back(TokenType::kNormal);
  auto gpt2 = Tokenizer::create(v);
  const int32_t abc = gpt2->find_token("abc");
  EXPECT_NE(gpt2->encode("abc", false), std::vector<int32_t>{abc});
  v.pre = "llama3";
  auto llama3 = Tokenizer::create(v);
  EXPECT_EQ(llama3->encode("abc", false), std::vector<int32_t>{abc});
}

TEST(BpeTokenizer, MergeOfUnknownTokenIsAnError) {
  VocabSpec v = tiny_bpe({{"a", "b"}});
  v.merges.push_back("x yz");
  EXPECT_THROW(Tokenizer::create(v), Error);
}

// Per word, merge the lowest-ranked adjacent pair (leftmost on ties) until no
// listed merge applies; the words come from the library's pre-tokenizer.
struct NaiveBpe {
  std::map<std::string, int32_t> id, rank;
  PreTokenizer pre;
  explicit NaiveBpe(const VocabSpec& v) : pre(v.pre) {
    for (size_t i = 0; i < v.tokens.size(); ++i) id[v.tokens[i]] = int32_t(i);
    for (size_t i = 0; i < v.merges.size(); ++i) rank.emplace(v.merges[i], int32_t(i));
  }
  std::vector<int32_t> encode(const std::string& text) const;
};

std::vector<int32_t> NaiveBpe::encode(const std::string& text) const {
  std::vector<std::string_view> words;
  pre.split(text, words);
  std::vector<int32_t> out;
  for (std::string_view w : words) {
    std::vector<std::string> parts;
    for (char c : w) parts.emplace_back(byte_level::encode_byte(uint8_t(c)));
    for (;;) {
      int best = INT32_MAX, at = -1;
      for (size_t i = 0; i + 1 < parts.size(); ++i) {
        auto it = rank.find(parts[i] + " " + parts[i + 1]);
        if (it != rank.end() && it->second < best) best = it->second, at = int(i);
      }
      if (at < 0) break;
      parts[size_t(at)] += parts[size_t(at) + 1];
      parts.erase(parts.begin() + at + 1);
    }
    for (const auto& p : parts) out.push_back(id.at(p));
  }
  return out;
}

TEST(BpeTokenizer, MatchesPlainReferenceOnGpt2Vocab) {
  KVSIEVE_REQUIRE_SHARED("tokenizers/gpt-2/ggml-vocab-gpt-2.gguf");
  const VocabSpec v = vocab_from_gguf(GgufFile(shared_data() + "/tokenizers/gpt-2/ggml-vocab-gpt-2.gguf"));
  auto tok = Tokenizer::create(v);
  const NaiveBpe ref(v);
  for (const std::string& s : random_texts(300, 11)) {
    const auto got = tok->encode(s, false, false, false);
    EXPECT_EQ(ids_str(got), ids_str(ref.encode(s))) << "'" << s << "'";
    EXPECT_EQ(tok->decode(got), s);
  }
}

TEST(PreTokenizer, KnownNamesAndSplits) {
  EXPECT_THROW(PreTokenizer("nonexistent"), Error);
  PreTokenizer gpt2("gpt2"), llama3("llama3"), qwen2("qwen2");
  auto split = [](const PreTokenizer& p, const std::string& s) {
    std::vector<std::string_view> w;
    p.split(s, w);
    return std::vector<std::string>(w.begin(), w.end());
  };
  EXPECT_EQ(split(gpt2, "Hello world  12345"),
            (std::vector<std::string>{"Hello", " world", " ", " 12345"}));
  EXPECT_EQ(split(llama3, "Hello world  12345"),
            (std::vector<std::string>{"Hello", " world", " ", " ", "123", "45"}));
  EXPECT_EQ(split(qwen2, "x 123"), (std::vector<std::string>{"x", " ", "1", "2", "3"}));
  // Case-blind contractions only in llama3/qwen2.
  EXPECT_EQ(split(llama3, "I'LL"), (std::vector<std::string>{"I", "'LL"}));
  EXPECT_EQ(split(gpt2, "I'LL"), (std::vector<std::string>{"I", "'", "LL"}));
  // SmolLM: digits apart first, then GPT-2's pattern between them (a
  // whitespace run before a digit stays whole).
  PreTokenizer smollm("smollm");
  EXPECT_EQ(split(smollm, "In 2024,  9 lives"),
            (std::vector<std::string>{"In", " ", "2", "0", "2", "4", ",", "  ", "9", " lives"}));
  EXPECT_EQ(split(gpt2, "In 2024,  9 lives"),
            (std::vector<std::string>{"In", " 2024", ",", " ", " 9", " lives"}));
  // Words cover the text exactly.
  const std::string t = "\xE2\x80\x83mixed \xE4\xB8\xAD\xE6\x96\x87 text\r\n\r\n  end  ";
  std::string joined;
  for (const auto& w : split(llama3, t)) joined += w;
  EXPECT_EQ(joined, t);
}

// ---------------------------------------------------------------- speed

std::string hundred_kb_text() {
  std::string base = read_file(shared_data() + "/text/tinystories_sample.txt");
  base += " Unicode: F\xC3\xBChrer, \xE4\xB8\xAD\xE6\x96\x87, \xF0\x9F\xA6\x99 llama.\n";
  std::string s;
  while (s.size() < 100 * 1024) s += base;
  return s;
}

void expect_fast(const Tokenizer& tok, const std::string& text, const char* what) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok.encode(text, true, false, /*parse_special=*/false);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s: %zu bytes -> %zu tokens in %.1f ms\n", what, text.size(), ids.size(), sec * 1e3);
  EXPECT_LT(sec, 1.0) << what;
  EXPECT_TRUE(tok.decode(ids) == text) << what << ": decode(encode(text)) differs";
}

TEST(TokenizerSpeed, HundredKilobytesWellUnderASecond) {
  KVSIEVE_REQUIRE_SHARED("text/tinystories_sample.txt");
  KVSIEVE_REQUIRE_SHARED("tokenizers/llama-spm/ggml-vocab-llama-spm.gguf");
  KVSIEVE_REQUIRE_SHARED("tokenizers/gpt-2/ggml-vocab-gpt-2.gguf");
  const std::string text = hundred_kb_text();
  expect_fast(cached_tokenizer("spm-gguf", [] {
                return vocab_from_gguf(GgufFile(shared_data() + "/tokenizers/llama-spm/ggml-vocab-llama-spm.gguf"));
              }),
              text, "llama-spm");
  expect_fast(cached_tokenizer("gpt2-gguf", [] {
                return vocab_from_gguf(GgufFile(shared_data() + "/tokenizers/gpt-2/ggml-vocab-gpt-2.gguf"));
              }),
              text, "gpt-2");
}

}  // namespace
}  // namespace kvsieve::testing
