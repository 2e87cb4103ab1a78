// LongBench (English datasets): the official jsonl files from a folder the
// user gives, the official prompt templates and generation lengths
// (data/longbench/tasks.json, embedded), and LongBench's middle truncation:
// a prompt longer than the length keeps its first and last length/2 tokens.
#include <filesystem>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/tasks.h"
#include "io/jsonl.h"
#include "kvsieve_embedded.h"

namespace kvsieve::eval {
namespace {

using nlohmann::json;

const json& longbench() {
  static const json j = json::parse(std::string(
      reinterpret_cast<const char*>(k_longbench_tasks_json), k_longbench_tasks_json_size));
  return j;
}

// The lines of <dir>/<dataset>.jsonl, read once per process (evals may run
// from several threads; map entries never move once inserted).
const std::vector<json>& dataset_lines(const std::string& dir, const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, std::vector<json>> cache;
  std::lock_guard<std::mutex> lock(mu);
  const std::string path = (std::filesystem::path(dir) / (name + ".jsonl")).string();
  auto it = cache.find(path);
  if (it != cache.end()) return it->second;
  check(!dir.empty(), "LongBench task '{}' needs --longbench DIR (the folder of the official "
                      "jsonl files)", name);
  std::vector<json> lines;
  for_each_json_line(path, fmt::format("LongBench data file of {}", name),
                     [&](const json& j, int64_t) { lines.push_back(j); });
  check(!lines.empty(), "'{}' holds no samples", path);
  return cache[path] = std::move(lines);
}

std::string field(const json& j, const char* key, const std::string& where) {
  check(j.contains(key) && j[key].is_string(), "{}: no string field '{}'", where, key);
  return j[key].get<std::string>();
}

// str.format with the fields {context} and {input} ({{ and }} are braces).
std::string fill(const std::string& t, const std::string& context, const std::string& input,
                 size_t* context_end) {
  std::string out;
  for (size_t i = 0; i < t.size();) {
    if (t.compare(i, 9, "{context}") == 0) {
      out += context;
      *context_end = out.size();
      i += 9;
    } else if (t.compare(i, 7, "{input}") == 0) {
      out += input;
      i += 7;
    } else if (t.compare(i, 2, "{{") == 0 || t.compare(i, 2, "}}") == 0) {
      out += t[i];
      i += 2;
    } else {
      out += t[i++];
    }
  }
  return out;
}

Sample longbench_sample(const std::string& name, const TaskContext& c, int64_t index) {
  const json& d = longbench()["datasets"][name];
  const auto& lines = dataset_lines(c.opt.longbench_dir, name);
  const size_t at = size_t(c.opt.run_seed) + size_t(index);
  check(at < lines.size(), "{} has {} samples; sample {} was asked for", name, lines.size(), at);
  const json& j = lines[at];
  const std::string where = fmt::format("{}.jsonl line {}", name, at + 1);
  size_t context_end = 0;
  std::string prompt = fill(d["prompt"].get<std::string>(), field(j, "context", where),
                            j.contains("input") && j["input"].is_string() ? j["input"].get<std::string>() : "",
                            &context_end);
  std::string question = prompt.substr(context_end);
  // LongBench's middle truncation, on the model's tokens.
  const std::vector<int32_t> ids = c.tok.encode(prompt, false, false, false);
  if (int64_t(ids.size()) > c.length) {
    const int64_t half = c.length / 2;
    prompt = c.tok.decode(std::vector<int32_t>(ids.begin(), ids.begin() + half)) +
             c.tok.decode(std::vector<int32_t>(ids.end() - half, ids.end()));
    // The question stays after the context only if the cut left it whole.
    const bool tail_kept = prompt.size() >= question.size() &&
                           prompt.compare(prompt.size() - question.size(), question.size(), question) == 0;
    context_end = tail_kept ? prompt.size() - question.size() : prompt.size();
  }
  Sample s;
  s.seed = at;
  s.id = j.contains("_id") && j["_id"].is_string() ? j["_id"].get<std::string>() : std::to_string(at);
  s.context = prompt.substr(0, context_end);
  s.question = prompt.substr(context_end);
  check(j.contains("answers") && j["answers"].is_array(), "{}: no answers", where);
  for (const auto& a : j["answers"]) s.answers.push_back(a.get<std::string>());
  if (j.contains("all_classes") && j["all_classes"].is_array())
    for (const auto& a : j["all_classes"]) s.all_classes.push_back(a.get<std::string>());
  s.metric = name;  // the runner scores by LongBench's metric for the dataset
  s.max_new_tokens = d["max_new_tokens"].get<int64_t>();
  return s;
}

}  // namespace

void add_longbench_tasks(std::vector<TaskInfo>& out) {
  for (const auto& [name, d] : longbench()["datasets"].items()) {
    const std::string n = name;
    out.push_back({n, "LongBench " + n + " (" + d["metric"].get<std::string>() + "; --longbench DIR)",
                   [n](const TaskContext& c, int64_t i, int64_t, uint64_t) {
                     return longbench_sample(n, c, i);
                   }});
  }
}

}  // namespace kvsieve::eval
