#include "serve/job.h"

namespace kvsieve::serve {

Job::Update Job::wait(Clock::time_point until) {
  std::unique_lock lk(mu_);
  cv_.wait_until(lk, until, [&] { return finished_ || !pending_.empty(); });
  Update u;
  u.pieces.swap(pending_);
  u.finished = finished_;
  return u;
}

void Job::push(const std::string& text) {
  if (text.empty()) return;
  {
    std::lock_guard lk(mu_);
    if (ttft_seconds < 0) ttft_seconds = std::chrono::duration<double>(Clock::now() - submitted).count();
    pending_.push_back(text);
  }
  cv_.notify_all();
}

void Job::finish(const std::string& reason, const Usage& u) {
  {
    std::lock_guard lk(mu_);
    if (finished_) return;
    finish_reason = reason;
    usage = u;
    finished_ = true;
  }
  cv_.notify_all();
}

void Job::fail(const ApiError& e) {
  {
    std::lock_guard lk(mu_);
    if (finished_) return;
    error = e;
    finished_ = true;
  }
  cv_.notify_all();
}

}  // namespace kvsieve::serve
