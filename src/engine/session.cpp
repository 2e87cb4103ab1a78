#include "engine/session.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "engine/compressor.h"

namespace kvsieve {

Session::Session(const Model& m, ThreadPool& pool)
    : m_(m), fwd_(m, pool), cache_(m.kv_geometry()) {}

void Session::reset() {
  cache_.clear();
  n_past_ = 0;
}

const std::vector<float>& Session::prefill(const std::vector<int32_t>& ids, int64_t n_batch,
                                           std::vector<float>* all) {
  check(!ids.empty(), "prefill: empty prompt");
  check(n_batch > 0, "batch size must be positive");
  const int64_t V = m_.config().n_vocab;
  cache_.reserve(n_past_ + int64_t(ids.size()));
  if (all) all->resize(ids.size() * size_t(V));
  for (size_t b = 0; b < ids.size(); b += size_t(n_batch)) {
    const int64_t n = std::min<int64_t>(n_batch, int64_t(ids.size() - b));
    Batch batch;
    batch.ids = ids.data() + b;
    batch.n = n;
    batch.pos0 = n_past_;
    batch.all_logits = all != nullptr;
    const bool last = b + size_t(n) == ids.size();
    batch.logits = last || all;
    fwd_.run(batch, cache_, chunk_logits_, observer_);
    n_past_ += int32_t(n);
    if (all) std::copy(chunk_logits_.begin(), chunk_logits_.end(), all->begin() + b * size_t(V));
  }
  logits_.assign(chunk_logits_.end() - V, chunk_logits_.end());
  return logits_;
}

const std::vector<float>& Session::decode(int32_t id) {
  Batch batch;
  batch.ids = &id;
  batch.n = 1;
  batch.pos0 = n_past_;
  fwd_.run(batch, cache_, logits_, observer_);
  ++n_past_;
  return logits_;
}

std::vector<int32_t> generate(Session& s, const std::vector<int32_t>& prompt,
                              const GenerateParams& p,
                              const std::function<bool(int32_t)>& on_token,
                              GenerateStats* stats) {
  using clock = std::chrono::steady_clock;
  const Tokenizer* tok = s.model().tokenizer();
  Sampler sampler(p.sampler);
  const int64_t V = s.model().config().n_vocab;
  std::vector<int32_t> out;
  GenerateStats st;
  st.n_prompt = int64_t(prompt.size());
  auto t0 = clock::now();
  const std::vector<float>* logits = &s.prefill(prompt, p.n_batch);
  auto t1 = clock::now();
  st.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
  // A token chosen before the cut (LAQ decodes ahead from it) is the first
  // one generated, unless a question is read after the cut.
  int32_t first = -1;
  if (p.evictor && p.evictor->active()) {
    if (p.evictor->needs_first_token()) first = sampler.sample(logits->data(), V);
    const EvictionReport r = p.evictor->compress(s, first);
    st.evicted = true;
    st.compress_seconds = r.seconds;
    st.probe_seconds = r.probe_seconds;
    st.peak_kv_bytes = r.peak_kv_bytes;
    st.kv_bytes_before = r.kv_bytes_before;
    st.kv_bytes_after = r.kv_bytes_after;
    if (p.on_evicted) p.on_evicted(r);
    t1 = clock::now();  // decode time starts after the cut
  }
  if (!p.question.empty()) {
    first = -1;
    const auto tq = clock::now();
    logits = &s.prefill(p.question, p.n_batch);
    st.n_question = int64_t(p.question.size());
    t1 = clock::now();
    st.prefill_seconds += std::chrono::duration<double>(t1 - tq).count();
  }
  for (int64_t i = 0; i < p.n_predict; ++i) {
    const int32_t next = i == 0 && first >= 0 ? first : sampler.sample(logits->data(), V);
    if (p.stop_at_eog && tok && tok->is_eog(next)) break;
    out.push_back(next);
    if (on_token && !on_token(next)) break;
    if (i + 1 == p.n_predict) break;  // no need to run the last token
    logits = &s.decode(next);
    ++st.n_decode_steps;
    if (p.evictor && p.evictor->after_decode(s.cache())) ++st.n_recuts;
  }
  st.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  st.n_generated = int64_t(out.size());
  st.kv_bytes = s.cache().kv_bytes();
  if (stats) *stats = st;
  return out;
}

}  // namespace kvsieve
