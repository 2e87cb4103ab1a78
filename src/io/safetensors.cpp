#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace kvsieve {

namespace {

// The reference implementation refuses headers above 100 MB; so do we.
constexpr uint64_t kMaxHeader = uint64_t(100) << 20;

std::optional<DType> dtype_from_st(const std::string& s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  return std::nullopt;
}

bool known_other_dtype(const std::string& s) {
  static const char* names[] = {"F64", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8",
                                "BOOL", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3",
                                "F6_E3M2", "C64"};
  for (const char* n : names)
    if (s == n) return true;
  return false;
}

}  // namespace

const char* safetensors_dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    default: fail("safetensors: dtype {} cannot be stored (F32, F16, BF16 only)", dtype_name(t));
  }
}

SafetensorsFile::SafetensorsFile(const std::string& path)
    : file_(std::make_shared<MappedFile>(path)) {
  const uint8_t* p = file_->data();
  const size_t size = file_->size();
  if (size < 8) fail("'{}': truncated safetensors file ({} bytes, the header length alone needs 8)", path, size);
  uint64_t n = 0;
  std::memcpy(&n, p, 8);
  if (n > size - 8)
    fail("'{}': not a safetensors file or truncated: header length {} exceeds the {} bytes that follow",
         path, n, size - 8);
  if (n > kMaxHeader) fail("'{}': safetensors header length {} is absurd (limit {})", path, n, kMaxHeader);
  if (n < 2 || p[8] != '{')
    fail("'{}': not a safetensors file (the header does not start with a JSON object)", path);

  nlohmann::json h;
  try {
    h = nlohmann::json::parse(reinterpret_cast<const char*>(p + 8), reinterpret_cast<const char*>(p + 8 + n));
  } catch (const nlohmann::json::exception& e) {
    fail("'{}': safetensors header is not valid JSON: {}", path, e.what());
  }
  if (!h.is_object()) fail("'{}': safetensors header is not a JSON object", path);

  const uint8_t* data = p + 8 + n;
  const uint64_t data_size = size - 8 - n;
  for (auto it = h.begin(); it != h.end(); ++it) {
    const std::string& name = it.key();
    const auto& e = it.value();
    if (name == "__metadata__") {
      if (!e.is_object()) fail("'{}': __metadata__ is not an object", path);
      for (auto m = e.begin(); m != e.end(); ++m) {
        if (!m.value().is_string()) fail("'{}': __metadata__ value '{}' is not a string", path, m.key());
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!e.is_object()) fail("'{}': tensor '{}': header entry is not an object", path, name);
    if (!e.contains("dtype") || !e["dtype"].is_string())
      fail("'{}': tensor '{}' has no dtype string", path, name);
    const std::string ds = e["dtype"].get<std::string>();
    auto dt = dtype_from_st(ds);
    if (!dt) {
      if (known_other_dtype(ds))
        fail("'{}': tensor '{}' has dtype {}, which kvsieve does not load (F32, F16, BF16 are supported)",
             path, name, ds);
      fail("'{}': tensor '{}' has unknown dtype '{}'", path, name, ds);
    }
    if (!e.contains("shape") || !e["shape"].is_array())
      fail("'{}': tensor '{}' has no shape array", path, name);
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    for (const auto& d : e["shape"]) {
      if (!d.is_number_unsigned())  // negative integers parse as signed, fractions as float
        fail("'{}': tensor '{}' has a bad dimension {} in its shape", path, name, d.dump());
      const uint64_t v = d.get<uint64_t>();
      if (v >= (uint64_t(1) << 31)) fail("'{}': tensor '{}' has absurd dimension {}", path, name, v);
      shape.push_back(int64_t(v));
      numel *= v;
      if (numel >= (uint64_t(1) << 40)) fail("'{}': tensor '{}' has an absurdly large shape", path, name);
    }
    if (shape.size() > 8) fail("'{}': tensor '{}' has {} dimensions", path, name, shape.size());
    if (!e.contains("data_offsets") || !e["data_offsets"].is_array() || e["data_offsets"].size() != 2 ||
        !e["data_offsets"][0].is_number_unsigned() || !e["data_offsets"][1].is_number_unsigned())
      fail("'{}': tensor '{}' needs data_offsets [begin, end] of non-negative integers", path, name);
    const uint64_t b = e["data_offsets"][0].get<uint64_t>(), en = e["data_offsets"][1].get<uint64_t>();
    if (b > en) fail("'{}': tensor '{}' has data_offsets [{}, {}] in the wrong order", path, name, b, en);
    if (en > data_size)
      fail("'{}': truncated or corrupt safetensors file: tensor '{}' ends at data offset {} but the data is {} bytes",
           path, name, en, data_size);
    const uint64_t want = numel * dtype_block_bytes(*dt);
    if (en - b != want)
      fail("'{}': tensor '{}' {} {} needs {} bytes but data_offsets [{}, {}] hold {}", path, name, ds,
           shape_str(shape), want, b, en, en - b);
    TensorView tv;
    tv.name = name;
    tv.type = *dt;
    tv.shape = std::move(shape);
    tv.data = data + b;
    tv.nbytes = size_t(want);
    tensors_.push_back(std::move(tv));
  }
  std::sort(tensors_.begin(), tensors_.end(), [&](const TensorView& a, const TensorView& b) {
    return static_cast<const uint8_t*>(a.data) < static_cast<const uint8_t*>(b.data);
  });
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (i > 0) {
      const TensorView& prev = tensors_[i - 1];
      const uint8_t* prev_end = static_cast<const uint8_t*>(prev.data) + prev.nbytes;
      if (static_cast<const uint8_t*>(tensors_[i].data) < prev_end)
        fail("'{}': corrupt safetensors file: tensors '{}' and '{}' overlap", path, prev.name,
             tensors_[i].name);
    }
    index_[tensors_[i].name] = i;
  }
}

