/* Chat templates rendered by takumi itself, with an exact record of which tokens
 * belong to which message and role (the SFT loss mask depends on it).
 *
 * Each family below is one official Jinja template reproduced byte for byte (tests
 * compare against the text the official template renders, tests/fixtures/chat/).
 * Families are recognised from the model's own template (GGUF tokenizer.chat_template,
 * HF tokenizer_config.json); an explicit name overrides. Where an official template
 * raises, takumi fails too; where it would silently drop a message (e.g. a tool message
 * in Llama-2), takumi refuses with TK_ERR_UNSUPPORTED instead of losing data.
 * Not rendered: assistant tool calls and tool schemas (the "tools" list); tool-result
 * messages are. Reasoning: Qwen3's template (<think>…</think>, reasoning_content, enable_thinking)
 * through tk_chat_opts. Not recognised (TK_CHAT_UNKNOWN, pick a family by name): Mistral v0.3+
 * ([AVAILABLE_TOOLS]/[SYSTEM_PROMPT]), other reasoning templates (QwQ, Qwen3-2507, DeepSeek-R1),
 * ChatML variants that prepend BOS or inject an unknown default system message,
 * Phi-3-small/vision, Zephyr. */
#ifndef TAKUMI_CHAT_H
#define TAKUMI_CHAT_H
#include "takumi/core.h"
#include "takumi/tokenizer.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum tk_role { TK_ROLE_SYSTEM = 0, TK_ROLE_USER, TK_ROLE_ASSISTANT, TK_ROLE_TOOL } tk_role;

typedef enum tk_chat_family {
    TK_CHAT_UNKNOWN = 0,
    TK_CHAT_CHATML,   /* "chatml": <|im_start|>role\n…<|im_end|>\n, no default system (OpenHermes) */
    TK_CHAT_LLAMA3,   /* "llama3": Llama-3-Instruct, <|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|> */
    TK_CHAT_LLAMA2,   /* "llama2": <s>[INST] <<SYS>>\n…\n<</SYS>>\n\n… [/INST] … </s> */
    TK_CHAT_MISTRAL,  /* "mistral": Mistral-7B-Instruct v0.1/v0.2 "v1" template, system folded into the first user turn */
    TK_CHAT_GEMMA,    /* "gemma": Gemma 1/2, <start_of_turn>user\n…<end_of_turn>\n, no system role */
    TK_CHAT_PHI3,     /* "phi3": Phi-3-mini (current), <|user|>\n…<|end|>\n<|assistant|>\n, eos when no generation prompt */
    TK_CHAT_SMOLLM2,  /* "smollm2": ChatML + SmolLM2's default system message when none is given */
    TK_CHAT_QWEN2,    /* "qwen2": ChatML + "You are a helpful assistant." when no system is given */
    TK_CHAT_QWEN25,   /* "qwen2.5": ChatML + Qwen2.5's default system; tool results as <tool_response> in a user turn */
    TK_CHAT_LLAMA31,  /* "llama3.1": Llama-3.1 system block ("Cutting Knowledge Date…", date 26 Jul 2024); tool -> ipython */
    TK_CHAT_MISTRAL_LEGACY, /* "mistral-legacy": pre-v1 Mistral-7B-Instruct-v0.2 / Mixtral template, no system role */
    TK_CHAT_GEMMA3,   /* "gemma3": Gemma 3, system prepended to the first user turn */
    TK_CHAT_PHI35,    /* "phi3.5": Phi-3.5-mini, as phi3 but an empty system message is skipped */
    TK_CHAT_PHI3_LEGACY, /* "phi3-legacy": original Phi-3 template: <s>, user turns end in <|assistant|>\n, no system */
    TK_CHAT_ALPACA,   /* "alpaca": takumi's fallback for models without a template (### Instruction / ### Response) */
    TK_CHAT_QWEN3,    /* "qwen3": Qwen3 (hybrid thinking): ChatML, no default system; the last turn's reasoning in
                         <think>\n…\n</think>\n\n, earlier turns' reasoning dropped; tool results as in qwen2.5 */
    TK_CHAT_FAMILY_COUNT
} tk_chat_family;

typedef struct tk_chat_msg {
    tk_role role;
    const char *content;  /* UTF-8, NUL-terminated */
} tk_chat_msg;

/* A rendered conversation: tokens plus, for every token, the message it belongs
 * to and whether it is that message's trainable part. */
typedef struct tk_chat_tokens {
    tk_ivec ids;
    int32_t *msg_index;   /* [ids.len] index into msgs of the message whose header/content/end the token renders (Llama-2's
                             per-turn <s> belongs to its user turn); -1 for template text of no message: a leading BOS, an
                             injected default system prompt, the generation prompt, Phi-3's final EOS */
    uint8_t *role;        /* [ids.len] tk_role of that message; for msg_index -1: ASSISTANT on the generation prompt, else SYSTEM */
    uint8_t *is_target;   /* [ids.len] 1 on an assistant message's content, anything the template puts between it and its
                             end-of-turn token, and that token (<|im_end|>, <|eot_id|>, </s>, <end_of_turn>, <|end|>, EOS):
                             exactly what the model must generate; 0 on headers, role markers, system/user/tool text and
                             glue after the end-of-turn token (ChatML's "\n" after <|im_end|>) */
} tk_chat_tokens;

