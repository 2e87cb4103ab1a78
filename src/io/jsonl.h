// JSON-lines files (one JSON value per line), as kvsieve's prompt, data and
// LongBench files are: one reader, so every such file fails the same way.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace kvsieve {

// Calls fn(value, line_number) for each non-empty line of the file at path,
// in order (line numbers from 1). A file that cannot be opened fails naming
// `what` ("cannot read <what> '<path>'"); a line that is not JSON fails naming
// the file and the line.
void for_each_json_line(const std::string& path, const std::string& what,
                        const std::function<void(const nlohmann::json&, int64_t)>& fn);

}  // namespace kvsieve
