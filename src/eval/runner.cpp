#include "eval/runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/compressor.h"
#include "engine/prompt.h"
#include "engine/context.h"
#include "engine/generate.h"
#include "eval/metrics.h"

namespace kvsieve::eval {
namespace {

using clock_type = std::chrono::steady_clock;
using nlohmann::json;

double since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

// One column of the grid: the full cache, or a method at a budget.
struct Combo {
  bool full = false;
  std::string spec;    // canonical
  std::string method;  // registry name
  int64_t method_index = -1;  // into EvalConfig::methods (one Compressor each)
  Budget budget;
  EvictionConfig cfg;
};

std::vector<Combo> combos(const EvalConfig& c) {
  std::vector<Combo> out;
  Combo full;
  full.full = true;
  full.spec = full.method = "full";
  out.push_back(full);
  std::vector<Budget> budgets;
  for (int64_t b : c.budgets) budgets.push_back(Budget{b, 0});
  for (double r : c.ratios) budgets.push_back(Budget{0, r});
  for (size_t mi = 0; mi < c.methods.size(); ++mi) {
    const std::string& m = c.methods[mi];
    const Policy p = make_policy(m, c.preset);
    if (p.method == "full") continue;
    for (const Budget& b : budgets) {
      Combo x;
      x.spec = p.spec;
      x.method = p.method;
      x.method_index = int64_t(mi);
      x.budget = b;
      x.cfg.spec = m;
      x.cfg.preset = c.preset;
      x.cfg.budget = b;
      x.cfg.granularity = c.granularity;
      out.push_back(std::move(x));
    }
  }
  return out;
}

std::string budget_label(const Combo& x) {
  if (x.full) return "full";
  return x.budget.by_ratio() ? fmt::format("r{}", x.budget.ratio) : std::to_string(x.budget.tokens);
}

std::string row_key(const Sample& s, const Combo& x, const EvalConfig& c) {
  // Chat rows are other prompts than plain ones: their key says so.
  const TaskOptions& t = c.task_options;
  const std::string chat = t.chat.empty() ? "" : fmt::format("|chat:{}:{}", t.chat, t.system);
  return fmt::format("{}|{}|{}|{}|{}|{}|{}|{}{}", s.task, s.length, s.id, s.seed,
                     c.query_agnostic ? "agnostic" : "aware", granularity_name(c.granularity),
                     x.spec, budget_label(x), chat);
}

// Keys already in a results file. A last line without its newline was cut
// mid-write (a kill, a full disk): it is removed from the file, so the rows
// appended next start on a line of their own, and its sample is redone.
std::set<std::string> read_done(const std::string& path) {
  std::set<std::string> done;
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size == 0) return done;
  std::string text;
  {
    std::ifstream in(path, std::ios::binary);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (text.back() != '\n') {
    const size_t keep = text.find_last_of('\n') == std::string::npos ? 0 : text.find_last_of('\n') + 1;
    std::fprintf(stderr,
                 "kvsieve: the last line of %s was cut mid-write (%zu bytes); it is removed and "
                 "its sample redone\n",
                 path.c_str(), text.size() - keep);
    std::filesystem::resize_file(path, keep, ec);
    check(!ec, "cannot repair '{}': {}", path, ec.message());
    text.resize(keep);
  }
  size_t start = 0;
  int64_t n = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    ++n;
    if (line.empty()) continue;
    try {
      done.insert(json::parse(line).at("key").get<std::string>());
    } catch (const json::exception&) {
      std::fprintf(stderr, "kvsieve: results line %lld is unreadable; that sample is redone\n",
                   (long long)n);
    }
  }
  return done;
}

int32_t argmax(const float* v, int64_t n) { return int32_t(std::max_element(v, v + n) - v); }

std::string detokenize(const Tokenizer& tok, const std::vector<int32_t>& ids, int32_t prev) {
  std::string out;
  for (int32_t id : ids) {
    out += tok.token_to_piece(id, prev);
    prev = id;
  }
  return out;
}

// RULER's postprocess_pred: control characters become newlines, then strip.
std::string ruler_clean(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20) c = '\n';
  const size_t a = s.find_first_not_of(" \n");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \n");
  return s.substr(a, b - a + 1);
}

