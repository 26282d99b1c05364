/* Chat templates rendered by takumi itself, with an exact record of which tokens
 * belong to which message and role (the SFT loss mask depends on it).
 * Families are recognised from the model's own Jinja template. */
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
    TK_CHAT_CHATML,   /* SmolLM2, Qwen2: <|im_start|>role\n…<|im_end|>\n */
    TK_CHAT_LLAMA3,   /* <|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|> */
    TK_CHAT_LLAMA2,   /* <s>[INST] <<SYS>>…<</SYS>> … [/INST] … </s> */
    TK_CHAT_MISTRAL,  /* <s>[INST] … [/INST] …</s> (system folded into the first user turn) */
    TK_CHAT_GEMMA,    /* <start_of_turn>user\n…<end_of_turn>\n */
    TK_CHAT_PHI3,     /* <|user|>\n…<|end|>\n<|assistant|>\n */
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
    int32_t *msg_index;   /* [ids.len] index into msgs, or -1 for template glue / generation prompt */
    uint8_t *role;        /* [ids.len] tk_role of msg_index (TK_ROLE_SYSTEM for glue) */
    uint8_t *is_target;   /* [ids.len] 1 for an assistant message's content + its end-of-turn token (what SFT trains on) */
} tk_chat_tokens;

/* Recognises the family from a Jinja chat template source (TK_CHAT_UNKNOWN if none matches). */
tk_chat_family tk_chat_detect(const char *jinja);
/* Family by name ("chatml", "llama3", "llama2", "mistral", "gemma", "phi3"); TK_CHAT_UNKNOWN if unknown. */
tk_chat_family tk_chat_family_from_name(const char *name);
/* Name of a family. */
const char *tk_chat_family_name(tk_chat_family f);
/* Renders msgs to text exactly as the family's official template does (add_generation_prompt appends the assistant header). */
tk_status tk_chat_render_text(tk_chat_family f, const tk_chat_msg *msgs, size_t n, bool add_generation_prompt, tk_buf *out);
/* Renders msgs to tokens with per-token provenance; out must be zeroed; free with tk_chat_tokens_free. */
tk_status tk_chat_render(const tk_tokenizer *tok, tk_chat_family f, const tk_chat_msg *msgs, size_t n,
                         bool add_generation_prompt, tk_chat_tokens *out);
/* Frees the arrays of a rendered conversation. */
void tk_chat_tokens_free(tk_chat_tokens *c);

#ifdef __cplusplus
}
#endif
#endif
