// safetensors files: reading (memory-mapped, the JSON header validated before
// any tensor is used) and writing (temporary file renamed into place).
//
// Layout: u64 N (little-endian) | N bytes of JSON header | data buffer.
// Header: { "<name>": {"dtype": "F32", "shape": [rows, cols], "data_offsets": [begin, end]},
//           "__metadata__": {"key": "value", ...} }   offsets relative to the data buffer.
// Supported dtypes: F32, F16, BF16 (others are reported with the tensor's name).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/tensor.h"

namespace kvsieve {

class SafetensorsFile {
 public:
  // Throws Error naming the path and what was wrong: header length beyond the
  // file, bad JSON, unknown dtype, offsets outside the data, overlapping or
  // out of order, or a byte range that does not match shape x dtype size.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_->path(); }
  // Tensors sorted by their offset in the data buffer (file order).
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* tensor(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::shared_ptr<const MappedFile> mapping() const { return file_; }

 private:
  std::shared_ptr<const MappedFile> file_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Writes safetensors files (tests build Hugging Face folders with it; the
// trainer can save soft tokens with it). Only F32, F16 and BF16 tensors.
class SafetensorsWriter {
 public:
  // shape row-major; the data (numel x dtype size bytes) is copied.
  void add(const std::string& name, DType type, const std::vector<int64_t>& shape, const void* data);
  void set_metadata(const std::string& key, const std::string& value);
  // Writes path + ".tmp" and renames it to path; throws Error on failure.
  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
  };
  std::vector<Tensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// "F32" <-> DType for the three supported safetensors dtypes.
const char* safetensors_dtype_name(DType t);

}  // namespace kvsieve
