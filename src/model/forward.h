// The transformer forward pass, for a batch of new tokens that extend a KV
// store: prefill chunks (n > 1) and single-token decode (n = 1) are the same
// code. Every op runs on the backend (activations f32 in its memory; weights
// in their stored type), so the same pass runs on any device.
#pragma once
#include <cstdint>
#include <functional>
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

  // One token for each of n sequences at once (a server's decode step over
  // many sessions): the weight products run on all n rows together, each
  // row's attention reads and extends its own store. Row i: ids[i] at
  // position pos[i], appended to *stores[i], recorded into recs[i] (may be
  // null); logits[i] receives its [n_vocab] logits. The stores must live in
  // memory this pass's backend can read (the same device).
  void run_rows(const int32_t* ids, const int32_t* pos, int64_t n, KvStore* const* stores,
                Recorder* const* recs, std::vector<float>* const* logits);

 private:
  void ensure_capacity(int64_t n);
  // The transformer layers over x_ (n rows at positions pos_): everything
  // but attention runs on all rows at once; attend(l) appends layer l's
  // K/V (in k_, v_) and writes att_ from q_ (run: one store for every row;
  // run_rows: one store per row).
  void layers(int64_t n, const std::function<void(int64_t)>& attend);
  // Embeds ids (or uploads embd) into x_ and fills pos_ and the RoPE tables.
  void embed(const int32_t* ids, const float* embd, int64_t n);
  // Output norm and projection of n rows of x_ starting at row first, into
  // host [n, n_vocab].
  void project(int64_t first, int64_t n, float* host_out);

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
  std::vector<float> rows_logits_;  // host [n, n_vocab] (run_rows)
  int64_t n_cap_ = 0;
};

}  // namespace kvsieve
