#!/usr/bin/env python3
"""Writes tests/fixtures/chat/<name>.json: what each model family's OFFICIAL chat template
renders for a set of varied conversations, so tests/test_chat.c can check takumi's own
renderer (src/tokenizer/chat.c) byte for byte.

Each template below is the template string of the model's official tokenizer_config.json
(or GGUF tokenizer.chat_template), kept verbatim; the comment above it says where the copy
came from. Rendering goes through transformers' own render_jinja_template (sandboxed jinja2
with trim_blocks/lstrip_blocks, raise_exception, tojson as apply_chat_template sets them),
with the family's real bos_token/eos_token strings.

A fixture case holds the messages, add_generation_prompt and one of:
  "expected": the official rendering;
  "error": the official template raised (raise_exception / bad index), takumi must fail too;
  "takumi_rejects" (+ "official"): the official template renders something but silently drops
      a message (e.g. a tool message in Llama-2); takumi refuses instead (documented policy).

usage: python3 tools/make_chat_fixtures.py [--out tests/fixtures/chat]
needs: transformers, jinja2, gguf; models/SmolLM2-135M-Instruct.Q4_1.gguf (scripts/fetch-model.sh)
and ../shared/tokenizers/llamacpp-vocab/ggml-vocab-phi-3.gguf (or $TAKUMI_SHARED).
"""
import argparse
import json
import os
import sys

from transformers.utils.chat_template_utils import render_jinja_template

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TAKUMI_SHARED") or os.path.join(ROOT, "..", "shared")


def gguf_template(path):
    from gguf import GGUFReader
    r = GGUFReader(path)
    f = r.fields["tokenizer.chat_template"]
    return bytes(f.parts[f.data[0]]).decode("utf-8")


# ---------------------------------------------------------------------------------------
# Official templates. Python literals copied verbatim from the cited files.

# teknium/OpenHermes-2.5-Mistral-7B (plain ChatML, no default system), as listed in
# ggml-org/llama.cpp tests/test-chat-template.cpp.
CHATML = r"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

# Qwen/Qwen2-7B-Instruct tokenizer_config.json, as copied in
# openvinotoolkit/openvino.genai tests/python_tests/tokenizer_configs.py.
QWEN2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

# Qwen/Qwen2.5-*-Instruct tokenizer_config.json "chat_template" (JSON literal), as quoted in
# ShishirPatil/gorilla berkeley-function-call-leaderboard .../model_handler/.../qwen.py.
QWEN25 = json.loads(r'''"{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- messages[0]['content'] }}\n    {%- else %}\n        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- for message in messages %}\n    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\" and not message.tool_calls) %}\n        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif %}\n        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function is defined %}\n                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson }}\n            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n    {%- elif message.role == \"tool\" %}\n        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n"''')

# meta-llama/Meta-Llama-3-8B-Instruct, via openvino.genai tokenizer_configs.py.
LLAMA3 = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"

