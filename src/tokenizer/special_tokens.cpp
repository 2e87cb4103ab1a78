#include "tokenizer/special_tokens.h"

#include <algorithm>

namespace kvsieve {

SpecialMatcher::SpecialMatcher(const VocabSpec& spec) {
  for (size_t i = 0; i < spec.types.size(); ++i) {
    const TokenType t = spec.types[i];
    const bool user = t == TokenType::kUserDefined;
    if (!user && t != TokenType::kControl && t != TokenType::kUnknown) continue;
    if (spec.tokens[i].empty()) continue;
    entries_.push_back({spec.tokens[i], int32_t(i), user});
  }
  for (uint32_t k = 0; k < entries_.size(); ++k)
    by_first_[uint8_t(entries_[k].text[0])].push_back(k);
  for (auto& list : by_first_)
    std::stable_sort(list.begin(), list.end(), [&](uint32_t a, uint32_t b) {
      return entries_[a].text.size() > entries_[b].text.size();
    });
}

std::vector<Fragment> SpecialMatcher::split(std::string_view text, bool parse_special) const {
  std::vector<Fragment> out;
  size_t plain = 0;  // start of the pending run of plain text
  size_t i = 0;
  while (i < text.size()) {
    const Entry* hit = nullptr;
    for (uint32_t k : by_first_[uint8_t(text[i])]) {
      const Entry& e = entries_[k];
      if ((parse_special || e.always) && text.compare(i, e.text.size(), e.text) == 0) {
        hit = &e;
        break;
      }
    }
    if (!hit) {
      ++i;
      continue;
    }
    if (i > plain) out.push_back({-1, text.substr(plain, i - plain)});
    out.push_back({hit->id, {}});
    i += hit->text.size();
    plain = i;
  }
  if (text.size() > plain) out.push_back({-1, text.substr(plain)});
  return out;
}

}  // namespace kvsieve
