#include "eval/tasks.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace kvsieve::eval {

const char* const kNoiseFiller =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";

// Defined in tasks_*.cpp.
void add_basic_tasks(std::vector<TaskInfo>& out);
void add_ruler_tasks(std::vector<TaskInfo>& out);
void add_longbench_tasks(std::vector<TaskInfo>& out);

const std::vector<TaskInfo>& tasks() {
  static const std::vector<TaskInfo> all = [] {
    std::vector<TaskInfo> t;
    add_basic_tasks(t);
    add_ruler_tasks(t);
    add_longbench_tasks(t);
    return t;
  }();
  return all;
}

const TaskInfo& find_task(const std::string& name) {
  for (const auto& t : tasks())
    if (t.name == name) return t;
  std::string list;
  for (const auto& t : tasks()) list += (list.empty() ? "" : ", ") + t.name;
  fail("unknown task '{}' (known: {})", name, list);
}

uint64_t sample_seed(uint64_t run_seed, const std::string& task, int64_t length, int64_t index) {
  uint64_t h = 0xcbf29ce484222325ull ^ run_seed;
  auto mix = [&h](uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0x100000001b3ull;
  };
  for (char c : task) mix(uint8_t(c));
  mix(uint64_t(length));
  mix(uint64_t(index));
  return h;
}

std::vector<std::string> read_haystack_files(const std::string& path) {
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(path)) {
    // Text files in name order; the folder's licence, source and needle
    // notes are not filler.
    for (const auto& e : std::filesystem::directory_iterator(path)) {
      const std::string name = e.path().filename().string();
      if (e.path().extension() == ".txt" && name.find("LICENSE") == std::string::npos &&
          name.find("NEEDLE") == std::string::npos && name.find("SOURCE") == std::string::npos)
        files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path);
  }
  check(!files.empty(), "no .txt files in haystack folder '{}'", path);
  std::vector<std::string> texts;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    check(bool(in), "cannot read haystack file '{}'", f.string());
    std::ostringstream ss;
    ss << in.rdbuf();
    texts.push_back(ss.str());
    validate_utf8(texts.back(), "the haystack text");
  }
  return texts;
}

std::string load_haystack(const std::string& path) {
  if (path.empty()) return repeat_to(kNoiseFiller, 1 << 20);
  std::string text;
  for (const auto& t : read_haystack_files(path)) text += t;
  check(text.size() > 1000, "haystack '{}' is too short", path);
  return text;
}

namespace {

// The chat template a prompt is put in (TaskOptions::chat).
struct ChatWrap {
  ChatFormat format{};
  std::string system;
  int64_t tokens = 0;  // what the template adds around an empty turn
};

std::string rstrip_ws(std::string s) {
  while (!s.empty() && std::isspace(uint8_t(s.back()))) s.pop_back();
  return s;
}

// context + question as one user turn; the answer prefix after the
// assistant's header.
void wrap_in_chat(Sample& s, const ChatWrap& w) {
  std::string q = s.question, prefix;
  const std::string& p = s.answer_prefix;
  if (!p.empty() && q.size() >= p.size() && q.compare(q.size() - p.size(), p.size(), p) == 0) {
    q.resize(q.size() - p.size());
    prefix = p.substr(std::min(p.size(), p.find_first_not_of(" \t\n")));
  }
  const ChatSplit c = format_chat_split(w.format, w.system, s.context, rstrip_ws(q));
  s.context = c.context;
  s.question = c.question + prefix;
  s.answer_prefix = prefix;
}

}  // namespace

std::vector<Sample> make_samples(const std::string& task, const Tokenizer& tok, int64_t length,
                                 int64_t n, uint64_t run_seed, const TaskOptions& opt) {
  const TaskInfo& info = find_task(task);
  static thread_local std::string cached_path = "\x01", cached;
  if (cached_path != opt.haystack) {
    cached = load_haystack(opt.haystack);
    cached_path = opt.haystack;
  }
  TaskOptions o = opt;
  o.run_seed = run_seed;
  const TokenCounter count = [&tok](std::string_view s) { return int64_t(tok.encode(s, false).size()); };
  // Fidelity scores a continuation of plain text: no chat turn around it.
  std::optional<ChatWrap> chat;
  if (!opt.chat.empty() && info.name != "fidelity") {
    ChatWrap w;
    w.format = opt.chat == "auto" ? detect_chat_format(tok.spec()) : chat_format_from_name(opt.chat);
    w.system = opt.system.empty() ? default_system_message(tok.spec(), w.format) : opt.system;
    const ChatSplit empty = format_chat_split(w.format, w.system, "", "");
    w.tokens = count(empty.context + empty.question);
    chat = w;
  }
  // The task fills what the template leaves of the length.
  const int64_t room = length - (chat ? chat->tokens : 0);
  check(room >= 32, "a length of {} tokens leaves no room for a prompt inside the chat template", length);
  TaskContext c{tok, count, room, o, cached, length};
  std::vector<Sample> out;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t seed = sample_seed(run_seed, task, length, i);
    Sample s = info.make(c, i, n, seed);  // sets s.seed (RULER: its own scheme)
    s.task = task;
    s.index = i;
    s.length = length;
    if (s.id.empty()) s.id = std::to_string(length) + "-" + std::to_string(i);
    if (chat) wrap_in_chat(s, *chat);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace kvsieve::eval
