#include "tokenizer/chat_template.h"

#include <algorithm>
#include <initializer_list>

#include "core/error.h"

namespace kvsieve {
namespace {

// Appends pieces (plain appends: GCC 12 warns falsely on "literal" + string).
void add(std::string& out, std::initializer_list<std::string_view> parts) {
  for (std::string_view p : parts) out.append(p);
}

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

// Python's str.strip(): the Llama templates strip message contents.
std::string strip(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

// Splits off a leading system message; checks the rest alternates user/assistant.
std::string take_system(const std::vector<ChatMessage>& m, size_t& first, const char* format) {
  first = 0;
  std::string system;
  if (!m.empty() && m[0].role == "system") {
    system = m[0].content;
    first = 1;
  }
  for (size_t i = first; i < m.size(); ++i) {
    const std::string want = (i - first) % 2 == 0 ? "user" : "assistant";
    check(m[i].role == want,
          "chat format {}: message {} has role '{}' but '{}' was expected (system first, then "
          "user and assistant alternating)",
          format, i, m[i].role, want);
  }
  return system;
}

std::string format_llama2(const std::vector<ChatMessage>& m, bool gen) {
  // Meta's Llama 2 chat: each user turn is "<s>[INST] ... [/INST]", the answer
  // follows as " answer </s>"; the system prompt goes inside the first [INST].
  size_t first = 0;
  const std::string system = take_system(m, first, "llama2");
  std::string out;
  for (size_t i = first; i < m.size(); ++i) {
    if (m[i].role == "user") {
      std::string content = strip(m[i].content);
      if (i != first) out += "<s>";  // the first BOS comes from encode(add_bos)
      out += "[INST] ";
      if (i == first && !system.empty()) add(out, {"<<SYS>>\n", strip(system), "\n<</SYS>>\n\n"});
      add(out, {content, " [/INST]"});
    } else {
      add(out, {" ", strip(m[i].content), " </s>"});
    }
  }
  (void)gen;  // the prompt already ends where the answer starts
  return out;
}

std::string format_mistral(const std::vector<ChatMessage>& m, bool gen) {
  size_t first = 0;
  const std::string system = take_system(m, first, "mistral");
  std::string out;
  for (size_t i = first; i < m.size(); ++i) {
    if (m[i].role == "user") {
      out += "[INST] ";
      if (i == first && !system.empty()) add(out, {system, "\n\n"});
      add(out, {m[i].content, " [/INST]"});
    } else {
      add(out, {m[i].content, "</s>"});
    }
  }
  (void)gen;
  return out;
}

std::string format_llama3(const std::vector<ChatMessage>& m, bool gen) {
  std::string out;
  for (const ChatMessage& msg : m) {
    check(!msg.role.empty(), "chat format llama3: a message has an empty role");
    add(out, {"<|start_header_id|>", msg.role, "<|end_header_id|>\n\n", strip(msg.content), "<|eot_id|>"});
  }
  if (gen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string format_chatml(const std::vector<ChatMessage>& m, bool gen) {
  std::string out;
  for (const ChatMessage& msg : m) {
    check(!msg.role.empty(), "chat format chatml: a message has an empty role");
    add(out, {"<|im_start|>", msg.role, "\n", msg.content, "<|im_end|>\n"});
  }
  if (gen) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace

std::string default_system_message(const VocabSpec& v, ChatFormat f) {
  const std::string& t = v.chat_template;
  // Only a template that checks for a missing system message adds one; the
  // literal it then writes is '<|im_start|>system\n' TEXT '<|im_end|>' with
  // no template code inside TEXT.
  if (f != ChatFormat::kChatML || !(contains(t, "!= 'system'") || contains(t, "!= \"system\"")))
    return "";
  for (const std::string_view head : {"<|im_start|>system\n", "<|im_start|>system\\n"}) {
    const size_t at = t.find(head);
    if (at == std::string::npos) continue;
    const size_t from = at + head.size(), end = t.find("<|im_end|>", from);
    if (end == std::string::npos) return "";
    std::string text = t.substr(from, end - from);
    if (text.find_first_of("'\"{}+") != std::string::npos) return "";  // template code, not text
    // A Jinja string literal may spell a newline as backslash-n.
    for (size_t i = 0; (i = text.find("\\n", i)) != std::string::npos;) text.replace(i, 2, "\n");
    return text;
  }
  return "";
}

ChatFormat chat_format_from_name(std::string_view name) {
  if (name == "llama2") return ChatFormat::kLlama2;
  if (name == "llama3") return ChatFormat::kLlama3;
  if (name == "mistral") return ChatFormat::kMistral;
  if (name == "chatml" || name == "qwen2") return ChatFormat::kChatML;
  fail("chat format '{}' is unknown (llama2, llama3, mistral, chatml)", name);
}

std::string_view chat_format_name(ChatFormat f) {
  switch (f) {
    case ChatFormat::kLlama2: return "llama2";
    case ChatFormat::kLlama3: return "llama3";
    case ChatFormat::kMistral: return "mistral";
    case ChatFormat::kChatML: return "chatml";
  }
  return "?";
}

ChatFormat detect_chat_format(const VocabSpec& v) {
  const std::string& t = v.chat_template;
  if (!t.empty()) {
    if (contains(t, "<|start_header_id|>")) return ChatFormat::kLlama3;
    if (contains(t, "<|im_start|>")) return ChatFormat::kChatML;
    if (contains(t, "<<SYS>>")) return ChatFormat::kLlama2;
    if (contains(t, "[INST]")) return ChatFormat::kMistral;
    fail("chat template of this vocabulary is not one of the known families (llama2, llama3, "
         "mistral, chatml); name a format explicitly");
  }
  auto has = [&](std::string_view tok) {
    return std::find(v.tokens.begin(), v.tokens.end(), tok) != v.tokens.end();
  };
  if (has("<|start_header_id|>") && has("<|eot_id|>")) return ChatFormat::kLlama3;
  if (has("<|im_start|>") && has("<|im_end|>")) return ChatFormat::kChatML;
  if (has("[INST]")) return ChatFormat::kMistral;
  fail("this vocabulary has no chat template and no chat tokens; name a chat format explicitly");
}

std::string format_chat(ChatFormat format, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt) {
  switch (format) {
    case ChatFormat::kLlama2: return format_llama2(messages, add_generation_prompt);
    case ChatFormat::kLlama3: return format_llama3(messages, add_generation_prompt);
    case ChatFormat::kMistral: return format_mistral(messages, add_generation_prompt);
    case ChatFormat::kChatML: return format_chatml(messages, add_generation_prompt);
  }
  fail("chat format {} is unknown", int(format));
}

ChatSplit format_chat_split(ChatFormat format, const std::string& system,
                            const std::string& context, const std::string& question) {
  std::vector<ChatMessage> before;
  if (!system.empty()) before.push_back({"system", system});
  return format_chat_split(format, before, context, question);
}

ChatSplit format_chat_split(ChatFormat format, const std::vector<ChatMessage>& before,
                            const std::string& context, const std::string& question) {
  // The split is found by rendering the message with a marker between the
  // two parts and cutting the text where the marker lands. The marker is a
  // string of private-use characters that the texts do not contain.
  std::string marker = "\uE000kvsieve-split\uE000";
  auto in_before = [&] {
    for (const ChatMessage& m : before)
      if (contains(m.content, marker) || contains(m.role, marker)) return true;
    return false;
  };
  while (contains(context, marker) || contains(question, marker) || in_before()) marker += "\uE000";
  auto render = [&](const std::string& user) {
    std::vector<ChatMessage> msgs = before;
    msgs.push_back({"user", user});
    return format_chat(format, msgs);
  };
  const std::string full = render(context + question);
  // Where the format strips the message, put the marker into the stripped
  // text (where the context ends inside it) so that stripping drops the same
  // whitespace with or without the marker.
  const std::string joined = context + question, stripped = strip(joined);
  const size_t first_char = joined.find_first_not_of(" \t\n\r\f\v");
  const size_t lead = first_char == std::string::npos ? joined.size() : first_char;
  const size_t k_stripped = std::min(stripped.size(), context.size() > lead ? context.size() - lead : 0);
  for (const auto& [text, k] : {std::pair<std::string, size_t>{joined, context.size()},
                                std::pair<std::string, size_t>{stripped, k_stripped}}) {
    const std::string with = render(text.substr(0, k) + marker + text.substr(k));
    const size_t at = with.find(marker);
    if (at == std::string::npos) continue;
    std::string without = with;
    without.erase(at, marker.size());
    if (without == full) return {full.substr(0, at), full.substr(at)};
  }
  fail("chat format {}: cannot tell where the context ends in the rendered prompt",
       chat_format_name(format));
}

}  // namespace kvsieve
