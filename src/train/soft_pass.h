// Judge Q training: the forward pass of m soft tokens after a prompt whose
// K/V are held (constants), their attention over the prompt positions per
// layer and query head, and the gradient of a loss on that attention with
// respect to the soft embeddings only (the model is frozen, no weight
// gradients). The cost per step is that of a few passes over m rows, not the
// prompt.
//
// Shapes (m soft rows, d = n_embd, H query heads, KV heads, hd head_dim,
// n prompt rows, L layers):
//   E     [m, d]        soft embeddings (the input of layer 0)
//   maps  [L, H, n]     mean over the m soft rows of their attention
//                       probabilities on prompt position j (each soft row
//                       attends to the prompt and, causally, to earlier soft rows)
//
// T is double for gradient checks and float for training; weights are read
// in their stored type and widened row by row. In float the soft rows'
// attention is the backend's probe attention (the one attention routine of
// kvsieve); in double it is written out here, as the reference. The pass runs
// on the host: it needs a backend whose memory is the host's (the CPU).
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "core/thread_pool.h"
#include "kv/kv_store.h"
#include "model/model.h"

namespace kvsieve {

struct AttentionMaps {
  int64_t L = 0, H = 0, n = 0;
  std::vector<double> a;  // [L, H, n]
  double& at(int64_t l, int64_t h, int64_t j) { return a[size_t((l * H + h) * n + j)]; }
  double at(int64_t l, int64_t h, int64_t j) const { return a[size_t((l * H + h) * n + j)]; }
  void reset(int64_t L_, int64_t H_, int64_t n_) {
    L = L_, H = H_, n = n_;
    a.assign(size_t(L * H * n), 0.0);
  }
};

template <typename T>
class SoftPass {
 public:
  // prompt: the store after prefilling the prompt (one row per KV head per
  // position 0..n-1, no replication), on `be`. All must outlive the pass.
  SoftPass(const Model& m, const KvStore& prompt, Backend& be);

  // Runs E [m, d]; fills maps and keeps what backward() needs.
  void forward(const T* E, int64_t m, AttentionMaps& maps);
  // dE [m, d] = d loss / d E, given d loss / d maps (same shape as maps).
  void backward(const AttentionMaps& dmaps, T* dE);

  int64_t prompt_len() const { return n_; }

 private:
  struct Layer {  // activations of one layer, all [m, ...]
    std::vector<T> x, r;           // input, its RMS factors [m]
    std::vector<T> xn;             // normed input
    std::vector<T> q, k, v;        // after bias and RoPE (q, k)
    std::vector<T> p;              // [m, H, n + m] attention probabilities
    std::vector<T> o;              // attention output [m, H*hd]
    std::vector<T> x2, r2, xn2;    // after attention; its RMS factors; normed
    std::vector<T> gate, up;       // [m, n_ff]
  };
  // Keys and values [n, head_dim] of KV head g of layer l: the store's own
  // rows (float), or f32 host copies of them (double).
  const void* prompt_k(int64_t l, int64_t g) const;
  const void* prompt_v(int64_t l, int64_t g) const;

  const Model& model_;
  const KvStore& prompt_;
  Backend& be_;
  ThreadPool& pool_;
  std::vector<std::vector<float>> k64_, v64_;  // [L * KV][n * head_dim], T = double only
  int64_t n_ = 0, m_ = 0;
  std::vector<T> cos_, sin_;  // [m, hd/2] of positions n .. n+m-1
  std::vector<Layer> layers_;
};

extern template class SoftPass<float>;
extern template class SoftPass<double>;

}  // namespace kvsieve
