#include "serve/scheduler.h"

#include <algorithm>
#include <cstdio>

#include "serve/text_stream.h"

namespace kvsieve::serve {

// A session being decoded, with what its request needs to be answered.
struct Scheduler::Live {
  std::shared_ptr<Job> job;
  std::unique_ptr<Session> session;
  TextStream text;
  int32_t prev = -2;   // the last token, for the next token's text
  size_t reserved = 0;
  Usage usage;
};

namespace {

size_t value_bytes(const std::string& kv_type) { return kv_type == "f32" ? 4 : 2; }

// Rows a cut keeps per head of a prompt of n rows (the budget conventions
// of policy.h), for the estimate made before the cut.
int64_t kept_rows(const Budget& b, int64_t n) {
  if (!b.by_ratio()) return std::min(b.tokens, n);
  return std::min<int64_t>(n, int64_t(double(n) * (1.0 - b.ratio)) + 1);
}

}  // namespace

Scheduler::Scheduler(std::shared_ptr<const Engine> engine, const ServeOptions& opts, Metrics& metrics)
    : engine_(std::move(engine)), opts_(opts), metrics_(metrics) {
  row_bytes_full_ = engine_->info().kv_bytes_per_token(value_bytes(opts_.kv_type));
  for (int i = 0; i < std::max(1, opts_.prefill_workers); ++i) threads_.emplace_back([this] { prefill_loop(); });
  threads_.emplace_back([this] { decode_loop(); });
  std::lock_guard lk(mu_);
  publish_gauges();
}

Scheduler::~Scheduler() { shutdown(); }

size_t Scheduler::admission_bytes(const Job& j) const {
  const int64_t n_ctx = int64_t(j.prompt.context.size());
  const int64_t grow = int64_t(j.prompt.question.size()) + j.gen.max_tokens;
  if (!method_cuts(j.eviction.spec, j.eviction.preset)) return size_t(n_ctx + grow) * row_bytes_full_;
  // A query-head cut stores K/V per query head: more bytes per row.
  const ModelInfo& i = engine_->info();
  const size_t row_after = j.eviction.granularity == Granularity::kQueryHead
                               ? row_bytes_full_ / size_t(i.n_head_kv) * size_t(i.n_head)
                               : row_bytes_full_;
  const size_t before = size_t(n_ctx) * row_bytes_full_;
  const size_t after = size_t(kept_rows(j.eviction.budget, n_ctx) + grow) * row_after;
  return std::max(before, after);
}

void Scheduler::submit(const std::shared_ptr<Job>& job) {
  const size_t need = admission_bytes(*job);
  if (opts_.kv_memory && need > opts_.kv_memory) {
    metrics_.rejected("too_large");
    throw ApiError(400,
                   "the request's KV cache needs " + std::to_string(need) + " bytes at its largest; the server "
                   "has " + std::to_string(opts_.kv_memory) + " (--kv-memory): shorten the prompt or max_tokens, "
                   "or cut the cache to a smaller budget",
                   "invalid_request_error", "kv", "kv_memory_exceeded");
  }
  std::lock_guard lk(mu_);
  if (stop_) throw ApiError(503, "the server is shutting down", "server_error", "", "shutting_down");
  if (queue_.size() >= opts_.limits.max_queue) {
    metrics_.rejected("queue_full");
    throw ApiError(503,
                   "the server is busy: " + std::to_string(queue_.size()) +
                       " requests are waiting for KV memory or a session (--max-queue); retry later",
                   "server_error", "", "queue_full");
  }
  queue_.push_back(job);
  publish_gauges();
  admit_cv_.notify_all();
}

bool Scheduler::head_fits() const {
  if (queue_.empty() || prefilling_ + decoding_ >= opts_.parallel) return false;
  return !opts_.kv_memory || reserved_ + admission_bytes(*queue_.front()) <= opts_.kv_memory;
}

void Scheduler::publish_gauges() {
  metrics_.set_kv(decoding_bytes_, reserved_, opts_.kv_memory);
  metrics_.set_sessions(int64_t(queue_.size()), prefilling_, decoding_);
}

void Scheduler::prefill_loop() {
  for (;;) {
    std::shared_ptr<Job> job;
    size_t reserved = 0;
    {
      std::unique_lock lk(mu_);
      admit_cv_.wait(lk, [&] {
        // Requests whose handler gave up leave the queue first.
        const size_t before = queue_.size();
        queue_.erase(std::remove_if(queue_.begin(), queue_.end(), [](const auto& j) { return j->cancelled(); }),
                     queue_.end());
        if (queue_.size() != before) publish_gauges();
        return stop_ || head_fits();
      });
      if (stop_) return;
      job = queue_.front();
      queue_.pop_front();
      reserved = admission_bytes(*job);
      reserved_ += reserved;
      ++prefilling_;
      publish_gauges();
    }
    auto live = std::make_unique<Live>();
    live->job = job;
    live->text = TextStream(job->stop);
    live->prev = job->prompt.context.back();  // as `kvsieve run`
    try {
      SessionOptions so;
      so.threads = opts_.threads;
      so.kv_type = opts_.kv_type;
      so.eviction = job->eviction;
      live->session = engine_->new_session(so);
      GenerateStats st;
      const size_t grow_rows = job->prompt.question.size() + size_t(job->gen.max_tokens);
      live->session->start(job->prompt.context, job->prompt.question, job->gen, &st, [&](const CutReport& r) {
        // The cut freed memory: shrink the reservation to the cut cache and
        // its room to grow, and let waiting requests in now.
        const size_t rows = std::max<size_t>(1, size_t(r.mean_kept + 0.5));
        const size_t per_row = r.kv_bytes_after / rows;  // the cut layout's bytes per position
        const size_t now = r.kv_bytes_after + grow_rows * std::max(per_row, size_t(1));
        metrics_.cut(job->kv_label, r.seconds + r.probe_seconds, r.kv_bytes_before, r.kv_bytes_after);
        std::lock_guard lk(mu_);
        reserved_ = reserved_ - std::min(reserved_, reserved) + now;
        reserved = now;
        publish_gauges();
        admit_cv_.notify_all();
      });
      metrics_.prefill(st.n_prompt + st.n_question, st.prefill_seconds);
      Usage& u = live->usage;
      u.prompt_tokens = st.n_prompt + st.n_question;
      u.prefill_seconds = st.prefill_seconds;
      u.kv_method = st.evicted ? st.cut.method : "full";
      u.kv_budget = st.evicted ? st.cut.budget : "";
      u.cut_seconds = st.cut.seconds;
      u.probe_seconds = st.cut.probe_seconds;
      live->reserved = reserved;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kvsieve serve: a request failed in prefill: %s\n", e.what());
      job->fail(ApiError(500, std::string("prefill failed: ") + e.what(), "server_error"));
      live.reset();
    }
    std::lock_guard lk(mu_);
    --prefilling_;
    if (live && stop_) {  // the decode thread is gone
      job->fail(ApiError(503, "the server is shutting down", "server_error", "", "shutting_down"));
      live.reset();
    }
    if (live) {
      ++decoding_;
      arrivals_.push_back(std::move(live));
      decode_cv_.notify_one();
    } else {
      reserved_ -= std::min(reserved_, reserved);
      admit_cv_.notify_all();
    }
    publish_gauges();
  }
}

void Scheduler::decode_loop() {
  std::vector<std::unique_ptr<Live>> active;
  std::vector<Session*> batch;
  std::vector<int32_t> ids;
  std::vector<Live*> rows;
  auto end = [&](Live& l, const std::string& reason) {
    l.job->push(l.text.take(true));
    l.usage.kv_bytes_kept = l.session->kv_bytes();
    l.usage.kv_bytes_full = l.session->kv_bytes_full();
    l.job->finish(reason, l.usage);
  };
  for (;;) {
    {
      std::unique_lock lk(mu_);
      decode_cv_.wait(lk, [&] { return stop_ || !arrivals_.empty() || !active.empty(); });
      if (stop_) break;
      for (auto& a : arrivals_) active.push_back(std::move(a));
      arrivals_.clear();
    }
    // Pick each session's next token; those that go on form the batch.
    batch.clear();
    ids.clear();
    rows.clear();
    int64_t emitted = 0;
    for (auto& lp : active) {
      Live& l = *lp;
      if (l.job->cancelled()) {
        l.job->fail(ApiError(499, "cancelled", "server_error"));
        l.session.reset();
        continue;
      }
      const int32_t id = l.session->next_token();
      if (id < 0) {
        end(l, "stop");  // end of generation
        l.session.reset();
        continue;
      }
      ++emitted;
      ++l.usage.completion_tokens;
      const bool stopped = l.text.add(engine_->token_text(id, l.prev));
      l.prev = id;
      l.job->push(l.text.take(stopped));
      if (stopped || l.session->done()) {
        end(l, stopped ? "stop" : "length");
        l.session.reset();
        continue;
      }
      batch.push_back(l.session.get());
      ids.push_back(id);
      rows.push_back(&l);
    }
    metrics_.generated(emitted);
    if (!batch.empty()) {
      const auto t0 = Clock::now();
      try {
        Session::decode_batch(batch, ids);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "kvsieve serve: a decode step failed: %s\n", e.what());
        for (Live* l : rows) {
          l->job->fail(ApiError(500, std::string("decode failed: ") + e.what(), "server_error"));
          l->session.reset();
        }
      }
      metrics_.decode_step(int64_t(batch.size()), std::chrono::duration<double>(Clock::now() - t0).count());
    }
    // Sessions that ended free their memory and slot now.
    size_t freed = 0, held = 0;
    int64_t n_ended = 0;
    for (auto& lp : active) {
      if (lp->session) {
        held += lp->session->kv_bytes();
      } else {
        freed += lp->reserved;
        ++n_ended;
      }
    }
    active.erase(std::remove_if(active.begin(), active.end(), [](const auto& l) { return !l->session; }),
                 active.end());
    std::lock_guard lk(mu_);
    decoding_bytes_ = held;
    if (n_ended) {
      reserved_ -= std::min(reserved_, freed);
      decoding_ -= n_ended;
      admit_cv_.notify_all();
    }
    publish_gauges();
  }
  // Stopping: whatever is still live is told so.
  for (auto& l : active) l->job->fail(ApiError(503, "the server is shutting down", "server_error", "", "shutting_down"));
}

void Scheduler::shutdown() {
  {
    std::lock_guard lk(mu_);
    if (stop_ && threads_.empty()) return;
    stop_ = true;
    for (auto& j : queue_) j->fail(ApiError(503, "the server is shutting down", "server_error", "", "shutting_down"));
    queue_.clear();
    for (auto& a : arrivals_) a->job->fail(ApiError(503, "the server is shutting down", "server_error", "", "shutting_down"));
    arrivals_.clear();
  }
  admit_cv_.notify_all();
  decode_cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace kvsieve::serve
