// The HTTP face of `kvsieve serve` (cpp-httplib): OpenAI's endpoints
// (/v1/completions, /v1/chat/completions, streamed as server-sent events or
// not; /v1/models), /health and /metrics; the Bearer key; OpenAI error
// objects for every failure, httplib's own (404, 413, ...) included.
#pragma once
#include <memory>

#include "kvsieve/engine.h"
#include "serve/metrics.h"
#include "serve/scheduler.h"
#include "serve/serve_options.h"

namespace kvsieve::serve {

class HttpServer {
 public:
  HttpServer(std::shared_ptr<const Engine> engine, const ServeOptions& opts, Metrics& metrics,
             Scheduler& scheduler);
  ~HttpServer();
  // Binds opts.host:opts.port (port 0: any free one); returns the port.
  // Throws kvsieve::Error when it cannot.
  int bind();
  void run();   // serves until stop()
  void stop();  // from any thread

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvsieve::serve
