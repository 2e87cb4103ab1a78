// The transformer forward pass, for a batch of new tokens that extend a KV
// store: prefill chunks (n > 1) and single-token decode (n = 1) are the same
// code. Every op runs on the backend (activations f32 in its memory; weights
// in their stored type), so the same pass runs on any device.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "kv/kv_store.h"
#include "kv/probes.h"
#include "model/model.h"

namespace kvsieve {

struct Batch {
  const int32_t* ids = nullptr;  // host [n] token ids, or
  const float* embd = nullptr;   // host [n, n_embd] input embeddings (soft tokens)
  int64_t n = 0;
  int32_t pos0 = 0;              // positions pos0 .. pos0+n-1
  bool all_logits = false;       // logits for every token, else the last only
  bool logits = true;            // false: no output projection at all
};

class Forward {
 public:
  Forward(const Model& m, Backend& be);

  // Runs the batch, appending its K/V to `store`. rec, when given, records
  // what the eviction methods need (the last queries; H2O's column sums,
  // added inside the attention). logits (host) receives [n, n_vocab]
  // (all_logits) or [n_vocab] (the last token).
  void run(const Batch& b, KvStore& store, Recorder* rec, std::vector<float>& logits);

 private:
  void ensure_capacity(int64_t n);

  const Model& m_;
  Backend& be_;
  const ModelConfig& c_;
  RopeFreqs rope_;  // inverse frequencies [head_dim/2], scaling applied
  // Scratch in the backend's memory, sized for the largest batch seen (n):
  DeviceArray<float> x_;      // [n, n_embd] residual stream
  DeviceArray<float> xn_;     // [n, n_embd] normed
  DeviceArray<float> q_;      // [n, n_head, hd]
  DeviceArray<float> k_;      // [n, n_head_kv, hd]
  DeviceArray<float> v_;      // [n, n_head_kv, hd]
  DeviceArray<float> att_;    // [n, n_head, hd] attention output
  DeviceArray<float> gate_;   // [n, n_ff]
  DeviceArray<float> up_;     // [n, n_ff]
  DeviceArray<float> cos_;    // [n, hd/2]
  DeviceArray<float> sin_;    // [n, hd/2]
  DeviceArray<float> out_;    // [n, n_vocab] logits (devices other than the host)
  std::vector<int32_t> pos_;  // host [n]
  int64_t n_cap_ = 0;
};

}  // namespace kvsieve
