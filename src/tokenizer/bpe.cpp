// Byte-level BPE ("gpt2" vocabularies: GPT-2, Llama 3, Qwen2).
//
// Encoding a run of text: the pre-tokenizer regex cuts it into words; each
// word starts as one symbol per byte (the byte's GPT-2 alphabet token) and the
// adjacent pair with the lowest merge rank is merged until no listed merge
// applies (ties: the leftmost pair), as Hugging Face tokenizers and llama.cpp
// do. With Llama 3's pre-tokenizer a word that is itself a token is taken
// whole first ("ignore_merges", which is also what tiktoken does).
#include <algorithm>
#include <array>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer_base.h"
#include "tokenizer/unicode/byte_level.h"

namespace kvsieve {
namespace {

class BpeTokenizer final : public TokenizerBase {
 public:
  explicit BpeTokenizer(VocabSpec spec) : TokenizerBase(std::move(spec)), pre_(spec_.pre) {
    const std::string& p = spec_.pre;
    ignore_merges_ = p == "llama3" || p == "llama-bpe" || p == "llama-v3";
    byte_token_.fill(-1);
    for (int b = 0; b < 256; ++b) byte_token_[size_t(b)] = find_token(byte_level::encode_byte(uint8_t(b)));
    merges_.reserve(spec_.merges.size() * 2);
    std::string joined;
    for (size_t i = 0; i < spec_.merges.size(); ++i) {
      const std::string& m = spec_.merges[i];
      const size_t sp = m.find(' ', 1);
      const std::string_view a = std::string_view(m).substr(0, sp), b = std::string_view(m).substr(sp + 1);
      const int32_t ia = find_token(a), ib = find_token(b);
      joined.assign(a);
      joined.append(b);
      const int32_t iab = find_token(joined);
      check(ia >= 0 && ib >= 0 && iab >= 0, "vocabulary: merge {} '{}': '{}' is not a token", i, m,
            ia < 0 ? std::string(a) : ib < 0 ? std::string(b) : std::string(a) + std::string(b));
      merges_.try_emplace(pair_key(ia, ib), Merge{int32_t(i), iab});  // first listing wins
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
      default: {
        std::string out;
        byte_level::decode(text, out);
        return out;
      }
    }
  }

 protected:
  void encode_text(std::string_view text, bool after_special, bool /*at_start*/,
                   std::vector<int32_t>& out) const override {
    std::string prefixed;
    if (spec_.add_space_prefix && after_special && text[0] != ' ') {
      // Hugging Face's ByteLevel(add_prefix_space=true).
      prefixed.reserve(text.size() + 1);
      prefixed += ' ';
      prefixed.append(text);
      text = prefixed;
    }
    std::vector<std::string_view> words;
    pre_.split(text, words);
    Work w;
    for (std::string_view word : words) encode_word(word, w, out);
  }

 private:
  struct Merge {
    int32_t rank;    // index in the merges list: lower merges first
    int32_t result;  // id of the merged token
  };
  static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

  // Buffers reused across the words of one call.
  struct Symbol {
    int32_t id;  // -1 once merged into its left neighbour
    int32_t prev, next;
  };
  struct Candidate {
    int32_t rank, left, right, left_id, right_id;
    bool operator<(const Candidate& o) const {  // the heap's top is the lowest rank, then leftmost
      return rank > o.rank || (rank == o.rank && left > o.left);
    }
  };
  struct Work {
    std::vector<Symbol> sym;
    std::vector<Candidate> heap;
  };

  void encode_word(std::string_view word, Work& w, std::vector<int32_t>& out) const {
    if (ignore_merges_ && word.size() > 1) {
      const int32_t id = find_token(byte_level::encode(word));
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }
    auto& sym = w.sym;
    sym.clear();
    for (size_t i = 0; i < word.size(); ++i) {
      const int32_t id = byte_token_[uint8_t(word[i])];
      if (id < 0) {
        check(spec_.unk >= 0, "encode: byte 0x{:02X} has no token in this byte-level vocabulary",
              uint8_t(word[i]));
      }
      sym.push_back({id < 0 ? spec_.unk : id, int32_t(i) - 1, i + 1 < word.size() ? int32_t(i + 1) : -1});
    }
    auto& heap = w.heap;  // a max-heap under Candidate::operator<
    heap.clear();
    auto try_pair = [&](int32_t l, int32_t r) {
      if (l < 0 || r < 0) return;
      const int32_t a = sym[size_t(l)].id, b = sym[size_t(r)].id;
      auto it = merges_.find(pair_key(a, b));
      if (it == merges_.end()) return;
      heap.push_back({it->second.rank, l, r, a, b});
      std::push_heap(heap.begin(), heap.end());
    };
    for (size_t i = 1; i < sym.size(); ++i) try_pair(int32_t(i - 1), int32_t(i));
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end());
      const Candidate c = heap.back();
      heap.pop_back();
      Symbol& l = sym[size_t(c.left)];
      Symbol& r = sym[size_t(c.right)];
      // Skip candidates that an earlier merge made stale.
      if (l.id != c.left_id || r.id != c.right_id || l.next != c.right) continue;
      l.id = merges_.find(pair_key(c.left_id, c.right_id))->second.result;
      r.id = -1;
      l.next = r.next;
      if (r.next >= 0) sym[size_t(r.next)].prev = c.left;
      try_pair(l.prev, c.left);
      try_pair(c.left, l.next);
    }
    for (int32_t k = sym.empty() ? -1 : 0; k >= 0; k = sym[size_t(k)].next) out.push_back(sym[size_t(k)].id);
  }

  PreTokenizer pre_;
  bool ignore_merges_ = false;
  std::array<int32_t, 256> byte_token_;          // byte -> its alphabet token, or -1
  std::unordered_map<uint64_t, Merge> merges_;   // (left id, right id) -> merge
};

}  // namespace

std::unique_ptr<Tokenizer> make_bpe_tokenizer(VocabSpec spec) {
  return std::make_unique<BpeTokenizer>(std::move(spec));
}

}  // namespace kvsieve