/* Switches beyond the message list; zero-initialise, so that each means "as the template's default". */
typedef struct tk_chat_opts {
    bool add_generation_prompt;
    bool disable_thinking;         /* Qwen3's enable_thinking=false: the generation prompt ends in an empty
                                      "<think>\n\n</think>\n\n" (true and undefined render alike) */
    const char *const *reasoning;  /* NULL, or one entry per message: its reasoning_content (NULL: none, and Qwen3
                                      then takes reasoning from "<think>…</think>" in the content, as its template
                                      does). Families without reasoning refuse a non-NULL entry (TK_ERR_UNSUPPORTED). */
} tk_chat_opts;

/* Recognises the family from a Jinja chat template source (by its markers and literal texts); TK_CHAT_UNKNOWN if it
 * is not one takumi renders exactly. Llama-3.2/3.3 templates count as llama3.1: their "Today Date" line is then the
 * template's own fallback "26 Jul 2024", not the day of rendering. */
tk_chat_family tk_chat_detect(const char *jinja);
/* Family by name ("chatml", "smollm2", "qwen2", "qwen2.5", "qwen3", "llama3", "llama3.1", "llama2", "mistral",
 * "mistral-legacy", "gemma", "gemma3", "phi3", "phi3.5", "phi3-legacy", "alpaca"); TK_CHAT_UNKNOWN if unknown. */
tk_chat_family tk_chat_family_from_name(const char *name);
/* Name of a family ("unknown" for TK_CHAT_UNKNOWN or out of range). */
const char *tk_chat_family_name(tk_chat_family f);
/* All family names, comma-separated (for help and error messages); static string. */
const char *tk_chat_family_names(void);
/* The family to use for a model: override_name if non-NULL (TK_ERR_ARG naming the choices if unknown), else detected
 * from tok's chat template (TK_ERR_UNSUPPORTED with the template's start if unrecognised); a tokenizer without a
 * template whose vocabulary has Gemma's turn tokens (<start_of_turn>, <end_of_turn> as control tokens) gets gemma3
 * when it also has Gemma 3's <start_of_image>, else gemma (GGUF conversions of Gemma base models carry no template);
 * otherwise TK_CHAT_ALPACA (tok may be NULL). Thread-safe. */
tk_status tk_chat_resolve(const tk_tokenizer *tok, const char *override_name, tk_chat_family *out);
/* Detects the family of a template file: an HF tokenizer_config.json ("chat_template" string, or the "default" entry of a
 * list of named templates) or a plain .jinja file. TK_ERR_NOT_FOUND if a JSON file has no chat_template. */
tk_status tk_chat_family_from_template_file(const char *path, tk_chat_family *out);
/* Renders msgs to text exactly as the family's official template does (add_generation_prompt appends the assistant
 * header; llama2/mistral/phi3-legacy templates have no such switch and ignore it). Appends to *out.
 * TK_ERR_ARG for no messages or role orders the template rejects; TK_ERR_UNSUPPORTED for messages it cannot render. */
tk_status tk_chat_render_text(tk_chat_family f, const tk_chat_msg *msgs, size_t n, bool add_generation_prompt, tk_buf *out);
/* tk_chat_render_text with switches (o may be NULL: all defaults). Thread-safe. */
tk_status tk_chat_render_text_opts(tk_chat_family f, const tk_chat_msg *msgs, size_t n, const tk_chat_opts *o, tk_buf *out);
/* Renders msgs to tokens with per-token provenance; out must be zeroed; free with tk_chat_tokens_free (also on failure).
 * Template markers (<|im_start|>, <|eot_id|>, </s>, …) become their special token when tok has it; message content is
 * tokenized without parsing special tokens, so text like "<|im_end|>" in a message cannot inject control tokens.
 * The text between two special tokens is tokenized as one piece, so the ids equal tk_tokenize(rendered text,
 * TK_TOK_PARSE_SPECIAL) whenever no content contains special-token text; a token that straddles template text and
 * content (e.g. SentencePiece "▁answer" from " " + "answer") belongs to the later of the two. Never adds BOS/EOS beyond
 * what the template renders (alpaca: the tokenizer's EOS closes each assistant answer, text rendering has none). */
tk_status tk_chat_render(const tk_tokenizer *tok, tk_chat_family f, const tk_chat_msg *msgs, size_t n,
                         bool add_generation_prompt, tk_chat_tokens *out);
/* tk_chat_render with switches (o may be NULL: all defaults). Qwen3: a rendered "<think>\n…\n</think>\n\n" block of
 * an assistant message is a target, as its content is (the model generates it). Thread-safe. */
tk_status tk_chat_render_opts(const tk_tokenizer *tok, tk_chat_family f, const tk_chat_msg *msgs, size_t n,
                              const tk_chat_opts *o, tk_chat_tokens *out);
/* Frees the arrays of a rendered conversation and zeroes it. */
void tk_chat_tokens_free(tk_chat_tokens *c);

#ifdef __cplusplus
}
#endif
#endif
