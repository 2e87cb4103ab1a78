// SentencePiece-style BPE ("llama" vocabularies: Llama 2, Mistral, llama2.c).
//
// Encoding a run of text: spaces become U+2581 ("▁"), a dummy "▁" is put in
// front when the vocabulary asks for it and the run starts the text or follows
// a special token; the run is cut into UTF-8 characters, and the adjacent pair
// whose concatenation is the best-scoring vocabulary piece is merged, again and
// again (ties: the leftmost pair), as SentencePiece's BPE model and llama.cpp
// do. A character that is no piece is written as its bytes (<0xNN> tokens), or
// as the unknown token when the vocabulary has no byte tokens.
#include <array>
#include <queue>

#include "core/error.h"
#include "tokenizer/tokenizer_base.h"
#include "tokenizer/unicode/utf8.h"

namespace kvsieve {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

class SpmTokenizer final : public TokenizerBase {
 public:
  explicit SpmTokenizer(VocabSpec spec) : TokenizerBase(std::move(spec)) {
    byte_token_.fill(-1);
    for (int b = 0; b < 256; ++b) {
      const int32_t id = find_token(fmt::format("<0x{:02X}>", b));
      if (id >= 0) byte_token_[size_t(b)] = id;
    }
    // Only pieces that SentencePiece itself would produce from text take part
    // in merges: not control, unused or byte tokens, nor <unk>.
    mergeable_.resize(spec_.tokens.size(), 1);
    for (size_t i = 0; i < spec_.types.size(); ++i) {
      const TokenType t = spec_.types[i];
      mergeable_[i] = !(t == TokenType::kControl || t == TokenType::kByte || t == TokenType::kUnknown ||
                        t == TokenType::kUnused);
    }
  }

  std::string token_to_piece(int32_t id, int32_t prev) const override {
    check_id(id);
    const std::string& text = spec_.tokens[size_t(id)];
    switch (type_of(id)) {
      case TokenType::kControl:
      case TokenType::kUnknown:
        return "";
      case TokenType::kUserDefined:
        return text;
      case TokenType::kByte: {
        const int b = byte_value(text);
        if (b >= 0) return std::string(1, char(b));
        return text;
      }
      default:
        break;
    }
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, kSpace.size(), kSpace) == 0) {
        out += ' ';
        i += kSpace.size();
      } else {
        out += text[i++];
      }
    }
    // The dummy prefix added by encode is dropped again at the start.
    if (spec_.add_space_prefix && (prev == -1 || (prev >= 0 && prev == spec_.bos)) &&
        !out.empty() && out[0] == ' ')
      out.erase(0, 1);
    return out;
  }

 protected:
  void encode_text(std::string_view text, bool after_special, bool at_start,
                   std::vector<int32_t>& out) const override {
    // s: the escaped text; symbols are contiguous byte ranges of it.
    std::string s;
    s.reserve(text.size() + 3 + text.size() / 4);
    bool prefix = spec_.add_space_prefix && after_special;
    if (spec_.prefix_scheme == "first") prefix = prefix && at_start;
    if (!spec_.prefix_scheme.empty()) prefix = prefix && text[0] != ' ';
    if (prefix) s += kSpace;
    for (char c : text) {
      if (c == ' ') s += kSpace;
      else s += c;
    }

    struct Symbol {
      uint32_t start, len;
      int32_t prev, next;
    };
    std::vector<Symbol> sym;
    sym.reserve(s.size());
    for (size_t pos = 0; pos < s.size();) {
      const uint32_t len = uint32_t(std::min(utf8::seq_len(uint8_t(s[pos])), s.size() - pos));
      const int32_t k = int32_t(sym.size());
      sym.push_back({uint32_t(pos), len, k - 1, -1});
      if (k > 0) sym[size_t(k - 1)].next = k;
      pos += len;
    }

    struct Bigram {
      float score;
      int32_t left, right;
      uint32_t len;  // bytes of left+right when queued; stale entries differ
      bool operator<(const Bigram& o) const {  // max-heap: best score, then leftmost
        return score < o.score || (score == o.score && left > o.left);
      }
    };
    std::priority_queue<Bigram> queue;
    auto try_pair = [&](int32_t l, int32_t r) {
      if (l < 0 || r < 0) return;
      const uint32_t len = sym[size_t(l)].len + sym[size_t(r)].len;
      const int32_t id = find_token(std::string_view(s).substr(sym[size_t(l)].start, len));
      if (id < 0 || !mergeable_[size_t(id)]) return;
      queue.push({spec_.scores.empty() ? 0.0f : spec_.scores[size_t(id)], l, r, len});
    };
    for (size_t k = 1; k < sym.size(); ++k) try_pair(int32_t(k - 1), int32_t(k));

    while (!queue.empty()) {
      const Bigram b = queue.top();
      queue.pop();
      Symbol& l = sym[size_t(b.left)];
      Symbol& r = sym[size_t(b.right)];
      // Skip pairs that an earlier merge changed.
      if (l.len == 0 || r.len == 0 || l.next != b.right || l.len + r.len != b.len) continue;
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (r.next >= 0) sym[size_t(r.next)].prev = b.left;
      try_pair(l.prev, b.left);
      try_pair(b.left, l.next);
    }

    for (int32_t k = sym.empty() ? -1 : 0; k >= 0; k = sym[size_t(k)].next) {
      const std::string_view piece = std::string_view(s).substr(sym[size_t(k)].start, sym[size_t(k)].len);
      const int32_t id = find_token(piece);
      if (id >= 0 && mergeable_[size_t(id)]) {
        out.push_back(id);
        continue;
      }
      byte_fallback(piece, out);
    }
  }

 private:
  // "<0xNN>" -> NN, else -1.
  static int byte_value(std::string_view t) {
    if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
    auto hex = [](char c) {
      return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                              : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    };
    const int hi = hex(t[3]), lo = hex(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }

  void byte_fallback(std::string_view piece, std::vector<int32_t>& out) const {
    // A piece that reaches here is one character that is no vocabulary piece.
    bool all_bytes = true;
    for (char c : piece) all_bytes = all_bytes && byte_token_[uint8_t(c)] >= 0;
    if (all_bytes) {
      for (char c : piece) out.push_back(byte_token_[uint8_t(c)]);
      return;
    }
    check(spec_.unk >= 0,
          "encode: character '{}' is not in the vocabulary, which has neither byte tokens nor an "
          "unknown token",
          piece);
    out.push_back(spec_.unk);
  }

  std::array<int32_t, 256> byte_token_;
  std::vector<uint8_t> mergeable_;  // [n_vocab] 1 if merges may produce the token
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(VocabSpec spec) {
  return std::make_unique<SpmTokenizer>(std::move(spec));
}

}  // namespace kvsieve
