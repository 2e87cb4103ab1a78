// Helpers shared by the tests: where the data lives, temporary files, running
// the command-line binary.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace kvsieve::testing {

// ../shared/data beside the project (or $KVSIEVE_SHARED_DATA).
inline std::string shared_data() {
  if (const char* e = std::getenv("KVSIEVE_SHARED_DATA")) return e;
  return KVSIEVE_SHARED_DATA;
}
// The build's paths, or $KVSIEVE_FIXTURES / $KVSIEVE_BINARY (the test binary
// run from another checkout, e.g. on a GPU machine).
inline std::string fixtures() {
  if (const char* e = std::getenv("KVSIEVE_FIXTURES")) return e;
  return KVSIEVE_FIXTURES;
}
inline std::string kvsieve_binary() {
  if (const char* e = std::getenv("KVSIEVE_BINARY")) return e;
  return KVSIEVE_BINARY;
}

// Skips the current test with a message when a shared data file is missing.
#define KVSIEVE_REQUIRE_SHARED(relpath)                                                   \
  do {                                                                                    \
    if (!std::filesystem::exists(::kvsieve::testing::shared_data() + "/" + (relpath)))    \
      GTEST_SKIP() << "shared data not found: " << ::kvsieve::testing::shared_data()      \
                   << "/" << (relpath) << " (../shared/data is absent on this machine)"; \
  } while (0)

// A fresh temporary directory removed at the end of the test.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs the kvsieve binary with the given argument string (shell-quoted by the caller).
CommandResult run_kvsieve(const std::string& args);
// Runs another program the same way (e.g. an example of examples/).
CommandResult run_program(const std::string& program, const std::string& args);

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes);

}  // namespace kvsieve::testing
