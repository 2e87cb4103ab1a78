#include "serve/request.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include <nlohmann/json.hpp>

#include "serve/api_error.h"

namespace kvsieve::serve {
namespace {

using nlohmann::json;

// Deeper nesting than any valid request has; refusing it keeps the
// recursive parser off the end of the stack.
constexpr int kMaxDepth = 32;

const char* type_name(const json& v) {
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

// A field that is present and not null, else nullptr.
const json* field(const json& obj, const char* name) {
  auto it = obj.find(name);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

int64_t as_int(const json& v, const std::string& param, int64_t lo, int64_t hi) {
  // 16.0 is an integer to JSON's eye; 16.5 and "16" are not.
  int64_t x = 0;
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
      throw bad_request(param + " is out of range", param);
    x = v.get<int64_t>();
  } else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
             std::fabs(v.get<double>()) < 9e15) {
    x = int64_t(v.get<double>());
  } else {
    throw bad_request(param + " must be an integer, not " + type_name(v), param);
  }
  if (x < lo || x > hi)
    throw bad_request(param + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                          "], got " + std::to_string(x),
                      param);
  return x;
}

double as_number(const json& v, const std::string& param, double lo, double hi) {
  if (!v.is_number()) throw bad_request(param + " must be a number, not " + type_name(v), param);
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi))
    throw bad_request(param + " must be in [" + json(lo).dump() + ", " + json(hi).dump() + "], got " +
                          json(x).dump(),
                      param);
  return x;
}

bool as_bool(const json& v, const std::string& param) {
  if (!v.is_boolean()) throw bad_request(param + " must be a boolean, not " + type_name(v), param);
  return v.get<bool>();
}

std::string as_string(const json& v, const std::string& param) {
  if (!v.is_string()) throw bad_request(param + " must be a string, not " + type_name(v), param);
  return v.get<std::string>();
}

// Fields of OpenAI's API that change what a client gets back and that
// kvsieve does not do: refused rather than ignored (a silent default would
// be a wrong answer). `ok` says which values amount to "not asked for".
void refuse_unsupported(const json& body) {
  struct Field {
    const char* name;
    bool (*ok)(const json&);
  };
  static const Field fields[] = {
      {"logprobs", [](const json& v) { return v.is_boolean() ? !v.get<bool>() : v == json(0); }},
      {"top_logprobs", [](const json& v) { return v == json(0); }},
      {"echo", [](const json& v) { return v == json(false); }},
      {"best_of", [](const json& v) { return v == json(1); }},
      {"suffix", [](const json& v) { return v.is_string() && v.get<std::string>().empty(); }},
      {"logit_bias", [](const json& v) { return v.is_object() && v.empty(); }},
      {"presence_penalty", [](const json& v) { return v.is_number() && v.get<double>() == 0; }},
      {"frequency_penalty", [](const json& v) { return v.is_number() && v.get<double>() == 0; }},
      {"tools", [](const json& v) { return v.is_array() && v.empty(); }},
      {"functions", [](const json& v) { return v.is_array() && v.empty(); }},
      {"tool_choice", [](const json& v) { return v == json("none"); }},
      {"function_call", [](const json& v) { return v == json("none"); }},
      {"response_format",
       [](const json& v) { return v.is_object() && v.value("type", json()) == json("text"); }},
  };
  for (const Field& f : fields)
    if (const json* v = field(body, f.name); v && !f.ok(*v))
      throw bad_request(std::string(f.name) + " is not supported by this server", f.name,
                        "unsupported_parameter");
}

