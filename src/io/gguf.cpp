#include "io/gguf.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

#include "core/error.h"

namespace kvsieve {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint64_t kMaxStringLen = uint64_t(1) << 30;

// Bounds-checked cursor over the mapped bytes; every read names the file.
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t n, const std::string& path) : p_(p), n_(n), path_(path) {}

  size_t pos() const { return pos_; }
  size_t size() const { return n_; }

  void need(uint64_t bytes, const char* what) const {
    if (bytes > n_ - pos_)
      fail("'{}': truncated GGUF file: {} needs {} bytes at offset {}, only {} left", path_, what,
           bytes, pos_, n_ - pos_);
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const char* what) {
    const uint64_t len = read<uint64_t>(what);
    if (len > kMaxStringLen) fail("'{}': {} has absurd length {} at offset {}", path_, what, len, pos_);
    need(len, what);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), size_t(len));
    pos_ += size_t(len);
    return s;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  const std::string& path_;
};

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::BOOL: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;
  }
}

bool is_int_type(GgufType t) {
  return t != GgufType::F32 && t != GgufType::F64 && t != GgufType::STRING && t != GgufType::ARRAY;
}

bool valid_type(uint32_t t) { return t <= uint32_t(GgufType::F64); }

// Reads one scalar of type t into v (i, f or s).
void read_scalar(Cursor& c, GgufType t, GgufValue& v, const std::string& key) {
  switch (t) {
    case GgufType::U8: v.i = c.read<uint8_t>(key.c_str()); break;
    case GgufType::I8: v.i = c.read<int8_t>(key.c_str()); break;
    case GgufType::U16: v.i = c.read<uint16_t>(key.c_str()); break;
    case GgufType::I16: v.i = c.read<int16_t>(key.c_str()); break;
    case GgufType::U32: v.i = c.read<uint32_t>(key.c_str()); break;
    case GgufType::I32: v.i = c.read<int32_t>(key.c_str()); break;
    case GgufType::U64: v.i = int64_t(c.read<uint64_t>(key.c_str())); break;
    case GgufType::I64: v.i = c.read<int64_t>(key.c_str()); break;
    case GgufType::BOOL: v.i = c.read<uint8_t>(key.c_str()) != 0; break;
    case GgufType::F32: v.f = c.read<float>(key.c_str()); break;
    case GgufType::F64: v.f = c.read<double>(key.c_str()); break;
    case GgufType::STRING: v.s = c.read_string(key.c_str()); break;
    case GgufType::ARRAY: break;  // handled by caller
  }
}

}  // namespace

bool GgufValue::is_int() const { return is_int_type(type); }
bool GgufValue::is_float() const { return type == GgufType::F32 || type == GgufType::F64; }
size_t GgufValue::array_size() const {
  return std::max({ints.size(), floats.size(), strings.size()});
}

