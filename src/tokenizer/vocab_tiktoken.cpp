// Meta's tiktoken tokenizer.model for Llama 3 -> VocabSpec.
//
// The file is one "base64(token bytes) rank" line per token, ranks 0..n-1.
// tiktoken merges, inside each pre-token word, the adjacent pair whose
// concatenation has the lowest rank. That is byte-level BPE with merges listed
// by the rank of their result, which is how Hugging Face converts these files
// (every split of a token into two tokens becomes a merge, ordered by the
// token's rank, then by the ranks of the two halves); so the ranks are turned
// into such a merge list and the shared BPE engine runs them.
//
// The 256 special tokens follow from id n, named as Meta's tokenizer.py names
// them (models/llama3/tokenizer.py in meta-llama/llama-models).
//
// Not reproduced: Meta's encode() first cuts runs of more than 25,000
// whitespace or non-whitespace characters (a tiktoken stack-size workaround),
// which changes ids only inside such runs.
#include <algorithm>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "core/error.h"
#include "core/mapped_file.h"
#include "tokenizer/unicode/byte_level.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve {
namespace {

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard base64 with '=' padding; false when malformed.
bool base64_decode(std::string_view in, std::string& out) {
  out.clear();
  if (in.empty() || in.size() % 4 != 0) return false;
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + size_t(k)];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else {
        if (pad) return false;  // data after padding
        v[k] = base64_value(c);
        if (v[k] < 0) return false;
      }
    }
    const uint32_t x = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) | (uint32_t(v[2]) << 6) | uint32_t(v[3]);
    out += char(x >> 16);
    if (pad < 2) out += char((x >> 8) & 0xFF);
    if (pad < 1) out += char(x & 0xFF);
  }
  return true;
}

std::vector<std::string> llama3_special_tokens() {
  std::vector<std::string> s = {
      "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
      "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>",
      "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
      "<|python_tag|>", "<|image|>"};
  const size_t named = s.size();
  for (size_t i = 0; i < 256 - named; ++i) s.push_back(fmt::format("<|reserved_special_token_{}|>", 2 + i));
  return s;
}

}  // namespace

VocabSpec vocab_from_tiktoken(const std::string& path) {
  const std::string data = read_text_file(path);
  // ranks[r] = token bytes
  std::vector<std::string> ranks;
  std::vector<uint8_t> seen;
  size_t line_no = 0;
  std::string bytes;
  for (size_t pos = 0; pos < data.size();) {
    size_t end = data.find('\n', pos);
    if (end == std::string::npos) end = data.size();
    std::string_view line(data.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    check(sp != std::string_view::npos && sp > 0 && sp + 1 < line.size(),
          "'{}' line {}: expected 'base64 rank' (tiktoken format)", path, line_no);
    const std::string_view b64 = line.substr(0, sp), num = line.substr(sp + 1);
    check(base64_decode(b64, bytes), "'{}' line {}: '{}' is not base64", path, line_no,
          std::string(b64.substr(0, 40)));
    int64_t rank = 0;
    for (char c : num) {
      check(c >= '0' && c <= '9' && rank < 100000000, "'{}' line {}: bad rank '{}'", path, line_no,
            std::string(num.substr(0, 20)));
      rank = rank * 10 + (c - '0');
    }
    if (size_t(rank) >= ranks.size()) {
      check(rank < int64_t(data.size()), "'{}' line {}: rank {} exceeds the number of lines", path,
            line_no, rank);
      ranks.resize(size_t(rank) + 1);
      seen.resize(size_t(rank) + 1, 0);
    }
    check(!seen[size_t(rank)], "'{}' line {}: rank {} appears twice", path, line_no, rank);
    seen[size_t(rank)] = 1;
    ranks[size_t(rank)] = bytes;
  }
  check(!ranks.empty(), "'{}': no tokens (is this a tiktoken file?)", path);
  for (size_t r = 0; r < ranks.size(); ++r)
    check(seen[r], "'{}': rank {} is missing (ranks must be 0..{})", path, r, ranks.size() - 1);
  // Keys point into `ranks`, which no longer changes.
  std::unordered_map<std::string_view, int32_t> rank_of;
  rank_of.reserve(ranks.size() * 2);
  for (size_t r = 0; r < ranks.size(); ++r)
    check(rank_of.emplace(ranks[r], int32_t(r)).second, "'{}': token of rank {} is listed twice",
          path, r);
  char byte_chars[256];
  for (int b = 0; b < 256; ++b) byte_chars[b] = char(b);
  for (int b = 0; b < 256; ++b)
    check(rank_of.count(std::string_view(&byte_chars[b], 1)), "'{}': byte 0x{:02X} has no token", path, b);

  VocabSpec v;
  v.model = "gpt2";
  v.pre = "llama3";
  const size_t n = ranks.size();
  v.tokens.reserve(n + 256);
  for (const std::string& t : ranks) v.tokens.push_back(byte_level::encode(t));
  v.types.assign(n, TokenType::kNormal);

  // Merges: every split of a token into two tokens, ordered by (rank of the
  // token, rank of the left half, rank of the right half).
  std::vector<std::tuple<int32_t, int32_t, int32_t>> merges;  // (result, left, right)
  for (size_t r = 0; r < n; ++r) {
    const std::string_view t = ranks[r];
    for (size_t k = 1; k < t.size(); ++k) {
      auto l = rank_of.find(t.substr(0, k));
      if (l == rank_of.end()) continue;
      auto rr = rank_of.find(t.substr(k));
      if (rr == rank_of.end()) continue;
      merges.emplace_back(int32_t(r), l->second, rr->second);
    }
  }
  std::sort(merges.begin(), merges.end());
  v.merges.reserve(merges.size());
  for (const auto& [res, l, r] : merges) v.merges.push_back(v.tokens[size_t(l)] + " " + v.tokens[size_t(r)]);

  const std::vector<std::string> special = llama3_special_tokens();
  for (const std::string& s : special) {
    v.tokens.push_back(s);
    v.types.push_back(TokenType::kControl);
  }
  auto sid = [&](std::string_view name) {
    return int32_t(n + size_t(std::find(special.begin(), special.end(), name) - special.begin()));
  };
  v.bos = sid("<|begin_of_text|>");
  v.eos = sid("<|end_of_text|>");
  v.eot = sid("<|eot_id|>");
  v.pad = sid("<|finetune_right_pad_id|>");
  v.add_bos = true;
  v.add_eos = false;
  v.add_space_prefix = false;
  try {
    v.validate();
  } catch (const Error& e) {
    fail("'{}': {}", path, e.what());
  }
  return v;
}

}  // namespace kvsieve