std::string message_content(const json& m, const std::string& param) {
  const json* c = field(m, "content");
  if (!c) throw bad_request(param + ".content is required", param + ".content");
  if (c->is_string()) return c->get<std::string>();
  // The list form: only text parts (no images here).
  if (!c->is_array())
    throw bad_request(param + ".content must be a string or an array of text parts, not " + type_name(*c),
                      param + ".content");
  std::string text;
  for (size_t i = 0; i < c->size(); ++i) {
    const json& part = (*c)[i];
    const std::string p = param + ".content[" + std::to_string(i) + "]";
    if (!part.is_object() || part.value("type", json()) != json("text") || !field(part, "text"))
      throw bad_request(p + " must be {\"type\": \"text\", \"text\": ...} (only text is supported)", p);
    text += as_string(part["text"], p + ".text");
  }
  return text;
}

std::vector<Engine::ChatTurn> parse_messages(const json& body) {
  const json* msgs = field(body, "messages");
  if (!msgs) throw bad_request("messages is required", "messages");
  if (!msgs->is_array()) throw bad_request(std::string("messages must be an array, not ") + type_name(*msgs), "messages");
  if (msgs->empty()) throw bad_request("messages must not be empty", "messages");
  std::vector<Engine::ChatTurn> out;
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& m = (*msgs)[i];
    const std::string p = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw bad_request(p + " must be an object, not " + type_name(m), p);
    const json* role = field(m, "role");
    if (!role) throw bad_request(p + ".role is required", p + ".role");
    std::string r = as_string(*role, p + ".role");
    if (r == "developer") r = "system";  // OpenAI's newer name for it
    if (r != "system" && r != "user" && r != "assistant")
      throw bad_request(p + ".role must be system, user or assistant, not '" + r + "'", p + ".role");
    if (r == "system" && i != 0) throw bad_request("only the first message may be a system message", p + ".role");
    out.push_back({r, message_content(m, p)});
  }
  if (out.back().role != "user")
    throw bad_request("the last message must be the user's", "messages[" + std::to_string(out.size() - 1) + "].role");
  return out;
}

void parse_prompt(const json& body, ParsedRequest& r) {
  const json* p = field(body, "prompt");
  if (!p) throw bad_request("prompt is required", "prompt");
  if (p->is_string()) {
    r.prompt = p->get<std::string>();
    return;
  }
  if (!p->is_array()) throw bad_request(std::string("prompt must be a string or an array, not ") + type_name(*p), "prompt");
  if (p->size() == 1 && (*p)[0].is_string()) {  // ["text"]: one prompt
    r.prompt = (*p)[0].get<std::string>();
    return;
  }
  if (p->empty()) throw bad_request("prompt must not be empty", "prompt");
  if ((*p)[0].is_string())
    throw bad_request("a list of several prompts is not supported (one prompt per request)", "prompt");
  // Token ids: checked against the vocabulary when the prompt is built.
  r.prompt_is_ids = true;
  for (size_t i = 0; i < p->size(); ++i)
    r.prompt_ids.push_back(int32_t(as_int((*p)[i], "prompt[" + std::to_string(i) + "]", 0, INT32_MAX)));
}

std::vector<std::string> parse_stop(const json& v) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    if (v.size() > 4) throw bad_request("stop may hold at most 4 strings", "stop");
    for (size_t i = 0; i < v.size(); ++i) out.push_back(as_string(v[i], "stop[" + std::to_string(i) + "]"));
  } else {
    throw bad_request(std::string("stop must be a string or an array of strings, not ") + type_name(v), "stop");
  }
  for (const std::string& s : out)
    if (s.empty()) throw bad_request("a stop string must not be empty", "stop");
  return out;
}

}  // namespace

