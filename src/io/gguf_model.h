// ModelConfig <-> GGUF metadata, in one place so the reader and the writer
// agree on every key:
//   general.architecture ("llama" | "qwen2"), general.name,
//   {arch}.context_length, embedding_length, block_count, feed_forward_length,
//   {arch}.attention.head_count, head_count_kv, layer_norm_rms_epsilon,
//   {arch}.attention.key_length / value_length (head_dim), rope.dimension_count,
//   {arch}.rope.freq_base, {arch}.vocab_size, {arch}.attention.sliding_window,
//   {arch}.rope.scaling.type ("none" | "linear"), rope.scaling.factor,
//   rope.scaling.original_context_length,
//   kvsieve.rope.scaling.* for llama3 scaling (type, factor, low_freq_factor,
//   high_freq_factor, original_context_length): llama.cpp aborts on an unknown
//   {arch}.rope.scaling.type, so llama3 parameters live under our own prefix
//   and llama.cpp reads the rope_freqs.weight tensor instead.
// rope_style follows the architecture: interleaved for llama, neox for qwen2.
#pragma once
#include <string>
#include <vector>

#include "model/model_config.h"

namespace kvsieve {

class GgufFile;
class GgufWriter;

// Reads the hyper-parameters; n_vocab falls back to the token list or the
// embedding's rows when {arch}.vocab_size is absent. Validated; Error names the file.
ModelConfig config_from_gguf(const GgufFile& f);

// Writes the keys above (not general.file_type nor the tokenizer).
void config_to_gguf(const ModelConfig& c, GgufWriter& w);

// llama.cpp's per-dimension frequency divisors for llama3 scaling
// [head_dim/2]: 1 for short wavelengths, factor for long ones, a smooth blend
// between (what its converter stores as rope_freqs.weight).
std::vector<float> llama3_rope_freq_factors(const ModelConfig& c);

}  // namespace kvsieve
