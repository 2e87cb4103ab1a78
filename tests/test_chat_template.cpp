// Chat formats: the llama3 prompt must tokenize to Meta's chat_example ids;
// the others are checked against the text their families' templates produce.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "test_tokenizer_cases.h"
#include "test_vocab_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/vocab_loaders.h"

namespace kvsieve::testing {
namespace {

TEST(ChatTemplate, Llama3MessageTokenizesToMetasIds) {
  KVSIEVE_REQUIRE_SHARED("tokenizers/llama3/golden_encodings.json");
  KVSIEVE_REQUIRE_SHARED("tokenizers/llama3/tokenizer.model");
  const Tokenizer& tok = cached_tokenizer("llama3-tiktoken", [] {
    return vocab_from_tiktoken(shared_data() + "/tokenizers/llama3/tokenizer.model");
  });
  EXPECT_EQ(detect_chat_format(tok.spec()), ChatFormat::kLlama3) << "from the special tokens";
  const auto j = nlohmann::json::parse(read_file(shared_data() + "/tokenizers/llama3/golden_encodings.json"));
  const auto& example = j["chat_example"];
  ASSERT_EQ(example.size(), 1u);
  // The key is "user 'This is a test sentence.'": one user message.
  const std::string key = example.begin().key();
  const size_t q = key.find('\'');
  ASSERT_NE(q, std::string::npos);
  const std::string role = key.substr(0, q - 1), content = key.substr(q + 1, key.size() - q - 2);
  EXPECT_EQ(role, "user");
  const std::string text = format_chat(ChatFormat::kLlama3, {{role, content}}, /*add_generation_prompt=*/false);
  const auto ids = tok.encode(text, /*add_bos=*/false, false, /*parse_special=*/true);
  EXPECT_EQ(ids_str(ids), ids_str(example.begin().value().get<std::vector<int32_t>>()));
  // With the generation prompt: the assistant header follows.
  const auto gen = tok.encode(format_chat(ChatFormat::kLlama3, {{role, content}}), true);
  EXPECT_EQ(gen.front(), tok.bos());
  ASSERT_GE(gen.size(), 4u);
  EXPECT_EQ(gen[gen.size() - 4], tok.find_token("<|start_header_id|>"));
  EXPECT_EQ(gen[gen.size() - 2], tok.find_token("<|end_header_id|>"));
  EXPECT_EQ(tok.decode({gen.end() - 4, gen.end()}), "assistant\n\n");
}

TEST(ChatTemplate, FormatsOfEachFamily) {
  const std::vector<ChatMessage> m = {{"system", "Be brief."}, {"user", " Hi "}, {"assistant", "Hello."},
                                      {"user", "Bye"}};
  EXPECT_EQ(format_chat(ChatFormat::kLlama2, m),
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]");
  EXPECT_EQ(format_chat(ChatFormat::kMistral, m),
            "[INST] Be brief.\n\n Hi  [/INST]Hello.</s>[INST] Bye [/INST]");
  EXPECT_EQ(format_chat(ChatFormat::kChatML, m),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n Hi <|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(format_chat(ChatFormat::kLlama3, {{"user", "x"}}, false),
            "<|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>");
}

TEST(ChatTemplate, Llama2PromptTokenizesWithSpecialTokens) {
  KVSIEVE_REQUIRE_SHARED("tokenizers/llama-spm/tokenizer.model");
  const Tokenizer& tok = cached_tokenizer("spm-model", [] {
    return vocab_from_sentencepiece(shared_data() + "/tokenizers/llama-spm/tokenizer.model");
  });
  const auto ids = tok.encode(format_chat(ChatFormat::kLlama2, {{"user", "Hi"}, {"assistant", "Yo"}, {"user", "Ok"}}), true);
  // BOS, then the </s><s> between turns are single control tokens.
  EXPECT_EQ(ids.front(), tok.bos());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.bos()), 2);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.eos()), 1);
}

TEST(ChatTemplate, DetectionAndErrors) {
  VocabSpec v;
  v.chat_template = "{% for message in messages %}{{'<|im_start|>' + message['role']}}{% endfor %}";
  EXPECT_EQ(detect_chat_format(v), ChatFormat::kChatML);
  v.chat_template = "{{ bos_token + '[INST] <<SYS>>\\n' }}";
  EXPECT_EQ(detect_chat_format(v), ChatFormat::kLlama2);
  v.chat_template = "{{ '[INST] ' + message['content'] + ' [/INST]' }}";
  EXPECT_EQ(detect_chat_format(v), ChatFormat::kMistral);
  v.chat_template = "{{ '<|start_header_id|>' }}";
  EXPECT_EQ(detect_chat_format(v), ChatFormat::kLlama3);
  v.chat_template = "{{ '<start_of_turn>' }}";
  expect_error([&] { detect_chat_format(v); }, "not one of the known families");
  v.chat_template.clear();
  v.tokens = {"<unk>", "a"};
  expect_error([&] { detect_chat_format(v); }, "no chat template");
  EXPECT_EQ(chat_format_from_name("qwen2"), ChatFormat::kChatML);
  EXPECT_EQ(chat_format_name(chat_format_from_name("llama3")), "llama3");
  expect_error([] { chat_format_from_name("vicuna"); }, "'vicuna' is unknown");
  expect_error([] { format_chat(ChatFormat::kLlama2, {{"user", "a"}, {"user", "b"}}); }, "message 1");
  expect_error([] { format_chat(ChatFormat::kMistral, {{"tool", "a"}}); }, "role 'tool'");
  expect_error([] { format_chat(ChatFormat::kLlama3, {{"", "a"}}); }, "empty role");
}

TEST(ChatTemplate, DefaultSystemMessageOfChatMLTemplates) {
  VocabSpec v;
  // SmolLM2's template (a real newline inside the string literal).
  v.chat_template =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
      "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
      "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
      "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}";
  EXPECT_EQ(default_system_message(v, ChatFormat::kChatML),
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  // Qwen2's spells the newline as backslash-n.
  v.chat_template =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
      "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
      "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>'}}{% endfor %}";
  EXPECT_EQ(default_system_message(v, ChatFormat::kChatML), "You are a helpful assistant.");
  // No default: the template never adds a system turn, or the text is template code.
  v.chat_template = "{% for message in messages %}{{'<|im_start|>' + message['role']}}{% endfor %}";
  EXPECT_EQ(default_system_message(v, ChatFormat::kChatML), "");
  v.chat_template = "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n' + x + '<|im_end|>' }}";
  EXPECT_EQ(default_system_message(v, ChatFormat::kChatML), "");
  EXPECT_EQ(default_system_message(v, ChatFormat::kLlama3), "");
}

}  // namespace
}  // namespace kvsieve::testing
