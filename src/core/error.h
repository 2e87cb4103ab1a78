// Errors: every failure that a user can cause (bad file, bad option, bad text)
// is reported by throwing kvsieve::Error (include/kvsieve/error.h) with a
// message that names what was wrong and where; fail() and check() format it.
// The command line catches it, prints it and exits non-zero.
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "kvsieve/error.h"

namespace kvsieve {

// fail("tensor '{}' has {} dims", name, n): throws Error with a formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

// check(cond, "...", args): throws Error when cond is false.
template <typename... Args>
void check(bool cond, fmt::format_string<Args...> f, Args&&... args) {
  if (!cond) throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace kvsieve
