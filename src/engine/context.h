// One sequence being run: a model, the backend it runs on, its KV store, the
// next position, the forward pass and what that pass records for the
// eviction methods. Prefill runs a prompt in chunks; decode runs one token.
// The public Session (include/kvsieve/session.h) and every internal runner
// (eval, LAQ's lookahead, Judge Q's targets and soft tokens, the trainer)
// are built on it. Not thread-safe: one thread drives a context at a time.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "kv/kv_store.h"
#include "kv/probes.h"
#include "model/forward.h"
#include "model/model.h"

namespace kvsieve {

class Context {
 public:
  Context(const Model& m, Backend& be, DType kv_type = DType::F32);

  const Model& model() const { return m_; }
  Backend& backend() const { return be_; }
  KvStore& store() { return store_; }
  const KvStore& store() const { return store_; }
  int32_t n_past() const { return n_past_; }

  // From now on every forward pass records what `spec` asks (a new, empty
  // recorder); an empty spec stops recording. pause(true) keeps what was
  // recorded but records nothing more until pause(false).
  void record(const RecordSpec& spec);
  void pause_recording(bool paused) { paused_ = paused; }
  Recorder* recorder() { return rec_.get(); }
  const Recorder* recorder() const { return rec_.get(); }

  // Runs ids at positions n_past() .. in chunks of n_batch; returns the last
  // token's logits [n_vocab]. With `all`, receives [n, n_vocab].
  const std::vector<float>& prefill(const std::vector<int32_t>& ids, int64_t n_batch = 256,
                                    std::vector<float>* all = nullptr);
  // One token at position n_past(); returns its logits [n_vocab].
  const std::vector<float>& decode(int32_t id);
  // One token for each context (ids[i] for ctxs[i]) in one forward pass, on
  // the first context's forward pass and backend; each context's logits()
  // then holds its own. The contexts must be distinct, on one model and one
  // device.
  static void decode_batch(const std::vector<Context*>& ctxs, const int32_t* ids);
  // Runs input embeddings host [m, n_embd] at n_past() .. (no logits),
  // recording into `rec` (may be null) instead of this context's recorder.
  void run_embeddings(const float* embd, int64_t m, Recorder* rec);
  // The logits the last prefill or decode returned.
  const std::vector<float>& logits() const { return logits_; }

  // Makes room for `rows` rows per head in the store (e.g. prompt, question
  // and answer before the prompt is run), so that growing never copies it.
  void reserve(int64_t rows) { store_.reserve(rows); }
  // Drops every row at position >= pos and goes on from there.
  void erase_from(int32_t pos);
  // Continues from another store (e.g. a cut written from a shared prefill).
  void adopt(KvStore&& store, int32_t n_past);
  void reset();

 private:
  const Model& m_;
  Backend& be_;
  Forward fwd_;
  KvStore store_;
  std::unique_ptr<Recorder> rec_;
  bool paused_ = false;
  int32_t n_past_ = 0;
  std::vector<float> logits_;
  std::vector<float> chunk_logits_;
};

}  // namespace kvsieve
