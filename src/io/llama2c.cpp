#include "io/llama2c.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/model_source.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve {

Llama2cLayout llama2c_layout(const uint8_t* header, uint64_t file_size, const std::string& path) {
  int32_t h[7];
  std::memcpy(h, header, sizeof(h));
  const int64_t dim = h[0], hidden = h[1], n_layers = h[2], n_heads = h[3], n_kv = h[4],
                vocab_signed = h[5], seq_len = h[6];
  auto in_range = [&](const char* what, int64_t v, int64_t max) {
    check(v > 0 && v <= max, "'{}': llama2.c header: {} = {} is out of range (1..{}); not a llama2.c checkpoint?",
          path, what, v, max);
  };
  in_range("dim", dim, int64_t(1) << 17);
  in_range("hidden_dim", hidden, int64_t(1) << 20);
  in_range("n_layers", n_layers, 1024);
  in_range("n_heads", n_heads, 1024);
  in_range("n_kv_heads", n_kv, 1024);
  const int64_t vocab = vocab_signed < 0 ? -vocab_signed : vocab_signed;
  in_range("vocab_size", vocab, int64_t(1) << 24);
  in_range("seq_len", seq_len, int64_t(1) << 24);
  check(dim % n_heads == 0, "'{}': llama2.c header: dim {} is not divisible by n_heads {}", path, dim, n_heads);
  check(n_heads % n_kv == 0, "'{}': llama2.c header: n_heads {} is not a multiple of n_kv_heads {}", path,
        n_heads, n_kv);
  const int64_t hd = dim / n_heads;
  check(hd % 2 == 0, "'{}': llama2.c header: head dim {} is odd", path, hd);
  const int64_t kv_dim = n_kv * hd;

  Llama2cLayout L;
  ModelConfig& c = L.config;
  c.arch = "llama";
  c.name = std::filesystem::path(path).stem().string();
  c.n_vocab = vocab;
  c.n_embd = dim;
  c.n_layer = n_layers;
  c.n_head = n_heads;
  c.n_head_kv = n_kv;
  c.head_dim = hd;
  c.n_ff = hidden;
  c.n_ctx_train = seq_len;
  c.rms_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.rope_style = RopeStyle::kInterleaved;
  c.tied_embeddings = vocab_signed > 0;
  L.shared_classifier = vocab_signed > 0;

  // Every count below is bounded by the checks above (< 2^62 bytes), so no overflow.
  uint64_t off = kLlama2cHeaderBytes;
  auto take = [&off](uint64_t n_floats) {
    const uint64_t at = off;
    off += n_floats * 4;
    return at;
  };
  const uint64_t Lr = uint64_t(n_layers);
  L.token_embedding = take(uint64_t(vocab) * dim);
  L.rms_att = take(Lr * dim);
  L.wq = take(Lr * dim * dim);
  L.wk = take(Lr * kv_dim * dim);
  L.wv = take(Lr * kv_dim * dim);
  L.wo = take(Lr * dim * dim);
  L.rms_ffn = take(Lr * dim);
  L.w1 = take(Lr * hidden * dim);
  L.w2 = take(Lr * dim * hidden);
  L.w3 = take(Lr * hidden * dim);
  L.rms_final = take(dim);
  L.freq_cis_real = take(uint64_t(seq_len) * hd / 2);
  L.freq_cis_imag = take(uint64_t(seq_len) * hd / 2);
  if (!L.shared_classifier) L.wcls = take(uint64_t(vocab) * dim);
  L.total = off;
  if (file_size != L.total)
    fail("'{}': llama2.c checkpoint size mismatch: the header (dim {}, hidden {}, {} layers, {} heads, "
         "{} kv heads, vocab {}, seq_len {}, {} classifier) implies {} bytes, the file has {}{}",
         path, dim, hidden, n_layers, n_heads, n_kv, vocab_signed, seq_len,
         L.shared_classifier ? "shared" : "unshared", L.total, file_size,
         file_size < L.total ? " (truncated?)" : "");
  return L;
}

bool looks_like_llama2c(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size < kLlama2cHeaderBytes) return false;
  std::ifstream f(path, std::ios::binary);
  uint8_t h[kLlama2cHeaderBytes];
  if (!f.read(reinterpret_cast<char*>(h), sizeof(h))) return false;
  try {
    llama2c_layout(h, size, path);
    return true;
  } catch (const Error&) {
    return false;
  }
}

ModelSource open_llama2c(const std::string& path, const std::string& tokenizer_path) {
  auto file = std::make_shared<MappedFile>(path);
  check(file->size() >= kLlama2cHeaderBytes, "'{}': too small for a llama2.c checkpoint ({} bytes)", path,
        file->size());
  const Llama2cLayout L = llama2c_layout(file->data(), file->size(), path);
  const ModelConfig& c = L.config;

  ModelSource m;
  m.path = path;
  m.format = "llama2c";
  m.config = c;
  m.keep_alive.push_back(file);
  // A view of element `index` (counted in whole tensors of `shape`) of a stacked array.
  auto view = [&](const std::string& name, uint64_t base, std::vector<int64_t> shape, int64_t index) {
    TensorView tv;
    tv.name = name;
    tv.type = DType::F32;
    tv.shape = std::move(shape);
    tv.nbytes = size_t(tv.numel()) * 4;
    tv.data = file->data() + base + uint64_t(index) * tv.nbytes;
    m.tensors[name] = std::move(tv);
  };
  const int64_t E = c.n_embd, kv = c.n_head_kv * c.head_dim, F = c.n_ff;
  view("token_embd.weight", L.token_embedding, {c.n_vocab, E}, 0);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    auto n = [l](const char* s) { return fmt::format("blk.{}.{}", l, s); };
    view(n("attn_norm.weight"), L.rms_att, {E}, l);
    view(n("attn_q.weight"), L.wq, {E, E}, l);
    view(n("attn_k.weight"), L.wk, {kv, E}, l);
    view(n("attn_v.weight"), L.wv, {kv, E}, l);
    view(n("attn_output.weight"), L.wo, {E, E}, l);
    view(n("ffn_norm.weight"), L.rms_ffn, {E}, l);
    view(n("ffn_gate.weight"), L.w1, {F, E}, l);
    view(n("ffn_down.weight"), L.w2, {E, F}, l);
    view(n("ffn_up.weight"), L.w3, {F, E}, l);
  }
  view("output_norm.weight", L.rms_final, {E}, 0);
  if (!L.shared_classifier) view("output.weight", L.wcls, {c.n_vocab, E}, 0);

  if (!tokenizer_path.empty()) {
    VocabSpec v = vocab_from_llama2c(tokenizer_path, c.n_vocab);
    v.model = "llama";
    v.bos = 1;
    v.eos = 2;
    v.add_bos = true;
    v.add_eos = false;
    v.add_space_prefix = true;
    v.validate();
    m.vocab = std::move(v);
  }
  check_model_tensors(m);
  return m;
}

}  // namespace kvsieve
