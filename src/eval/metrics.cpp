#include "eval/metrics.h"

#include <locale.h>
#include <wctype.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/unicode/utf8.h"

namespace kvsieve::eval {
namespace {

using U32 = std::u32string;

// Lenient UTF-8 -> code points: an invalid byte becomes U+FFFD (as Python's
// errors="replace"), so model output with a cut character still scores.
U32 decode(std::string_view s) {
  U32 out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t len = utf8::seq_len(uint8_t(s[i]));
    const std::string_view seq = s.substr(i, len);
    if (seq.size() == len && utf8::find_invalid(seq) == std::string_view::npos) {
      size_t p = 0;
      out.push_back(utf8::decode(seq, p));
      i += len;
    } else {
      out.push_back(0xFFFD);
      ++i;
    }
  }
  return out;
}

std::string encode(const U32& s) {
  std::string out;
  for (char32_t c : s) utf8::append(out, uint32_t(c));
  return out;
}

// Python's str.isspace().
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
         c == 0x202f || c == 0x205f || c == 0x3000;
}

char32_t lower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t(0));
  return loc ? char32_t(towlower_l(wint_t(c), loc)) : c;
}

U32 lower(U32 s) {
  for (auto& c : s) c = lower(c);
  return s;
}

// Python's str.split() (no argument): runs of whitespace separate, none empty.
std::vector<U32> split_ws(const U32& s) {
  std::vector<U32> out;
  U32 cur;
  for (char32_t c : s) {
    if (is_space(c)) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

// Python's s.split(sep) for one character: keeps empty pieces.
std::vector<U32> split_on(const U32& s, char32_t sep) {
  std::vector<U32> out(1);
  for (char32_t c : s) {
    if (c == sep) out.emplace_back();
    else out.back().push_back(c);
  }
  return out;
}

U32 join(const std::vector<U32>& parts, char32_t sep) {
  U32 out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out.push_back(sep);
    out += parts[i];
  }
  return out;
}

bool is_word_char(char32_t c) {  // Python's \w for str patterns
  if (c == '_') return true;
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  static const locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t(0));
  return loc && iswalnum_l(wint_t(c), loc);
}

bool contains(const U32& hay, const U32& needle) { return hay.find(needle) != U32::npos; }

