// What `convert --type` asks for: one weight type for every matrix, or a
// K-quant mix in the manner of llama.cpp's Q4_K_M / Q5_K_M (the base type
// for most matrices, Q6_K for the ones quantization hurts most).
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "core/dtype.h"
#include "model/weight_list.h"

namespace kvsieve {

struct QuantScheme {
  DType base = DType::F32;
  bool mix = false;      // _M: Q6_K for output, and attn_v / ffn_down of some layers
  std::string name;      // "Q4_K_M", or the base type's name
};

// "f16", "q8_0", "q4_k", ... (uniform) or "q4_k_m", "q5_k_m" (mixes);
// case-insensitive; nullopt otherwise.
std::optional<QuantScheme> quant_scheme_from_name(std::string_view s);
// The names accepted, for messages.
const char* quant_scheme_names();

// The type a 2-D weight matrix gets under the scheme (before any fallback for
// rows that are not a multiple of the block size). The mix follows llama.cpp:
//   output.weight (token_embd.weight when tied to it)  -> Q6_K
//   blk.i.attn_v.weight, blk.i.ffn_down.weight        -> Q6_K when more_bits(i)
//   everything else                                   -> base
// with more_bits(i) = i < L/8 or i >= 7L/8 or (i - L/8) % 3 == 2 (L layers):
// the first and last eighth of the layers and every third one between.
DType scheme_type_for(const QuantScheme& s, const WeightSpec& w, int64_t n_layer, bool tied_embeddings);

// llama.cpp's llama_ftype number for general.file_type.
uint32_t scheme_file_type(const QuantScheme& s);

}  // namespace kvsieve