GgufFile::GgufFile(const std::string& path) : file_(std::make_shared<MappedFile>(path)) {
  Cursor c(file_->data(), file_->size(), path);
  const uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic) fail("'{}' is not a GGUF file (bad magic)", path);
  version_ = c.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3)
    fail("'{}': GGUF version {} is not supported (2 and 3 are)", path, version_);
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Each entry takes at least 8+4 bytes (kv) or 8+4+4+8 bytes (tensor info).
  if (n_kv > c.size() / 12 || n_tensors > c.size() / 24)
    fail("'{}': truncated or corrupt GGUF file: absurd counts ({} tensors, {} metadata entries) for a "
         "{}-byte file", path,
         n_tensors, n_kv, c.size());

  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.read_string("metadata key");
    const uint32_t t = c.read<uint32_t>("metadata type");
    if (!valid_type(t)) fail("'{}': metadata '{}' has unknown type {}", path, key, t);
    GgufValue v;
    v.type = GgufType(t);
    if (v.type == GgufType::ARRAY) {
      const uint32_t et = c.read<uint32_t>("array type");
      if (!valid_type(et) || GgufType(et) == GgufType::ARRAY)
        fail("'{}': metadata '{}' is an array of unsupported type {}", path, key, et);
      v.elem_type = GgufType(et);
      const uint64_t n = c.read<uint64_t>("array length");
      const size_t min_elem = v.elem_type == GgufType::STRING ? 8 : scalar_size(v.elem_type);
      if (n > (c.size() - c.pos()) / min_elem)
        fail("'{}': metadata '{}' claims {} elements, more than the file holds", path, key, n);
      GgufValue item;
      if (v.elem_type == GgufType::STRING) {
        v.strings.reserve(size_t(n));
        for (uint64_t j = 0; j < n; ++j) v.strings.push_back(c.read_string(key.c_str()));
      } else if (v.elem_type == GgufType::F32 || v.elem_type == GgufType::F64) {
        v.floats.reserve(size_t(n));
        for (uint64_t j = 0; j < n; ++j) {
          read_scalar(c, v.elem_type, item, key);
          v.floats.push_back(item.f);
        }
      } else {
        v.ints.reserve(size_t(n));
        for (uint64_t j = 0; j < n; ++j) {
          read_scalar(c, v.elem_type, item, key);
          v.ints.push_back(item.i);
        }
      }
    } else {
      read_scalar(c, v.type, v, key);
    }
    if (kv_.count(key)) fail("'{}': metadata key '{}' appears twice", path, key);
    keys_.push_back(key);
    kv_.emplace(std::move(key), std::move(v));
  }

  uint64_t alignment = 32;
  if (auto a = get_int("general.alignment")) {
    if (*a <= 0 || *a > 65536 || (*a & (*a - 1)) != 0)
      fail("'{}': general.alignment {} is not a power of two up to 65536", path, *a);
    alignment = uint64_t(*a);
  }

  struct Info {
    std::string name;
    std::vector<int64_t> shape;
    DType type;
    uint64_t offset;
  };
  std::vector<Info> infos;
  infos.reserve(size_t(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    Info in;
    in.name = c.read_string("tensor name");
    const uint32_t n_dims = c.read<uint32_t>("tensor dims");
    if (n_dims < 1 || n_dims > 4) fail("'{}': tensor '{}' has {} dimensions", path, in.name, n_dims);
    std::vector<int64_t> ne(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t v = c.read<uint64_t>("tensor dim");
      if (v == 0 || v >= (uint64_t(1) << 31))
        fail("'{}': tensor '{}' has absurd dimension {}", path, in.name, v);
      ne[d] = int64_t(v);
    }
    // GGUF lists dims innermost first; ours are outermost first. Trailing
    // 1-dims of GGUF (leading here) are dropped so [1, n] vectors read as [n].
    in.shape.assign(ne.rbegin(), ne.rend());
    while (in.shape.size() > 1 && in.shape.front() == 1) in.shape.erase(in.shape.begin());
    const uint32_t t = c.read<uint32_t>("tensor type");
    auto dt = dtype_from_ggml(t);
    if (!dt) fail("'{}': tensor '{}' has GGML type {}, which kvsieve does not support", path, in.name, t);
    in.type = *dt;
    in.offset = c.read<uint64_t>("tensor offset");
    if (in.offset % alignment != 0)
      fail("'{}': tensor '{}' offset {} is not aligned to {}", path, in.name, in.offset, alignment);
    infos.push_back(std::move(in));
  }

  const uint64_t data_start = (c.pos() + alignment - 1) / alignment * alignment;
  if (data_start > c.size() && n_tensors > 0)
    fail("'{}': truncated GGUF file: tensor data would start at {} past the end ({})", path,
         data_start, c.size());
  tensors_.reserve(infos.size());
  for (auto& in : infos) {
    const size_t bytes = checked_tensor_bytes(fmt::format("'{}': tensor '{}'", path, in.name),
                                              in.type, in.shape);
    const uint64_t avail = c.size() - std::min<uint64_t>(c.size(), data_start);
    if (in.offset > avail || bytes > avail - in.offset)
      fail("'{}': truncated GGUF file: tensor '{}' ({} bytes at data offset {}) runs past the end",
           path, in.name, bytes, in.offset);
    if (tensor_index_.count(in.name)) fail("'{}': tensor '{}' appears twice", path, in.name);
    TensorView tv;
    tv.name = in.name;
    tv.type = in.type;
    tv.shape = in.shape;
    tv.data = file_->data() + data_start + in.offset;
    tv.nbytes = bytes;
    tensor_index_[in.name] = tensors_.size();
    tensors_.push_back(std::move(tv));
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

std::optional<int64_t> GgufFile::get_int(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_int()) fail("'{}': metadata '{}' should be an integer", path(), key);
  return v->i;
}
std::optional<double> GgufFile::get_float(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->is_float()) return v->f;
  if (v->is_int() && v->type != GgufType::BOOL) return double(v->i);
  fail("'{}': metadata '{}' should be a number", path(), key);
}
std::optional<bool> GgufFile::get_bool(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_int()) fail("'{}': metadata '{}' should be a bool", path(), key);
  return v->i != 0;
}
std::optional<std::string> GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::STRING) fail("'{}': metadata '{}' should be a string", path(), key);
  return v->s;
}
const std::vector<std::string>* GgufFile::get_strings(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufType::ARRAY || v->elem_type != GgufType::STRING)
    fail("'{}': metadata '{}' should be an array of strings", path(), key);
  return &v->strings;
}
const std::vector<int64_t>* GgufFile::get_ints(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufType::ARRAY || !is_int_type(v->elem_type))
    fail("'{}': metadata '{}' should be an array of integers", path(), key);
  return &v->ints;
}
const std::vector<double>* GgufFile::get_floats(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufType::ARRAY ||
      (v->elem_type != GgufType::F32 && v->elem_type != GgufType::F64))
    fail("'{}': metadata '{}' should be an array of floats", path(), key);
  return &v->floats;
}

