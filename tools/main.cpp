// kvsieve command line: one subcommand per job. Every user error surfaces as a
// kvsieve::Error, printed as "kvsieve: error: ..." with exit code 1.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "kvsieve/error.h"
#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"kvsieve: long-context LLM inference with a KV cache cut to a budget"};
  app.require_subcommand(1);
  kvsieve::cli::register_all(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return kvsieve::cli::run_selected(app);
  } catch (const kvsieve::Error& e) {
    std::fprintf(stderr, "kvsieve: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "kvsieve: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kvsieve: internal error: %s\n", e.what());
    return 2;
  }
}