double score_of(const Sample& s, const std::string& pred) {
  if (s.metric == "string_match_all") return string_match_all(ruler_clean(pred), s.answers);
  if (s.metric == "string_match_part") return string_match_part(ruler_clean(pred), s.answers);
  return longbench_score(s.metric, pred, s.answers, s.all_classes);
}

// log-softmax of a row in double.
std::vector<double> log_softmax(const float* x, int64_t n) {
  double mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, double(x[i]));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(double(x[i]) - mx);
  const double lse = mx + std::log(sum);
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = double(x[i]) - lse;
  return out;
}

class Progress {
 public:
  Progress(int64_t total, bool on) : total_(total), on_(on), t0_(clock_type::now()) {}
  void update(int64_t done, const std::string& what) {
    if (!on_) return;
    const double el = since(t0_);
    const double eta = done > 0 ? el / double(done) * double(total_ - done) : 0.0;
    const int width = 24, fill = total_ ? int(width * done / total_) : width;
    std::fprintf(stderr, "\r[%s%s] %lld/%lld prompts  %s elapsed  ETA %s  %-40s",
                 std::string(size_t(fill), '#').c_str(), std::string(size_t(width - fill), '.').c_str(),
                 (long long)done, (long long)total_, clock_str(el).c_str(),
                 done ? clock_str(eta).c_str() : "?", what.substr(0, 40).c_str());
    std::fflush(stderr);
  }
  void finish() {
    if (on_) std::fprintf(stderr, "\n");
  }

 private:
  static std::string clock_str(double s) {
    const int64_t t = int64_t(s + 0.5);
    return t >= 3600 ? fmt::format("{}h{:02}m", t / 3600, t / 60 % 60)
                     : fmt::format("{}m{:02}s", t / 60, t % 60);
  }
  int64_t total_;
  bool on_;
  clock_type::time_point t0_;
};

}  // namespace

void validate(const EvalConfig& cfg, const Model& m) {
  check(!cfg.tasks.empty() && !cfg.lengths.empty(), "eval needs tasks and lengths");
  check(cfg.samples > 0, "eval needs at least one sample");
  check(cfg.seed + uint64_t(cfg.samples) <= 1000000,
        "evaluation seeds (the run seed plus the sample number) are below 1000000; training "
        "data uses the others");
  for (const auto& t : cfg.tasks) find_task(t);
  for (int64_t l : cfg.lengths) check(l >= 64 && l <= (int64_t(1) << 24), "length {} is out of range", l);
  kv_type_from_name(cfg.kv_type);
  const bool cut = std::any_of(cfg.methods.begin(), cfg.methods.end(),
                               [&](const std::string& s) { return make_policy(s, cfg.preset).scorer; });
  check(!cut || !cfg.budgets.empty() || !cfg.ratios.empty(),
        "give budgets (--budgets) or ratios (--ratios) for the methods");
  for (const Combo& x : combos(cfg)) {
    if (x.full) continue;
    try {
      Compressor probe(x.cfg, m);  // builds the policy, reads soft tokens, checks budgets
      if (probe.active()) probe.evictor().check_budget(x.budget);
    } catch (const Error& e) {
      fail("{} at {}: {}", x.spec, budget_label(x), e.what());
    }
  }
  check(m.tokenizer() != nullptr, "eval needs a model with a tokenizer");
}

