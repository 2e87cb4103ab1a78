// Embedding kvsieve: load a model once, then answer one question about a
// long context in two sessions that cut the KV cache differently, streaming
// the tokens as they come.
//
//   kvsieve_embed MODEL CONTEXT_FILE "QUESTION" [BUDGET]
//
// Both sessions read the context, cut it to BUDGET tokens per KV head
// (SnapKV, then LAQ++), read the question after the cut and answer greedily.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "kvsieve/kvsieve.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL CONTEXT_FILE \"QUESTION\" [BUDGET]\n", argv[0]);
    return 2;
  }
  try {
    std::ifstream in(argv[2], std::ios::binary);
    if (!in) throw kvsieve::Error(std::string("cannot read ") + argv[2]);
    std::stringstream context;
    context << in.rdbuf();
    const int64_t budget = argc > 4 ? std::stoll(argv[4]) : 128;

    // One engine: the weights, loaded once, shared by every session.
    kvsieve::EngineOptions eo;
    eo.model = argv[1];
    const auto engine = kvsieve::Engine::load(eo);
    std::fprintf(stderr, "%s on %s\n", engine->info().name.c_str(),
                 engine->device_description().c_str());

    // The context is cut before the question is read (query-agnostic).
    const kvsieve::PromptTokens prompt = engine->split_prompt(context.str(), argv[3]);

    for (const char* method : {"snapkv", "laq++"}) {
      kvsieve::SessionOptions so;
      so.eviction.spec = method;
      so.eviction.budget.tokens = budget;
      auto session = engine->new_session(so);

      kvsieve::GenerateOptions g;
      g.max_tokens = 48;
      kvsieve::GenerateStats st;
      int32_t prev = -2;
      std::printf("[%s]", method);
      session->generate(
          prompt.context, prompt.question, g,
          [&](int32_t id) {  // streamed as each token is chosen
            std::printf("%s", engine->token_text(id, prev).c_str());
            std::fflush(stdout);
            prev = id;
            return true;
          },
          &st,
          [](const kvsieve::CutReport& r) {
            std::fprintf(stderr, "%s: KV %.1f -> %.1f KiB in %.3f s\n", r.method.c_str(),
                         double(r.kv_bytes_before) / 1024, double(r.kv_bytes_after) / 1024,
                         r.seconds + r.probe_seconds);
          });
      std::printf("\n");
      std::fprintf(stderr, "%lld context + %lld question tokens, %lld generated, %.1f tokens/s\n",
                   (long long)st.n_prompt, (long long)st.n_question, (long long)st.n_generated,
                   st.decode_seconds > 0 ? double(st.n_generated) / st.decode_seconds : 0.0);
    }
    return 0;
  } catch (const kvsieve::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
