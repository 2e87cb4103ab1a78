// The public API (include/kvsieve/): sessions on one engine from several
// threads, KV caches in f16 and bf16 against f32, the chat split of a
// context and a question, and what it refuses. Only public headers here,
// as a program that embeds kvsieve would have them.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "kvsieve/kvsieve.h"
#include "test_util.h"

namespace kvsieve::testing {
namespace {

std::string fixture(const std::string& name) { return fixtures() + "/hf/" + name; }

// Everything a session run produces that must not depend on other threads.
struct Outcome {
  std::vector<int32_t> ids;
  std::vector<float> logits;  // the last ones
  std::string kept_json;      // the cut
  size_t kv_bytes = 0;
  bool operator==(const Outcome&) const = default;
};

Outcome run_policy(const Engine& e, const std::vector<int32_t>& prompt, const std::string& spec,
                   int64_t budget) {
  SessionOptions so;
  so.threads = 1;
  so.batch = 64;
  so.eviction.spec = spec;
  so.eviction.budget.tokens = budget;
  auto s = e.new_session(so);
  Outcome o;
  GenerateOptions g;
  g.max_tokens = 10;
  g.stop_at_eog = false;
  o.ids = s->generate(prompt, {}, g, nullptr, nullptr,
                      [&](const CutReport& r) { o.kept_json = r.kept_json; });
  o.logits = s->logits();
  o.kv_bytes = s->kv_bytes();
  return o;
}

TEST(Api, TwoSessionsOnOneEngineFromTwoThreadsMatchEachAlone) {
  EngineOptions eo;
  eo.model = fixture("llama3-f32");
  const auto engine = Engine::load(eo);
  const auto ids = read_npy_ids(fixture("llama3-f32") + "/ids.npy");
  const std::vector<int32_t> prompt(ids.begin(), ids.begin() + 200);
  struct Job {
    std::string spec;
    int64_t budget;
  };
  const std::vector<Job> jobs = {{"snapkv", 40}, {"laq++", 48}, {"h2o", 32}, {"full", 0}};
  std::vector<Outcome> alone;
  for (const Job& j : jobs) alone.push_back(run_policy(*engine, prompt, j.spec, j.budget));
  for (size_t i = 0; i + 1 < jobs.size(); ++i) EXPECT_NE(alone[i].kept_json, "") << jobs[i].spec;
  EXPECT_NE(alone[0].kept_json, alone[1].kept_json);  // the policies really differ
  // Pairs of policies at once, each pair on two threads, twice over.
  for (int round = 0; round < 2; ++round)
    for (size_t a = 0; a < jobs.size(); ++a) {
      const size_t b = (a + 1 + size_t(round)) % jobs.size();
      Outcome oa, ob;
      std::thread ta([&] { oa = run_policy(*engine, prompt, jobs[a].spec, jobs[a].budget); });
      std::thread tb([&] { ob = run_policy(*engine, prompt, jobs[b].spec, jobs[b].budget); });
      ta.join();
      tb.join();
      EXPECT_TRUE(oa == alone[a]) << jobs[a].spec << " beside " << jobs[b].spec;
      EXPECT_TRUE(ob == alone[b]) << jobs[b].spec << " beside " << jobs[a].spec;
    }
}

// A session may outlive every handle to its engine (it holds one itself).
TEST(Api, SessionKeepsItsEngineAlive) {
  std::unique_ptr<Session> s;
  {
    EngineOptions eo;
    eo.model = fixture("qwen2-f32");
    s = Engine::load(eo)->new_session();
  }
  const auto ids = read_npy_ids(fixture("qwen2-f32") + "/ids.npy");
  const size_t n = s->prefill({ids.begin(), ids.begin() + 8}).size();
  EXPECT_EQ(n, s->logits().size());
  EXPECT_GT(n, 0u);
  EXPECT_EQ(s->n_past(), 8);
}

// K/V rounded to 16 bits on append, widened to f32 in attention. The bound:
// each stored element is off by at most 2^-11 (f16) or 2^-8 (bf16) of
// itself; through softmax and the layers above that stays a small fraction of
// the logits' spread. Measured on these fixtures (300 tokens, 2-4 layers):
// max |diff| / max |logit| 2.9e-4 to 5.9e-4 for f16, 2.1e-3 to 4.7e-3 for
// bf16; the bounds below are about 4x that, far below what a wrong
// conversion or layout gives (order 1).
TEST(Api, F16AndBf16KvCachesStayCloseToF32) {
  for (const std::string name : {"llama2-f32", "llama3-f32", "llama3-bf16", "mistral-f32",
                                  "mistral-bf16", "qwen2-f32", "qwen2-bf16"}) {
    EngineOptions eo;
    eo.model = fixture(name);
    const auto engine = Engine::load(eo);
    const auto ids = read_npy_ids(fixture(name) + "/ids.npy");
    auto logits = [&](const std::string& type) {
      SessionOptions so;
      so.kv_type = type;
      so.batch = 64;
      so.threads = 2;
      auto s = engine->new_session(so);
      std::vector<float> all;
      s->prefill(ids, &all);
      return std::make_pair(all, s->kv_bytes());
    };
    const auto [f32, bytes32] = logits("f32");
    float scale = 0;
    for (float x : f32) scale = std::max(scale, std::fabs(x));
    double worst[2] = {0, 0};
    const char* types[2] = {"f16", "bf16"};
    for (int t = 0; t < 2; ++t) {
      const auto [got, bytes] = logits(types[t]);
      ASSERT_EQ(got.size(), f32.size());
      for (size_t i = 0; i < got.size(); ++i)
        worst[t] = std::max(worst[t], double(std::fabs(got[i] - f32[i])) / scale);
      EXPECT_EQ(bytes * 2, bytes32) << name << " " << types[t] << ": half the bytes of f32";
    }
    std::printf("[ kv type ] %s: max |diff| / max |logit|: f16 %.2e, bf16 %.2e\n", name.c_str(),
                worst[0], worst[1]);
    EXPECT_LE(worst[0], 2e-3) << name << " f16";
    EXPECT_LE(worst[1], 2e-2) << name << " bf16";
    EXPECT_GT(worst[1], 0.0) << name << ": bf16 changed nothing (not applied?)";
    EXPECT_LT(worst[0], worst[1]) << name << ": f16 has 3 more mantissa bits than bf16";
  }
}

TEST(Api, BadOptionsThrowClearErrors) {
  EngineOptions eo;
  eo.model = fixture("llama3-f32");
  const auto engine = Engine::load(eo);
  auto message = [&](const SessionOptions& so) {
    try {
      engine->new_session(so);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  SessionOptions so;
  so.kv_type = "q4";
  EXPECT_NE(message(so).find("f16"), std::string::npos) << message(so);
  so = {};
  so.eviction.spec = "snapkv";  // no budget
  EXPECT_NE(message(so).find("budget"), std::string::npos) << message(so);
  so.eviction.spec = "nope";
  so.eviction.budget.tokens = 8;
  EXPECT_NE(message(so).find("unknown KV method 'nope'"), std::string::npos) << message(so);
  so = {};
  so.batch = 0;
  EXPECT_NE(message(so).find("batch"), std::string::npos) << message(so);
  eo.model = fixture("no-such-model");
  EXPECT_THROW(Engine::load(eo), Error);
  eo.model = fixture("llama3-f32");
  eo.device = "tpu";
  EXPECT_THROW(Engine::load(eo), Error);
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

// The split of a chat prompt: context + question is the template's text of
// the joined message, and the cut falls where the context ends, whatever
// whitespace either carries and even when the context quotes the question.
TEST(Api, ChatPromptSplitsWhereTheContextEnds) {
  KVSIEVE_REQUIRE_SHARED("stories260K/tok512.bin");
  EngineOptions eo;
  eo.model = shared_data() + "/stories260K/stories260K.bin";
  eo.tokenizer = shared_data() + "/stories260K/tok512.bin";
  const auto engine = Engine::load(eo);
  const std::string question = "  Where is the cat?\n ";
  const std::vector<std::string> contexts = {
      "\n  The cat sat on the mat. Where is the cat? It is asleep.  \n",  // quotes the question
      "The dog ran.", " ", ""};
  for (const std::string format : {"llama2", "mistral"}) {
    for (const auto& context : contexts) {
      const auto c = engine->chat_prompt(context, question, "", format);
      const auto whole = engine->chat_prompt(context + question, "", "", format);
      EXPECT_EQ(c.context + c.question, whole.context + whole.question) << format;
      EXPECT_EQ(count(c.question, "Where is the cat?"), 1u) << format << ": " << c.question;
      EXPECT_EQ(count(c.context, "Where is the cat?"), count(context, "Where is the cat?"))
          << format << ": " << c.context;
      // The context part holds the context's words, and nothing after them.
      if (context.find("asleep") != std::string::npos) {
        EXPECT_NE(c.context.find("asleep"), std::string::npos);
        EXPECT_EQ(c.context.find_first_not_of(" \n", c.context.find("asleep.") + 7),
                  std::string::npos)
            << format << ": '" << c.context << "'";
      }
      // Tokenized as one text and split, the two parts make the whole prompt.
      const PromptTokens t = engine->split_prompt(c.context, c.question);
      std::vector<int32_t> joined = t.context;
      joined.insert(joined.end(), t.question.begin(), t.question.end());
      EXPECT_EQ(joined, engine->tokenize(c.context + c.question)) << format;
    }
  }
}

#ifdef KVSIEVE_EXAMPLE
// examples/embed.cpp, built against the public API only, answers as
// `kvsieve run` does with the same model, prompt and policy.
TEST(Api, ExampleProgramAnswersAsTheCommandLine) {
  KVSIEVE_REQUIRE_SHARED("stories260K/stories260K.bin");
  TempDir d;
  const std::string src = shared_data() + "/stories260K", model = d.file("s.gguf");
  auto r = run_kvsieve("convert --llama2c " + src + "/stories260K.bin --tokenizer " + src +
                       "/tok512.bin -o " + model);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  write_file(d.file("ctx.txt"),
             read_file(shared_data() + "/text/tinystories_sample.txt").substr(0, 1500));
  const std::string question = "' Then Lily said'";
  r = run_program(KVSIEVE_EXAMPLE, model + " " + d.file("ctx.txt") + " " + question + " 32");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("KiB in"), std::string::npos) << r.err;  // the cut was reported
  for (const std::string method : {"snapkv", "laq++"}) {
    const size_t at = r.out.find("[" + method + "]");
    ASSERT_NE(at, std::string::npos) << r.out;
    const size_t from = at + method.size() + 2;
    const size_t next = r.out.find("[laq++]", from);  // the text may hold newlines
    const std::string text = r.out.substr(from, (next == std::string::npos ? r.out.size() : next) - from);
    EXPECT_GT(text.size(), 1u) << method;
    const auto cli = run_kvsieve("run -m " + model + " -f " + d.file("ctx.txt") + " --question " +
                                 question + " --kv " + method + " --kv-budget 32 -n 48");
    ASSERT_EQ(cli.exit_code, 0) << cli.err;
    EXPECT_EQ(text, cli.out) << method;
  }
  EXPECT_NE(run_program(KVSIEVE_EXAMPLE, "").exit_code, 0);  // usage
  EXPECT_EQ(run_program(KVSIEVE_EXAMPLE, d.file("none.gguf") + " " + d.file("ctx.txt") + " q").exit_code,
            1);
}
#endif

}  // namespace
}  // namespace kvsieve::testing
