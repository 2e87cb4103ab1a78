#include "io/jsonl.h"

#include <fstream>

#include "core/error.h"

namespace kvsieve {

void for_each_json_line(const std::string& path, const std::string& what,
                        const std::function<void(const nlohmann::json&, int64_t)>& fn) {
  std::ifstream in(path);
  check(bool(in), "cannot read {} '{}'", what, path);
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail("'{}' line {}: not JSON ({})", path, n, e.what());
    }
    fn(j, n);
  }
}

}  // namespace kvsieve
