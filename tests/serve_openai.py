"""The official openai Python SDK as the client of `takumi serve` (run by tests/serve_cli.sh).

usage: serve_openai.py BASE_URL EXPECT.json [KEYED_BASE_URL KEY]
EXPECT.json holds the model ids and the greedy answers `takumi generate` gave for the same prompts
(so the server's output is checked, not only its shape). Prints one line per failed check and a
closing "serve_openai: N checks passed, N failed"; exits 1 on any failure, 2 when openai is missing.
"""
import json
import sys

from serve_sdk import check, finish as finish_checks, openai  # noqa: E402  (exits 2 when the SDK is missing)


def main():
    base, exp = sys.argv[1], json.load(open(sys.argv[2]))
    client = openai.OpenAI(base_url=base, api_key="unused", max_retries=0, timeout=300)

    ids = sorted(m.id for m in client.models.list())
    check(ids == sorted(exp["models"]), f"models.list: {ids} != {sorted(exp['models'])}")
    m = client.models.retrieve(exp["adapter"])
    check(m.id == exp["adapter"] and m.object == "model", f"models.retrieve({exp['adapter']}): {m}")

    # chat, plain: greedy answer equals takumi generate --chat
    r = client.chat.completions.create(model=exp["chat_model"], messages=[{"role": "user", "content": exp["chat_prompt"]}],
                                       temperature=0, max_tokens=exp["chat_max_tokens"])
    got = r.choices[0].message.content
    check(got == exp["chat_text"], f"chat.completions.create: {got!r} != {exp['chat_text']!r}")
    check(r.choices[0].message.role == "assistant" and r.object == "chat.completion", f"chat object: {r}")
    check(r.usage.completion_tokens > 0 and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens,
          f"chat usage: {r.usage}")
    check(r.model == exp["chat_model"], f"chat model field: {r.model}")

    # chat, streamed: the deltas join to the same answer; usage in the final chunk
    stream = client.chat.completions.create(model=exp["chat_model"], messages=[{"role": "user", "content": exp["chat_prompt"]}],
                                            temperature=0, max_tokens=exp["chat_max_tokens"], stream=True,
                                            stream_options={"include_usage": True})
    parts, finish, usage, roles = [], None, None, []
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.role:
                roles.append(c.delta.role)
            if c.delta.content:
                parts.append(c.delta.content)
            if c.finish_reason:
                finish = c.finish_reason
    check("".join(parts) == exp["chat_text"], f"chat stream: {''.join(parts)!r} != {exp['chat_text']!r}")
    check(roles == ["assistant"], f"chat stream roles: {roles}")
    check(finish in ("stop", "length"), f"chat stream finish_reason: {finish}")
    check(usage is not None and usage.completion_tokens == r.usage.completion_tokens and usage.prompt_tokens == r.usage.prompt_tokens,
          f"chat stream usage: {usage} vs {r.usage}")

    # completions: base and adapter model ids
    for model, text in ((exp["base"], exp["base_text"]), (exp["adapter"], exp["adapter_text"])):
        c = client.completions.create(model=model, prompt=exp["prompt"], temperature=0, max_tokens=exp["max_tokens"])
        check(c.choices[0].text == text, f"completions.create({model}): {c.choices[0].text!r} != {text!r}")
        check(c.object == "text_completion" and c.model == model, f"completion object: {c}")
    parts = [ch.choices[0].text for ch in client.completions.create(model=exp["adapter"], prompt=exp["prompt"], temperature=0,
                                                                      max_tokens=exp["max_tokens"], stream=True) if ch.choices]
    check("".join(parts) == exp["adapter_text"], f"completions stream ({exp['adapter']}): {''.join(parts)!r}")

    # errors come back as the SDK's typed exceptions
    try:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
        check(False, "unknown model: no error")
    except openai.NotFoundError as e:
        check(e.status_code == 404 and e.code == "model_not_found", f"unknown model: {e}")
    try:
        client.chat.completions.create(model=exp["chat_model"], messages=[{"role": "wizard", "content": "hi"}])
        check(False, "bad role: no error")
    except openai.BadRequestError as e:
        check(e.status_code == 400 and e.param == "messages[0].role", f"bad role: {e} (param {e.param})")

    if len(sys.argv) >= 5:
        keyed, key = sys.argv[3], sys.argv[4]
        try:
            openai.OpenAI(base_url=keyed, api_key="tk-wrong", max_retries=0).models.list()
            check(False, "wrong key: no error")
        except openai.AuthenticationError as e:
            check(e.status_code == 401 and e.code == "invalid_api_key", f"wrong key: {e}")
        ids = [m.id for m in openai.OpenAI(base_url=keyed, api_key=key, max_retries=0).models.list()]
        check(exp["base"] in ids, f"right key: models {ids}")

    finish_checks(f"serve_openai (openai {openai.__version__})")


main()
