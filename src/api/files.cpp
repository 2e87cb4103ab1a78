// The small file utilities of the public API (include/kvsieve/model_files.h);
// read_npy_ids and write_npy_f32 are core/npy.cpp's.
#include "core/atomic_file.h"
#include "core/mapped_file.h"
#include "kvsieve/model_files.h"
#include "tokenizer/tokenizer.h"

namespace kvsieve {

std::string read_text_file_utf8(const std::string& path) {
  std::string text = read_text_file(path);
  validate_utf8(text, path.c_str());
  return text;
}

void check_utf8(const std::string& text, const std::string& what) { validate_utf8(text, what.c_str()); }

void write_file_atomically(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, bytes);
}

}  // namespace kvsieve
