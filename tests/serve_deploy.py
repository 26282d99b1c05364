"""The official openai SDK against takumi serve's deployments (run by tests/serve_deploy.sh).

usage: serve_deploy.py PHASE BASE_URL ADMIN_KEY USER_KEY WORK_DIR
  PHASE canary:   the alias "bot" points at v1 with v2 as a 20% canary (set by the .sh through `takumi deploy`): 200
                  distinct users each get the version their SHA-256 bucket says (sticky: asked twice, the same), the
                  share of v2 is within 12..28%, the header x-takumi-model-version equals the answer's "model", the
                  alias's greedy text equals the version's own; then promote (every user on v2 at the next request)
                  and rollback (every user on v1 again) through the SDK's generic post; a user key gets 403 there.
  PHASE feedback: three answers of "bot" rated through POST /v1/feedback (a correction rated -1, a rating of 1 alone, a
                  correction alone; another key's feedback on them is a 404); their ids go to WORK_DIR/state.json.
  PHASE pause:    a job on WORK_DIR/big.jsonl paused while it runs through the SDK's jobs.pause (status paused, no step
                  for 0.6 s, a checkpoint event), then jobs.resume: it continues from its checkpoint to succeeded and its
                  model answers; pausing a succeeded job or resuming a running one is a 400.
  PHASE limits:   keys made with --rpm 3 (env RK) and --token-budget 30 (env BK): the 4th request in a second is a
                  RateLimitError (rate_limit_exceeded, Retry-After), the budget key is refused (insufficient_quota)
                  once its tokens reach 30 and not before; GET /v1/keys and /v1/usage count the same tokens; an admin
                  lifting the budget (POST /v1/keys/{id}/limits) lets the key through again.
  PHASE after:    after a restart: the deployment (v1, previous v2) is still there and answers.
Prints one line per failed check and "serve_deploy PHASE: N checks passed, N failed"; exits 1 on any failure.
"""
import hashlib
import json
import os
import sys
import time

from serve_sdk import check, finish as finish_checks, openai  # noqa: E402  (exits 2 when the SDK is missing)


def bucket(alias, user):
    """The server's canary bucket: the first 8 bytes of SHA-256(alias ":" user), big-endian, mod 10000."""
    return int.from_bytes(hashlib.sha256(f"{alias}:{user}".encode()).digest()[:8], "big") % 10000


def ask(client, model, user, max_tokens=1):
    """(version from the header, the answer's model, its text)."""
    raw = client.completions.with_raw_response.create(model=model, prompt="Once upon a time", temperature=0, max_tokens=max_tokens, user=user)
    c = raw.parse()
    return raw.headers.get("x-takumi-model-version"), c.model, c.choices[0].text, raw.headers.get("x-takumi-deployment")


def admin_post(client, path):
    return client.post(path, body={}, cast_to=object)


