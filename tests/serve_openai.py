"""The official openai Python SDK as the client of `takumi serve` (run by tests/serve_cli.sh).

usage: serve_openai.py BASE_URL EXPECT.json [KEYED_BASE_URL KEY]
EXPECT.json holds the model ids and the greedy answers `takumi generate` gave for the same prompts
(so the server's output is checked, not only its shape). Prints one line per failed check and a
closing "serve_openai: N checks passed, N failed"; exits 1 on any failure, 2 when openai is missing.
"""
import json
import sys

from serve_sdk import check, finish as finish_checks, openai  # noqa: E402  (exits 2 when the SDK is missing)


def logprobs_checks(client, exp):
    """logprobs / top_logprobs (chat) and logprobs N (completions), plain and streamed, and n choices as parallel rows."""
    msgs = [{"role": "user", "content": exp["chat_prompt"]}]
    r = client.chat.completions.create(model=exp["chat_model"], messages=msgs, temperature=0, max_tokens=exp["chat_max_tokens"],
                                       logprobs=True, top_logprobs=3)
    c = r.choices[0]
    content = c.logprobs.content if c.logprobs else None
    check(c.message.content == exp["chat_text"], f"chat logprobs: the text changed: {c.message.content!r}")
    check(content is not None and len(content) > 0 and c.logprobs.refusal is None, f"chat logprobs object: {c.logprobs}")
    if content:
        # every token once, in order: their bytes join to the text (no stop string here; the end token adds no text)
        check(b"".join(bytes(t.bytes) for t in content) == exp["chat_text"].encode(), f"chat logprobs bytes: {content}")
        check("".join(t.token for t in content) == exp["chat_text"], "chat logprobs tokens do not join to the text")
        check(len(content) == r.usage.completion_tokens - (1 if c.finish_reason == "stop" else 0),
              f"chat logprobs: {len(content)} tokens for {r.usage.completion_tokens} completion tokens ({c.finish_reason})")
        # greedy: the sampled token is the most likely one, with the same log-probability
        check(all(len(t.top_logprobs) == 3 and t.top_logprobs[0].token == t.token and t.top_logprobs[0].logprob == t.logprob
                  and t.logprob <= 0 and t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob >= t.top_logprobs[2].logprob
                  for t in content), f"chat top_logprobs under greedy: {content[:2]}")
    # streamed: each chunk carries its own tokens; together the same as the plain answer's
    got = []
    for chunk in client.chat.completions.create(model=exp["chat_model"], messages=msgs, temperature=0, max_tokens=exp["chat_max_tokens"],
                                                logprobs=True, top_logprobs=3, stream=True):
        for ch in chunk.choices:
            if ch.logprobs and ch.logprobs.content:
                check("".join(t.token for t in ch.logprobs.content) == (ch.delta.content or ""), f"chunk logprobs vs its text: {ch}")
                got += ch.logprobs.content
    check(content and [(t.token, t.logprob) for t in got] == [(t.token, t.logprob) for t in content],
          f"chat stream logprobs differ from the plain answer's: {len(got)} vs {len(content or [])}")

    # completions: logprobs 2 -> tokens, token_logprobs, top_logprobs (the top 2 and the sampled one), text_offset
    comp = client.completions.create(model=exp["base"], prompt=exp["prompt"], temperature=0, max_tokens=exp["max_tokens"], logprobs=2)
    lp = comp.choices[0].logprobs
    check(comp.choices[0].text == exp["base_text"], f"completions logprobs: the text changed: {comp.choices[0].text!r}")
    check(lp is not None and "".join(lp.tokens) == exp["base_text"] and len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs)
          == len(lp.text_offset) == exp["max_tokens"], f"completions logprobs lists: {lp}")
    if lp and lp.tokens:
        want_off = [len(exp["prompt"]) + len("".join(lp.tokens[:i])) for i in range(len(lp.tokens))]
        check(lp.text_offset == want_off, f"text_offset {lp.text_offset} != {want_off}")
        check(all(2 <= len(d) <= 3 and d.get(t) == v and max(d.values()) == v for t, v, d in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs)),
              f"completions top_logprobs under greedy: {lp.top_logprobs[:2]}")
    parts, slp = [], []
    for ch in client.completions.create(model=exp["base"], prompt=exp["prompt"], temperature=0, max_tokens=exp["max_tokens"], logprobs=2,
                                        stream=True):
        for c in ch.choices:
            parts.append(c.text)
            if c.logprobs:
                slp += list(zip(c.logprobs.tokens, c.logprobs.token_logprobs, c.logprobs.text_offset))
    check(lp and slp == list(zip(lp.tokens, lp.token_logprobs, lp.text_offset)), "completions stream logprobs differ from the plain answer's")

    # n choices are rows of one batch: each equals the same request with n=1 and seed + k; streamed, the choices'
    # chunks interleave (they decode in the same steps) and join to the same texts
    kw = dict(model=exp["base"], prompt="Once upon a time", temperature=1, max_tokens=16, logprobs=1)
    many = client.completions.create(n=2, seed=11, **kw)
    for k in range(2):
        one = client.completions.create(n=1, seed=11 + k, **kw).choices[0]
        check(many.choices[k].text == one.text and many.choices[k].logprobs.token_logprobs == one.logprobs.token_logprobs,
              f"n=2 choice {k} differs from n=1 with seed {11 + k}: {many.choices[k].text!r} vs {one.text!r}")
    order, texts, events = [], ["", ""], []
    for ch in client.completions.create(n=2, seed=11, stream=True, **kw):
        for c in ch.choices:
            if c.text:
                order.append(c.index)
                texts[c.index] += c.text
            events.append((c.index, c.finish_reason))
    check(texts == [c.text for c in many.choices], f"n=2 stream texts: {texts}")
    check(order != sorted(order), f"n=2 stream: the choices' chunks do not interleave: {order}")
    # each choice's finish chunk: exactly one, its last chunk, with the plain answer's finish_reason
    for k in range(2):
        mine = [f for i, f in events if i == k]
        check(mine and mine[-1] == many.choices[k].finish_reason and sum(f is not None for f in mine) == 1,
              f"n=2 stream: choice {k}'s finish chunks {mine}")


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

    logprobs_checks(client, exp)

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
    # logprobs' bad input: OpenAI's error shape naming the parameter
    for kw, param in (({"logprobs": True, "top_logprobs": 21}, "top_logprobs"), ({"logprobs": "yes"}, "logprobs"),
                      ({"top_logprobs": 2}, "top_logprobs")):
        try:
            client.chat.completions.create(model=exp["chat_model"], messages=[{"role": "user", "content": "hi"}], **kw)
            check(False, f"{kw}: no error")
        except openai.BadRequestError as e:
            check(e.status_code == 400 and e.param == param and e.type == "invalid_request_error", f"{kw}: {e} (param {e.param})")

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
