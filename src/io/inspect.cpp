// `kvsieve inspect`: what a model file holds (format, hyper-parameters, RoPE,
// tensors, tokenizer), read through the same loader the engine uses, so
// anything the engine would refuse is reported with the same message. Judge Q
// soft-token files are described too (their size, model and origin).
#include <map>
#include <regex>

#include <fmt/printf.h>

#include "core/error.h"
#include "engine/soft_tokens.h"
#include "io/model_source.h"
#include "kvsieve/judgeq.h"
#include "kvsieve/model_files.h"

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

void print_soft_tokens(const SoftTokens& s, std::string& out) {
  out += fmt::sprintf("format:          Judge Q soft tokens (GGUF)\n");
  out += fmt::sprintf("soft tokens:     %lld x %lld (f32 embeddings)\n", (long long)s.m, (long long)s.n_embd);
  out += fmt::sprintf("for model:       %s, %lld layers, vocab %lld, fingerprint %s\n", s.arch.c_str(),
              (long long)s.n_layer, (long long)s.n_vocab, s.fingerprint.empty() ? "none" : s.fingerprint.c_str());
  out += fmt::sprintf("origin:          %s\n", s.origin.empty() ? "unknown" : s.origin.c_str());
}

void print_model(const ModelSource& m, bool all_tensors, std::string& out) {
  const ModelConfig& c = m.config;
  out += fmt::sprintf("path:            %s\n", m.path.c_str());
  out += fmt::sprintf("format:          %s\n", m.format.c_str());
  out += fmt::sprintf("architecture:    %s\n", c.arch.c_str());
  out += fmt::sprintf("name:            %s\n", c.name.c_str());
  out += fmt::sprintf("vocab size:      %lld\n", (long long)c.n_vocab);
  out += fmt::sprintf("hidden size:     %lld\n", (long long)c.n_embd);
  out += fmt::sprintf("layers:          %lld\n", (long long)c.n_layer);
  out += fmt::sprintf("heads:           %lld (kv heads %lld, head dim %lld)\n", (long long)c.n_head,
              (long long)c.n_head_kv, (long long)c.head_dim);
  out += fmt::sprintf("ffn size:        %lld\n", (long long)c.n_ff);
  out += fmt::sprintf("train context:   %lld\n", (long long)c.n_ctx_train);
  out += fmt::sprintf("rms eps:         %g\n", double(c.rms_eps));
  out += fmt::sprintf("rope theta:      %g\n", double(c.rope_theta));
  out += fmt::sprintf("rope style:      %s\n", c.rope_style == RopeStyle::kNeox ? "neox (halves)" : "interleaved (pairs)");
  out += fmt::sprintf("rope scaling:    %s\n", scaling_str(c.rope_scaling).c_str());
  out += fmt::sprintf("rope_freqs:      %s\n", m.find("rope_freqs.weight") ? "tensor rope_freqs.weight (per-dimension divisors)" : "none");
  out += fmt::sprintf("qkv bias:        %s\n", c.qkv_bias ? "yes" : "no");
  out += fmt::sprintf("tied embeddings: %s\n", c.tied_embeddings ? "yes" : "no");
  out += fmt::sprintf("sliding window:  %s\n", c.sliding_window > 0 ? std::to_string(c.sliding_window).c_str() : "none");

  int64_t params = 0;
  std::map<std::string, std::pair<size_t, int>> per_type;  // dtype -> (bytes, count)
  size_t total = 0;
  for (const auto& [name, t] : m.tensors) {
    params += t.numel();
    per_type[std::string(dtype_name(t.type))].first += t.nbytes;
    per_type[std::string(dtype_name(t.type))].second += 1;
    total += t.nbytes;
  }
  out += fmt::sprintf("tensors:         %zu\n", m.tensors.size());
  out += fmt::sprintf("parameters:      %lld (%.2fM)\n", (long long)params, double(params) / 1e6);
  out += fmt::sprintf("weight bytes:    %s\n", human_bytes(double(total)).c_str());
  for (const auto& [t, bc] : per_type)
    out += fmt::sprintf("  %-5s %5d tensors  %s\n", t.c_str(), bc.second, human_bytes(double(bc.first)).c_str());

  // Table: everything with --tensors, else global tensors and layer 0.
  const std::regex other_layer(R"(^blk\.([1-9][0-9]*)\.)");
  out += fmt::sprintf("\n%-32s %-5s %s\n", "tensor", "type", "shape");
  size_t hidden = 0;
  for (const auto& [name, t] : m.tensors) {
    if (!all_tensors && std::regex_search(name, other_layer)) {
      ++hidden;
      continue;
    }
    out += fmt::sprintf("%-32s %-5s %s\n", name.c_str(), std::string(dtype_name(t.type)).c_str(), shape_str(t.shape).c_str());
  }
  if (hidden) out += fmt::sprintf("(%zu tensors of layers 1..%lld not shown; --tensors lists all)\n", hidden, (long long)c.n_layer - 1);

  out += fmt::sprintf("\ntokenizer:       ");
  if (!m.vocab) {
    out += fmt::sprintf("none\n");
    return;
  }
  const VocabSpec& v = *m.vocab;
  out += fmt::sprintf("%s (pre %s)\n", v.model.c_str(), v.pre.c_str());
  out += fmt::sprintf("  tokens:        %zu (merges %zu)\n", v.tokens.size(), v.merges.size());
  out += fmt::sprintf("  bos:           %s\n", token_str(v, v.bos).c_str());
  out += fmt::sprintf("  eos:           %s\n", token_str(v, v.eos).c_str());
  out += fmt::sprintf("  eot:           %s\n", token_str(v, v.eot).c_str());
  out += fmt::sprintf("  unk:           %s\n", token_str(v, v.unk).c_str());
  out += fmt::sprintf("  pad:           %s\n", token_str(v, v.pad).c_str());
  out += fmt::sprintf("  add_bos:       %s, add_eos: %s, space prefix: %s\n", v.add_bos ? "yes" : "no",
              v.add_eos ? "yes" : "no", v.add_space_prefix ? "yes" : "no");
  out += fmt::sprintf("  chat template: %s\n", v.chat_template.empty() ? "no" : "yes");
}

}  // namespace

std::string describe_model_file(const InspectOptions& o) {
  std::string out;
  if (!o.llama2c && read_soft_token_info(o.model).ok) {
    print_soft_tokens(read_soft_tokens(o.model), out);
    return out;
  }
  const ModelSource m = open_model_with_tokenizer(o.model, o.tokenizer, o.llama2c);
  print_model(m, o.all_tensors, out);
  return out;
}

}  // namespace kvsieve