# meta-llama/Meta-Llama-3.1-8B-Instruct, via openvino.genai tokenizer_configs.py.
LLAMA31 = "{{- bos_token }}\n{%- if custom_tools is defined %}\n    {%- set tools = custom_tools %}\n{%- endif %}\n{%- if not tools_in_user_message is defined %}\n    {%- set tools_in_user_message = true %}\n{%- endif %}\n{%- if not date_string is defined %}\n    {%- set date_string = \"26 Jul 2024\" %}\n{%- endif %}\n{%- if not tools is defined %}\n    {%- set tools = none %}\n{%- endif %}\n\n{#- This block extracts the system message, so we can slot it into the right place. #}\n{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content']|trim %}\n    {%- set messages = messages[1:] %}\n{%- else %}\n    {%- set system_message = \"\" %}\n{%- endif %}\n\n{#- System message + builtin tools #}\n{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n{%- if builtin_tools is defined or tools is not none %}\n    {{- \"Environment: ipython\\n\" }}\n{%- endif %}\n{%- if builtin_tools is defined %}\n    {{- \"Tools: \" + builtin_tools | reject('equalto', 'code_interpreter') | join(\", \") + \"\\n\\n\"}}\n{%- endif %}\n{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n{%- if tools is not none and not tools_in_user_message %}\n    {{- \"You have access to the following functions. To call a function, please respond with JSON for a function call.\" }}\n    {{- 'Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.' }}\n    {{- \"Do not use variables.\\n\\n\" }}\n    {%- for t in tools %}\n        {{- t | tojson(indent=4) }}\n        {{- \"\\n\\n\" }}\n    {%- endfor %}\n{%- endif %}\n{{- system_message }}\n{{- \"<|eot_id|>\" }}\n\n{#- Custom tools are passed in a user message with some extra guidance #}\n{%- if tools_in_user_message and not tools is none %}\n    {#- Extract the first user message so we can plug it in here #}\n    {%- if messages | length != 0 %}\n        {%- set first_user_message = messages[0]['content']|trim %}\n        {%- set messages = messages[1:] %}\n    {%- else %}\n        {{- raise_exception(\"Cannot put tools in the first user message when there's no first user message!\") }}\n{%- endif %}\n    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}\n    {{- \"Given the following functions, please respond with a JSON for a function call \" }}\n    {{- \"with its proper arguments that best answers the given prompt.\\n\\n\" }}\n    {{- 'Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.' }}\n    {{- \"Do not use variables.\\n\\n\" }}\n    {%- for t in tools %}\n        {{- t | tojson(indent=4) }}\n        {{- \"\\n\\n\" }}\n    {%- endfor %}\n    {{- first_user_message + \"<|eot_id|>\"}}\n{%- endif %}\n\n{%- for message in messages %}\n    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}\n        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}\n    {%- elif 'tool_calls' in message %}\n        {%- if not message.tool_calls|length == 1 %}\n            {{- raise_exception(\"This model only supports single tool-calls at once!\") }}\n        {%- endif %}\n        {%- set tool_call = message.tool_calls[0].function %}\n        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}\n            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n            {{- \"<|python_tag|>\" + tool_call.name + \".call(\" }}\n            {%- for arg_name, arg_val in tool_call.arguments | items %}\n                {{- arg_name + '=\"' + arg_val + '\"' }}\n                {%- if not loop.last %}\n                    {{- \", \" }}\n                {%- endif %}\n                {%- endfor %}\n            {{- \")\" }}\n        {%- else  %}\n            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n            {{- '{\"name\": \"' + tool_call.name + '\", ' }}\n            {{- '\"parameters\": ' }}\n            {{- tool_call.arguments | tojson }}\n            {{- \"}\" }}\n        {%- endif %}\n        {%- if builtin_tools is defined %}\n            {#- This means we're in ipython mode #}\n            {{- \"<|eom_id|>\" }}\n        {%- else %}\n            {{- \"<|eot_id|>\" }}\n        {%- endif %}\n    {%- elif message.role == \"tool\" or message.role == \"ipython\" %}\n        {{- \"<|start_header_id|>ipython<|end_header_id|>\\n\\n\" }}\n        {%- if message.content is mapping or message.content is iterable %}\n            {{- message.content | tojson }}\n        {%- else %}\n            {{- message.content }}\n        {%- endif %}\n        {{- \"<|eot_id|>\" }}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n{%- endif %}\n"

# meta-llama/Llama-2-7b-chat-hf, via openvino.genai tokenizer_configs.py.
LLAMA2 = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"

# mistralai/Mistral-7B-Instruct-v0.1 (current "v1" template: optional system message folded
# into the first user turn), via openvino.genai tokenizer_configs.py.
MISTRAL = "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content'] %}\n    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n\n{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}\n    {%- endif %}\n    {%- if message['role'] == 'user' %}\n        {%- if loop.first and system_message is defined %}\n            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n        {%- else %}\n            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n        {%- endif %}\n    {%- elif message['role'] == 'assistant' %}\n        {{- ' ' + message['content'] + eos_token}}\n    {%- else %}\n        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}\n    {%- endif %}\n{%- endfor %}\n"

# The pre-v1 template of mistralai/Mistral-7B-Instruct-v0.2 and Mixtral-8x7B-Instruct-v0.1
# (no system role), as listed in llama.cpp tests/test-chat-template.cpp
# ("Mistral-7B-Instruct-v0.2 (NOTE: Old pre-v1 without a system prompt)") and
# openvino.genai tokenizer_configs.py (Mixtral-8x7B-Instruct-v0.1).
MISTRAL_LEGACY = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"

# google/gemma-7b-it (same template as gemma-2-*-it), via openvino.genai tokenizer_configs.py.
GEMMA = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"

