#include "io/model_source.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_model.h"
#include "io/llama2c.h"
#include "model/weight_list.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve {

namespace fs = std::filesystem;

const TensorView* ModelSource::find(const std::string& name) const {
  auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second;
}

const TensorView& ModelSource::get(const std::string& name) const {
  const TensorView* t = find(name);
  if (!t) fail("'{}': tensor '{}' is missing", path, name);
  return *t;
}

void check_model_tensors(const ModelSource& m) {
  const ModelConfig& c = m.config;
  try {
    c.validate();
  } catch (const Error& e) {
    fail("'{}': {}", m.path, e.what());
  }
  std::set<std::string> known;
  for_each_weight(c, [&](const WeightSpec& w) {
    known.insert(w.name);
    const TensorView* t = m.find(w.name);
    if (!t) {
      if (w.required)
        fail("'{}': missing tensor '{}' (expected shape {})", m.path, w.name, shape_str(w.shape));
      return;
    }
    if (t->shape != w.shape)
      fail("'{}': tensor '{}' has shape {}, expected {}", m.path, w.name, shape_str(t->shape),
           shape_str(w.shape));
    if (w.kind == WeightKind::kVector && t->type != DType::F32 && t->type != DType::F16 &&
        t->type != DType::BF16)
      fail("'{}': tensor '{}' is {}; norm weights and biases must be F32, F16 or BF16", m.path, w.name,
           dtype_name(t->type));
    if (w.name == "rope_freqs.weight" && t->type != DType::F32)
      fail("'{}': tensor 'rope_freqs.weight' is {}, expected F32", m.path, dtype_name(t->type));
    if (t->data == nullptr || t->nbytes != size_t(t->numel() / dtype_block_size(t->type)) * dtype_block_bytes(t->type))
      fail("'{}': tensor '{}' has {} bytes of data, which does not match {} {}", m.path, w.name, t->nbytes,
           dtype_name(t->type), shape_str(t->shape));
  });
  for (const auto& [name, t] : m.tensors)
    if (!known.count(name))
      fail("'{}': unexpected tensor '{}' {} (not part of a {} model with this configuration)", m.path, name,
           shape_str(t.shape), c.arch);
  // Token ids index the embedding rows: a tokenizer with more tokens than the
  // model has rows would read past the table.
  if (m.vocab)
    check(int64_t(m.vocab->tokens.size()) <= c.n_vocab,
          "'{}': the tokenizer has {} tokens but the model's vocabulary (embedding rows) is {}", m.path,
          m.vocab->tokens.size(), c.n_vocab);
  if (m.find("rope_freqs.weight") && c.rope_scaling.type == RopeScalingType::kLlama3)
    fail("'{}': both llama3 RoPE scaling and a rope_freqs.weight tensor (the scaling would apply twice)",
         m.path);
}

ModelSource open_gguf_model(const std::string& path) {
  auto f = std::make_shared<GgufFile>(path);
  ModelSource m;
  m.path = path;
  m.format = "gguf";
  m.config = config_from_gguf(*f);
  if (m.config.name.empty()) m.config.name = fs::path(path).stem().string();
  m.keep_alive.push_back(f->mapping());
  for (const TensorView& t : f->tensors()) m.tensors[t.name] = t;

  // A kvsieve-written llama3 file carries both the parameters and llama.cpp's
  // divisors: check they agree, then keep only the parameters (see the header).
  if (auto it = m.tensors.find("rope_freqs.weight");
      it != m.tensors.end() && m.config.rope_scaling.type == RopeScalingType::kLlama3) {
    const TensorView& t = it->second;
    const std::vector<float> want = llama3_rope_freq_factors(m.config);
    check(t.type == DType::F32 && t.shape == std::vector<int64_t>{int64_t(want.size())},
          "'{}': rope_freqs.weight is {} {}, expected F32 [{}]", path, dtype_name(t.type), shape_str(t.shape),
          want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      float v;
      std::memcpy(&v, static_cast<const uint8_t*>(t.data) + 4 * i, 4);
      check(std::fabs(v - want[i]) <= 1e-3f * std::fabs(want[i]),
            "'{}': rope_freqs.weight[{}] = {} disagrees with the llama3 scaling metadata ({})", path, i, v,
            want[i]);
    }
    m.tensors.erase(it);
  }
  if (gguf_has_vocab(*f)) m.vocab = vocab_from_gguf(*f);
  check_model_tensors(m);
  return m;
}

namespace {

bool has_magic(const std::string& path, const char* magic) {
  std::ifstream f(path, std::ios::binary);
  char b[4] = {};
  return f.read(b, 4) && std::memcmp(b, magic, 4) == 0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

ModelSource open_model(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail("cannot open model '{}': no such file or folder", path);
  if (fs::is_directory(st)) return open_hf_model(path);
  const std::string fname = fs::path(path).filename().string();
  if (fname == "config.json" || ends_with(fname, ".safetensors") || fname == "model.safetensors.index.json") {
    const fs::path parent = fs::path(path).parent_path();
    return open_hf_model(parent.empty() ? std::string(".") : parent.string());
  }
  // A .gguf that is not one gets the GGUF reader's message (bad magic, truncated).
  if (has_magic(path, "GGUF") || ends_with(fname, ".gguf")) return open_gguf_model(path);
  if (ends_with(fname, ".bin")) {
    if (looks_like_llama2c(path)) return open_llama2c(path);
    // Say why it is not a llama2.c checkpoint (usually a size mismatch).
    std::string why = "too small";
    std::ifstream f(path, std::ios::binary);
    uint8_t h[kLlama2cHeaderBytes];
    if (f.read(reinterpret_cast<char*>(h), sizeof(h))) {
      try {
        llama2c_layout(h, fs::file_size(path, ec), path);
      } catch (const Error& e) {
        why = e.what();
      }
    }
    fail("'{}' is neither a GGUF file nor a llama2.c checkpoint: {}", path, why);
  }
  fail("'{}': unrecognized model format (expected a GGUF file, a Hugging Face folder with config.json, "
       "or a llama2.c .bin checkpoint)", path);
}

ModelSource open_model_with_tokenizer(const std::string& path, const std::string& tokenizer,
                                      bool llama2c) {
  if (llama2c) return open_llama2c(path, tokenizer);
  ModelSource m = open_model(path);
  if (tokenizer.empty()) return m;
  if (m.format == "llama2c") return open_llama2c(path, tokenizer);
  m.vocab = load_vocab_file(tokenizer);
  return m;
}

}  // namespace kvsieve
