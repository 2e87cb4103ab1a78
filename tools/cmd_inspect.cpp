// kvsieve inspect MODEL: what a model file holds (format, hyper-parameters,
// RoPE, tensors, tokenizer), read through the same loader the engine uses, so
// anything the engine would refuse is reported here with the same message.
// Judge Q soft-token files are shown too (their size, model and origin).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "commands.h"
#include "core/error.h"
#include "engine/soft_tokens.h"
#include "io/gguf.h"
#include "io/model_source.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve {
namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  return u == 0 ? fmt::format("{:.0f} B", b) : fmt::format("{:.2f} {}", b, units[u]);
}

std::string scaling_str(const RopeScaling& s) {
  switch (s.type) {
    case RopeScalingType::kNone: return "none";
    case RopeScalingType::kLinear: return fmt::format("linear (factor {})", s.factor);
    case RopeScalingType::kLlama3:
      return fmt::format("llama3 (factor {}, low_freq_factor {}, high_freq_factor {}, original context {})",
                         s.factor, s.low_freq_factor, s.high_freq_factor, s.original_max_position);
  }
  return "?";
}

std::string token_str(const VocabSpec& v, int32_t id) {
  if (id < 0) return "none";
  if (size_t(id) >= v.tokens.size()) return fmt::format("{} (out of range)", id);
  return fmt::format("{} '{}'", id, v.tokens[size_t(id)]);
}

// A Judge Q soft-token file (kvsieve judgeq-init / train-judgeq) is a GGUF
// whose general.architecture is "judgeq".
bool is_soft_token_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  if (!in.read(magic, 4) || std::string(magic, 4) != "GGUF") return false;
  return GgufFile(path).get_string("general.architecture").value_or("") == "judgeq";
}

void print_soft_tokens(const SoftTokens& s) {
  std::printf("format:          Judge Q soft tokens (GGUF)\n");
  std::printf("soft tokens:     %lld x %lld (f32 embeddings)\n", (long long)s.m, (long long)s.n_embd);
  std::printf("for model:       %s, %lld layers, vocab %lld, fingerprint %s\n", s.arch.c_str(),
              (long long)s.n_layer, (long long)s.n_vocab, s.fingerprint.empty() ? "none" : s.fingerprint.c_str());
  std::printf("origin:          %s\n", s.origin.empty() ? "unknown" : s.origin.c_str());
}

