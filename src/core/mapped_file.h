// Read-only memory map of a whole file. Model weights are used in place from
// the map (no copy), so the page cache is the only copy of a model in memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace kvsieve {

class MappedFile {
 public:
  // Throws Error naming the path if it cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole (small) file into a string; throws Error naming the path.
std::string read_text_file(const std::string& path);

}  // namespace kvsieve