const TensorView* GgufFile::tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

// ---------------------------------------------------------------- writer

void GgufWriter::put(const std::string& key, GgufValue v) {
  for (auto& e : kv_)
    if (e.key == key) {
      e.value = std::move(v);
      return;
    }
  kv_.push_back({key, std::move(v)});
}

void GgufWriter::set_u32(const std::string& key, uint32_t v) {
  GgufValue g;
  g.type = GgufType::U32;
  g.i = v;
  put(key, g);
}
void GgufWriter::set_i32(const std::string& key, int32_t v) {
  GgufValue g;
  g.type = GgufType::I32;
  g.i = v;
  put(key, g);
}
void GgufWriter::set_u64(const std::string& key, uint64_t v) {
  GgufValue g;
  g.type = GgufType::U64;
  g.i = int64_t(v);
  put(key, g);
}
void GgufWriter::set_f32(const std::string& key, float v) {
  GgufValue g;
  g.type = GgufType::F32;
  g.f = v;
  put(key, g);
}
void GgufWriter::set_bool(const std::string& key, bool v) {
  GgufValue g;
  g.type = GgufType::BOOL;
  g.i = v;
  put(key, g);
}
void GgufWriter::set_string(const std::string& key, const std::string& v) {
  GgufValue g;
  g.type = GgufType::STRING;
  g.s = v;
  put(key, g);
}
void GgufWriter::set_strings(const std::string& key, const std::vector<std::string>& v) {
  GgufValue g;
  g.type = GgufType::ARRAY;
  g.elem_type = GgufType::STRING;
  g.strings = v;
  put(key, g);
}
void GgufWriter::set_f32s(const std::string& key, const std::vector<float>& v) {
  GgufValue g;
  g.type = GgufType::ARRAY;
  g.elem_type = GgufType::F32;
  g.floats.assign(v.begin(), v.end());
  put(key, g);
}
void GgufWriter::set_i32s(const std::string& key, const std::vector<int32_t>& v) {
  GgufValue g;
  g.type = GgufType::ARRAY;
  g.elem_type = GgufType::I32;
  g.ints.assign(v.begin(), v.end());
  put(key, g);
}
void GgufWriter::set_value(const std::string& key, const GgufValue& v) { put(key, v); }

void GgufWriter::add_tensor(const std::string& name, DType type, const std::vector<int64_t>& shape,
                            const void* data) {
  const size_t bytes = checked_tensor_bytes("tensor '" + name + "'", type, shape);
  for (auto& t : tensors_) check(t.name != name, "GGUF writer: tensor '{}' added twice", name);
  Tensor t{name, type, shape, bytes, {}, {}};
  t.data.assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + bytes);
  tensors_.push_back(std::move(t));
}

void GgufWriter::add_tensor_lazy(const std::string& name, DType type, const std::vector<int64_t>& shape,
                                 std::function<void(uint8_t* dst)> fill) {
  const size_t bytes = checked_tensor_bytes("tensor '" + name + "'", type, shape);
  for (auto& t : tensors_) check(t.name != name, "GGUF writer: tensor '{}' added twice", name);
  check(bool(fill), "GGUF writer: tensor '{}' has no fill function", name);
  tensors_.push_back(Tensor{name, type, shape, bytes, {}, std::move(fill)});
}

