// Method spec strings: "name" or "name:key=value,key=value", e.g.
// "snapkv:window=32,kernel=7,pool=max". MethodParams hands out typed values
// and remembers which keys were read, so unknown keys are reported.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kvsieve {

class MethodParams {
 public:
  // Parses the spec; throws Error on a malformed one ("snapkv:window", "a:b=1,b=2").
  static MethodParams parse(std::string_view spec);

  const std::string& method() const { return method_; }
  bool has(const std::string& key) const { return values_.count(key) != 0; }

  int64_t get_int(const std::string& key, int64_t def, int64_t lo, int64_t hi);
  double get_real(const std::string& key, double def, double lo, double hi);
  std::string get_string(const std::string& key, const std::string& def);
  // One of `choices`.
  std::string get_choice(const std::string& key, const std::string& def,
                         const std::vector<std::string>& choices);
  // Takes key=value pairs not read yet out into another MethodParams named
  // `method` (used by allocators that wrap a base scorer).
  MethodParams forward_rest(const std::string& method);
  // Sets key=value unless the spec gives the key (presets use this).
  void set_default(const std::string& key, const std::string& value) { values_.emplace(key, value); }
  // Throws Error naming the first key nobody read.
  void finish() const;
  // The spec with every value that was read, defaults included, in key order.
  std::string canonical() const;

 private:
  const std::string* find(const std::string& key);
  std::string method_;
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> used_;
  std::map<std::string, std::string> resolved_;  // key -> value actually used
};

}  // namespace kvsieve
