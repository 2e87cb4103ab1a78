// The public Session: a Context with its own backend, and the Compressor of
// its eviction policy.
#include <algorithm>
#include <chrono>

#include "api/engine_impl.h"
#include "core/error.h"
#include "engine/generate.h"
#include "kv/kept_dump.h"
#include "kv/kv_store.h"

namespace kvsieve {

struct Session::Impl {
  std::shared_ptr<const Engine> engine;  // kept alive as long as the session
  SessionOptions opts;
  std::unique_ptr<Backend> be;
  std::unique_ptr<Context> ctx;
  std::unique_ptr<Compressor> comp;  // null when the policy keeps everything
  bool compressed = false;
  // start() / next_token(): the sampler and where the generation stands.
  std::unique_ptr<Sampler> step_sampler;
  GenerateOptions step_opts;
  int32_t step_first = -1;
  int64_t step_emitted = 0;
  bool step_over = true;

  // What generate(prompt, question, ...) does before its first token:
  // prefill, cut (with LAQ's first token from `sampler`), question. Returns
  // the token already chosen (-1: none) and fills st's prefill and cut.
  int32_t begin(const std::vector<int32_t>& prompt, const std::vector<int32_t>& question,
                const GenerateOptions& g, Sampler& sampler, GenerateStats& st,
                const std::function<void(const CutReport&)>& on_cut);

