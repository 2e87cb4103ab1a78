// kvsieve run: generate text from a prompt; figures on stderr.
#include <cstdio>

#include "cli_common.h"
#include "commands.h"

namespace kvsieve::cli {
namespace {

struct RunOptions {
  ModelOptions mo;
  std::string prompt, file, ids_file;
  int64_t n_predict = 128;
  int64_t n_batch = 256;
  GenerateOptions gen;
  bool ignore_eos = false;
  bool no_bos = false;
  bool print_ids = false;
  bool chat = false;            // wrap the prompt in the model's chat format
  std::string chat_template;    // a format by name (implies chat)
  std::string system;           // optional system message for chat
  std::string kv_type = "f32";
  // KV eviction
  std::string kv = "full", kv_preset, granularity, dump_kept;
  int64_t kv_budget = 0, decode_every = 0;
  double kv_ratio = 0;
  std::string question, question_file;
  bool query_aware = false;
};

// The eviction settings from the options; presets choose their library's
// granularity unless one is given.
EvictionConfig eviction_config(const RunOptions& o) {
  EvictionConfig c;
  c.spec = o.kv;
  c.preset = o.kv_preset;
  c.budget.tokens = o.kv_budget;
  c.budget.ratio = o.kv_ratio;
  c.decode_every = o.decode_every;
  c.granularity = granularity_for(o.granularity, o.kv_preset);
  return c;
}

int run(const RunOptions& o) {
  if (o.kv == "help") {
    std::fputs(kv_methods_help().c_str(), stdout);
    return 0;
  }
  check(!o.mo.model.empty(), "--model is required");
  const EvictionConfig ev = eviction_config(o);
  check_method(ev.spec, ev.preset);  // a bad spec fails before the model loads
  if (method_cuts(ev.spec, ev.preset)) check_eviction(ev);
  const bool cuts = method_cuts(ev.spec, ev.preset);
  check(cuts || o.dump_kept.empty(), "--dump-kept needs an eviction method (--kv)");
  auto engine = o.mo.load();
  std::vector<int32_t> prompt, question;
  if (!o.ids_file.empty()) {
    check(o.prompt.empty() && o.file.empty(), "give either --ids or a text prompt (-p/-f), not both");
    check(!o.chat && o.chat_template.empty() && o.system.empty(),
          "--chat, --chat-template and --system apply to a text prompt, not to --ids");
    check(o.question.empty() && o.question_file.empty(),
          "--question applies to a text prompt, not to --ids");
    prompt = read_npy_ids(o.ids_file);
    check(!prompt.empty(), "'{}' holds no token ids", o.ids_file);
  } else {
    check(engine->has_tokenizer(),
          "the model '{}' has no tokenizer: give one with --tokenizer, or token ids with --ids",
          o.mo.model);
    check(o.question.empty() || o.question_file.empty(), "give --question or --question-file, not both");
    std::string context = prompt_text(o.prompt, o.file);
    std::string q = o.question_file.empty() ? o.question : prompt_text("", o.question_file);
    check_utf8(q, "question");
    // Nothing before the question: the cut has nothing of the user's to judge.
    if (cuts && context.empty() && !q.empty() && !o.query_aware)
      std::fprintf(stderr, "kvsieve: the context is empty: nothing to cut\n");
    // Query-aware: the question is part of what gets compressed. Otherwise
    // the context is cut first and the question read after (kvpress).
    if (o.query_aware) {
      context += q;
      q.clear();
    }
    std::string tail;
    if (o.chat || !o.chat_template.empty()) {
      const Engine::ChatPrompt c = engine->chat_prompt(context, q, o.system, o.chat_template);
      std::fprintf(stderr, "kvsieve: chat format %s\n", c.format.c_str());
      context = c.context;
      tail = c.question;
    } else {
      check(o.system.empty(), "--system needs --chat or --chat-template");
      tail = q;
    }
    const PromptTokens ids = engine->split_prompt(context, tail, !o.no_bos);
    prompt = ids.context;
    question = ids.question;
    if (prompt.empty() && !question.empty()) prompt.swap(question);  // no BOS, no template
    if (prompt.empty()) {
      check(engine->bos() >= 0, "empty prompt and the vocabulary has no BOS token to start from");
      prompt.push_back(engine->bos());
    }
  }
  const int64_t n_ctx_limit = int64_t(prompt.size() + question.size()) + o.n_predict;
  const int64_t n_ctx_train = engine->info().n_ctx_train;
  if (n_ctx_train > 0 && n_ctx_limit > n_ctx_train)
    std::fprintf(stderr, "kvsieve: warning: %lld tokens exceed the model's training context (%lld)\n",
                 (long long)n_ctx_limit, (long long)n_ctx_train);

  SessionOptions so;
  so.batch = o.n_batch;
  so.kv_type = o.kv_type;
  so.eviction = ev;
  auto session = engine->new_session(so);
  GenerateOptions g = o.gen;
  g.max_tokens = o.n_predict;
  g.stop_at_eog = !o.ignore_eos;
  int32_t prev = prompt.back();
  const bool text_out = engine->has_tokenizer() && !o.print_ids;
  GenerateStats st;
  session->generate(
      prompt, question, g,
      [&](int32_t id) {
        if (text_out) {
          const std::string piece = engine->token_text(id, prev);
          std::fwrite(piece.data(), 1, piece.size(), stdout);
        } else {
          std::printf("%d ", id);
        }
        std::fflush(stdout);
        prev = id;
        return true;
      },
      &st,
      [&](const CutReport& r) {
        std::fprintf(stderr,
                     "kvsieve: kv %s (%s, %s): %lld prompt tokens, kept %.1f per head on average\n",
                     r.method.c_str(), r.granularity.c_str(), r.budget.c_str(),
                     (long long)r.rows_before, r.mean_kept);
        if (!o.dump_kept.empty()) write_file_atomically(o.dump_kept, r.kept_json);
      });
  std::printf("\n");
  std::fflush(stdout);
  const int64_t n_in = st.n_prompt + st.n_question;
  const std::string parts =
      st.n_question ? fmt::format(" (context {} + question {})", st.n_prompt, st.n_question) : "";
  std::fprintf(stderr,
               "kvsieve: prompt %lld tokens%s, prefill %.3f s (%.1f tokens/s); generated %lld "
               "tokens, decode %.1f tokens/s; %s\n",
               (long long)n_in, parts.c_str(), st.prefill_seconds,
               st.prefill_seconds > 0 ? double(n_in) / st.prefill_seconds : 0.0,
               (long long)st.n_generated,
               st.decode_seconds > 0 ? double(st.n_decode_steps) / st.decode_seconds : 0.0,
               engine->device_description().c_str());
  if (st.evicted) {
    const CutReport& c = st.cut;
    std::fprintf(stderr,
                 "kvsieve: KV cache %s before the cut, %s after; compression %.4f s (%.1f%% of "
                 "prefill)%s%s\n",
                 human_bytes(double(c.kv_bytes_before)).c_str(), human_bytes(double(c.kv_bytes_after)).c_str(),
                 c.seconds, st.prefill_seconds > 0 ? 100.0 * c.seconds / st.prefill_seconds : 0.0,
                 c.probe_seconds > 0
                     ? fmt::format("; probes {:.4f} s ({:.1f}% of prefill), peak K/V {}", c.probe_seconds,
                                   100.0 * c.probe_seconds / st.prefill_seconds,
                                   human_bytes(double(c.peak_kv_bytes)))
                           .c_str()
                     : "",
                 st.n_recuts ? fmt::format("; {} re-selections while decoding", st.n_recuts).c_str() : "");
  }
  std::fprintf(stderr, "kvsieve: KV cache %s (%s) for %d positions; peak memory (RSS) %s\n",
               human_bytes(double(st.kv_bytes)).c_str(), o.kv_type.c_str(), session->n_past(),
               human_bytes(double(peak_rss_bytes())).c_str());
  return 0;
}

KVSIEVE_COMMAND(10, [](CLI::App& app) -> std::function<int()> {
  auto o = std::make_shared<RunOptions>();
  auto* sub = app.add_subcommand("run", "Generate text from a prompt (prints figures on stderr)");
  o->mo.add_to(sub, /*need_model=*/false);  // `--kv help` needs none
  sub->add_option("-p,--prompt", o->prompt, "Prompt text (empty: start from BOS)");
  sub->add_option("-f,--file", o->file, "Read the prompt from a file")->check(CLI::ExistingFile);
  sub->add_option("--ids", o->ids_file, "Prompt as token ids: an int32 .npy file")
      ->check(CLI::ExistingFile);
  sub->add_option("-n,--n-predict", o->n_predict, "Tokens to generate")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(0), int64_t(1) << 24));
  sub->add_option("--temp", o->gen.temperature, "Sampling temperature; 0 = greedy")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  sub->add_option("--top-k", o->gen.top_k, "Sample among the k most likely tokens; 0 = off")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 24));
  sub->add_option("--top-p", o->gen.top_p, "Nucleus sampling threshold; 1 = off")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--seed", o->gen.seed, "Random seed for sampling")->capture_default_str();
  sub->add_option("-b,--batch", o->n_batch, "Prefill chunk size in tokens")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  sub->add_flag("--ignore-eos", o->ignore_eos, "Do not stop at end-of-generation tokens");
  sub->add_flag("--no-bos", o->no_bos, "Do not add the BOS token to a text prompt");
  sub->add_flag("--chat", o->chat,
                "Wrap the prompt as one user turn in the model's chat format (detected from the "
                "tokenizer's chat template or special tokens)");
  sub->add_option("--chat-template", o->chat_template,
                  "Chat format by name, implies --chat: llama2, llama3, mistral, chatml (qwen2)");
  sub->add_option("--system", o->system, "System message for --chat");
  sub->add_option("--question", o->question,
                  "Question appended after the prompt; the prompt (context) is compressed before "
                  "the question is read, unless --query-aware");
  sub->add_option("--question-file", o->question_file, "Read the question from a file")
      ->check(CLI::ExistingFile);
  sub->add_flag("--query-aware", o->query_aware,
                "Compress context and question together (the question's queries judge the context)");
  sub->add_option("--kv", o->kv,
                  "KV eviction method after the prompt, METHOD[:key=value,...]; 'help' lists them")
      ->capture_default_str();
  sub->add_option("--kv-preset", o->kv_preset, "Defaults of a reference library: kvpress, kvcache-factory")
      ->check(CLI::IsMember({"kvpress", "kvcache-factory"}));
  auto* budget = sub->add_option("--kv-budget", o->kv_budget,
                                 "Tokens each head keeps, the protected window included")
                     ->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  sub->add_option("--kv-ratio", o->kv_ratio, "Fraction of the prompt's tokens removed, in (0, 1)")
      ->excludes(budget);
  sub->add_option("--kv-granularity", o->granularity,
                  "kv-head (memory shrinks under GQA) or query-head (K/V copied per query head, as "
                  "the LAQ and KVCache-Factory code); default kv-head, query-head with "
                  "--kv-preset kvcache-factory")
      ->check(CLI::IsMember({"kv-head", "query-head"}));
  sub->add_option("--kv-decode-every", o->decode_every,
                  "While decoding, cut each head back to its budget every N new tokens (0 = never)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t(0), int64_t(1) << 30));
  sub->add_option("--kv-type", o->kv_type,
                  "Element type of the KV cache: f32, f16 or bf16 (half the memory; logits move "
                  "by about 1e-3)")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  sub->add_option("--dump-kept", o->dump_kept,
                  "Write the positions each layer and head kept (JSON) after the cut");
  sub->add_flag("--print-ids", o->print_ids, "Print generated token ids instead of text");
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace kvsieve::cli