EvalTotals run_eval(const Model& m, Backend& be, const EvalConfig& cfg) {
  validate(cfg, m);
  const auto t_run = clock_type::now();
  const Tokenizer& tok = *m.tokenizer();
  const int64_t V = m.config().n_vocab;
  const DType kv_type = kv_type_from_name(cfg.kv_type);
  const std::vector<Combo> grid = combos(cfg);
  std::set<std::string> done = cfg.out_path.empty() ? std::set<std::string>() : read_done(cfg.out_path);
  std::FILE* out = nullptr;
  if (!cfg.out_path.empty()) {
    out = std::fopen(cfg.out_path.c_str(), "ab");
    check(out != nullptr, "cannot open '{}' for appending", cfg.out_path);
  }
  struct Closer {
    std::FILE* f;
    ~Closer() {
      if (f) std::fclose(f);
    }
  } closer{out};

  EvalTotals tot;
  be.reset_peak();
  const int64_t total = int64_t(cfg.tasks.size() * cfg.lengths.size()) * cfg.samples;
  Progress bar(total, cfg.progress);
  int64_t n_prompt = 0;
  for (const auto& task : cfg.tasks)
    for (int64_t length : cfg.lengths) {
      const std::vector<Sample> samples =
          make_samples(task, tok, length, cfg.samples, cfg.seed, cfg.task_options);
      for (const Sample& s : samples) {
        bar.update(n_prompt++, fmt::format("{} {} #{}", task, length, s.index));
        std::vector<const Combo*> todo;
        for (const Combo& x : grid)
          if (!done.count(row_key(s, x, cfg))) todo.push_back(&x);
        if (todo.empty()) {
          ++tot.prompts_skipped;
          continue;
        }
        ++tot.prompts_run;
        const bool fidelity = s.metric == "fidelity";
        const PromptIds ids = split_prompt(tok, s.context, s.question, tok.spec().add_bos);
        std::vector<int32_t> prefix = ids.context, tail = ids.question;
        if (!cfg.query_agnostic) {
          prefix.insert(prefix.end(), tail.begin(), tail.end());
          tail.clear();
        }
        const std::vector<int32_t> cont = fidelity ? tok.encode(s.continuation, false)
                                                   : std::vector<int32_t>();
        // One prefill recording what every method needs (one compressor per
        // method, cut at each budget without changing it).
        std::vector<std::unique_ptr<Compressor>> comps(cfg.methods.size());
        RecordSpec record;
        for (const Combo* x : todo)
          if (!x->full && !comps[size_t(x->method_index)]) {
            comps[size_t(x->method_index)] = std::make_unique<Compressor>(x->cfg, m);
            record |= comps[size_t(x->method_index)]->record_spec();
          }
        // Room each cut keeps for what follows it: the question, the answer
        // (or the fidelity continuation). The full cache reserves it too, so
        // that its own answer never grows (copies) the shared prefill.
        const int64_t headroom = int64_t(tail.size() + cont.size()) + s.max_new_tokens;
        Context base(m, be, kv_type);
        base.reserve(int64_t(prefix.size()) + headroom);
        base.record(record);
        auto t0 = clock_type::now();
        const std::vector<float> last = base.prefill(prefix, cfg.n_batch);
        const double prefill_s = since(t0);
        tot.prefill_seconds += prefill_s;
        base.pause_recording(true);
        const int32_t first = argmax(last.data(), V);
        const int32_t n0 = base.n_past();
        const size_t kv_full = base.store().kv_bytes();
        tot.max_full_kv_bytes = std::max(tot.max_full_kv_bytes, kv_full);

        // The continuation's distributions, teacher-forced; the context goes
        // back to the prompt afterwards.
        auto teacher_force = [&](Context& w, std::vector<float>& all) {
          all.clear();
          if (cont.size() > 1) {
            const std::vector<int32_t> feed(cont.begin(), cont.end() - 1);
            w.prefill(feed, cfg.n_batch, &all);
          }
        };
        std::vector<float> full_logits;
        if (fidelity) {
          teacher_force(base, full_logits);
          base.erase_from(n0);
        }
        // A method's scores serve all its budgets unless its probes depend
        // on the budget (LAQ's stage-1 cut).
        std::map<int64_t, Scores> scored;

        for (size_t i = 0; i < todo.size(); ++i) {
          const Combo& x = *todo[i];
          json row;
          row["key"] = row_key(s, x, cfg);
          row["task"] = s.task;
          row["id"] = s.id;
          row["index"] = s.index;
          row["seed"] = s.seed;
          row["length"] = s.length;
          if (s.depth >= 0) row["depth"] = s.depth;
          row["prompt_tokens"] = prefix.size() + tail.size();
          row["mode"] = cfg.query_agnostic ? "agnostic" : "aware";
          if (!cfg.task_options.chat.empty()) row["chat"] = cfg.task_options.chat;
          row["granularity"] = granularity_name(cfg.granularity);
          row["method"] = x.method;
          row["spec"] = x.spec;
          row["kv"] = x.full ? std::string("full") : x.cfg.spec;  // as the user wrote it
          if (x.full) row["budget"] = "full";
          else if (x.budget.by_ratio()) row["ratio"] = x.budget.ratio;
          else row["budget"] = x.budget.tokens;
          row["kv_bytes_full"] = kv_full;
          row["prefill_s"] = prefill_s;
          const auto t_method = clock_type::now();
          try {
            // The full cache runs on the shared prefill itself (cut back to
            // the prompt afterwards); a method on a store of its own that
            // holds only the rows it keeps.
            std::optional<Context> own;
            double compress_s = 0, probe_s = 0;
            size_t peak = kv_full;
            if (!x.full) {
              Compressor& comp = *comps[size_t(x.method_index)];
              const auto tc = clock_type::now();
              auto it = scored.find(x.method_index);
              if (it == scored.end() || comp.probes_depend_on_budget()) {
                size_t probe_peak = 0;
                Scores sc = comp.score(base, first, x.budget, &probe_peak, &probe_s);
                peak = std::max(peak, probe_peak);
                it = scored.insert_or_assign(x.method_index, std::move(sc)).first;
              }
              const CutPlan plan = comp.evictor().select(base.store(), it->second, x.budget);
              own.emplace(m, be, kv_type);
              own->adopt(base.store().gather(plan.rows, headroom), n0);
              compress_s = since(tc) - probe_s;
              peak = std::max(peak, kv_full + own->store().kv_bytes());
              tot.max_cut_kv_bytes = std::max(tot.max_cut_kv_bytes, own->store().kv_bytes());
            }
            Context& w = own ? *own : base;
            row["kv_bytes"] = w.store().kv_bytes();
            row["peak_kv_bytes"] = peak;
            row["compress_s"] = compress_s;
            row["probe_s"] = probe_s;
            if (fidelity) {
              std::vector<float> lg;
              teacher_force(w, lg);
              const int64_t T = int64_t(cont.size()) - 1;
              double kl = 0, nll = 0;
              int64_t agree = 0;
              for (int64_t t = 0; t < T; ++t) {
                const auto lp = log_softmax(full_logits.data() + t * V, V);
                const auto lq = log_softmax(lg.data() + t * V, V);
                for (int64_t v = 0; v < V; ++v) kl += std::exp(lp[size_t(v)]) * (lp[size_t(v)] - lq[size_t(v)]);
                nll -= lq[size_t(cont[size_t(t + 1)])];
                agree += argmax(full_logits.data() + t * V, V) == argmax(lg.data() + t * V, V);
              }
              row["kl"] = T ? kl / double(T) : 0.0;
              row["top1"] = T ? double(agree) / double(T) : 1.0;
              row["ppl"] = T ? std::exp(nll / double(T)) : 1.0;
              row["score"] = row["top1"];
            } else {
              auto tq = clock_type::now();
              std::vector<float> logits = last;
              int32_t next = first;
              if (!tail.empty()) {
                logits = w.prefill(tail, cfg.n_batch);
                next = argmax(logits.data(), V);
              }
              row["question_s"] = since(tq);
              auto td = clock_type::now();
              DecodeParams dp;
              dp.max_tokens = s.max_new_tokens;
              dp.first = next;
              const std::vector<int32_t> gen = decode_tokens(w, logits, dp);
              row["decode_s"] = since(td);
              const int32_t prev = tail.empty() ? prefix.back() : tail.back();
              const std::string pred = detokenize(tok, gen, prev);
              row["prediction"] = pred;
              row["answers"] = s.answers;
              row["score"] = score_of(s, pred);
            }
          } catch (const Error& e) {
            row["error"] = e.what();
            ++tot.errors;
          }
          if (base.n_past() > n0) base.erase_from(n0);  // the full cache's question and answer
          (x.full ? tot.full_seconds : tot.method_seconds) += since(t_method);
          if (out) {
            const std::string line = row.dump() + "\n";
            check(std::fwrite(line.data(), 1, line.size(), out) == line.size() && std::fflush(out) == 0,
                  "cannot write '{}'", cfg.out_path);
          }
          ++tot.rows_written;
        }
      }
    }
  bar.update(n_prompt, "done");
  bar.finish();
  tot.generate_seconds = since(t_run);
  tot.peak_device_bytes = be.peak_bytes();
  return tot;
}

}  // namespace kvsieve::eval