namespace {

class Out {
 public:
  explicit Out(std::FILE* f) : f_(f) {}
  void bytes(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n) ok_ = false;
    pos_ += n;
  }
  template <typename T>
  void pod(T v) { bytes(&v, sizeof(T)); }
  void str(const std::string& s) {
    pod<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void pad_to(uint64_t align) {
    static const uint8_t zeros[64] = {};
    while (pos_ % align) bytes(zeros, std::min<uint64_t>(64, align - pos_ % align));
  }
  uint64_t pos() const { return pos_; }
  bool ok() const { return ok_; }

 private:
  std::FILE* f_;
  uint64_t pos_ = 0;
  bool ok_ = true;
};

void write_scalar(Out& o, GgufType t, int64_t i, double f, const std::string& s) {
  switch (t) {
    case GgufType::U8: o.pod<uint8_t>(uint8_t(i)); break;
    case GgufType::I8: o.pod<int8_t>(int8_t(i)); break;
    case GgufType::U16: o.pod<uint16_t>(uint16_t(i)); break;
    case GgufType::I16: o.pod<int16_t>(int16_t(i)); break;
    case GgufType::U32: o.pod<uint32_t>(uint32_t(i)); break;
    case GgufType::I32: o.pod<int32_t>(int32_t(i)); break;
    case GgufType::U64: o.pod<uint64_t>(uint64_t(i)); break;
    case GgufType::I64: o.pod<int64_t>(i); break;
    case GgufType::BOOL: o.pod<uint8_t>(i != 0); break;
    case GgufType::F32: o.pod<float>(float(f)); break;
    case GgufType::F64: o.pod<double>(f); break;
    case GgufType::STRING: o.str(s); break;
    case GgufType::ARRAY: break;
  }
}

}  // namespace

void GgufWriter::write(const std::string& path, uint32_t alignment) const {
  check(alignment > 0 && (alignment & (alignment - 1)) == 0, "GGUF alignment {} is not a power of two",
        alignment);
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail("cannot create '{}': {}", tmp, std::strerror(errno));
  try {
    write_body(f, alignment, path);
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fclose(f) != 0) {
    std::remove(tmp.c_str());
    fail("error writing '{}' (disk full?)", path);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    fail("cannot rename '{}' to '{}': {}", tmp, path, ec.message());
  }
}

// Everything but opening, closing and renaming; throws on a write error.
void GgufWriter::write_body(std::FILE* f, uint32_t alignment, const std::string& path) const {
  Out o(f);
  std::vector<Entry> kv = kv_;
  bool has_align = false;
  for (auto& e : kv)
    if (e.key == "general.alignment") {
      e.value.type = GgufType::U32;
      e.value.i = alignment;
      has_align = true;
    }
  if (!has_align && alignment != 32) {
    GgufValue a;
    a.type = GgufType::U32;
    a.i = alignment;
    kv.push_back({"general.alignment", a});
  }
  o.pod<uint32_t>(kMagic);
  o.pod<uint32_t>(3);
  o.pod<uint64_t>(tensors_.size());
  o.pod<uint64_t>(kv.size());
  for (const auto& e : kv) {
    o.str(e.key);
    o.pod<uint32_t>(uint32_t(e.value.type));
    if (e.value.type == GgufType::ARRAY) {
      const GgufValue& v = e.value;
      o.pod<uint32_t>(uint32_t(v.elem_type));
      o.pod<uint64_t>(v.array_size());
      for (const auto& s : v.strings) o.str(s);
      for (double x : v.floats) write_scalar(o, v.elem_type, 0, x, {});
      for (int64_t x : v.ints) write_scalar(o, v.elem_type, x, 0, {});
    } else {
      write_scalar(o, e.value.type, e.value.i, e.value.f, e.value.s);
    }
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    o.str(t.name);
    o.pod<uint32_t>(uint32_t(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) o.pod<uint64_t>(uint64_t(*it));
    o.pod<uint32_t>(uint32_t(t.type));
    o.pod<uint64_t>(offset);
    offset += (t.nbytes + alignment - 1) / alignment * alignment;
  }
  o.pad_to(alignment);
  std::vector<uint8_t> buf;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& t = tensors_[i];
    if (progress_) progress_(i, tensors_.size(), t.name);
    if (t.fill) {
      buf.assign(t.nbytes, 0);
      t.fill(buf.data());
      o.bytes(buf.data(), buf.size());
    } else {
      o.bytes(t.data.data(), t.data.size());
    }
    o.pad_to(alignment);
    if (!o.ok()) break;
  }
  if (!o.ok() || std::fflush(f) != 0) fail("error writing '{}' (disk full?)", path);
}

}  // namespace kvsieve