# Gemma 3 (google/gemma-3-*-it): the _CHAT_TEMPLATE of huggingface/transformers
# src/transformers/models/gemma3/convert_gemma3_weights.py (system prepended to the first
# user turn).
GEMMA3 = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""

# microsoft/Phi-3-mini-4k-instruct (current revision), via openvino.genai tokenizer_configs.py.
PHI3 = "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"

# microsoft/Phi-3.5-mini-instruct (empty system messages are skipped), as quoted from its
# tokenizer_config.json in ShishirPatil/gorilla berkeley-function-call-leaderboard
# .../model_handler/.../phi.py.
PHI35 = "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"

# Qwen/Qwen3-0.6B tokenizer_config.json "chat_template" (the hybrid-thinking template of the
# original Qwen3 release, shared by Qwen3-0.6B ... Qwen3-235B-A22B), as fetched by llama.cpp's
# scripts/get_chat_template.py into ggml-org/llama.cpp models/templates/Qwen-Qwen3-0.6B.jinja
# (copy read from the llama.cpp that llama-cpp-python 0.3.36 vendors, vendor/llama.cpp/...).
QWEN3 = r'''{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set content = message.content %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is defined and message.reasoning_content is not none %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in message.content %}
                {%- set content = message.content.split('</think>')[-1].lstrip('\n') %}
                {%- set reasoning_content = message.content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}'''

# takumi's Alpaca fallback for models without a chat template (no official template exists;
# this Jinja text IS the specification src/tokenizer/chat.c implements). The preamble is
# Stanford Alpaca's; a system message replaces it. Token rendering adds the model's EOS after
# each assistant answer (the text has no model-specific EOS).
ALPACA = ("{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] + '\n\n' }}{% set loop_messages = messages[1:] %}"
          "{% else %}{{ 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' }}{% set loop_messages = messages %}{% endif %}"
          "{% for message in loop_messages %}{% if message['role'] == 'user' %}{{ '### Instruction:\n' + message['content'] + '\n\n' }}"
          "{% elif message['role'] == 'assistant' %}{{ '### Response:\n' + message['content'] + '\n\n' }}"
          "{% else %}{{ raise_exception('alpaca: only user and assistant messages after an optional first system message') }}{% endif %}{% endfor %}"
          "{% if add_generation_prompt %}{{ '### Response:\n' }}{% endif %}")

# name -> (takumi family name, source, template, bos, eos)
TEMPLATES = {
    "chatml": ("chatml", "teknium/OpenHermes-2.5-Mistral-7B (llama.cpp tests/test-chat-template.cpp)", CHATML, "<s>", "<|im_end|>"),
    "smollm2": ("smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct: GGUF tokenizer.chat_template of models/SmolLM2-135M-Instruct.Q4_1.gguf", None, "<|im_start|>", "<|im_end|>"),
    "qwen2": ("qwen2", "Qwen/Qwen2-7B-Instruct tokenizer_config.json (openvino.genai tests/python_tests/tokenizer_configs.py)", QWEN2, "", "<|im_end|>"),
    "qwen2.5": ("qwen2.5", "Qwen/Qwen2.5-7B-Instruct tokenizer_config.json (quoted in ShishirPatil/gorilla bfcl qwen handler)", QWEN25, "", "<|im_end|>"),
    "llama3": ("llama3", "meta-llama/Meta-Llama-3-8B-Instruct tokenizer_config.json (openvino.genai tokenizer_configs.py)", LLAMA3, "<|begin_of_text|>", "<|eot_id|>"),
    "llama3.1": ("llama3.1", "meta-llama/Meta-Llama-3.1-8B-Instruct tokenizer_config.json (openvino.genai tokenizer_configs.py)", LLAMA31, "<|begin_of_text|>", "<|eot_id|>"),
    "llama2": ("llama2", "meta-llama/Llama-2-7b-chat-hf tokenizer_config.json (openvino.genai tokenizer_configs.py)", LLAMA2, "<s>", "</s>"),
    "mistral": ("mistral", "mistralai/Mistral-7B-Instruct-v0.1 tokenizer_config.json, v1 template (openvino.genai tokenizer_configs.py)", MISTRAL, "<s>", "</s>"),
    "mistral-legacy": ("mistral-legacy", "mistralai/Mistral-7B-Instruct-v0.2 / Mixtral-8x7B-Instruct-v0.1 pre-v1 template (llama.cpp tests/test-chat-template.cpp)", MISTRAL_LEGACY, "<s>", "</s>"),
    "gemma": ("gemma", "google/gemma-7b-it tokenizer_config.json (openvino.genai tokenizer_configs.py)", GEMMA, "<bos>", "<eos>"),
    "gemma3": ("gemma3", "google/gemma-3-*-it: huggingface/transformers models/gemma3/convert_gemma3_weights.py _CHAT_TEMPLATE", GEMMA3, "<bos>", "<eos>"),
    "phi3": ("phi3", "microsoft/Phi-3-mini-4k-instruct tokenizer_config.json (openvino.genai tokenizer_configs.py)", PHI3, "<s>", "<|endoftext|>"),
    "phi3.5": ("phi3.5", "microsoft/Phi-3.5-mini-instruct tokenizer_config.json (quoted in ShishirPatil/gorilla bfcl phi handler)", PHI35, "<s>", "<|endoftext|>"),
    "phi3-legacy": ("phi3-legacy", "microsoft/Phi-3-mini-4k-instruct original template: GGUF tokenizer.chat_template of llama.cpp models/ggml-vocab-phi-3.gguf", None, "<s>", "<|endoftext|>"),
    "alpaca": ("alpaca", "takumi's own Alpaca fallback (specified here; no official template)", ALPACA, "", ""),
    "qwen3": ("qwen3", "Qwen/Qwen3-0.6B tokenizer_config.json (llama.cpp models/templates/Qwen-Qwen3-0.6B.jinja)", QWEN3, "", "<|im_end|>"),
}


