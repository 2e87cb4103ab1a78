#include "serve/http_server.h"

#include <httplib.h>

#include <chrono>
#include <ctime>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "serve/api_error.h"
#include "serve/job.h"
#include "serve/prompt.h"
#include "serve/request.h"

namespace kvsieve::serve {
namespace {

using nlohmann::json;

// Generated text may end inside a UTF-8 character (a byte token): the JSON
// gets U+FFFD there instead of an exception.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dump(error_json(e)), "application/json");
}

std::string random_id(const char* prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}{:016x}", prefix, rng());
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          // kvsieve's: what the cut kept of the cache, and what it cost.
          {"kv_method", u.kv_method},
          {"kv_budget", u.kv_budget},
          {"kv_bytes_full", u.kv_bytes_full},
          {"kv_bytes_kept", u.kv_bytes_kept},
          {"kv_cut_seconds", u.cut_seconds},
          {"kv_probe_seconds", u.probe_seconds},
          {"prefill_seconds", u.prefill_seconds}};
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() != b.size();
  for (size_t i = 0; i < a.size(); ++i) diff |= (unsigned char)(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

}  // namespace

struct HttpServer::Impl {
  std::shared_ptr<const Engine> engine;
  ServeOptions opts;
  Metrics& metrics;
  Scheduler& scheduler;
  httplib::Server svr;
  std::time_t started = std::time(nullptr);

  Impl(std::shared_ptr<const Engine> e, const ServeOptions& o, Metrics& m, Scheduler& s)
      : engine(std::move(e)), opts(o), metrics(m), scheduler(s) {}

  void routes();
  void generate(const httplib::Request& req, httplib::Response& res, Endpoint ep);
  json choice(Endpoint ep, const std::string& text, const json& finish, bool delta) const;
  bool stream(const std::shared_ptr<Job>& job, Endpoint ep, const std::string& id, bool include_usage,
              httplib::DataSink& sink);
};

json HttpServer::Impl::choice(Endpoint ep, const std::string& text, const json& finish, bool delta) const {
  json c = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish}};
  if (ep == Endpoint::kCompletions) {
    c["text"] = text;
  } else if (delta) {
    c["delta"] = text.empty() ? json::object() : json{{"content", text}};
  } else {
    c["message"] = {{"role", "assistant"}, {"content", text}};
  }
  return c;
}

void HttpServer::Impl::generate(const httplib::Request& req, httplib::Response& res, Endpoint ep) {
  const char* name = ep == Endpoint::kChat ? "chat.completions" : "completions";
  int status = 200;
  try {
    const ParsedRequest r = parse_request(req.body, ep, opts);
    auto job = std::make_shared<Job>();
    job->prompt = build_prompt(*engine, r, opts);
    job->gen = r.gen;
    job->stop = r.stop;
    job->eviction = r.eviction;
    job->kv_label = r.kv_label;
    job->deadline = Clock::now() + std::chrono::milliseconds(int64_t(opts.limits.timeout_seconds * 1000));
    scheduler.submit(job);
    const std::string id = random_id(ep == Endpoint::kChat ? "chatcmpl-" : "cmpl-");
    if (r.stream) {
      res.set_header("Cache-Control", "no-cache");
      const bool include_usage = r.include_usage;
      res.set_chunked_content_provider(
          "text/event-stream",
          [this, job, ep, id, include_usage](size_t, httplib::DataSink& sink) {
            return stream(job, ep, id, include_usage, sink);
          },
          // However the response ends (the client gone before a byte was
          // sent too), the session is let go.
          [job](bool) { job->cancel(); });
    } else {
      std::string text;
      for (;;) {
        const Job::Update u = job->wait(job->deadline);
        for (const std::string& piece : u.pieces) text += piece;
        if (u.finished) break;
        if (Clock::now() >= job->deadline) {
          job->cancel();
          throw ApiError(408, fmt::format("the request took longer than the server's --timeout ({} s)",
                                          opts.limits.timeout_seconds),
                         "invalid_request_error", "", "timeout");
        }
      }
      if (job->error) throw *job->error;
      json body = {{"id", id},
                   {"object", ep == Endpoint::kChat ? "chat.completion" : "text_completion"},
                   {"created", std::time(nullptr)},
                   {"model", opts.model_id},
                   {"choices", json::array({choice(ep, text, job->finish_reason, false)})},
                   {"usage", usage_json(job->usage)}};
      res.set_content(dump(body), "application/json");
    }
  } catch (const ApiError& e) {
    status = e.status;
    send_error(res, e);
  }
  metrics.request(name, status);
}

