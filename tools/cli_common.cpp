#include "cli_common.h"

#include <cstdio>
#include <fstream>
#include <string_view>


namespace kvsieve::cli {

void ModelOptions::add_to(CLI::App* sub, bool need_model) {
  auto* o = sub->add_option("-m,--model", model,
                            "Model: a GGUF file, a Hugging Face folder (config.json + safetensors) "
                            "or a llama2.c checkpoint");
  if (need_model) o->required();
  sub->add_option("--tokenizer", tokenizer,
                  "Tokenizer file to use instead of (or in the absence of) the model's own: "
                  "tokenizer.json, tokenizer.model (SentencePiece or tiktoken), GGUF, or llama2.c "
                  "tokenizer.bin");
  sub->add_option("-t,--threads", threads, "CPU threads (default: all hardware threads)")
      ->check(CLI::Range(0, 1024));
  sub->add_option("--device", device,
                  "Where to run: cpu, cuda, or auto (a GPU when this build has CUDA and one is present)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  sub->add_option("--gpu-math", gpu_math,
                  "How a GPU computes prefill: tensor (tensor cores; activations of 16-bit and "
                  "quantized weights, and queries over a 16-bit cache, rounded to bf16/f16) or exact "
                  "(f32 throughout: the CPU's results to rounding, several times slower)")
      ->capture_default_str()
      ->check(CLI::IsMember({"tensor", "exact"}));
}

std::shared_ptr<const Engine> ModelOptions::load(bool quiet) const {
  EngineOptions eo;
  eo.model = model;
  eo.tokenizer = tokenizer;
  eo.device = device;
  eo.gpu_math = gpu_math;
  eo.threads = threads;
  auto e = Engine::load(eo);
  if (!quiet) {
    const ModelInfo& i = e->info();
    std::fprintf(stderr,
                 "kvsieve: loaded %s (%s, %s): %lld layers, %lld heads / %lld kv heads, dim %lld, "
                 "vocab %lld, %.2fM params, %s\n",
                 model.c_str(), i.format.c_str(), i.arch.c_str(), (long long)i.n_layer,
                 (long long)i.n_head, (long long)i.n_head_kv, (long long)i.n_embd,
                 (long long)i.n_vocab, double(i.n_params) / 1e6, human_bytes(double(i.weight_bytes)).c_str());
  }
  return e;
}

std::string prompt_text(const std::string& prompt, const std::string& file) {
  check(prompt.empty() || file.empty(), "give the prompt either with -p or with -f, not both");
  if (!file.empty()) return read_text_file_utf8(file);
  check_utf8(prompt, "prompt");
  return prompt;
}

size_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return size_t(std::stoull(line.substr(6))) * 1024;
  return 0;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", b, units[u]);
  return buf;
}

std::vector<std::string> split(const std::string& s, const char* seps) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (std::string_view(seps).find(c) != std::string_view::npos) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace kvsieve::cli
