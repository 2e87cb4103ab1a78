// kvsieve random-model: a model of any shape with random weights, for
// benchmarks and tests (no trained model of that size is needed to time it).
#include <cstdio>

#include "cli_common.h"
#include "commands.h"

namespace kvsieve::cli {
namespace {

int run(const RandomModelOptions& o) {
  const int64_t n = write_random_model(o);
  std::fprintf(stderr, "kvsieve: random %s model, %.1fM parameters, wrote %s as %s\n", o.arch.c_str(),
               double(n) / 1e6, o.out.c_str(), o.type.c_str());
  return 0;
}

KVSIEVE_COMMAND(90, [](CLI::App& app) -> std::function<int()> {
  auto o = std::make_shared<RandomModelOptions>();
  auto* sub = app.add_subcommand(
      "random-model", "Write a GGUF model with random weights (for benchmarks and tests)");
  sub->add_option("-o,--out", o->out, "Output GGUF file")->required();
  sub->add_option("--arch", o->arch, "llama or qwen2")->capture_default_str();
  sub->add_option("--dim", o->dim, "Hidden size")->capture_default_str();
  sub->add_option("--layers", o->layers, "Layers")->capture_default_str();
  sub->add_option("--heads", o->heads, "Attention heads")->capture_default_str();
  sub->add_option("--kv-heads", o->kv_heads, "Key/value heads")->capture_default_str();
  sub->add_option("--ff", o->ff, "Feed-forward size")->capture_default_str();
  sub->add_option("--vocab-size", o->vocab_size, "Vocabulary size (default: the --vocab file's)");
  sub->add_option("--vocab", o->vocab, "Tokenizer file to embed (tokenizer.model, tokenizer.json, GGUF)")
      ->check(CLI::ExistingFile);
  sub->add_option("--type", o->type, "Weight type: f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q5_k, q6_k, q4_k_m, q5_k_m")->capture_default_str();
  sub->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace kvsieve::cli
