#include "engine/soft_tokens.h"

#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "io/gguf.h"

namespace kvsieve {
namespace {

uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

}  // namespace

std::string model_fingerprint(const Model& m) {
  const ModelConfig& c = m.config();
  uint64_t h = 0xcbf29ce484222325ull;
  for (int64_t v : {c.n_vocab, c.n_embd, c.n_layer, c.n_head, c.n_head_kv, c.n_ff})
    h = fnv1a(h, &v, sizeof v);
  h = fnv1a(h, c.arch.data(), c.arch.size());
  const TensorView& te = *m.weights().tok_embd;
  std::vector<float> row(size_t(c.n_embd));
  for (int64_t id : {int64_t(0), c.n_vocab / 3, c.n_vocab / 2, c.n_vocab - 1}) {
    dequantize_row(te.type, te.row_ptr(id), row.data(), c.n_embd);
    for (float x : row) {
      uint32_t u;
      std::memcpy(&u, &x, 4);
      const uint16_t b = uint16_t((u + 0x7fff + ((u >> 16) & 1)) >> 16);  // to bf16, nearest even
      h = fnv1a(h, &b, 2);
    }
  }
  return fmt::format("{:016x}", h);
}

SoftTokens soft_tokens_from_ids(const Model& m, const std::vector<int32_t>& ids,
                                const std::string& origin) {
  const ModelConfig& c = m.config();
  check(!ids.empty(), "soft tokens: no token ids to start from");
  SoftTokens s;
  s.m = int64_t(ids.size());
  s.n_embd = c.n_embd;
  s.arch = c.arch;
  s.n_vocab = c.n_vocab;
  s.n_layer = c.n_layer;
  s.fingerprint = model_fingerprint(m);
  s.origin = origin;
  s.embd.resize(size_t(s.m * s.n_embd));
  const TensorView& te = *m.weights().tok_embd;
  for (int64_t t = 0; t < s.m; ++t) {
    check(ids[size_t(t)] >= 0 && ids[size_t(t)] < c.n_vocab, "token id {} is out of range",
          ids[size_t(t)]);
    dequantize_row(te.type, te.row_ptr(ids[size_t(t)]), s.embd.data() + t * s.n_embd, s.n_embd);
  }
  return s;
}

void write_soft_tokens(const std::string& path, const SoftTokens& s) {
  check(s.m > 0 && s.n_embd > 0 && s.embd.size() == size_t(s.m * s.n_embd),
        "soft tokens: bad shape");
  GgufWriter w;
  w.set_string("general.architecture", "judgeq");
  w.set_string("judgeq.arch", s.arch);
  w.set_u64("judgeq.n_embd", uint64_t(s.n_embd));
  w.set_u64("judgeq.n_vocab", uint64_t(s.n_vocab));
  w.set_u64("judgeq.n_layer", uint64_t(s.n_layer));
  w.set_string("judgeq.fingerprint", s.fingerprint);
  w.set_string("judgeq.origin", s.origin);
  w.add_tensor("judgeq.soft_embeddings", DType::F32, {s.m, s.n_embd}, s.embd.data());
  w.write(path);
}

SoftTokens read_soft_tokens(const std::string& path) {
  GgufFile f(path);
  auto need_int = [&](const char* key) {
    auto v = f.get_int(key);
    check(v.has_value() && *v > 0, "'{}' is not a soft-token file: no {}", path, key);
    return *v;
  };
  SoftTokens s;
  s.arch = f.get_string("judgeq.arch").value_or("");
  check(!s.arch.empty(), "'{}' is not a soft-token file: no judgeq.arch", path);
  s.n_embd = need_int("judgeq.n_embd");
  s.n_vocab = need_int("judgeq.n_vocab");
  s.n_layer = need_int("judgeq.n_layer");
  s.fingerprint = f.get_string("judgeq.fingerprint").value_or("");
  s.origin = f.get_string("judgeq.origin").value_or("");
  const TensorView* t = f.tensor("judgeq.soft_embeddings");
  check(t != nullptr, "'{}' has no tensor judgeq.soft_embeddings", path);
  check(t->type == DType::F32 && t->shape.size() == 2 && t->shape[1] == s.n_embd,
        "'{}': judgeq.soft_embeddings must be f32 [m, {}], got {} {}", path, s.n_embd,
        dtype_name(t->type), shape_str(t->shape));
  s.m = t->shape[0];
  s.embd.resize(size_t(s.m * s.n_embd));
  std::memcpy(s.embd.data(), t->data, s.embd.size() * sizeof(float));
  return s;
}

void check_soft_tokens_fit(const SoftTokens& s, const Model& m, bool check_weights) {
  const ModelConfig& c = m.config();
  check(s.arch == c.arch, "soft tokens were made for a {} model, this one is {}", s.arch, c.arch);
  check(s.n_embd == c.n_embd, "soft tokens have {} dimensions, the model's hidden size is {}",
        s.n_embd, c.n_embd);
  check(s.n_vocab == c.n_vocab && s.n_layer == c.n_layer,
        "soft tokens were made for a model with vocabulary {} and {} layers, this one has {} and {}",
        s.n_vocab, s.n_layer, c.n_vocab, c.n_layer);
  if (check_weights)
    check(s.fingerprint == model_fingerprint(m),
          "soft tokens were made for other weights (fingerprint {}, this model {}); quantized "
          "copies differ too. judgeq:check=0 skips this check",
          s.fingerprint, model_fingerprint(m));
}

}  // namespace kvsieve
