// RULER's synthetic tasks (niah_*, vt, cwe, fwe), built as data/ruler/README.md
// specifies: RULER's templates from data/ruler/tasks.json (embedded in the
// binary), a SplitMix64 stream per sample shared with the training data
// generator, and each sample sized to the target length by a search over its
// one size variable.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <numbers>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/tasks.h"
#include "kvsieve_embedded.h"

namespace kvsieve::eval {
namespace {

using nlohmann::json;

const json& ruler() {
  static const json j = json::parse(std::string(reinterpret_cast<const char*>(k_ruler_tasks_json),
                                                k_ruler_tasks_json_size));
  return j;
}

const std::vector<std::string>& words() {
  static const std::vector<std::string> w = [] {
    std::vector<std::string> out;
    std::istringstream in(
        std::string(reinterpret_cast<const char*>(k_ruler_words_txt), k_ruler_words_txt_size));
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) out.push_back(line);
    return out;
  }();
  return w;
}

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// The README's RNG, draw for draw.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }
  int64_t randint(int64_t lo, int64_t hi) { return lo + int64_t(below(uint64_t(hi - lo + 1))); }
  template <typename T>
  void shuffle(std::vector<T>& a) {
    for (size_t i = a.size(); i-- > 1;) std::swap(a[i], a[size_t(below(i + 1))]);
  }
  std::vector<size_t> sample(size_t n, size_t k) {
    std::vector<size_t> a(n);
    for (size_t i = 0; i < n; ++i) a[i] = i;
    for (size_t i = 0; i < k; ++i) std::swap(a[i], a[i + size_t(below(n - i))]);
    a.resize(k);
    return a;
  }
  template <typename T>
  const T& choice(const std::vector<T>& v) { return v[size_t(below(v.size()))]; }
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

std::string rstrip_spaces(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

// A built sample: the model input text and where its main context ends.
struct Built {
  std::string text;
  std::string answer_prefix;  // as it ends `text` (trailing spaces dropped)
  size_t context_end = 0;
  std::vector<std::string> answers;
  double depth = -1;
};

// The essays: files sorted by name, joined by spaces, split into words.
// Read once per process, under a lock (map entries never move once inserted).
const std::vector<std::string>& essay_words(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::vector<std::string>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(path);
  if (it != cache.end()) return it->second;
  check(!path.empty(),
        "RULER essay tasks need the Paul Graham essays: give --haystack "
        "(e.g. ../shared/data/haystack/paulgraham)");
  std::string all;
  for (const auto& t : read_haystack_files(path)) all += (all.empty() ? "" : " ") + t;
  std::vector<std::string> w;
  std::istringstream in(all);
  std::string word;
  while (in >> word) w.push_back(word);
  check(w.size() > 1000, "the essay haystack '{}' is too short", path);
  return cache[path] = std::move(w);
}

std::vector<std::string> sentences_of(const std::vector<std::string>& w) {
  std::vector<std::string> out;
  std::string cur;
  for (const auto& x : w) {
    cur += (cur.empty() ? "" : " ") + x;
    std::string t = x;
    while (!t.empty() && std::string("\"')]").find(t.back()) != std::string::npos) t.pop_back();
    for (const char* q : {"\u201d", "\u2019"})  // closing curly quotes
      while (t.size() >= 3 && t.compare(t.size() - 3, 3, q) == 0) t.resize(t.size() - 3);
    if (!t.empty() && (t.back() == '.' || t.back() == '!' || t.back() == '?')) {
      out.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::vector<int64_t> depths() { return ruler()["common"]["depths"].get<std::vector<int64_t>>(); }

// Items inserted between sentences at depths; returns the text and the depth
// of the first item (for single-needle heat maps).
std::string insert_at_depths(Rng& rng, const std::vector<std::string>& sentences,
                             const std::vector<std::string>& items, double* first_depth) {
  const auto d = depths();
  const auto pick = rng.sample(d.size(), items.size());
  std::vector<size_t> pos;
  for (size_t i : pick) pos.push_back(size_t(double(sentences.size()) * double(d[i]) / 100.0));
  if (first_depth && !pick.empty()) *first_depth = double(d[pick[0]]);
  std::sort(pos.begin(), pos.end());
  std::vector<std::string> parts;
  size_t prev = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (pos[i] > prev)
      parts.push_back(join(std::vector<std::string>(sentences.begin() + int64_t(prev),
                                                    sentences.begin() + int64_t(pos[i])),
                           " "));
    parts.push_back(items[i]);
    prev = pos[i];
  }
  if (prev < sentences.size())
    parts.push_back(join(std::vector<std::string>(sentences.begin() + int64_t(prev), sentences.end()), " "));
  return join(parts, " ");
}

std::string insert_into_lines(Rng& rng, std::vector<std::string> lines,
                              const std::vector<std::string>& needles) {
  auto idx = rng.sample(lines.size(), needles.size());
  std::sort(idx.begin(), idx.end(), std::greater<size_t>());
  for (size_t i = 0; i < needles.size(); ++i) lines.insert(lines.begin() + int64_t(idx[i]), needles[i]);
  return join(lines, "\n");
}

std::string draw_value(Rng& rng, const std::string& type) {
  if (type == "numbers") return std::to_string(rng.randint(1000000, 9999999));
  if (type == "uuids") {
    uint64_t hi = rng.next(), lo = rng.next();
    hi = (hi & ~uint64_t(0xF000)) | 0x4000;
    lo = (lo & ~(uint64_t(0xC) << 60)) | (uint64_t(0x8) << 60);
    const std::string h = fmt::format("{:016x}{:016x}", hi, lo);
    return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
           "-" + h.substr(20, 12);
  }
  check(type == "words", "unknown RULER needle type '{}'", type);
  const std::string& a = rng.choice(words());
  std::string b = rng.choice(words());
  while (b == a) b = rng.choice(words());
  return a + "-" + b;
}

std::string draw_distinct(Rng& rng, const std::string& type, std::set<std::string>& used) {
  for (;;) {
    std::string v = draw_value(rng, type);
    if (used.insert(v).second) return v;
  }
}

std::vector<std::string> noise_lines(int64_t n) {
  return std::vector<std::string>(size_t(n), ruler()["common"]["noise_sentence"].get<std::string>());
}

Built build_niah(const json& t, Rng rng, int64_t n, const TaskOptions& opt) {
  const json& a = t["args"];
  const std::string tk = a["type_needle_k"], tv = a["type_needle_v"];
  std::string hay = a["type_haystack"];
  if (hay == "repeat") hay = "noise";
  const int64_t k = a["num_needle_k"], v = a["num_needle_v"], q = a["num_needle_q"];
  const std::string needle_t = t["needle_template"];
  std::set<std::string> used_k, used_v;
  std::vector<std::string> keys, needles;
  std::vector<std::vector<std::string>> values;
  for (int64_t i = 0; i < k; ++i) {
    keys.push_back(draw_distinct(rng, tk, used_k));
    values.emplace_back();
    for (int64_t j = 0; j < v; ++j) {
      values.back().push_back(draw_distinct(rng, tv, used_v));
      needles.push_back(replace_all(replace_all(needle_t, "{key}", keys.back()), "{value}",
                                    values.back().back()));
    }
  }
  rng.shuffle(needles);
  const auto qi = rng.sample(size_t(k), size_t(q));
  std::vector<std::string> queries;
  Built b;
  for (size_t i : qi) {
    queries.push_back(keys[i]);
    for (const auto& val : values[i]) b.answers.push_back(val);
  }
  const std::string query =
      queries.size() == 1
          ? queries[0]
          : join(std::vector<std::string>(queries.begin(), queries.end() - 1), ", ") + ", and " +
                queries.back();
  std::string context;
  if (hay == "noise") {
    context = insert_into_lines(rng, noise_lines(n), needles);
  } else if (hay == "needle") {
    std::vector<std::string> lines;
    for (int64_t i = 0; i < n; ++i) {
      const std::string dk = draw_distinct(rng, tk, used_k), dv = draw_distinct(rng, tv, used_v);
      lines.push_back(replace_all(replace_all(needle_t, "{key}", dk), "{value}", dv));
    }
    context = insert_into_lines(rng, lines, needles);
  } else {
    check(hay == "essay", "unknown RULER haystack '{}'", hay);
    const auto& all = essay_words(opt.haystack);
    std::vector<std::string> w;
    for (int64_t i = 0; i < n; ++i) w.push_back(all[size_t(i) % all.size()]);
    context = insert_at_depths(rng, sentences_of(w), needles, k * v == 1 ? &b.depth : nullptr);
  }
  const std::string prompt = t["prompt_template"];
  const size_t at = prompt.find("{context}");
  const std::string head = replace_all(prompt.substr(0, at), "{query}", query);
  b.context_end = head.size() + context.size();
  b.answer_prefix = replace_all(t["answer_prefix"].get<std::string>(), "{query}", query);
  b.text = rstrip_spaces(head + context + replace_all(prompt.substr(at + 9), "{query}", query) +
                         b.answer_prefix);
  return b;
}

// One VT instance: the context and its first chain's variables and value.
struct Vt {
  std::string context, value;
  std::vector<std::string> vars;
};

Vt vt_instance(Rng& rng, const json& a, int64_t var_len, int64_t n_noise,
               std::set<std::string>& used_vars) {
  const int64_t hops = a["num_hops"], chains = a["num_chains"];
  static const std::vector<char> letters = [] {
    std::vector<char> l;
    for (char c = 'A'; c <= 'Z'; ++c) l.push_back(c);
    return l;
  }();
  std::vector<std::vector<std::string>> vars(static_cast<size_t>(chains));
  for (auto& chain : vars)
    for (int64_t j = 0; j <= hops; ++j) {
      std::string v;
      do {
        v.clear();
        for (int64_t c = 0; c < var_len; ++c) v.push_back(rng.choice(letters));
      } while (!used_vars.insert(v).second);
      chain.push_back(v);
    }
  std::vector<std::string> vals;
  for (int64_t c = 0; c < chains; ++c)
    vals.push_back(std::to_string(rng.randint(a["value_min"].get<int64_t>(), a["value_max"].get<int64_t>())));
  std::vector<std::string> lines = noise_lines(n_noise);
  for (int64_t c = 0; c < chains; ++c) {
    std::vector<std::string> chain_lines = {"VAR " + vars[size_t(c)][0] + " = " + vals[size_t(c)]};
    for (int64_t j = 1; j <= hops; ++j)
      chain_lines.push_back("VAR " + vars[size_t(c)][size_t(j)] + " = VAR " +
                            vars[size_t(c)][size_t(j - 1)] + " ");
    auto pos = rng.sample(lines.size(), size_t(hops + 1));
    std::sort(pos.begin(), pos.end());
    for (size_t j = 0; j < pos.size(); ++j)
      lines.insert(lines.begin() + int64_t(pos[j] + j), chain_lines[j]);
  }
  return {replace_all(join(lines, "\n"), ". \n", ".\n"), vals[0], vars[0]};
}

Built build_vt(const json& t, Rng rng, int64_t n, const TaskOptions&) {
  const json& a = t["args"];
  const std::string prompt = t["prompt_template"], prefix = t["answer_prefix"];
  const std::string num_v = std::to_string(a["num_hops"].get<int64_t>() + 1);
  auto render = [&](const Vt& x) {
    return replace_all(replace_all(prompt, "{context}", x.context), "{query}", x.value) +
           replace_all(replace_all(prefix, "{query}", x.value), "{num_v}", num_v);
  };
  std::set<std::string> used;
  const Vt ex = vt_instance(rng, a, a["icl_var_len"], a["icl_noise_sentences"], used);
  const std::string example = rstrip_spaces(render(ex)) + " " + join(ex.vars, " ") + "\n";
  const Vt main = vt_instance(rng, a, a["var_len"], n, used);
  Built b;
  const size_t at = prompt.find("{context}");
  b.context_end = example.size() + 1 + at + main.context.size();
  b.text = rstrip_spaces(example + "\n" + render(main));
  b.answer_prefix = replace_all(replace_all(prefix, "{query}", main.value), "{num_v}", num_v);
  b.answers = main.vars;
  return b;
}

Built build_cwe(const json& t, Rng rng, int64_t n, int64_t length, const TaskOptions&) {
  const json& a = t["args"];
  const bool small = length < a["short_context_below"].get<int64_t>();
  const int64_t num_cw = a["num_cw"];
  const int64_t rc = small ? a["short_freq_cw"] : a["freq_cw"];
  const int64_t ru = small ? a["short_freq_ucw"] : a["freq_ucw"];
  const int64_t ex_n = small ? a["short_fewshot_num_words"] : a["fewshot_num_words"];
  const int64_t ex_rc = small ? a["short_fewshot_freq_cw"] : a["fewshot_freq_cw"];
  const int64_t ex_ru = small ? a["short_fewshot_freq_ucw"] : a["fewshot_freq_ucw"];
  auto make_list = [&](int64_t num_words, int64_t c_rep, int64_t u_rep,
                       std::vector<std::string>& common) {
    std::vector<std::string> w;
    for (size_t i : rng.sample(words().size(), size_t(num_words))) w.push_back(words()[i]);
    common.assign(w.begin(), w.begin() + num_cw);
    std::vector<std::string> entries;
    for (int64_t r = 0; r < c_rep; ++r) entries.insert(entries.end(), common.begin(), common.end());
    for (int64_t r = 0; r < u_rep; ++r) entries.insert(entries.end(), w.begin() + num_cw, w.end());
    rng.shuffle(entries);
    std::string ctx;
    for (size_t i = 0; i < entries.size(); ++i) ctx += (i ? " " : "") + std::to_string(i + 1) + ". " + entries[i];
    return ctx;
  };
  auto numbered = [](const std::vector<std::string>& w) {
    std::string s;
    for (size_t i = 0; i < w.size(); ++i) s += (i ? " " : "") + std::to_string(i + 1) + ". " + w[i];
    return s;
  };
  const std::string prompt = t["prompt_template"], prefix = t["answer_prefix"];
  std::vector<std::string> ex_common, common;
  const std::string ex_ctx = make_list(ex_n, ex_rc, ex_ru, ex_common);
  const std::string ctx = make_list(std::clamp<int64_t>(n, num_cw + 1, int64_t(words().size())), rc,
                                    ru, common);
  const std::string example = replace_all(replace_all(prompt, "{context}", ex_ctx), "{query}", "") +
                              prefix + " " + numbered(ex_common) + "\n";
  Built b;
  b.context_end = example.size() + prompt.find("{context}") + ctx.size();
  b.text = rstrip_spaces(example + replace_all(replace_all(prompt, "{context}", ctx), "{query}", "") + prefix);
  b.answer_prefix = prefix;
  b.answers = common;
  return b;
}

Built build_fwe(const json& t, Rng rng, int64_t n, int64_t length, const TaskOptions&) {
  const json& a = t["args"];
  const int64_t V = (length - t["tokens_to_generate"].get<int64_t>()) / a["vocab_size_divisor"].get<int64_t>();
  check(V > 4, "length {} is too short for fwe", length);
  const int64_t wl = a["coded_wordlen"];
  std::vector<std::string> vocab;
  std::set<std::string> seen;
  static const std::vector<char> letters = [] {
    std::vector<char> l;
    for (char c = 'a'; c <= 'z'; ++c) l.push_back(c);
    return l;
  }();
  while (int64_t(vocab.size()) < V) {
    std::string w;
    for (int64_t i = 0; i < wl; ++i) w.push_back(rng.choice(letters));
    if (seen.insert(w).second) vocab.push_back(w);
  }
  vocab[0] = a["noise_word"].get<std::string>();
  const double alpha = a["alpha"], zeta = std::numbers::pi * std::numbers::pi / 6.0;  // zeta(2)
  check(alpha == 2.0, "fwe: only alpha = 2 is supported");
  std::vector<std::string> occ;
  for (int64_t r = 1; r <= V; ++r) {
    const int64_t c = int64_t(std::floor(double(n) * std::pow(double(r), -alpha) / zeta));
    for (int64_t i = 0; i < c; ++i) occ.push_back(vocab[size_t(r - 1)]);
  }
  rng.shuffle(occ);
  const std::string ctx = join(occ, " ");
  const std::string prompt = t["prompt_template"];
  Built b;
  b.context_end = prompt.find("{context}") + ctx.size();
  b.answer_prefix = t["answer_prefix"].get<std::string>();
  b.text = rstrip_spaces(replace_all(replace_all(prompt, "{context}", ctx), "{query}", "") +
                         b.answer_prefix);
  b.answers = {vocab[1], vocab[2], vocab[3]};
  return b;
}

Sample ruler_sample(const std::string& name, const TaskContext& c, int64_t index, int64_t,
                    uint64_t) {
  const json& t = ruler()["tasks"][name];
  const std::string family = t["family"];
  const int64_t ttg = t["tokens_to_generate"];
  // The integer sample seed of the README: run seed + index (below 1000000).
  const uint64_t seed = uint64_t(c.opt.run_seed) + uint64_t(index);
  const Rng base{fnv1a64(name + "/" + std::to_string(c.named_length) + "/" + std::to_string(seed))};
  auto build = [&](int64_t n) {
    if (family == "niah") return build_niah(t, base, n, c.opt);
    if (family == "variable_tracking") return build_vt(t, base, n, c.opt);
    if (family == "common_words_extraction") return build_cwe(t, base, n, c.named_length, c.opt);
    return build_fwe(t, base, n, c.length, c.opt);
  };
  auto fits = [&](int64_t n) { return c.count(build(n).text) + ttg <= c.length; };
  int64_t hi = 8;
  check(fits(hi), "a length of {} tokens is too short for {}", c.length, name);
  const int64_t cap = family == "common_words_extraction" ? int64_t(words().size()) : (int64_t(1) << 30);
  while (hi < cap && fits(std::min(hi * 2, cap))) hi = std::min(hi * 2, cap);
  int64_t lo = hi;
  if (hi < cap) {
    hi = std::min(hi * 2, cap);  // does not fit
    while (hi - lo > 1) {
      const int64_t mid = (lo + hi) / 2;
      (fits(mid) ? lo : hi) = mid;
    }
  }
  const Built b = build(lo);
  Sample s;
  s.seed = seed;
  s.context = b.text.substr(0, b.context_end);
  s.question = b.text.substr(b.context_end);
  s.answer_prefix = rstrip_spaces(b.answer_prefix);
  s.answers = b.answers;
  s.depth = b.depth;
  s.metric = t["metric"];
  s.max_new_tokens = ttg;
  return s;
}

}  // namespace

void add_ruler_tasks(std::vector<TaskInfo>& out) {
  for (const auto& [name, t] : ruler()["tasks"].items()) {
    const std::string n = name;
    out.push_back({n, "RULER " + t["family"].get<std::string>() + " (" + n + ")",
                   [n](const TaskContext& c, int64_t i, int64_t cnt, uint64_t seed) {
                     return ruler_sample(n, c, i, cnt, seed);
                   }});
  }
}

}  // namespace kvsieve::eval
