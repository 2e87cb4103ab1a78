// kvsieve's public C++ API: an Engine loads a model once; Sessions run
// conversations on it (session.h).
//
//   auto engine = kvsieve::Engine::load({.model = "model.gguf"});
//   auto session = engine->new_session({.eviction = {.spec = "laq++", .budget = {.tokens = 512}}});
//   session->generate(engine->tokenize(prompt), {}, {.max_tokens = 64},
//                     [&](int32_t id) { std::cout << engine->token_text(id); return true; });
//
// Thread safety. An Engine is read-only once loaded: any number of threads
// may call its const methods and make sessions at the same time, and it
// lives as long as its last Session (sessions hold a reference to it). A
// Session is one conversation with a KV cache and an executor of its own
// (CPU threads or a GPU stream): one thread at a time may use it, and two
// sessions on one engine run from two threads without affecting each other.
// Everything that fails throws kvsieve::Error (error.h).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kvsieve/error.h"
#include "kvsieve/session.h"

namespace kvsieve {

// "kvsieve 0.1.0", and what this build runs on: the CPU kernels' SIMD target
// and whether CUDA is built in and a GPU present.
std::string version();
std::string build_info();

struct EngineOptions {
  // A GGUF file, a Hugging Face folder (config.json + safetensors), or a
  // llama2.c checkpoint (.bin, with `tokenizer`).
  std::string model;
  // A tokenizer file used instead of (or in the absence of) the model's own:
  // tokenizer.json, tokenizer.model (SentencePiece or tiktoken), a vocabulary
  // GGUF, or a llama2.c tokenizer.bin.
  std::string tokenizer;
  std::string device = "cpu";  // cpu, cuda, auto (CUDA when built in and a GPU is present)
  int threads = 0;             // CPU threads per session by default (0: all hardware threads)
  // How a GPU computes prefill: "tensor" (tensor cores: activations rounded
  // to bf16 or f16 for 16-bit and quantized weights, queries over a 16-bit
  // cache to its type) or "exact" (f32, the CPU's results to rounding).
  // Ignored on the CPU.
  std::string gpu_math = "tensor";
  bool vocab_only = false;     // load only the tokenizer of `model` (no weights; no sessions)
};

// What a model is, as loaded.
struct ModelInfo {
  std::string path, format;  // format: "gguf", "hf", "llama2c"
  std::string arch, name;    // arch: "llama" (Llama 2/3, Mistral) or "qwen2"
  int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0;
  int64_t n_ctx_train = 0;   // context the model was trained for (0: unknown)
  int64_t n_params = 0;
  size_t weight_bytes = 0;   // as stored
  // KV cache bytes per token (all layers, K and V) for an element size of
  // `bytes_per_value` (4: f32, 2: f16/bf16).
  size_t kv_bytes_per_token(size_t bytes_per_value = 4) const {
    return size_t(2 * n_layer * n_head_kv * head_dim) * bytes_per_value;
  }
};

// A prompt tokenized as one text and split where its context ends.
struct PromptTokens {
  std::vector<int32_t> context;   // with BOS when asked
  std::vector<int32_t> question;  // may be empty
};

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  static std::shared_ptr<const Engine> load(const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const EngineOptions& options() const;
  const ModelInfo& info() const;
  // "cpu (AVX3, 2 threads)", "cuda (NVIDIA H200)": what sessions run on.
  std::string device_description() const;

  // ---- text (throw Error when the model has no tokenizer)
  bool has_tokenizer() const;
  // add_bos: the vocabulary's BOS when it uses one; parse_special: special
  // token text (e.g. "<|im_start|>") becomes that token. Invalid UTF-8 throws.
  std::vector<int32_t> tokenize(std::string_view text, bool add_bos = true,
                                bool parse_special = true) const;
  // The text of one token as it appears after `prev` (-2: none; a leading
  // space is dropped after BOS where the vocabulary adds one).
  std::string token_text(int32_t id, int32_t prev = -2) const;
  std::string detokenize(const std::vector<int32_t>& ids) const;
  bool is_end_of_generation(int32_t id) const;
  int32_t bos() const;      // -1: none
  bool adds_bos() const;    // whether prompts start with BOS
  int64_t n_vocab() const { return info().n_vocab; }
  // context + question tokenized as one text, split where the context ends.
  PromptTokens split_prompt(const std::string& context, const std::string& question,
                            bool add_bos = true) const;
  // One user turn, context + question (and an optional system message), in
  // the model's chat format, ending with the assistant's header; split where
  // the context ends, so the context can be cut before the question is read.
  // format: "" (detect from the tokenizer), llama2, llama3, mistral, chatml.
  struct ChatPrompt {
    std::string context;   // the text up to the end of the context
    std::string question;  // the question and the rest of the template
    std::string format;    // the format used
  };
  ChatPrompt chat_prompt(const std::string& context, const std::string& question = "",
                         const std::string& system = "", const std::string& format = "") const;
  // A conversation: the turns (system, user, assistant; the last one the
  // user's) with `question` appended to the last turn, split where that
  // turn's own text ends; the earlier turns belong to the context (a server
  // cuts a conversation's cache before reading the new question).
  struct ChatTurn {
    std::string role, content;
  };
  ChatPrompt chat_prompt(const std::vector<ChatTurn>& turns, const std::string& question = "",
                         const std::string& format = "") const;

  // ---- sessions
  std::unique_ptr<Session> new_session(const SessionOptions& options = {}) const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvsieve
