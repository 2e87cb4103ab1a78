// NumPy .npy files (format version 1.0/2.0, little-endian, C order): the
// exchange format of `kvsieve logits` and of reference dumps.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kvsieve/model_files.h"  // read_npy_ids, write_npy_f32 are public

namespace kvsieve {

struct NpyArray {
  std::string dtype;           // "<i4", "<f4", "<i8", "<f8"
  std::vector<int64_t> shape;  // C order
  std::vector<uint8_t> data;   // raw little-endian bytes
};

// Reads and validates a .npy file (header, dtype, size agrees with shape).
NpyArray read_npy(const std::string& path);

// Token ids from an int32 (or int64, if every value fits) array of any shape,
// flattened. Throws Error naming the file otherwise.
std::vector<int32_t> read_npy_ids(const std::string& path);

// Float32 array, any shape; float64 is converted.
std::vector<float> read_npy_f32(const std::string& path, std::vector<int64_t>* shape = nullptr);

// Writes float32 / int32 data with the given shape (temp file + rename).
void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);
void write_npy_i32(const std::string& path, const int32_t* data, const std::vector<int64_t>& shape);

}  // namespace kvsieve