void print_model(const ModelSource& m, bool all_tensors) {
  const ModelConfig& c = m.config;
  std::printf("path:            %s\n", m.path.c_str());
  std::printf("format:          %s\n", m.format.c_str());
  std::printf("architecture:    %s\n", c.arch.c_str());
  std::printf("name:            %s\n", c.name.c_str());
  std::printf("vocab size:      %lld\n", (long long)c.n_vocab);
  std::printf("hidden size:     %lld\n", (long long)c.n_embd);
  std::printf("layers:          %lld\n", (long long)c.n_layer);
  std::printf("heads:           %lld (kv heads %lld, head dim %lld)\n", (long long)c.n_head,
              (long long)c.n_head_kv, (long long)c.head_dim);
  std::printf("ffn size:        %lld\n", (long long)c.n_ff);
  std::printf("train context:   %lld\n", (long long)c.n_ctx_train);
  std::printf("rms eps:         %g\n", double(c.rms_eps));
  std::printf("rope theta:      %g\n", double(c.rope_theta));
  std::printf("rope style:      %s\n", c.rope_style == RopeStyle::kNeox ? "neox (halves)" : "interleaved (pairs)");
  std::printf("rope scaling:    %s\n", scaling_str(c.rope_scaling).c_str());
  std::printf("rope_freqs:      %s\n", m.find("rope_freqs.weight") ? "tensor rope_freqs.weight (per-dimension divisors)" : "none");
  std::printf("qkv bias:        %s\n", c.qkv_bias ? "yes" : "no");
  std::printf("tied embeddings: %s\n", c.tied_embeddings ? "yes" : "no");
  std::printf("sliding window:  %s\n", c.sliding_window > 0 ? std::to_string(c.sliding_window).c_str() : "none");

  int64_t params = 0;
  std::map<std::string, std::pair<size_t, int>> per_type;  // dtype -> (bytes, count)
  size_t total = 0;
  for (const auto& [name, t] : m.tensors) {
    params += t.numel();
    per_type[std::string(dtype_name(t.type))].first += t.nbytes;
    per_type[std::string(dtype_name(t.type))].second += 1;
    total += t.nbytes;
  }
  std::printf("tensors:         %zu\n", m.tensors.size());
  std::printf("parameters:      %lld (%.2fM)\n", (long long)params, double(params) / 1e6);
  std::printf("weight bytes:    %s\n", human_bytes(double(total)).c_str());
  for (const auto& [t, bc] : per_type)
    std::printf("  %-5s %5d tensors  %s\n", t.c_str(), bc.second, human_bytes(double(bc.first)).c_str());

  // Table: everything with --tensors, else global tensors and layer 0.
  const std::regex other_layer(R"(^blk\.([1-9][0-9]*)\.)");
  std::printf("\n%-32s %-5s %s\n", "tensor", "type", "shape");
  size_t hidden = 0;
  for (const auto& [name, t] : m.tensors) {
    if (!all_tensors && std::regex_search(name, other_layer)) {
      ++hidden;
      continue;
    }
    std::printf("%-32s %-5s %s\n", name.c_str(), std::string(dtype_name(t.type)).c_str(), shape_str(t.shape).c_str());
  }
  if (hidden) std::printf("(%zu tensors of layers 1..%lld not shown; --tensors lists all)\n", hidden, (long long)c.n_layer - 1);

  std::printf("\ntokenizer:       ");
  if (!m.vocab) {
    std::printf("none\n");
    return;
  }
  const VocabSpec& v = *m.vocab;
  std::printf("%s (pre %s)\n", v.model.c_str(), v.pre.c_str());
  std::printf("  tokens:        %zu (merges %zu)\n", v.tokens.size(), v.merges.size());
  std::printf("  bos:           %s\n", token_str(v, v.bos).c_str());
  std::printf("  eos:           %s\n", token_str(v, v.eos).c_str());
  std::printf("  eot:           %s\n", token_str(v, v.eot).c_str());
  std::printf("  unk:           %s\n", token_str(v, v.unk).c_str());
  std::printf("  pad:           %s\n", token_str(v, v.pad).c_str());
  std::printf("  add_bos:       %s, add_eos: %s, space prefix: %s\n", v.add_bos ? "yes" : "no",
              v.add_eos ? "yes" : "no", v.add_space_prefix ? "yes" : "no");
  std::printf("  chat template: %s\n", v.chat_template.empty() ? "no" : "yes");
}

struct InspectOptions {
  std::string model;
  std::string tokenizer;
  bool llama2c = false;
  bool all_tensors = false;
};

KVSIEVE_COMMAND(20, [](CLI::App& app) -> std::function<int()> {
  auto opt = std::make_shared<InspectOptions>();
  auto* sub = app.add_subcommand("inspect", "Show a model's format, hyper-parameters, tensors and tokenizer");
  sub->add_option("model", opt->model, "GGUF file, Hugging Face folder, or llama2.c .bin")->required();
  sub->add_flag("--tensors", opt->all_tensors, "List every tensor (default: global tensors and layer 0)");
  sub->add_flag("--llama2c", opt->llama2c, "Read MODEL as a llama2.c checkpoint");
  sub->add_option("--tokenizer", opt->tokenizer,
                  "Tokenizer file (llama2.c tokenizer.bin for --llama2c; else any tokenizer file, "
                  "replacing the model's)");
  return [opt] {
    if (!opt->llama2c && is_soft_token_file(opt->model)) {
      print_soft_tokens(read_soft_tokens(opt->model));
      return 0;
    }
    ModelSource m;
    if (opt->llama2c) {
      m = open_llama2c(opt->model, opt->tokenizer);
    } else {
      m = open_model(opt->model);
      if (!opt->tokenizer.empty()) {
        if (m.format == "llama2c")
          m = open_llama2c(opt->model, opt->tokenizer);
        else
          m.vocab = load_vocab_file(opt->tokenizer);
      }
    }
    print_model(m, opt->all_tensors);
    return 0;
  };
});

}  // namespace
}  // namespace kvsieve