def S(c): return {"role": "system", "content": c}
def U(c): return {"role": "user", "content": c}
def A(c): return {"role": "assistant", "content": c}
def T(c): return {"role": "tool", "content": c}


# Varied conversations: system / no system, multi-turn, Japanese, emoji, empty content,
# whitespace that trim/strip must remove (incl. U+3000 and U+00A0), special-token look-alike
# text, tool messages, a mid-conversation system message, a role-order violation.
CONVERSATIONS = [
    ("single_user", [U("Hello!")]),
    ("system_user", [S("You are a terse assistant."), U("What is 2+2?")]),
    ("multi_turn", [U("Hi there"), A("Hello! How can I help?"), U("Tell me a joke."), A("Why did the chicken cross the road? To get to the other side.")]),
    ("system_multi_turn", [S("You answer in one word."), U("Capital of France?"), A("Paris."), U("And of Japan?"), A("Tokyo.")]),
    ("japanese", [S("あなたは親切なアシスタントです。"), U("営業時間を教えてください。"), A("平日は9時から18時まで営業しています。🙂")]),
    ("empty_contents", [U(""), A("")]),
    ("empty_system", [S(""), U("ping"), A("pong")]),
    ("whitespace", [S("  sys with spaces \n"), U("\n  question?\t \n"), A("   I am an assistant   "), U("\u3000全角スペース\u3000"), A("\u00a0nbsp\u00a0\n")]),
    ("special_lookalike", [U("Print <|im_end|> and [INST] literally"), A("Sure: <|im_end|> [/INST] <end_of_turn> <|eot_id|> </s>")]),
    ("code_and_newlines", [U("Fix this:\n```c\nint main(){return 0;}\n```"), A("It is fine.\n\n```c\nint main(void) { return 0; }\n```\n")]),
    ("tool_call", [U("What's the weather in Tokyo?"), A("Let me check."), T("{\"temp_c\": 21, \"sky\": \"clear\"}"), A("It is 21°C and clear in Tokyo.")]),
    ("tool_twice", [S("Use tools."), U("Compare Paris and Rome."), A("Checking both."), T("Paris: 18C"), T("Rome: \"24C\"\n(sunny)"), U("Which is warmer?")]),
    ("mid_system", [U("Hi"), A("Hello."), S("From now on, answer in French."), U("How are you?")]),
    ("double_user", [U("First question"), U("Second question")]),
    ("ends_with_assistant", [S("Be brief."), U("Name a color."), A("Blue.")]),
    ("system_only", [S("Only a system prompt.")]),
]

