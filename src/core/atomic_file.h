// Writing a whole file so that readers never see half of it: the bytes go to
// PATH.tmp, which is renamed over PATH only when complete.
#pragma once
#include <string>
#include <string_view>

namespace kvsieve {

// Throws Error (and leaves no PATH.tmp behind) when the file cannot be written.
void write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace kvsieve
