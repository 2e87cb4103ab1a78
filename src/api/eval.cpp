// The public evaluation harness entry points (include/kvsieve/eval.h).
#include "api/engine_impl.h"
#include "core/error.h"
#include "eval/report.h"
#include "eval/runner.h"
#include "eval/tasks.h"
#include "kvsieve/eval.h"

namespace kvsieve {

EvalTotals run_eval(const Engine& engine, const EvalConfig& cfg) {
  const Engine::Impl& e = engine.impl();
  const auto be = e.make_backend(cfg.threads);
  return eval::run_eval(e.need_model(), *be, cfg);
}

std::vector<EvalPrompt> eval_prompts(const Engine& engine, const EvalConfig& cfg) {
  const Tokenizer& tok = engine.impl().need_tok();
  std::vector<EvalPrompt> out;
  for (const auto& task : cfg.tasks)
    for (int64_t len : cfg.lengths)
      for (const auto& s : eval::make_samples(task, tok, len, cfg.samples, cfg.seed, cfg.task_options)) {
        EvalPrompt p;
        p.task = s.task;
        p.id = s.id;
        p.seed = s.seed;
        p.length = s.length;
        p.depth = s.depth;
        p.tokens = int64_t(tok.encode(s.context + s.question, tok.spec().add_bos).size());
        p.context = s.context;
        p.question = s.question;
        p.metric = s.metric;
        p.answers = s.answers;
        p.max_new_tokens = s.max_new_tokens;
        out.push_back(std::move(p));
      }
  return out;
}

std::vector<std::pair<std::string, std::string>> eval_tasks() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& t : eval::tasks()) out.emplace_back(t.name, t.summary);
  return out;
}

EvalReport make_eval_report(const std::string& results_path, const std::string& svg_dir) {
  const eval::Report r = eval::make_report(results_path, svg_dir);
  return {r.markdown, r.svg_files, r.rows, r.errors};
}

}  // namespace kvsieve
