#include "model/weight_list.h"

#include <fmt/format.h>

namespace kvsieve {

void for_each_weight(const ModelConfig& c, const std::function<void(const WeightSpec&)>& fn) {
  const int64_t E = c.n_embd, q = c.n_head * c.head_dim, kv = c.n_head_kv * c.head_dim;
  fn({"token_embd.weight", {c.n_vocab, E}, WeightKind::kMatrix, -1, true});
  for (int64_t l = 0; l < c.n_layer; ++l) {
    auto n = [l](const char* s) { return fmt::format("blk.{}.{}", l, s); };
    fn({n("attn_norm.weight"), {E}, WeightKind::kVector, l, true});
    fn({n("attn_q.weight"), {q, E}, WeightKind::kMatrix, l, true});
    fn({n("attn_k.weight"), {kv, E}, WeightKind::kMatrix, l, true});
    fn({n("attn_v.weight"), {kv, E}, WeightKind::kMatrix, l, true});
    if (c.qkv_bias) {
      fn({n("attn_q.bias"), {q}, WeightKind::kVector, l, true});
      fn({n("attn_k.bias"), {kv}, WeightKind::kVector, l, true});
      fn({n("attn_v.bias"), {kv}, WeightKind::kVector, l, true});
    }
    fn({n("attn_output.weight"), {E, q}, WeightKind::kMatrix, l, true});
    fn({n("ffn_norm.weight"), {E}, WeightKind::kVector, l, true});
    fn({n("ffn_gate.weight"), {c.n_ff, E}, WeightKind::kMatrix, l, true});
    fn({n("ffn_up.weight"), {c.n_ff, E}, WeightKind::kMatrix, l, true});
    fn({n("ffn_down.weight"), {E, c.n_ff}, WeightKind::kMatrix, l, true});
  }
  fn({"output_norm.weight", {E}, WeightKind::kVector, -1, true});
  fn({"output.weight", {c.n_vocab, E}, WeightKind::kMatrix, -1, !c.tied_embeddings});
  // llama.cpp's per-dimension RoPE frequency divisors (Llama 3.1 files).
  fn({"rope_freqs.weight", {c.head_dim / 2}, WeightKind::kVector, -1, false});
}

}  // namespace kvsieve
