// kvsieve serve's request parsing and checks (tools/serve/request.h) and
// its stop-string / UTF-8 handling of streamed text (text_stream.h): what
// a request may ask, and the OpenAI error (status, param, code) for what
// it may not.
#include <gtest/gtest.h>

#include <string>

#include "serve/api_error.h"
#include "serve/request.h"
#include "serve/text_stream.h"

namespace kvsieve::serve {
namespace {

ServeOptions options() {
  ServeOptions o;
  o.model_id = "tiny";
  o.limits.max_new_tokens = 256;
  o.limits.default_new_tokens = 32;
  o.judgeq_files["shipped"] = "/models/soft.gguf";
  return o;
}

ParsedRequest parse(const std::string& body, Endpoint ep = Endpoint::kCompletions,
                    const ServeOptions& o = options()) {
  return parse_request(body, ep, o);
}

// The ApiError a body gets (status 0: none).
ApiError fault(const std::string& body, Endpoint ep = Endpoint::kCompletions, const ServeOptions& o = options()) {
  try {
    parse_request(body, ep, o);
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "accepted", "");
}

TEST(ServeRequest, ReadsACompletion) {
  const ParsedRequest r = parse(
      R"({"model":"tiny","prompt":"Once","max_tokens":20,"temperature":0.5,"top_p":0.9,"seed":7,
          "stop":["\n","end"],"stream":true,"stream_options":{"include_usage":true}})");
  EXPECT_EQ(r.prompt, "Once");
  EXPECT_EQ(r.gen.max_tokens, 20);
  EXPECT_FLOAT_EQ(r.gen.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.gen.top_p, 0.9f);
  EXPECT_EQ(r.gen.seed, 7u);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n", "end"}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.eviction.spec, "full");
  EXPECT_EQ(r.kv_label, "full");
  // Defaults.
  const ParsedRequest d = parse(R"({"model":"tiny","prompt":"x"})");
  EXPECT_EQ(d.gen.max_tokens, 32);
  EXPECT_EQ(d.gen.temperature, 0.0f);
  EXPECT_FALSE(d.stream);
  // Token ids and the one-string list form.
  EXPECT_EQ(parse(R"({"model":"tiny","prompt":[1,2,3]})").prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(parse(R"({"model":"tiny","prompt":["hi"]})").prompt, "hi");
}

TEST(ServeRequest, ReadsAChat) {
  const ParsedRequest r = parse(
      R"({"model":"tiny","messages":[{"role":"system","content":"be brief"},
          {"role":"user","content":"hi"},{"role":"assistant","content":"hello"},
          {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]})",
      Endpoint::kChat);
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[3].content, "ab");
}

TEST(ServeRequest, ResolvesThePerRequestEviction) {
  ParsedRequest r = parse(R"({"model":"tiny","prompt":"x","kv":{"method":"snapkv","budget":64}})");
  EXPECT_EQ(r.eviction.spec, "snapkv");
  EXPECT_EQ(r.eviction.budget.tokens, 64);
  EXPECT_EQ(r.kv_label, "snapkv");
  r = parse(R"({"model":"tiny","prompt":"x","kv":{"method":"laq++","ratio":0.75},"query_aware":true})");
  EXPECT_DOUBLE_EQ(r.eviction.budget.ratio, 0.75);
  EXPECT_TRUE(r.query_aware);
  // Judge Q by the name given at start-up: the server puts in the path.
  r = parse(R"({"model":"tiny","prompt":"x","kv":{"method":"judgeq","budget":64,"soft_tokens":"shipped"}})");
  EXPECT_EQ(r.eviction.spec, "judgeq:soft=/models/soft.gguf");
  // The server's default applies when a request names none, its budget to
  // a method named without one.
  ServeOptions o = options();
  o.eviction.spec = "h2o";
  o.eviction.budget.tokens = 100;
  r = parse(R"({"model":"tiny","prompt":"x"})", Endpoint::kCompletions, o);
  EXPECT_EQ(r.eviction.spec, "h2o");
  r = parse(R"({"model":"tiny","prompt":"x","kv":{"method":"tova"}})", Endpoint::kCompletions, o);
  EXPECT_EQ(r.eviction.spec, "tova");
  EXPECT_EQ(r.eviction.budget.tokens, 100);
  r = parse(R"({"model":"tiny","prompt":"x","kv":{"method":"full"}})", Endpoint::kCompletions, o);
  EXPECT_EQ(r.eviction.spec, "full");
}

struct Bad {
  const char* body;
  Endpoint ep;
  int status;
  const char* param;
};