// All maximal runs of decimal digits (re.findall(r"\d+")), ASCII digits.
std::vector<U32> numbers(const U32& s) {
  std::vector<U32> out;
  U32 cur;
  for (char32_t c : s) {
    if (c >= '0' && c <= '9') {
      cur.push_back(c);
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

double share_equal(const std::vector<U32>& nums, const U32& want) {
  if (nums.empty()) return 0.0;
  return double(std::count(nums.begin(), nums.end(), want)) / double(nums.size());
}

// --- difflib.SequenceMatcher(None, a, b) -----------------------------------

struct Matcher {
  const U32& a;
  const U32& b;
  std::unordered_map<char32_t, std::vector<int64_t>> b2j;  // popular elements removed

  Matcher(const U32& a_, const U32& b_) : a(a_), b(b_) {
    for (int64_t j = 0; j < int64_t(b.size()); ++j) b2j[b[size_t(j)]].push_back(j);
    const int64_t n = int64_t(b.size());
    if (n >= 200) {  // autojunk: elements in more than 1% of b are "popular"
      const int64_t ntest = n / 100 + 1;
      for (auto it = b2j.begin(); it != b2j.end();)
        it = int64_t(it->second.size()) > ntest ? b2j.erase(it) : std::next(it);
    }
  }

  // The longest matching block in a[alo:ahi], b[blo:bhi] (earliest in a,
  // then in b, among the longest), extended by equal popular elements.
  void longest(int64_t alo, int64_t ahi, int64_t blo, int64_t bhi, int64_t& bi, int64_t& bj,
               int64_t& bs) const {
    bi = alo, bj = blo, bs = 0;
    std::unordered_map<int64_t, int64_t> j2len, next;
    for (int64_t i = alo; i < ahi; ++i) {
      next.clear();
      auto it = b2j.find(a[size_t(i)]);
      if (it != b2j.end()) {
        for (int64_t j : it->second) {
          if (j < blo) continue;
          if (j >= bhi) break;
          auto prev = j2len.find(j - 1);
          const int64_t k = (prev == j2len.end() ? 0 : prev->second) + 1;
          next[j] = k;
          if (k > bs) bi = i - k + 1, bj = j - k + 1, bs = k;
        }
      }
      std::swap(j2len, next);
    }
    while (bi > alo && bj > blo && a[size_t(bi - 1)] == b[size_t(bj - 1)]) --bi, --bj, ++bs;
    while (bi + bs < ahi && bj + bs < bhi && a[size_t(bi + bs)] == b[size_t(bj + bs)]) ++bs;
  }

  int64_t matches() const {
    int64_t total = 0;
    std::vector<std::array<int64_t, 4>> todo = {{0, int64_t(a.size()), 0, int64_t(b.size())}};
    while (!todo.empty()) {
      const auto [alo, ahi, blo, bhi] = todo.back();
      todo.pop_back();
      int64_t i, j, k;
      longest(alo, ahi, blo, bhi, i, j, k);
      if (k == 0) continue;
      total += k;
      if (alo < i && blo < j) todo.push_back({alo, i, blo, j});
      if (i + k < ahi && j + k < bhi) todo.push_back({i + k, ahi, j + k, bhi});
    }
    return total;
  }
};

// --- ROUGE-L as the `rouge` package computes it ------------------------------

// LCS table of word sequences x, y, then the reconstruction the package does
// (prefers moving up in x on a strict greater-than), returning the words.
std::vector<U32> recon_lcs(const std::vector<U32>& x, const std::vector<U32>& y) {
  const size_t n = x.size(), m = y.size();
  std::vector<std::vector<int32_t>> t(n + 1, std::vector<int32_t>(m + 1, 0));
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j)
      t[i][j] = x[i - 1] == y[j - 1] ? t[i - 1][j - 1] + 1 : std::max(t[i - 1][j], t[i][j - 1]);
  std::vector<U32> out;
  size_t i = n, j = m;
  while (i > 0 && j > 0) {
    if (x[i - 1] == y[j - 1]) {
      out.push_back(x[i - 1]);
      --i, --j;
    } else if (t[i - 1][j] > t[i][j - 1]) {
      --i;
    } else {
      --j;
    }
  }
  return out;
}

// Sentences: split at '.', empty pieces dropped, whitespace runs collapsed.
std::vector<U32> rouge_sentences(const U32& text) {
  std::vector<U32> out;
  for (const U32& piece : split_on(text, U'.'))
    if (!piece.empty()) out.push_back(join(split_ws(piece), U' '));
  return out;
}

std::vector<U32> words_of(const std::vector<U32>& sentences) {
  std::vector<U32> out;
  for (const U32& s : sentences)
    for (U32& w : split_on(s, U' ')) out.push_back(std::move(w));
  return out;
}

}  // namespace

std::string normalize_answer(std::string_view s) {
  static const U32 punct = U"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  U32 t;
  for (char32_t c : lower(decode(s)))
    if (punct.find(c) == U32::npos) t.push_back(c);
  // re.sub(r"\b(a|an|the)\b", " ", t)
  U32 r;
  size_t i = 0;
  while (i < t.size()) {
    bool hit = false;
    if (i == 0 || !is_word_char(t[i - 1])) {
      static const U32 kArticles[] = {U"an", U"a", U"the"};
      for (const U32& w : kArticles) {
        const size_t e = i + w.size();
        if (t.compare(i, w.size(), w) == 0 && (e == t.size() || !is_word_char(t[e]))) {
          r.push_back(U' ');
          i = e;
          hit = true;
          break;
        }
      }
    }
    if (!hit) r.push_back(t[i++]);
  }
  return encode(join(split_ws(r), U' '));
}

double qa_f1(std::string_view pred, std::string_view truth) {
  const auto p = split_ws(decode(normalize_answer(pred)));
  const auto g = split_ws(decode(normalize_answer(truth)));
  std::map<U32, int64_t> cp, cg;
  for (const auto& w : p) ++cp[w];
  for (const auto& w : g) ++cg[w];
  int64_t same = 0;
  for (const auto& [w, c] : cp) {
    auto it = cg.find(w);
    if (it != cg.end()) same += std::min(c, it->second);
  }
  if (same == 0) return 0.0;
  const double precision = double(same) / double(p.size()), recall = double(same) / double(g.size());
  return 2 * precision * recall / (precision + recall);
}

double rouge_l(std::string_view pred, std::string_view truth) {
  const auto hyp = rouge_sentences(decode(pred));
  const auto ref = rouge_sentences(decode(truth));
  if (hyp.empty() || ref.empty()) return 0.0;  // the package raises; LongBench scores 0
  const auto set_of = [](const std::vector<U32>& w) { return std::set<U32>(w.begin(), w.end()); };
  const double m = double(set_of(words_of(ref)).size());
  const double n = double(set_of(words_of(hyp)).size());
  std::set<U32> unions;
  int64_t llcs = 0;
  for (const U32& r : ref) {
    const auto rw = words_of({r});
    const size_t before = unions.size();
    for (const U32& h : hyp)
      for (U32& w : recon_lcs(rw, words_of({h}))) unions.insert(std::move(w));
    llcs += int64_t(unions.size() - before);
  }
  const double r_lcs = double(llcs) / m, p_lcs = double(llcs) / n;
  return 2.0 * ((p_lcs * r_lcs) / (p_lcs + r_lcs + 1e-8));
}

double difflib_ratio(std::string_view a, std::string_view b) {
  const U32 x = decode(a), y = decode(b);
  if (x.empty() && y.empty()) return 1.0;
  return 2.0 * double(Matcher(x, y).matches()) / double(x.size() + y.size());
}

int fuzz_ratio(std::string_view a, std::string_view b) {
  if (a == b) return 100;
  if (a.empty() || b.empty()) return 0;
  return int(std::nearbyint(100.0 * difflib_ratio(a, b)));  // round half to even, as Python
}

double code_sim(std::string_view pred, std::string_view truth) {
  U32 p = decode(pred);
  p.erase(0, p.find_first_not_of(U'\n') == U32::npos ? p.size() : p.find_first_not_of(U'\n'));
  U32 line;
  for (const U32& l : split_on(p, U'\n'))
    if (!contains(l, U"`") && !contains(l, U"#") && !contains(l, U"//")) {
      line = l;
      break;
    }
  return fuzz_ratio(encode(line), truth) / 100.0;
}

double classification(std::string_view pred, std::string_view truth,
                      const std::vector<std::string>& all_classes) {
  const U32 p = decode(pred), g = decode(truth);
  std::vector<U32> found;
  for (const auto& c : all_classes)
    if (contains(p, decode(c))) found.push_back(decode(c));
  // for term in list: if term in truth and term != truth: list.remove(term)
  // (removing while iterating skips the element after each removal).
  for (size_t i = 0; i < found.size(); ++i) {
    const U32 term = found[i];
    if (contains(g, term) && term != g) {
      found.erase(std::find(found.begin(), found.end(), term));
    }
  }
  if (std::find(found.begin(), found.end(), g) == found.end()) return 0.0;
  return 1.0 / double(found.size());
}

double retrieval(std::string_view pred, std::string_view truth) {
  // re.findall(r"Paragraph (\d+)", truth)[0]
  const U32 g = decode(truth);
  for (size_t at = g.find(U"Paragraph "); at != U32::npos; at = g.find(U"Paragraph ", at + 1)) {
    size_t e = at + 10;
    while (e < g.size() && g[e] >= '0' && g[e] <= '9') ++e;
    if (e > at + 10) return share_equal(numbers(decode(pred)), g.substr(at + 10, e - at - 10));
  }
  fail("retrieval answer '{}' names no paragraph", truth);
}

double count(std::string_view pred, std::string_view truth) {
  return share_equal(numbers(decode(pred)), decode(truth));
}

double string_match_all(std::string_view pred, const std::vector<std::string>& refs) {
  if (refs.empty()) return 0.0;
  const U32 p = lower(decode(pred));
  double hits = 0;
  for (const auto& r : refs) hits += contains(p, lower(decode(r))) ? 1.0 : 0.0;
  return hits / double(refs.size());
}

double string_match_part(std::string_view pred, const std::vector<std::string>& refs) {
  const U32 p = lower(decode(pred));
  for (const auto& r : refs)
    if (contains(p, lower(decode(r)))) return 1.0;
  return 0.0;
}

double longbench_score(const std::string& dataset, std::string_view pred,
                       const std::vector<std::string>& answers,
                       const std::vector<std::string>& all_classes) {
  using Fn = double (*)(std::string_view, std::string_view, const std::vector<std::string>&);
  static const std::map<std::string, Fn> metric = {
      {"narrativeqa", [](auto p, auto g, const auto&) { return qa_f1(p, g); }},
      {"qasper", [](auto p, auto g, const auto&) { return qa_f1(p, g); }},
      {"multifieldqa_en", [](auto p, auto g, const auto&) { return qa_f1(p, g); }},
      {"hotpotqa", [](auto p, auto g, const auto&) { return qa_f1(p, g); }},
      {"2wikimqa", [](auto p, auto g, const auto&) { return qa_f1(p, g); }},
      {"musique", [](auto p, auto g, const auto&) { return qa_f1(p, g); }},
      {"triviaqa", [](auto p, auto g, const auto&) { return qa_f1(p, g); }},
      {"gov_report", [](auto p, auto g, const auto&) { return rouge_l(p, g); }},
      {"qmsum", [](auto p, auto g, const auto&) { return rouge_l(p, g); }},
      {"multi_news", [](auto p, auto g, const auto&) { return rouge_l(p, g); }},
      {"samsum", [](auto p, auto g, const auto&) { return rouge_l(p, g); }},
      {"trec", [](auto p, auto g, const auto& c) { return classification(p, g, c); }},
      {"passage_retrieval_en", [](auto p, auto g, const auto&) { return retrieval(p, g); }},
      {"passage_count", [](auto p, auto g, const auto&) { return count(p, g); }},
      {"lcc", [](auto p, auto g, const auto&) { return code_sim(p, g); }},
      {"repobench-p", [](auto p, auto g, const auto&) { return code_sim(p, g); }},
  };
  auto it = metric.find(dataset);
  check(it != metric.end(), "LongBench dataset '{}' is not supported (English tasks only)", dataset);
  std::string_view p = pred;
  std::string first_line;
  if (dataset == "trec" || dataset == "triviaqa" || dataset == "samsum") {
    size_t s = p.find_first_not_of('\n');
    p = s == std::string_view::npos ? std::string_view() : p.substr(s);
    first_line = std::string(p.substr(0, p.find('\n')));
    p = first_line;
  }
  double best = 0.0;
  for (const auto& g : answers) best = std::max(best, it->second(p, g, all_classes));
  return best;
}

}  // namespace kvsieve::eval
