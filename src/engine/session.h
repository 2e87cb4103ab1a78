// A conversation with a model: its KV cache, the next position, the forward
// pass and its scratch. Prefill runs the prompt in chunks; decode runs one
// token. generate() is the loop the `run` command uses.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/thread_pool.h"
#include "kv/kv_cache.h"
#include "model/forward.h"
#include "model/model.h"
#include "kv/evictor.h"
#include "model/sampler.h"

namespace kvsieve {

class Session {
 public:
  Session(const Model& m, ThreadPool& pool);

  // Runs ids at positions n_past() .. in chunks of n_batch; returns the last
  // token's logits [n_vocab]. With all_logits, `all` receives [n, n_vocab].
  const std::vector<float>& prefill(const std::vector<int32_t>& ids, int64_t n_batch = 256,
                                    std::vector<float>* all = nullptr);
  // One token at position n_past(); returns its logits [n_vocab].
  const std::vector<float>& decode(int32_t id);

  int32_t n_past() const { return n_past_; }
  const KvCache& cache() const { return cache_; }
  KvCache& cache() { return cache_; }
  const Model& model() const { return m_; }
  // Called with every layer's queries of every batch (prefill and decode),
  // e.g. Evictor::observe; null to stop.
  void set_observer(QueryObserver obs) { observer_ = std::move(obs); }
  void reset();
  // Continues from a copy of another session's state (e.g. one shared
  // prefill, then one copy per eviction method).
  void restore(const KvCache& cache, int32_t n_past) {
    cache_ = cache;
    n_past_ = n_past;
  }

 private:
  const Model& m_;
  Forward fwd_;
  KvCache cache_;
  QueryObserver observer_;
  int32_t n_past_ = 0;
  std::vector<float> logits_;
  std::vector<float> chunk_logits_;
};

class Compressor;

struct GenerateParams {
  int64_t n_predict = 128;   // new tokens at most
  int64_t n_batch = 256;     // prefill chunk
  SamplerParams sampler;
  bool stop_at_eog = true;   // stop at end-of-generation tokens
  // KV eviction (null: none). The prompt is prefilled, then the cache is cut;
  // `question` tokens, if any, are prefilled after the cut (query-agnostic);
  // decoding then runs on the kept rows. The session must observe through
  // the evictor (Session::set_observer) while the prompt runs.
  Compressor* evictor = nullptr;
  std::vector<int32_t> question;
  // Called once after the cut, with what was kept.
  std::function<void(const EvictionReport&)> on_evicted;
};

struct GenerateStats {
  int64_t n_prompt = 0;
  int64_t n_generated = 0;
  int64_t n_decode_steps = 0;  // single-token forward passes run
  double prefill_seconds = 0;
  double decode_seconds = 0;
  size_t kv_bytes = 0;       // K/V bytes held after the last step
  // With an evictor: the cut after the prompt.
  bool evicted = false;
  double compress_seconds = 0;
  size_t kv_bytes_before = 0, kv_bytes_after = 0;
  int64_t n_question = 0;
  int64_t n_recuts = 0;      // decode-time re-selections
  double probe_seconds = 0;  // LAQ lookahead / Judge Q soft tokens
  size_t peak_kv_bytes = 0;  // K/V bytes held at once during the cut
};

// Prefills `prompt` then samples up to n_predict tokens, calling on_token for
// each (return false to stop). Returns the generated ids.
std::vector<int32_t> generate(Session& s, const std::vector<int32_t>& prompt,
                              const GenerateParams& p,
                              const std::function<bool(int32_t)>& on_token,
                              GenerateStats* stats = nullptr);

}  // namespace kvsieve
