// The transformer forward pass on CPU, for a batch of new tokens that extend
// a KV cache: prefill chunks (n > 1) and single-token decode (n = 1) are the
// same code. Activations are f32; weights are used in their stored type.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/thread_pool.h"
#include "kv/kv_cache.h"
#include "kv/probes.h"
#include "backend/cpu/rope.h"
#include "model/model.h"

namespace kvsieve {

struct Batch {
  const int32_t* ids = nullptr;  // [n] token ids, or
  const float* embd = nullptr;   // [n, n_embd] input embeddings (soft tokens)
  int64_t n = 0;
  int32_t pos0 = 0;              // positions pos0 .. pos0+n-1
  bool all_logits = false;       // logits for every token, else the last only
  bool logits = true;            // false: no output projection at all
};



class Forward {
 public:
  Forward(const Model& m, ThreadPool& pool);

  // Runs the batch, appending its K/V to `cache`. logits receives
  // [n, n_vocab] (all_logits) or [n_vocab] (last token).
  void run(const Batch& b, KvCache& cache, std::vector<float>& logits,
           const QueryObserver& observe_q = nullptr);

 private:
  void embed(const Batch& b);
  void attention(int64_t layer, const Batch& b, const KvCache& cache);
  void ensure_capacity(int64_t n, int64_t max_rows);

  const Model& m_;
  ThreadPool& pool_;
  const ModelConfig& c_;
  RopeFreqs rope_;  // inverse frequencies [head_dim/2], scaling applied
  // Scratch, sized for the largest batch seen (n = batch tokens):
  std::vector<float> x_;      // [n, n_embd] residual stream
  std::vector<float> xn_;     // [n, n_embd] normed
  std::vector<float> q_;      // [n, n_head*hd]
  std::vector<float> k_;      // [n, n_head_kv*hd]
  std::vector<float> v_;      // [n, n_head_kv*hd]
  std::vector<float> att_;    // [n, n_head*hd] attention output
  std::vector<float> gate_;   // [n, n_ff]
  std::vector<float> up_;     // [n, n_ff]
  std::vector<float> cos_;    // [n, hd/2]
  std::vector<float> sin_;    // [n, hd/2]
  std::vector<int32_t> pos_;  // [n]
  std::vector<float> scores_; // [threads, max_rows] attention probabilities
};

}  // namespace kvsieve