bool HttpServer::Impl::stream(const std::shared_ptr<Job>& job, Endpoint ep, const std::string& id,
                              bool include_usage, httplib::DataSink& sink) {
  const std::time_t created = std::time(nullptr);
  auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
  auto event = [&](const json& j) { return write("data: " + dump(j) + "\n\n"); };
  auto chunk = [&](json choices) {
    return json{{"id", id},
                {"object", ep == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
                {"created", created},
                {"model", opts.model_id},
                {"choices", std::move(choices)}};
  };
  auto gone = [&] {  // the client left: free the session
    job->cancel();
    return false;
  };
  if (ep == Endpoint::kChat) {
    json c = choice(ep, "", nullptr, true);
    c["delta"] = {{"role", "assistant"}, {"content", ""}};
    if (!event(chunk(json::array({c})))) return gone();
  }
  auto last_write = Clock::now();
  for (;;) {
    const Job::Update u = job->wait(std::min(job->deadline, Clock::now() + std::chrono::seconds(1)));
    for (const std::string& piece : u.pieces) {
      if (!event(chunk(json::array({choice(ep, piece, nullptr, true)})))) return gone();
      last_write = Clock::now();
    }
    if (u.finished) break;
    if (Clock::now() >= job->deadline) {
      job->cancel();
      event(error_json(ApiError(408, fmt::format("the request took longer than the server's --timeout ({} s)",
                                                 opts.limits.timeout_seconds),
                                "invalid_request_error", "", "timeout")));
      write("data: [DONE]\n\n");
      sink.done();
      return true;
    }
    // While waiting (queue, prefill) a comment line every second finds a
    // client that has gone away; SSE clients ignore comments.
    if (Clock::now() - last_write >= std::chrono::seconds(1)) {
      if (!write(": waiting\n\n")) return gone();
      last_write = Clock::now();
    }
  }
  if (job->error) {
    event(error_json(*job->error));
  } else {
    if (!event(chunk(json::array({choice(ep, "", job->finish_reason, true)})))) return gone();
    if (include_usage) {
      json last = chunk(json::array());
      last["usage"] = usage_json(job->usage);
      if (!event(last)) return gone();
    }
  }
  write("data: [DONE]\n\n");
  sink.done();
  return true;
}

void HttpServer::Impl::routes() {
  svr.set_payload_max_length(opts.limits.max_body_bytes);
  svr.set_keep_alive_max_count(1000);
  const int n_threads =
      opts.http_threads > 0 ? opts.http_threads : int(opts.limits.max_queue) + opts.parallel + 8;
  svr.new_task_queue = [n_threads] { return new httplib::ThreadPool(size_t(n_threads)); };

  svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (opts.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    if (auth.rfind("Bearer ", 0) == 0 && constant_time_equal(auth.substr(7), opts.api_key))
      return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, ApiError(401, auth.empty() ? "no API key: send Authorization: Bearer KEY"
                                                : "the API key is not valid",
                             "invalid_request_error", "", "invalid_api_key"));
    metrics.request("unauthorized", 401);
    return httplib::Server::HandlerResponse::Handled;
  });
  // httplib's own answers (no route, body too large, a request it cannot
  // read) get an OpenAI error object too.
  svr.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                    httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg;
    if (res.status == 404)
      msg = "no such endpoint: " + req.method + " " + req.path;
    else if (res.status == 413 && req.get_header_value("Content-Type") == "application/x-www-form-urlencoded")
      // httplib reads form bodies itself, up to 8 KiB (curl -d sends one).
      msg = "a form-encoded body is limited to 8192 bytes: send the JSON with Content-Type: application/json";
    else if (res.status == 413)
      msg = fmt::format("the request body is larger than the server takes ({} bytes, --max-body-bytes)",
                        opts.limits.max_body_bytes);
    else
      msg = fmt::format("the request could not be read (HTTP {})", res.status);
    const int status = res.status;
    send_error(res, ApiError(status, msg, status >= 500 ? "server_error" : "invalid_request_error"));
    metrics.request("other", status);
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    std::fprintf(stderr, "kvsieve serve: internal error: %s\n", what.c_str());
    send_error(res, ApiError(500, "internal error: " + what, "server_error"));
    metrics.request("other", 500);
  });

  svr.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& r) {
    generate(q, r, Endpoint::kCompletions);
  });
  svr.Post("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& r) {
    generate(q, r, Endpoint::kChat);
  });
  auto model_json = [this] {
    return json{{"id", opts.model_id}, {"object", "model"}, {"created", started}, {"owned_by", "kvsieve"}};
  };
  svr.Get("/v1/models", [this, model_json](const httplib::Request&, httplib::Response& res) {
    res.set_content(dump({{"object", "list"}, {"data", json::array({model_json()})}}), "application/json");
    metrics.request("models", 200);
  });
  svr.Get(R"(/v1/models/(.+))", [this, model_json](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != opts.model_id) {
      send_error(res, ApiError(404, "The model '" + std::string(req.matches[1]) + "' does not exist",
                               "invalid_request_error", "model", "model_not_found"));
      metrics.request("models", 404);
      return;
    }
    res.set_content(dump(model_json()), "application/json");
    metrics.request("models", 200);
  });
  svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json");
    metrics.request("health", 200);
  });
  svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.prometheus(), "text/plain; version=0.0.4");
  });
}

HttpServer::HttpServer(std::shared_ptr<const Engine> engine, const ServeOptions& opts, Metrics& metrics,
                       Scheduler& scheduler)
    : impl_(std::make_unique<Impl>(std::move(engine), opts, metrics, scheduler)) {
  impl_->routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  const ServeOptions& o = impl_->opts;
  if (o.port == 0) {
    const int port = impl_->svr.bind_to_any_port(o.host);
    if (port < 0) throw Error(fmt::format("cannot listen on {} (any port)", o.host));
    return port;
  }
  if (!impl_->svr.bind_to_port(o.host, o.port))
    throw Error(fmt::format("cannot listen on {}:{} (in use, or not an address of this machine?)", o.host, o.port));
  return o.port;
}

void HttpServer::run() { impl_->svr.listen_after_bind(); }
void HttpServer::stop() { impl_->svr.stop(); }

}  // namespace kvsieve::serve