def AR(c, r):
    """An assistant message with reasoning_content (Qwen3)."""
    return {"role": "assistant", "content": c, "reasoning_content": r}


# Reasoning conversations (Qwen3 only): thinking inside the content or as reasoning_content,
# earlier turns' reasoning dropped, tool steps after the last real user query, user turns that
# are wrapped tool responses, several or unpaired think tags, newlines the template strips.
REASONING_CONVERSATIONS = [
    ("think_in_content", [U("What is 2+2?"), A("<think>\nSimple arithmetic.\n</think>\n\n4")]),
    ("think_earlier_dropped", [S("Be brief."), U("Hi"), A("<think>greet back</think>Hello!"), U("And 2+2?"),
                               A("<think>\nadd them\n</think>\n\nIt is 4.")]),
    ("no_think_last", [U("Hi"), A("Hello!")]),
    ("no_think_earlier", [U("Hi"), A("Hello!"), U("Bye")]),
    ("reasoning_field", [U("Capital of France?"), AR("\nParis is the capital.\n\n", "\nParis.")]),
    ("reasoning_field_earlier", [U("Q1"), AR("A1", "r1"), U("Q2"), AR("A2", "r2")]),
    ("reasoning_field_empty", [U("Q"), AR("<think>kept as text</think>answer", "")]),
    ("reasoning_newline_only", [U("Q"), AR("A", "\n"), U("again"), AR("B", "\n")]),
    ("tool_steps_after_query", [U("Weather in Tokyo?"), A("<think>need the tool</think>Checking."), T("sunny, 21C"),
                                A("Let me also check rain."), T("no rain"), A("<think>\nsummarize\n</think>\n\nSunny, dry.")]),
    ("user_wrapped_tool_response", [U("Look it up."), A("<think>call</think>Calling."),
                                    U("<tool_response>\nresult 42\n</tool_response>"), A("The answer is 42.")]),
    ("several_think_tags", [U("Q"), A("<think>a<think>b</think>c</think>\n\nd")]),
    ("close_without_open", [U("Q"), A("reasoning only</think>answer")]),
    ("think_newlines", [U("Q"), A("\n\n<think>\n\n\nr\n\n</think>\n\n\nanswer\n")]),
    ("japanese_think", [U("日本の首都は？"), A("<think>\n東京です。🙂\n</think>\n\n東京です。")]),
]

ALTERNATING = {"llama2", "mistral", "mistral-legacy", "gemma", "gemma3"}


def takumi_policy(family, msgs):
    """Where an official template silently drops a message, takumi refuses instead."""
    roles = [m["role"] for m in msgs]
    if family in ALTERNATING:
        body = roles[1:] if roles and roles[0] == "system" else roles
        if any(r not in ("user", "assistant") for r in body):
            return "system/tool messages other than a leading system message are not rendered by this template"
        if "user" not in body:
            return "no user message: the template would drop the system message"
    if family in ("phi3", "phi3.5") and "tool" in roles:
        return "this template drops tool messages"
    if family == "phi3-legacy" and ("tool" in roles or "system" in roles):
        return "this template drops system and tool messages"
    if family == "alpaca" and any(r not in ("user", "assistant") for r in (roles[1:] if roles[0] == "system" else roles)):
        return "alpaca: only user and assistant messages after an optional first system message"
    return None


# SmolLM2 token fixture: ids from HF tokenizers (loaded from the same GGUF) on the official
# rendering, and the expected provenance from character offsets: a token belongs to the
# message whose rendered block holds its first character; it is a target when it overlaps an
# assistant message's content or is the <|im_end|> closing it.
TOKEN_CONVERSATIONS = [
    ([U("Hi"), A("Hello!")], False),
    ([S("You are terse."), U("What is 2+2?"), A("4"), U("Thanks"), A("You're welcome.")], False),
    ([U("こんにちは"), A("こんにちは！🙂 元気です。")], False),
    ([U("Weather?"), A("Checking."), T("sunny, 21C"), A("It is sunny.")], False),
    ([U("  spaced user"), A("\n\n  indented answer\n")], False),
    ([S("Be kind."), U("Hello")], True),
]