TEST(ServeRequest, RefusesBadRequestsNamingTheField) {
  const Endpoint C = Endpoint::kCompletions, H = Endpoint::kChat;
  const Bad cases[] = {
      {"{", C, 400, ""},
      {"[1,2]", C, 400, ""},
      {R"({"prompt":"x"})", C, 400, "model"},
      {R"({"model":"other","prompt":"x"})", C, 404, "model"},
      {R"({"model":"tiny"})", C, 400, "prompt"},
      {R"({"model":"tiny","prompt":5})", C, 400, "prompt"},
      {R"({"model":"tiny","prompt":["a","b"]})", C, 400, "prompt"},
      {R"({"model":"tiny","prompt":[1,-2]})", C, 400, "prompt[1]"},
      {R"({"model":"tiny","prompt":"x","max_tokens":"5"})", C, 400, "max_tokens"},
      {R"({"model":"tiny","prompt":"x","max_tokens":0})", C, 400, "max_tokens"},
      {R"({"model":"tiny","prompt":"x","max_tokens":257})", C, 400, "max_tokens"},
      {R"({"model":"tiny","prompt":"x","max_tokens":2.5})", C, 400, "max_tokens"},
      {R"({"model":"tiny","prompt":"x","temperature":3})", C, 400, "temperature"},
      {R"({"model":"tiny","prompt":"x","temperature":true})", C, 400, "temperature"},
      {R"({"model":"tiny","prompt":"x","top_p":0})", C, 400, "top_p"},
      {R"({"model":"tiny","prompt":"x","n":2})", C, 400, "n"},
      {R"({"model":"tiny","prompt":"x","stop":["a","b","c","d","e"]})", C, 400, "stop"},
      {R"({"model":"tiny","prompt":"x","stop":[""]})", C, 400, "stop"},
      {R"({"model":"tiny","prompt":"x","stop":7})", C, 400, "stop"},
      {R"({"model":"tiny","prompt":"x","stream":"yes"})", C, 400, "stream"},
      {R"({"model":"tiny","prompt":"x","logprobs":3})", C, 400, "logprobs"},
      {R"({"model":"tiny","prompt":"x","echo":true})", C, 400, "echo"},
      {R"({"model":"tiny","prompt":"x","kv":"snapkv"})", C, 400, "kv"},
      {R"({"model":"tiny","prompt":"x","kv":{"method":"nosuch","budget":8}})", C, 400, "kv.method"},
      {R"({"model":"tiny","prompt":"x","kv":{"method":"snapkv"}})", C, 400, "kv.budget"},
      {R"({"model":"tiny","prompt":"x","kv":{"method":"snapkv","budget":0}})", C, 400, "kv.budget"},
      {R"({"model":"tiny","prompt":"x","kv":{"method":"snapkv","budget":4}})", C, 400, "kv.budget"},
      {R"({"model":"tiny","prompt":"x","kv":{"method":"snapkv","ratio":1.5}})", C, 400, "kv.ratio"},
      {R"({"model":"tiny","prompt":"x","kv":{"method":"snapkv","budget":64,"ratio":0.5}})", C, 400, "kv.ratio"},
      {R"({"model":"tiny","prompt":"x","kv":{"method":"judgeq:soft=/etc/passwd","budget":64}})", C, 400, "kv.method"},
      {R"({"model":"tiny","prompt":"x","kv":{"method":"judgeq","budget":64,"soft_tokens":"/etc/passwd"}})", C, 400, "kv.soft_tokens"},
      {R"({"model":"tiny","prompt":"x","kv":{"method":"snapkv","budget":64,"bogus":1}})", C, 400, "kv.bogus"},
      {R"({"model":"tiny","prompt":"x","query_aware":"no"})", C, 400, "query_aware"},
      {R"({"model":"tiny","messages":[]})", H, 400, "messages"},
      {R"({"model":"tiny","messages":[{"role":"user"}]})", H, 400, "messages[0].content"},
      {R"({"model":"tiny","messages":[{"role":"wizard","content":"x"}]})", H, 400, "messages[0].role"},
      {R"({"model":"tiny","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"}]})", H, 400, "messages[1].role"},
      {R"({"model":"tiny","messages":[{"role":"user","content":[{"type":"image_url"}]}]})", H, 400, "messages[0].content[0]"},
      {R"({"model":"tiny","prompt":"x","messages":[{"role":"user","content":"x"}]})", H, 400, "prompt"},
  };
  for (const Bad& b : cases) {
    const ApiError e = fault(b.body, b.ep);
    EXPECT_EQ(e.status, b.status) << b.body << ": " << e.what();
    EXPECT_EQ(e.param, b.param) << b.body;
    EXPECT_NE(std::string(e.what()), "") << b.body;
  }
  // Nesting too deep to parse recursively is refused, not a crash.
  const std::string deep = R"({"model":"tiny","prompt":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(fault(deep).status, 400);
}

TEST(ServeRequest, ErrorObjectHasOpenAIsShape) {
  const nlohmann::json j = error_json(bad_request("bad", "max_tokens", "x"));
  EXPECT_EQ(j["error"]["message"], "bad");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "max_tokens");
  EXPECT_EQ(j["error"]["code"], "x");
  EXPECT_TRUE(error_json(ApiError(503, "busy", "server_error"))["error"]["param"].is_null());
}

TEST(ServeTextStream, StopsBeforeTheStopStringAndHoldsBackItsStart) {
  TextStream t({"END", "\n\n"});
  EXPECT_FALSE(t.add("Hello E"));
  EXPECT_EQ(t.take(false), "Hello ");  // "E" may begin "END"
  EXPECT_FALSE(t.add("N"));
  EXPECT_EQ(t.take(false), "");
  EXPECT_TRUE(t.add("D and more"));
  EXPECT_EQ(t.take(false), "");
  EXPECT_EQ(t.text(), "Hello ");
  // A false start is released.
  TextStream u({"END"});
  u.add("xEN");
  EXPECT_EQ(u.take(false), "x");
  u.add("o");
  EXPECT_EQ(u.take(false), "ENo");
  // A stop string spread over many pieces.
  TextStream v({"\n\n"});
  EXPECT_FALSE(v.add("a\n"));
  EXPECT_TRUE(v.add("\nb"));
  EXPECT_EQ(v.take(true), "a");
}

TEST(ServeTextStream, NeverSplitsAUtf8Character) {
  TextStream t;
  const std::string euro = "\xE2\x82\xAC";  // 3 bytes
  t.add("a" + euro.substr(0, 1));
  EXPECT_EQ(t.take(false), "a");
  t.add(euro.substr(1, 1));
  EXPECT_EQ(t.take(false), "");
  t.add(euro.substr(2));
  EXPECT_EQ(t.take(false), euro);
  t.add("\xF0\x9F");  // an emoji's first half, then the end
  EXPECT_EQ(t.take(true), "\xF0\x9F");
}

}  // namespace
}  // namespace kvsieve::serve
