// kvsieve's one exception type. Every failure a caller can cause (a bad
// file, option, budget, text or request) throws kvsieve::Error with a
// message that names what was wrong and where; nothing is half-done when it
// is thrown (a cut that fails leaves the cache as it was, a file that cannot
// be written leaves no partial file).
#pragma once
#include <stdexcept>
#include <string>

namespace kvsieve {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

}  // namespace kvsieve