def token_fixture(tmpl, out_dir):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(os.path.join(ROOT, "models"), gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    cases = []
    for msgs, agp in TOKEN_CONVERSATIONS:
        out, _ = render_jinja_template(conversations=[msgs], chat_template=tmpl, add_generation_prompt=agp,
                                       bos_token="<|im_start|>", eos_token="<|im_end|>")
        text = out[0]
        blocks = []  # (start, end, msg, role, content_start, content_end)
        pos = 0
        if msgs[0]["role"] != "system":
            end = text.index("<|im_end|>\n") + len("<|im_end|>\n")
            blocks.append((0, end, -1, "system", -1, -1))
            pos = end
        for i, m in enumerate(msgs):
            head = "<|im_start|>" + m["role"] + "\n"
            block = head + m["content"] + "<|im_end|>\n"
            assert text.startswith(block, pos), (text, pos, block)
            cs = pos + len(head)
            blocks.append((pos, pos + len(block), i, m["role"], cs, cs + len(m["content"])))
            pos += len(block)
        if pos < len(text):
            blocks.append((pos, len(text), -1, "assistant", -1, -1))
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, msg_index, roles, target = enc["input_ids"], [], [], []
        for (s, e) in enc["offset_mapping"]:
            b = next(b for b in blocks if b[0] <= s < b[1])
            msg_index.append(b[2])
            roles.append(b[3])
            t = 0
            if b[3] == "assistant" and b[2] >= 0:
                overlaps = s < b[5] and e > b[4]
                closes = (s == b[5] and text[s:e] == "<|im_end|>")
                t = int(overlaps or closes)
            target.append(t)
        cases.append({"messages": msgs, "add_generation_prompt": agp, "text": text, "ids": ids,
                      "msg_index": msg_index, "role": roles, "is_target": target})
    doc = {"kind": "tokens", "name": "smollm2_tokens", "family": "smollm2",
           "source": "ids: HF tokenizers (transformers AutoTokenizer on models/SmolLM2-135M-Instruct.Q4_1.gguf); "
                     "provenance from character offsets of the official rendering",
           "cases": cases}
    path = os.path.join(out_dir, "smollm2_tokens.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)
        f.write("\n")
    print(f"{path}: {len(cases)} tokenized conversations", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "chat"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    smol = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    phi = os.path.join(SHARED, "tokenizers", "llamacpp-vocab", "ggml-vocab-phi-3.gguf")
    sources = {"smollm2": smol, "phi3-legacy": phi}

    total = 0
    for name, (family, source, tmpl, bos, eos) in TEMPLATES.items():
        if tmpl is None:
            if not os.path.exists(sources[name]):
                sys.exit(f"missing {sources[name]} (needed for the {name} template)")
            tmpl = gguf_template(sources[name])
        cases = []
        runs = [(c, m, agp, None) for c, m in CONVERSATIONS for agp in (False, True)]
        if family == "qwen3":
            runs += [(c, m, agp, None) for c, m in REASONING_CONVERSATIONS for agp in (False, True)]
            runs += [(c, m, True, think) for c, m in CONVERSATIONS[:4] + REASONING_CONVERSATIONS[:4]
                     for think in (False, True)]
        for conv_name, msgs, agp, think in runs:
            case = {"name": conv_name, "add_generation_prompt": agp, "messages": msgs}
            extra = {}
            if think is not None:
                case["enable_thinking"] = extra["enable_thinking"] = think
            try:
                out, _ = render_jinja_template(conversations=[msgs], chat_template=tmpl,
                                               add_generation_prompt=agp, bos_token=bos, eos_token=eos, **extra)
                text = out[0]
                why = takumi_policy(family, msgs)
                if why:
                    case["takumi_rejects"] = why
                    case["official"] = text
                else:
                    case["expected"] = text
            except Exception as e:  # raise_exception() or an undefined index in the template
                case["error"] = f"{type(e).__name__}: {e}"
            cases.append(case)
        doc = {"kind": "template", "name": name, "family": family, "source": source, "bos_token": bos, "eos_token": eos,
               "template": tmpl, "cases": cases}
        path = os.path.join(args.out, name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
            f.write("\n")
        total += len(cases)
        n_exp = sum("expected" in c for c in cases)
        print(f"{path}: {len(cases)} cases ({n_exp} rendered, {len(cases) - n_exp} refused)", file=sys.stderr)
    print(f"{total} cases in {len(TEMPLATES)} fixtures", file=sys.stderr)
    token_fixture(gguf_template(smol), args.out)


if __name__ == "__main__":
    main()
