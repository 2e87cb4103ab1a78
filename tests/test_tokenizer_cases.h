// Shared by the tokenizer tests: reading llama.cpp's test vectors and loading
// (once per process) the tokenizers of ../shared/data/tokenizers.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace kvsieve::testing {

struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;
};

// Reads <base>.inp / <base>.out as llama.cpp's test-tokenizer-0 does: the
// inputs are separated by "\n__ggml_vocab_test__\n" (the last one ends with
// it), the outputs are one line of space-separated ids per input, without BOS.
inline std::vector<VocabCase> read_vocab_cases(const std::string& base) {
  const std::string inp = read_file(base + ".inp"), out = read_file(base + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<std::vector<int32_t>> outs;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t eol = out.find('\n', pos);
    if (eol == std::string::npos) eol = out.size();
    std::vector<int32_t> ids;
    const std::string line = out.substr(pos, eol - pos);
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && line[i] == ' ') ++i;
      if (i >= line.size()) break;
      size_t j = line.find(' ', i);
      if (j == std::string::npos) j = line.size();
      ids.push_back(std::stoi(line.substr(i, j - i)));
      i = j;
    }
    outs.push_back(std::move(ids));
    pos = eol + 1;
  }
  if (texts.size() != outs.size())
    throw Error(base + ": .inp and .out disagree on the number of cases");
  std::vector<VocabCase> cases;
  for (size_t k = 0; k < texts.size(); ++k) cases.push_back({texts[k], outs[k]});
  return cases;
}

// Builds each named tokenizer once per test process (the tiktoken one takes a
// noticeable fraction of a second).
template <typename Make>
const Tokenizer& cached_tokenizer(const std::string& key, Make make) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[key];
  if (!slot) slot = Tokenizer::create(make());
  return *slot;
}

inline std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    if (!s.empty()) s += ' ';
    s += std::to_string(id);
  }
  return s;
}

}  // namespace kvsieve::testing
