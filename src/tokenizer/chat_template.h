// Chat prompts for the common model families, written directly in C++ (no
// Jinja): the text a model's own chat template would produce for a list of
// messages. The text does not start with the BOS token: encode it with
// add_bos = true and parse_special = true (the markers are special tokens).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab_spec.h"

namespace kvsieve {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" (llama3/chatml accept any role)
  std::string content;
};

enum class ChatFormat {
  kLlama2,   // <s>[INST] <<SYS>>\n..\n<</SYS>>\n\nuser [/INST] answer </s>
  kLlama3,   // <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
  kMistral,  // [INST] user [/INST]answer</s>
  kChatML,   // <|im_start|>role\ncontent<|im_end|>\n (Qwen2)
};

// "llama2", "llama3", "mistral", "chatml" (alias "qwen2"); throws Error otherwise.
ChatFormat chat_format_from_name(std::string_view name);
std::string_view chat_format_name(ChatFormat f);

// From the vocabulary's chat_template text when there is one, else from the
// special tokens it has; throws Error when neither tells.
ChatFormat detect_chat_format(const VocabSpec& vocab);

// The system message the vocabulary's chat template adds when a conversation
// has none (SmolLM2's and Qwen2's ChatML templates do; transformers renders
// it), or "" when it adds none or the template is not ChatML.
std::string default_system_message(const VocabSpec& vocab, ChatFormat format);

// Throws Error for roles a format cannot express (e.g. "tool" in llama2) or a
// system message that is not first.
std::string format_chat(ChatFormat format, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt = true);

// One user turn made of a context and a question (and an optional system
// message) in a chat format, ending with the assistant's header, split where
// the context ends: context + question is exactly format_chat's text for the
// user message context + question. Where the format strips the message, the
// whitespace it drops at the edges of the message belongs to neither part.
struct ChatSplit {
  std::string context;   // everything up to the end of the context
  std::string question;  // the question and the rest of the template
};
ChatSplit format_chat_split(ChatFormat format, const std::string& system,
                            const std::string& context, const std::string& question);
// The same after earlier messages (a system message, past turns): the user
// turn context + question follows `before`.
ChatSplit format_chat_split(ChatFormat format, const std::vector<ChatMessage>& before,
                            const std::string& context, const std::string& question);

}  // namespace kvsieve