def main():
    phase, base, ak, uk = sys.argv[1:5]
    admin = openai.OpenAI(base_url=base, api_key=ak, max_retries=0, timeout=60)
    user = openai.OpenAI(base_url=base, api_key=uk, max_retries=0, timeout=60)
    if phase == "canary":
        users = [f"user-{i}" for i in range(200)]
        got = {}
        for u in users:
            hv, model, _, dep = ask(user, "bot", u)
            got[u] = model
            check(hv == model and dep == "bot", f"{u}: header {hv} / {dep}, model {model}")
        want = {u: ("v2" if bucket("bot", u) < 2000 else "v1") for u in users}
        wrong = [u for u in users if got[u] != want[u]]
        check(not wrong, f"{len(wrong)} users got another version than their bucket says, e.g. {wrong[:3]}")
        share = sum(v == "v2" for v in got.values()) / len(users)
        check(0.12 <= share <= 0.28, f"canary share {share:.3f} for 20% over 200 users: outside 12..28%")
        print(f"canary share: {share:.3f} of 200 users on v2 (20% asked)")
        again = [u for u in users[:40] if ask(user, "bot", u)[1] != got[u]]
        check(not again, f"not sticky: {again[:3]}")
        # the version really answers: the alias's greedy text equals the version's own
        on_v2 = next(u for u in users if got[u] == "v2")
        on_v1 = next(u for u in users if got[u] == "v1")
        for u, v in ((on_v2, "v2"), (on_v1, "v1")):
            via_alias = ask(user, "bot", u, 12)[2]
            direct = user.completions.create(model=v, prompt="Once upon a time", temperature=0, max_tokens=12).choices[0].text
            check(via_alias == direct, f"bot for {u} ({v}): {via_alias!r} != {v}'s {direct!r}")
        # a user key may not manage deployments
        try:
            user.post("/deployments/bot/promote", body={}, cast_to=object)
            check(False, "a user key promoted")
        except openai.PermissionDeniedError as e:
            check(e.status_code == 403, f"user key promote: {e}")
        d = admin_post(admin, "/deployments/bot/promote")
        check(d["model"] == "v2" and d["canary"] is None and d["previous"] == "v1", f"promote: {d}")
        moved = [u for u in users[:30] if ask(user, "bot", u)[1] != "v2"]
        check(not moved, f"after promote, users not on v2: {moved[:3]}")
        d = admin_post(admin, "/deployments/bot/rollback")
        check(d["model"] == "v1" and d["previous"] == "v2", f"rollback: {d}")
        back = [u for u in users[:30] if ask(user, "bot", u)[1] != "v1"]
        check(not back, f"after rollback, users not on v1: {back[:3]}")
        try:
            admin_post(admin, "/deployments/bot/promote")
            check(False, "promote without a canary")
        except openai.BadRequestError as e:
            check(e.code == "invalid_state", f"promote without a canary: {e}")
    elif phase == "feedback":
        other = openai.OpenAI(base_url=base, api_key=os.environ["UK2"], max_retries=0, timeout=60)
        ids, answers = [], []
        for p in ("Lily had a", "Tom went to the", "Sue saw a big"):
            c = user.completions.create(model="bot", prompt=p, temperature=0, max_tokens=8, user="fb-user")
            ids.append(c.id)
            answers.append(c.choices[0].text)
        fb = [{"response_id": ids[0], "rating": -1, "correction": "Lily had a red ball."},
              {"response_id": ids[1], "rating": 1},
              {"response_id": ids[2], "correction": "Sue saw a big dog.", "comment": "wrong animal"}]
        for body in fb:
            f = user.post("/feedback", body=body, cast_to=object)
            check(f["object"] == "feedback" and f["response_id"] == body["response_id"] and f["id"].startswith("fb-") and
                  f["rating"] == body.get("rating") and f["correction"] == body.get("correction"), f"feedback {body}: {f}")
        try:
            other.post("/feedback", body={"response_id": ids[0], "rating": 1}, cast_to=object)
            check(False, "another key's feedback on an answer it did not get")
        except openai.NotFoundError as e:
            check(e.code == "response_not_found", f"another key's feedback: {e}")
        try:
            user.post("/feedback", body={"response_id": ids[0], "rating": 3}, cast_to=object)
            check(False, "rating 3 accepted")
        except openai.BadRequestError as e:
            check(e.param == "rating", f"rating 3: {e}")
        json.dump({"ids": ids, "answers": answers}, open(os.path.join(sys.argv[5], "state.json"), "w"))
    elif phase == "pause":
        f = user.files.create(file=open(os.path.join(sys.argv[5], "big.jsonl"), "rb"), purpose="fine-tune")
        job = user.fine_tuning.jobs.create(model="stories", training_file=f.id, seed=3, suffix="paused", method={
            "type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 4}}})
        steps = lambda: len([e for e in user.fine_tuning.jobs.list_events(job.id, limit=1000) if e.type == "metrics"])
        t0 = time.time()
        while time.time() - t0 < 120 and steps() < 3:   # generous bounds: CI machines may be loaded
            time.sleep(0.02)
        try:
            user.fine_tuning.jobs.resume(job.id)
            check(False, "a running job resumed")
        except openai.BadRequestError as e:
            check(e.code == "invalid_state", f"resume of a running job: {e}")
        p = user.fine_tuning.jobs.pause(job.id)
        check(p.status == "paused", f"pause: {p.status}")
        paused_at = lambda: any(e.message.startswith("Fine-tuning job paused at step") for e in user.fine_tuning.jobs.list_events(job.id, limit=1000))
        t0 = time.time()
        while time.time() - t0 < 120 and not paused_at():   # the step running when asked ends, then a checkpoint
            time.sleep(0.05)
        check(paused_at(), "no paused-at-a-checkpoint event")
        n1 = steps()
        time.sleep(0.6)
        n2 = steps()
        check(n1 == n2 and 3 <= n1 < 100, f"the paused job still steps: {n1} -> {n2} of 100")
        check(user.fine_tuning.jobs.retrieve(job.id).status == "paused", "not paused")
        r = user.fine_tuning.jobs.resume(job.id)
        check(r.status in ("queued", "running"), f"resume: {r.status}")
        t0 = time.time()
        while time.time() - t0 < 300 and user.fine_tuning.jobs.retrieve(job.id).status in ("queued", "running"):
            time.sleep(0.05)
        j = user.fine_tuning.jobs.retrieve(job.id)
        check(j.status == "succeeded" and j.fine_tuned_model, f"the resumed job: {j.status} {j.error}")
        msgs = [e.message for e in user.fine_tuning.jobs.list_events(job.id, limit=1000)]
        check(any(m.startswith("resumed from ") and "step-" in m for m in msgs), "the trainer did not resume from a checkpoint")
        check(steps() >= 100, f"the resumed job's steps: {steps()} (100 asked)")
        if j.fine_tuned_model:
            check(len(user.completions.create(model=j.fine_tuned_model, prompt="Lily", max_tokens=4, temperature=0).choices[0].text) > 0, "the model does not answer")
        try:
            user.fine_tuning.jobs.pause(job.id)
            check(False, "a succeeded job paused")
        except openai.BadRequestError as e:
            check(e.code == "invalid_state", f"pause of a succeeded job: {e}")
    elif phase == "limits":
        rk = openai.OpenAI(base_url=base, api_key=os.environ["RK"], max_retries=0, timeout=60)
        bk = openai.OpenAI(base_url=base, api_key=os.environ["BK"], max_retries=0, timeout=60)
        for i in range(3):
            rk.completions.create(model="stories", prompt="Lily", max_tokens=1)
        try:
            rk.completions.create(model="stories", prompt="Lily", max_tokens=1)
            check(False, "a 4th request within the minute of an rpm-3 key")
        except openai.RateLimitError as e:
            check(e.status_code == 429 and e.code == "rate_limit_exceeded" and int(e.response.headers.get("retry-after", "0")) > 0,
                  f"rate limit: {e} {dict(e.response.headers)}")
        used, n = 0, 0
        while n < 10:
            try:
                c = bk.completions.create(model="stories", prompt="Lily had a", max_tokens=8, temperature=0)
            except openai.RateLimitError as e:
                check(e.code == "insufficient_quota" and used >= 30, f"budget refusal at {used} tokens: {e}")
                break
            check(used < 30, f"a request served with {used} tokens used of 30")
            used += c.usage.total_tokens
            n += 1
        check(n >= 2 and used >= 30, f"budget: {n} requests, {used} tokens")
        keys = admin.get("/keys", cast_to=object)["data"]
        kb = [k for k in keys if k["token_budget"] == 30]
        check(len(kb) == 1 and kb[0]["tokens_used"] == used, f"GET /v1/keys: {keys}")
        usage = admin.get("/usage", cast_to=object)["data"]
        ub = [u for u in usage if kb and u["key"] == kb[0]["id"]]
        check(len(ub) == 1 and ub[0]["model"] == "stories" and ub[0]["requests"] == n and ub[0]["total_tokens"] == used, f"GET /v1/usage: {usage}")
        check(any(u["trained_tokens"] > 0 for u in usage), f"GET /v1/usage: no trained tokens of the paused job: {usage}")
        try:
            user.get("/usage", cast_to=object)
            check(False, "a user key reads the usage")
        except openai.PermissionDeniedError:
            check(True, "")
        if kb:
            k = admin.post(f"/keys/{kb[0]['id']}/limits", body={"token_budget": 0}, cast_to=object)
            check(k["token_budget"] == 0 and k["id"] == kb[0]["id"], f"limits: {k}")
            check(len(bk.completions.create(model="stories", prompt="Lily", max_tokens=2).choices) == 1, "the budget key after the budget was lifted")
    elif phase == "after":
        d = admin.get("/deployments/bot", cast_to=object)
        check(d["model"] == "v1" and d["previous"] == "v2" and d["canary"] is None, f"after restart: {d}")
        hv, model, _, _ = ask(user, "bot", "user-1")
        check(hv == "v1" and model == "v1", f"after restart: {hv} {model}")
        c = user.completions.create(model="bot", prompt="Not logged", temperature=0, max_tokens=4)
        json.dump({"unlogged": c.id}, open(os.path.join(sys.argv[5], "state2.json"), "w"))
    finish_checks(f"serve_deploy {phase}")


main()
