#include "kv/method_spec.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/error.h"

namespace kvsieve {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

MethodParams MethodParams::parse(std::string_view spec) {
  MethodParams p;
  spec = trim(spec);
  const size_t colon = spec.find(':');
  p.method_ = std::string(trim(spec.substr(0, colon)));
  check(!p.method_.empty(), "KV method spec '{}' names no method", spec);
  if (colon == std::string_view::npos) return p;
  std::string_view rest = spec.substr(colon + 1);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    const size_t eq = item.find('=');
    check(eq != std::string_view::npos && eq > 0 && eq + 1 < item.size(),
          "KV method spec '{}': '{}' is not key=value", spec, item);
    const std::string key(trim(item.substr(0, eq)));
    check(p.values_.emplace(key, std::string(trim(item.substr(eq + 1)))).second,
          "KV method spec '{}': '{}' is given twice", spec, key);
  }
  return p;
}

const std::string* MethodParams::find(const std::string& key) {
  auto it = values_.find(key);
  if (it == values_.end()) return nullptr;
  used_[key] = true;
  return &it->second;
}

int64_t MethodParams::get_int(const std::string& key, int64_t def, int64_t lo, int64_t hi) {
  int64_t v = def;
  if (const std::string* s = find(key)) {
    const auto r = std::from_chars(s->data(), s->data() + s->size(), v);
    check(r.ec == std::errc() && r.ptr == s->data() + s->size(),
          "{}: {}='{}' is not an integer", method_, key, *s);
  }
  check(v >= lo && v <= hi, "{}: {} must be in [{}, {}], got {}", method_, key, lo, hi, v);
  resolved_[key] = std::to_string(v);
  return v;
}

double MethodParams::get_real(const std::string& key, double def, double lo, double hi) {
  double v = def;
  if (const std::string* s = find(key)) {
    const auto r = std::from_chars(s->data(), s->data() + s->size(), v);
    check(r.ec == std::errc() && r.ptr == s->data() + s->size() && std::isfinite(v),
          "{}: {}='{}' is not a number", method_, key, *s);
  }
  check(v >= lo && v <= hi, "{}: {} must be in [{}, {}], got {}", method_, key, lo, hi, v);
  resolved_[key] = fmt::format("{}", v);
  return v;
}

std::string MethodParams::get_string(const std::string& key, const std::string& def) {
  std::string v = def;
  if (const std::string* s = find(key)) v = *s;
  resolved_[key] = v;
  return v;
}

std::string MethodParams::get_choice(const std::string& key, const std::string& def,
                                     const std::vector<std::string>& choices) {
  std::string v = def;
  if (const std::string* s = find(key)) v = *s;
  if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
    fail("{}: {}='{}' is not one of {}", method_, key, v, list);
  }
  resolved_[key] = v;
  return v;
}

MethodParams MethodParams::forward_rest(const std::string& method) {
  MethodParams out;
  out.method_ = method;
  for (const auto& [k, v] : values_)
    if (!used_.count(k)) {
      out.values_[k] = v;
      used_[k] = true;
    }
  return out;
}

void MethodParams::finish() const {
  for (const auto& [k, v] : values_)
    if (!used_.count(k))
      fail("{}: unknown parameter '{}' (kvsieve run --kv help lists the parameters)", method_, k);
}

std::string MethodParams::canonical() const {
  std::string s = method_;
  char sep = ':';
  for (const auto& [k, v] : resolved_) {
    s += sep + k + "=" + v;
    sep = ',';
  }
  return s;
}

}  // namespace kvsieve
