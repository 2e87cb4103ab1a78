// The public Engine: loads a model once and hands out sessions.
#include <algorithm>
#include <filesystem>

#include "api/engine_impl.h"
#include "backend/cpu/ops.h"
#include "core/error.h"
#include "engine/prompt.h"
#include "io/model_source.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve {
namespace {

// A file that is only a tokenizer (tokenizer.json, tokenizer.model, a vocab
// GGUF), by its name.
bool looks_like_tokenizer_file(const std::string& path) {
  const std::string name = std::filesystem::path(path).filename().string();
  return !std::filesystem::is_directory(path) &&
         (name.find("tokenizer") != std::string::npos || name.find("vocab") != std::string::npos);
}

}  // namespace

const Tokenizer& Engine::Impl::need_tok() const {
  const Tokenizer* t = tok();
  check(t != nullptr, "the model '{}' has no tokenizer: give one (--tokenizer)", opts.model);
  return *t;
}

const Model& Engine::Impl::need_model() const {
  check(model != nullptr, "'{}' was loaded for its tokenizer only", opts.model);
  return *model;
}

std::unique_ptr<Backend> Engine::Impl::make_backend(int threads) const {
  return kvsieve::make_backend(device, threads > 0 ? threads : opts.threads, math);
}

std::string version() { return "kvsieve 0.1.0"; }

