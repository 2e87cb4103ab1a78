// Pieces shared by the subcommands: model options, loading, memory figures.
// The command line is a client of kvsieve's public API (include/kvsieve/)
// and nothing else.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "kvsieve/kvsieve.h"

namespace kvsieve::cli {

// check(cond, "...", args): throws kvsieve::Error with a formatted message.
template <typename... Args>
void check(bool cond, fmt::format_string<Args...> f, Args&&... args) {
  if (!cond) throw Error(fmt::format(f, std::forward<Args>(args)...));
}

struct ModelOptions {
  std::string model;      // -m
  std::string tokenizer;  // --tokenizer (overrides or adds one)
  std::string device = "cpu";
  std::string gpu_math = "tensor";
  int threads = 0;        // -t, 0 = all hardware threads

  void add_to(CLI::App* sub, bool need_model = true);
  // Loads the model (and tokenizer if given); prints a one-line summary to stderr.
  std::shared_ptr<const Engine> load(bool quiet = false) const;
};

// Prompt text from -p or -f (exactly one), validated as UTF-8.
std::string prompt_text(const std::string& prompt, const std::string& file);

// Peak resident memory of this process in bytes (VmHWM), 0 if unknown.
size_t peak_rss_bytes();
std::string human_bytes(double b);

// "a, b,c" -> {"a", "b", "c"}: splits at any of seps, drops empty pieces.
std::vector<std::string> split(const std::string& s, const char* seps);

// A comma- or space-separated list of numbers of an option (what names it in
// the error message a bad entry gets).
template <typename T>
std::vector<T> numbers(const std::string& s, const char* what) {
  std::vector<T> out;
  for (const auto& x : split(s, ", ")) {
    std::istringstream in(x);
    T v;
    check(bool(in >> v) && in.eof(), "{}: '{}' is not a number", what, x);
    out.push_back(v);
  }
  return out;
}

}  // namespace kvsieve::cli