EvictionConfig resolve_eviction(const json* kv, const ServeOptions& opts, std::string* label) {
  EvictionConfig ev = opts.eviction;
  if (kv) {
    if (!kv->is_object()) throw bad_request(std::string("kv must be an object, not ") + type_name(*kv), "kv");
    static const char* known[] = {"method", "budget", "ratio", "soft_tokens", "granularity", "decode_every"};
    for (auto it = kv->begin(); it != kv->end(); ++it)
      if (std::find(std::begin(known), std::end(known), it.key()) == std::end(known))
        throw bad_request("kv." + it.key() + " is unknown (method, budget, ratio, soft_tokens, granularity, decode_every)",
                          "kv." + it.key());
    const json* method = field(*kv, "method");
    const json* budget = field(*kv, "budget");
    const json* ratio = field(*kv, "ratio");
    if (budget && ratio) throw bad_request("give kv.budget or kv.ratio, not both", "kv.ratio");
    if (method) {
      ev.spec = as_string(*method, "kv.method");
      // Without a budget of its own the method gets the server's
      // (--kv-budget / --kv-ratio), when it has one.
      ev.decode_every = 0;
    }
    if (budget) ev.budget = {as_int(*budget, "kv.budget", 1, int64_t(1) << 30), 0};
    if (ratio) {
      const double x = as_number(*ratio, "kv.ratio", 0, 1);
      if (x <= 0 || x >= 1) throw bad_request("kv.ratio must be in (0, 1), the fraction removed", "kv.ratio");
      ev.budget = {0, x};
    }
    if (const json* g = field(*kv, "granularity")) {
      const std::string name = as_string(*g, "kv.granularity");
      if (name != "kv-head" && name != "query-head")
        throw bad_request("kv.granularity must be kv-head or query-head", "kv.granularity");
      ev.granularity = granularity_from_name(name);
    }
    if (const json* d = field(*kv, "decode_every")) ev.decode_every = as_int(*d, "kv.decode_every", 0, int64_t(1) << 30);
    // A file path never comes from a request: Judge Q's soft tokens are
    // named at start-up (--judgeq NAME=FILE) and picked here by NAME.
    if (ev.spec.find("soft=") != std::string::npos && method)
      throw bad_request("kv.method may not name a file; give kv.soft_tokens: NAME of a --judgeq file the server was started with",
                        "kv.method", "path_not_allowed");
    const std::string base = ev.spec.substr(0, ev.spec.find(':'));
    const json* soft = field(*kv, "soft_tokens");
    if (soft && base != "judgeq") throw bad_request("kv.soft_tokens applies to method judgeq only", "kv.soft_tokens");
    if (base == "judgeq" && method) {
      std::string name;
      if (soft) {
        name = as_string(*soft, "kv.soft_tokens");
      } else if (opts.judgeq_files.size() == 1) {
        name = opts.judgeq_files.begin()->first;
      } else {
        throw bad_request("method judgeq needs kv.soft_tokens: the NAME of a --judgeq file the server was started with",
                          "kv.soft_tokens");
      }
      auto it = opts.judgeq_files.find(name);
      if (it == opts.judgeq_files.end()) {
        std::string names;
        for (const auto& [n, f] : opts.judgeq_files) names += (names.empty() ? "" : ", ") + n;
        throw bad_request("kv.soft_tokens '" + name + "' is not one of the server's Judge Q files (" +
                              (names.empty() ? "none: start it with --judgeq NAME=FILE" : names) + ")",
                          "kv.soft_tokens", "unknown_soft_tokens");
      }
      ev.spec += (ev.spec.find(':') == std::string::npos ? ":" : ",") + ("soft=" + it->second);
    }
  }
  const std::string base = ev.spec.substr(0, ev.spec.find(':'));
  try {
    check_method(ev.spec, ev.preset);
  } catch (const Error& e) {
    throw bad_request(std::string("kv.method: ") + e.what(), "kv.method", "unknown_method");
  }
  if (method_cuts(ev.spec, ev.preset)) {
    if (!ev.budget.tokens && !ev.budget.ratio)
      throw bad_request("method " + base + " needs kv.budget (tokens per head) or kv.ratio", "kv.budget",
                        "invalid_budget");
    try {
      check_eviction(ev);
    } catch (const Error& e) {
      throw bad_request(std::string("kv.budget: ") + e.what(), "kv.budget", "invalid_budget");
    }
  }
  if (label) *label = base;
  return ev;
}

