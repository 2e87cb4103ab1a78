// GGUF v2/v3 files: reading (memory-mapped, every count, size and offset
// validated against the file before use) and writing (to a temporary file that
// is renamed into place, so a failure never leaves a half-written model).
//
// Layout: "GGUF" u32 version | u64 n_tensors | u64 n_kv | n_kv x (key, type, value)
//         | n_tensors x (name, u32 n_dims, u64 dims[] innermost first, u32 type, u64 offset)
//         | padding to general.alignment (default 32) | tensor data, each aligned.
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/mapped_file.h"
#include "core/tensor.h"

namespace kvsieve {

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};

// One metadata value. Scalars use the member of their kind; arrays keep their
// element type and fill one of the vectors (integers and bools in `ints`,
// floats in `floats`, strings in `strings`). Arrays of arrays are rejected.
struct GgufValue {
  GgufType type = GgufType::U32;
  GgufType elem_type = GgufType::U32;  // arrays only
  int64_t i = 0;                       // all integer types and bool (u64 as bits)
  double f = 0;                        // F32, F64
  std::string s;                       // STRING
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;

  bool is_int() const;
  bool is_float() const;
  size_t array_size() const;
};

class GgufFile {
 public:
  // Throws Error naming the path and what was wrong.
  explicit GgufFile(const std::string& path);

  uint32_t version() const { return version_; }
  const std::string& path() const { return file_->path(); }
  // Keys in file order.
  const std::vector<std::string>& keys() const { return keys_; }
  const GgufValue* find(const std::string& key) const;

  // Typed look-ups: nullopt when absent, Error when present with another type.
  std::optional<int64_t> get_int(const std::string& key) const;
  std::optional<double> get_float(const std::string& key) const;  // ints accepted
  std::optional<bool> get_bool(const std::string& key) const;
  std::optional<std::string> get_string(const std::string& key) const;
  const std::vector<std::string>* get_strings(const std::string& key) const;
  const std::vector<int64_t>* get_ints(const std::string& key) const;
  const std::vector<double>* get_floats(const std::string& key) const;

  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* tensor(const std::string& name) const;
  // Keeps the mapping alive for as long as a caller holds TensorViews.
  std::shared_ptr<const MappedFile> mapping() const { return file_; }

 private:
  std::shared_ptr<const MappedFile> file_;
  uint32_t version_ = 0;
  std::vector<std::string> keys_;
  std::unordered_map<std::string, GgufValue> kv_;
  std::vector<TensorView> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

class GgufWriter {
 public:
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_strings(const std::string& key, const std::vector<std::string>& v);
  void set_f32s(const std::string& key, const std::vector<float>& v);
  void set_i32s(const std::string& key, const std::vector<int32_t>& v);
  // Copies a metadata value verbatim (for re-writing a file).
  void set_value(const std::string& key, const GgufValue& v);

  // Adds a tensor; shape is row-major (outermost first). The data is copied,
  // so the caller's buffer may be freed after the call.
  void add_tensor(const std::string& name, DType type, const std::vector<int64_t>& shape,
                  const void* data);
  // Adds a tensor whose bytes are produced during write() by fill(dst), dst
  // holding exactly the tensor's byte size: a large model is then converted one
  // tensor at a time instead of being held in memory whole. An exception from
  // fill aborts write() (the temporary file is removed).
  void add_tensor_lazy(const std::string& name, DType type, const std::vector<int64_t>& shape,
                       std::function<void(uint8_t* dst)> fill);
  // Called by write() before each tensor's data: (index, count, name).
  void set_progress(std::function<void(size_t, size_t, const std::string&)> fn) {
    progress_ = std::move(fn);
  }

  // Writes path + ".tmp" then renames it to path. Throws Error on failure,
  // removing the temporary file.
  void write(const std::string& path, uint32_t alignment = 32) const;

 private:
  struct Entry {
    std::string key;
    GgufValue value;
  };
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> shape;
    size_t nbytes = 0;
    std::vector<uint8_t> data;                // when added with data
    std::function<void(uint8_t*)> fill;       // when added lazily
  };
  void put(const std::string& key, GgufValue v);
  void write_body(std::FILE* f, uint32_t alignment, const std::string& path) const;
  std::vector<Entry> kv_;
  std::vector<Tensor> tensors_;
  std::function<void(size_t, size_t, const std::string&)> progress_;
};

}  // namespace kvsieve