  CutReport cut(int32_t first, int64_t headroom) {
    CutReport out;
    out.granularity = granularity_name(opts.eviction.granularity);
    out.budget = opts.eviction.budget.describe();
    out.method = comp ? comp->evictor().policy().spec : "full";
    if (!comp) {
      out.kv_bytes_before = out.kv_bytes_after = out.peak_kv_bytes = ctx->store().kv_bytes();
      out.rows_before = ctx->store().max_rows();
      out.mean_kept = double(out.rows_before);
      return out;
    }
    check(!compressed, "the session's cache was already cut after its prompt");
    check(ctx->n_past() > 0, "nothing to cut: prefill a prompt first");
    if (comp->needs_first_token() && first < 0)
      first = Sampler::argmax(ctx->logits().data(), int64_t(ctx->logits().size()));
    const EvictionReport r = comp->compress(*ctx, first, headroom);
    compressed = true;
    out.rows_before = r.n_rows_before;
    out.mean_kept = r.kept.size() ? double(r.kept.total()) / double(r.kept.size()) : 0.0;
    out.kv_bytes_before = r.kv_bytes_before;
    out.kv_bytes_after = r.kv_bytes_after;
    out.peak_kv_bytes = r.peak_kv_bytes;
    out.seconds = r.seconds;
    out.probe_seconds = r.probe_seconds;
    out.kept_json = kept_to_json(comp->evictor(), r);
    return out;
  }
};

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

std::unique_ptr<Session> Engine::new_session(const SessionOptions& o) const {
  const Model& m = impl_->need_model();
  check(o.batch > 0 && o.batch <= (int64_t(1) << 16), "batch must be in [1, 65536], got {}", o.batch);
  check(o.threads >= 0 && o.threads <= 1024, "threads must be in [0, 1024], got {}", o.threads);
  check_eviction(o.eviction);
  auto impl = std::make_unique<Session::Impl>();
  impl->engine = shared_from_this();
  impl->opts = o;
  impl->be = impl_->make_backend(o.threads);
  impl->ctx = std::make_unique<Context>(m, *impl->be, kv_type_from_name(o.kv_type));
  if (method_cuts(o.eviction.spec, o.eviction.preset)) {
    impl->comp = std::make_unique<Compressor>(o.eviction, m);
    impl->ctx->record(impl->comp->record_spec());
  }
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

const SessionOptions& Session::options() const { return impl_->opts; }

const std::vector<float>& Session::prefill(const std::vector<int32_t>& ids, std::vector<float>* all) {
  return impl_->ctx->prefill(ids, impl_->opts.batch, all);
}

const std::vector<float>& Session::decode(int32_t id) {
  const std::vector<float>& l = impl_->ctx->decode(id);
  if (impl_->comp && impl_->compressed) impl_->comp->after_decode(*impl_->ctx);
  return l;
}

const std::vector<float>& Session::logits() const { return impl_->ctx->logits(); }

CutReport Session::compress(int32_t first_token) { return impl_->cut(first_token, 0); }

bool Session::cuts() const { return impl_->comp != nullptr; }

std::vector<int32_t> Session::generate(const GenerateOptions& g, const TokenCallback& on_token,
                                       GenerateStats* stats) {
  using clock = std::chrono::steady_clock;
  Context& ctx = *impl_->ctx;
  check(ctx.n_past() > 0 && !ctx.logits().empty(), "generate: prefill a prompt first");
  check(g.max_tokens >= 0, "max_tokens must not be negative");
  Sampler sampler({g.temperature, g.top_k, g.top_p, g.seed});
  DecodeParams dp;
  dp.max_tokens = g.max_tokens;
  dp.sampler = &sampler;
  dp.stop_at_eog = g.stop_at_eog;
  GenerateStats st;
  const auto t0 = clock::now();
  const std::vector<float> logits = ctx.logits();
  const std::vector<int32_t> out = decode_tokens(
      ctx, logits, dp, on_token,
      [&] {
        if (impl_->comp && impl_->compressed && impl_->comp->after_decode(ctx)) ++st.n_recuts;
      },
      &st.n_decode_steps);
  st.decode_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  st.n_generated = int64_t(out.size());
  st.kv_bytes = ctx.store().kv_bytes();
  if (stats) *stats = st;
  return out;
}

int32_t Session::Impl::begin(const std::vector<int32_t>& prompt, const std::vector<int32_t>& question,
                             const GenerateOptions& g, Sampler& sampler, GenerateStats& st,
                             const std::function<void(const CutReport&)>& on_cut) {
  using clock = std::chrono::steady_clock;
  check(!prompt.empty(), "generate: empty prompt");
  check(g.max_tokens >= 0, "max_tokens must not be negative");
  st = GenerateStats{};
  st.n_prompt = int64_t(prompt.size());
  // Without a cut the cache holds everything to the end: room for it now
  // (for at most 1024 new tokens: max_tokens is a limit, not a forecast), so
  // that decoding rarely grows (copies) it. A cut makes its own room.
  if (!comp)
    ctx->reserve(ctx->store().max_rows() + int64_t(prompt.size() + question.size()) +
                 std::min<int64_t>(g.max_tokens, 1024));
  auto t0 = clock::now();
  const std::vector<float>* logits = &ctx->prefill(prompt, opts.batch);
  st.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  // A token chosen before the cut (LAQ decodes ahead from it) is the first
  // one generated, unless a question is read after the cut.
  int32_t first = -1;
  if (comp) {
    if (comp->needs_first_token()) first = sampler.sample(logits->data(), int64_t(logits->size()));
    st.cut = cut(first, int64_t(question.size()) + g.max_tokens);
    st.evicted = true;
    if (on_cut) on_cut(st.cut);
  }
  if (!question.empty()) {
    first = -1;
    const auto tq = clock::now();
    ctx->prefill(question, opts.batch);
    st.n_question = int64_t(question.size());
    st.prefill_seconds += std::chrono::duration<double>(clock::now() - tq).count();
  }
  return first;
}

std::vector<int32_t> Session::generate(const std::vector<int32_t>& prompt,
                                       const std::vector<int32_t>& question,
                                       const GenerateOptions& g, const TokenCallback& on_token,
                                       GenerateStats* stats,
                                       const std::function<void(const CutReport&)>& on_cut) {
  using clock = std::chrono::steady_clock;
  Impl& s = *impl_;
  Context& ctx = *s.ctx;
  Sampler sampler({g.temperature, g.top_k, g.top_p, g.seed});
  GenerateStats st;
  const int32_t first = s.begin(prompt, question, g, sampler, st, on_cut);
  const auto t1 = clock::now();  // decode time starts after the cut and the question
  DecodeParams dp;
  dp.max_tokens = g.max_tokens;
  dp.sampler = &sampler;
  dp.stop_at_eog = g.stop_at_eog;
  dp.first = first;
  const std::vector<float> start = ctx.logits();
  const std::vector<int32_t> out = decode_tokens(
      ctx, start, dp, on_token,
      [&] {
        if (s.comp && s.comp->after_decode(ctx)) ++st.n_recuts;
      },
      &st.n_decode_steps);
  st.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  st.n_generated = int64_t(out.size());
  st.kv_bytes = ctx.store().kv_bytes();
  if (stats) *stats = st;
  return out;
}

void Session::start(const std::vector<int32_t>& prompt, const std::vector<int32_t>& question,
                    const GenerateOptions& g, GenerateStats* stats,
                    const std::function<void(const CutReport&)>& on_cut) {
  Impl& s = *impl_;
  s.step_over = true;  // until begin() succeeds
  s.step_sampler = std::make_unique<Sampler>(SamplerParams{g.temperature, g.top_k, g.top_p, g.seed});
  GenerateStats st;
  s.step_first = s.begin(prompt, question, g, *s.step_sampler, st, on_cut);
  s.step_opts = g;
  s.step_emitted = 0;
  s.step_over = g.max_tokens == 0;
  st.kv_bytes = s.ctx->store().kv_bytes();
  if (stats) *stats = st;
}

int32_t Session::next_token() {
  Impl& s = *impl_;
  if (s.step_over || !s.step_sampler) return -1;
  const std::vector<float>& lg = s.ctx->logits();
  // As decode_tokens: the token chosen before the cut comes first.
  const int32_t next = s.step_emitted == 0 && s.step_first >= 0
                           ? s.step_first
                           : s.step_sampler->sample(lg.data(), int64_t(lg.size()));
  if (s.step_opts.stop_at_eog && s.engine->is_end_of_generation(next)) {
    s.step_over = true;
    return -1;
  }
  if (++s.step_emitted >= s.step_opts.max_tokens) s.step_over = true;
  return next;
}

bool Session::done() const { return impl_->step_over; }

void Session::decode_batch(const std::vector<Session*>& sessions, const std::vector<int32_t>& ids) {
  check(sessions.size() == ids.size(), "decode_batch: {} sessions but {} tokens", sessions.size(),
        ids.size());
  if (sessions.empty()) return;
  std::vector<Context*> ctxs;
  ctxs.reserve(sessions.size());
  for (Session* s : sessions) {
    check(s != nullptr, "decode_batch: null session");
    check(s->impl_->engine == sessions[0]->impl_->engine, "decode_batch: sessions of different engines");
    ctxs.push_back(s->impl_->ctx.get());
  }
  Context::decode_batch(ctxs, ids.data());
  for (Session* s : sessions)
    if (s->impl_->comp && s->impl_->compressed) s->impl_->comp->after_decode(*s->impl_->ctx);
}

int32_t Session::n_past() const { return impl_->ctx->n_past(); }
size_t Session::kv_bytes() const { return impl_->ctx->store().kv_bytes(); }

size_t Session::peak_device_bytes() const { return impl_->be->peak_bytes(); }

size_t Session::kv_bytes_full() const {
  const ModelInfo& i = impl_->engine->info();
  return size_t(impl_->ctx->n_past()) *
         i.kv_bytes_per_token(dtype_row_bytes(impl_->ctx->store().type(), 1));
}

void Session::reset() {
  impl_->ctx->reset();
  impl_->compressed = false;
  impl_->step_over = true;
  if (impl_->comp) impl_->comp = std::make_unique<Compressor>(impl_->opts.eviction, impl_->ctx->model());
  if (impl_->comp) impl_->ctx->record(impl_->comp->record_spec());
}

}  // namespace kvsieve