ParsedRequest parse_request(std::string_view body, Endpoint endpoint, const ServeOptions& opts) {
  json j;
  try {
    j = json::parse(body, [](int depth, json::parse_event_t, json&) {
      if (depth > kMaxDepth) throw bad_request("the request nests deeper than " + std::to_string(kMaxDepth) + " levels", "", "invalid_json");
      return true;
    });
  } catch (const json::exception& e) {
    throw bad_request(std::string("the body is not valid JSON: ") + e.what(), "", "invalid_json");
  }
  if (!j.is_object()) throw bad_request(std::string("the body must be a JSON object, not ") + type_name(j), "", "invalid_json");
  ParsedRequest r;
  r.endpoint = endpoint;
  const json* model = field(j, "model");
  if (!model) throw bad_request("model is required", "model");
  r.model = as_string(*model, "model");
  if (r.model != opts.model_id)
    throw ApiError(404, "The model '" + r.model + "' does not exist; this server serves '" + opts.model_id + "'",
                   "invalid_request_error", "model", "model_not_found");
  refuse_unsupported(j);
  if (endpoint == Endpoint::kChat) {
    if (field(j, "prompt")) throw bad_request("chat completions take messages, not prompt", "prompt");
    r.messages = parse_messages(j);
  } else {
    if (field(j, "messages")) throw bad_request("completions take prompt, not messages (use /v1/chat/completions)", "messages");
    parse_prompt(j, r);
  }
  const Limits& lim = opts.limits;
  if (const json* n = field(j, "n"); n && as_int(*n, "n", 1, 128) != 1)
    throw bad_request("only n = 1 is supported", "n", "unsupported_parameter");
  // max_completion_tokens is the chat API's newer name for max_tokens.
  const json* mt = field(j, "max_tokens");
  if (!mt) mt = field(j, "max_completion_tokens");
  r.gen.max_tokens = mt ? as_int(*mt, mt == field(j, "max_tokens") ? "max_tokens" : "max_completion_tokens", 1,
                                 lim.max_new_tokens)
                        : std::min(lim.default_new_tokens, lim.max_new_tokens);
  if (const json* t = field(j, "temperature")) r.gen.temperature = float(as_number(*t, "temperature", 0, 2));
  if (const json* p = field(j, "top_p")) {
    r.gen.top_p = float(as_number(*p, "top_p", 0, 1));
    if (r.gen.top_p <= 0) throw bad_request("top_p must be in (0, 1]", "top_p");
  }
  if (const json* s = field(j, "seed")) r.gen.seed = uint64_t(as_int(*s, "seed", INT64_MIN, INT64_MAX));
  if (const json* s = field(j, "stop")) r.stop = parse_stop(*s);
  if (const json* s = field(j, "stream")) r.stream = as_bool(*s, "stream");
  if (const json* so = field(j, "stream_options")) {
    if (!so->is_object()) throw bad_request("stream_options must be an object", "stream_options");
    if (!r.stream) throw bad_request("stream_options needs stream: true", "stream_options");
    if (const json* u = field(*so, "include_usage")) r.include_usage = as_bool(*u, "stream_options.include_usage");
  }
  // Extension: generate max_tokens whatever the model says (benchmarks).
  if (const json* ie = field(j, "ignore_eos")) r.gen.stop_at_eog = !as_bool(*ie, "ignore_eos");
  if (const json* q = field(j, "question")) r.question = as_string(*q, "question");
  if (const json* qa = field(j, "query_aware")) r.query_aware = as_bool(*qa, "query_aware");
  if (r.prompt_is_ids && !r.question.empty() && r.query_aware)
    throw bad_request("query_aware with a token-id prompt: append the question's ids to the prompt instead", "query_aware");
  r.eviction = resolve_eviction(field(j, "kv"), opts, &r.kv_label);
  return r;
}

}  // namespace kvsieve::serve