const TensorView* SafetensorsFile::tensor(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

// ---------------------------------------------------------------- writer

void SafetensorsWriter::add(const std::string& name, DType type, const std::vector<int64_t>& shape,
                            const void* data) {
  safetensors_dtype_name(type);  // throws for other types
  check(name != "__metadata__", "safetensors: '__metadata__' cannot be a tensor name");
  for (const auto& t : tensors_) check(t.name != name, "safetensors writer: tensor '{}' added twice", name);
  const size_t bytes = checked_tensor_bytes("tensor '" + name + "'", type, shape);
  Tensor t{name, type, shape, {}};
  t.data.assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + bytes);
  tensors_.push_back(std::move(t));
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  metadata_[key] = value;
}

void SafetensorsWriter::write(const std::string& path) const {
  nlohmann::json h = nlohmann::json::object();
  if (!metadata_.empty()) h["__metadata__"] = metadata_;
  uint64_t off = 0;
  for (const auto& t : tensors_) {
    h[t.name] = {{"dtype", safetensors_dtype_name(t.type)},
                 {"shape", t.shape},
                 {"data_offsets", {off, off + t.data.size()}}};
    off += t.data.size();
  }
  std::string header = h.dump();
  // Pad with spaces so the data buffer starts 8-byte aligned (as the reference writer does).
  while ((8 + header.size()) % 8) header.push_back(' ');
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail("cannot create '{}': {}", tmp, std::strerror(errno));
  const uint64_t n = header.size();
  bool ok = std::fwrite(&n, 8, 1, f) == 1 && std::fwrite(header.data(), 1, header.size(), f) == header.size();
  for (const auto& t : tensors_)
    if (ok && !t.data.empty()) ok = std::fwrite(t.data.data(), 1, t.data.size(), f) == t.data.size();
  ok = ok && std::fflush(f) == 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
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

}  // namespace kvsieve
