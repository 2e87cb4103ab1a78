#include "engine/context.h"

#include <algorithm>

#include "core/error.h"

namespace kvsieve {

Context::Context(const Model& m, Backend& be, DType kv_type)
    : m_(m), be_(be), fwd_(m, be), store_(be, m.kv_geometry(), kv_type) {}

void Context::record(const RecordSpec& spec) {
  const ModelConfig& c = m_.config();
  rec_ = spec.any() ? std::make_unique<Recorder>(be_, c.n_layer, c.n_head, c.head_dim, spec) : nullptr;
  paused_ = false;
}

void Context::reset() {
  store_.clear();
  if (rec_) rec_->clear();
  n_past_ = 0;
}

const std::vector<float>& Context::prefill(const std::vector<int32_t>& ids, int64_t n_batch,
                                           std::vector<float>* all) {
  check(!ids.empty(), "prefill: empty prompt");
  check(n_batch > 0, "batch size must be positive");
  const int64_t V = m_.config().n_vocab;
  store_.reserve(store_.max_rows() + int64_t(ids.size()));
  if (all) all->resize(ids.size() * size_t(V));
  Recorder* rec = paused_ ? nullptr : rec_.get();
  for (size_t b = 0; b < ids.size(); b += size_t(n_batch)) {
    const int64_t n = std::min<int64_t>(n_batch, int64_t(ids.size() - b));
    Batch batch;
    batch.ids = ids.data() + b;
    batch.n = n;
    batch.pos0 = n_past_;
    batch.all_logits = all != nullptr;
    const bool last = b + size_t(n) == ids.size();
    batch.logits = last || all;
    fwd_.run(batch, store_, rec, chunk_logits_);
    n_past_ += int32_t(n);
    if (all) std::copy(chunk_logits_.begin(), chunk_logits_.end(), all->begin() + b * size_t(V));
  }
  logits_.assign(chunk_logits_.end() - V, chunk_logits_.end());
  return logits_;
}

const std::vector<float>& Context::decode(int32_t id) {
  Batch batch;
  batch.ids = &id;
  batch.n = 1;
  batch.pos0 = n_past_;
  fwd_.run(batch, store_, paused_ ? nullptr : rec_.get(), logits_);
  ++n_past_;
  return logits_;
}

void Context::decode_batch(const std::vector<Context*>& ctxs, const int32_t* ids) {
  if (ctxs.empty()) return;
  const size_t n = ctxs.size();
  // The pass runs on the first session's backend; each store appends on
  // its own (on a GPU a stream of its own: attend_rows orders the two).
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < i; ++j) check(ctxs[j] != ctxs[i], "decode_batch: a session appears twice");
  std::vector<KvStore*> stores(n);
  std::vector<Recorder*> recs(n);
  std::vector<std::vector<float>*> logits(n);
  std::vector<int32_t> pos(n);
  for (size_t i = 0; i < n; ++i) {
    Context& c = *ctxs[i];
    check(&c.m_ == &ctxs[0]->m_, "decode_batch: the sessions run different models");
    stores[i] = &c.store_;
    recs[i] = c.paused_ ? nullptr : c.rec_.get();
    logits[i] = &c.logits_;
    pos[i] = c.n_past_;
  }
  ctxs[0]->fwd_.run_rows(ids, pos.data(), int64_t(n), stores.data(), recs.data(), logits.data());
  for (Context* c : ctxs) ++c->n_past_;
}

void Context::run_embeddings(const float* embd, int64_t m, Recorder* rec) {
  check(m > 0, "no embeddings to run");
  store_.reserve(store_.max_rows() + m);
  Batch b;
  b.embd = embd;
  b.n = m;
  b.pos0 = n_past_;
  b.logits = false;
  std::vector<float> unused;
  fwd_.run(b, store_, rec, unused);
  n_past_ += int32_t(m);
}

void Context::erase_from(int32_t pos) {
  store_.erase_from(pos);
  if (rec_) rec_->erase_rows(store_);
  n_past_ = std::min(n_past_, pos);
}

void Context::adopt(KvStore&& store, int32_t n_past) {
  store_ = std::move(store);
  n_past_ = n_past;
}

}  // namespace kvsieve