std::string build_info() {
  return fmt::format("cpu kernels: {}\ncuda: {}", cpu_kernel_target(),
                     cuda_available() ? "available"
                     : cuda_built_in() ? "built in, but no usable GPU was found"
                                       : "not available (built without CUDA)");
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

std::shared_ptr<const Engine> Engine::load(const EngineOptions& o) {
  check(!o.model.empty(), "no model given");
  check(o.threads >= 0 && o.threads <= 1024, "threads must be in [0, 1024], got {}", o.threads);
  auto impl = std::make_unique<Impl>();
  impl->opts = o;
  impl->device = device_from_name(o.device);
  impl->math = gpu_math_from_name(o.gpu_math);
  if (impl->device == DeviceKind::kCuda) make_backend(DeviceKind::kCuda);  // fails early, clearly
  ModelInfo& info = impl->info;
  info.path = o.model;
  if (o.vocab_only) {
    if (looks_like_tokenizer_file(o.model)) {
      impl->vocab_tok = Tokenizer::create(load_vocab_file(o.model));
      info.format = "tokenizer";
    } else {
      ModelSource src = open_model(o.model);
      check(src.vocab.has_value() || !o.tokenizer.empty(), "'{}' has no tokenizer", o.model);
      impl->vocab_tok = Tokenizer::create(o.tokenizer.empty() ? *src.vocab : load_vocab_file(o.tokenizer));
      info.format = src.format;
      info.arch = src.config.arch;
      info.name = src.config.name;
    }
    info.n_vocab = impl->vocab_tok->n_vocab();
    return std::shared_ptr<const Engine>(new Engine(std::move(impl)));
  }
  impl->model = Model::load(o.model);
  if (!o.tokenizer.empty()) impl->model->set_tokenizer(Tokenizer::create(load_vocab_file(o.tokenizer)));
  const Model& m = *impl->model;
  const ModelConfig& c = m.config();
  info.format = m.source().format;
  info.arch = c.arch;
  info.name = c.name;
  info.n_vocab = c.n_vocab;
  info.n_embd = c.n_embd;
  info.n_layer = c.n_layer;
  info.n_head = c.n_head;
  info.n_head_kv = c.n_head_kv;
  info.head_dim = c.head_dim;
  info.n_ff = c.n_ff;
  info.n_ctx_train = c.n_ctx_train;
  info.n_params = m.n_params();
  info.weight_bytes = m.weight_bytes();
  if (impl->device == DeviceKind::kCuda) m.preload(*impl->make_backend(1));
  return std::shared_ptr<const Engine>(new Engine(std::move(impl)));
}

const EngineOptions& Engine::options() const { return impl_->opts; }
const ModelInfo& Engine::info() const { return impl_->info; }

std::string Engine::device_description() const {
  return impl_->make_backend(0)->describe();
}

bool Engine::has_tokenizer() const { return impl_->tok() != nullptr; }

std::vector<int32_t> Engine::tokenize(std::string_view text, bool add_bos, bool parse_special) const {
  const Tokenizer& t = impl_->need_tok();
  return t.encode(text, add_bos && t.spec().add_bos, false, parse_special);
}

std::string Engine::token_text(int32_t id, int32_t prev) const {
  return impl_->need_tok().token_to_piece(id, prev);
}

std::string Engine::detokenize(const std::vector<int32_t>& ids) const {
  return impl_->need_tok().decode(ids);
}

bool Engine::is_end_of_generation(int32_t id) const {
  const Tokenizer* t = impl_->tok();
  return t && t->is_eog(id);
}

int32_t Engine::bos() const { return impl_->need_tok().bos(); }
bool Engine::adds_bos() const { return impl_->need_tok().spec().add_bos; }

PromptTokens Engine::split_prompt(const std::string& context, const std::string& question,
                                  bool add_bos) const {
  const Tokenizer& t = impl_->need_tok();
  const PromptIds p = kvsieve::split_prompt(t, context, question, add_bos && t.spec().add_bos);
  return {p.context, p.question};
}

Engine::ChatPrompt Engine::chat_prompt(const std::string& context, const std::string& question,
                                      const std::string& system, const std::string& format) const {
  const Tokenizer& t = impl_->need_tok();
  const ChatFormat f = format.empty() ? detect_chat_format(t.spec()) : chat_format_from_name(format);
  // The llama3 and ChatML markers must be special tokens of this vocabulary,
  // else the prompt would be plain text the model was never trained on.
  const char* marker = f == ChatFormat::kLlama3   ? "<|start_header_id|>"
                       : f == ChatFormat::kChatML ? "<|im_start|>"
                                                  : nullptr;
  check(!marker || t.encode(marker, false, false, true).size() == 1,
        "chat format {} does not fit this model: its vocabulary has no {} token",
        chat_format_name(f), marker ? marker : "");
  // Without a system message, the one the model's template adds (as transformers renders it).
  const ChatSplit c = format_chat_split(
      f, system.empty() ? default_system_message(t.spec(), f) : system, context, question);
  return {c.context, c.question, std::string(chat_format_name(f))};
}

Engine::ChatPrompt Engine::chat_prompt(const std::vector<ChatTurn>& turns, const std::string& question,
                                      const std::string& format) const {
  check(!turns.empty(), "a chat needs at least one message");
  check(turns.back().role == "user", "the last chat message must be the user's, not '{}'",
        turns.back().role);
  std::string system;
  size_t i = 0;
  if (turns[0].role == "system") system = turns[i++].content;
  // One turn after an optional system message: the same text as the
  // single-turn chat_prompt (which checks the format's markers).
  if (i + 1 == turns.size()) return chat_prompt(turns.back().content, question, system, format);
  const ChatPrompt probe = chat_prompt(std::string(), std::string(), std::string(), format);
  const ChatFormat f = chat_format_from_name(probe.format);
  std::vector<ChatMessage> before;
  // Without a system message, the one the template adds (as in the single-turn case).
  if (turns[0].role != "system") {
    const std::string d = default_system_message(impl_->need_tok().spec(), f);
    if (!d.empty()) before.push_back({"system", d});
  }
  for (size_t j = 0; j + 1 < turns.size(); ++j) before.push_back({turns[j].role, turns[j].content});
  const ChatSplit c = format_chat_split(f, before, turns.back().content, question);
  return {c.context, c.question, probe.format};
}

}  // namespace kvsieve
