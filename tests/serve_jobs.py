"""The official openai Python SDK against takumi serve's Files and fine-tuning jobs APIs (run by tests/serve_jobs.sh).

usage: serve_jobs.py PHASE BASE_URL KEY1 KEY2 WORK_DIR
  PHASE main:   upload (and a bad upload: the data checker's findings in a 400), create a job on stories260K (and one step
                on SmolLM2 when WORK_DIR/d4.jsonl exists: the .sh serves it as "smol"), poll it to
                succeeded, list its events and checkpoints, chat with the ft: model (plain and streamed; the greedy answer
                equals takumi generate's with the job's adapter, WORK_DIR/gen.txt written by the .sh from WORK_DIR/state.json),
                cancel a second job while it runs, pagination, another key's view (404 everywhere), file deletion.
  PHASE after:  after a restart: the jobs, events and ft: model are still there and the model still answers the same.
  PHASE resume: a job interrupted by kill -9 (its id in WORK_DIR/state.json) finished after the restart, from its checkpoint.
State between phases: WORK_DIR/state.json. Prints one line per failed check and "serve_jobs PHASE: N checks passed, N failed";
exits 1 on any failure, 2 when openai is missing.
"""
import json
import os
import re
import sys
import time

from serve_sdk import check, finish as finish_checks, openai  # noqa: E402  (exits 2 when the SDK is missing)


def raises(exc, fn, what):
    try:
        fn()
    except exc as e:
        check(True, what)
        return e
    except Exception as e:  # noqa: BLE001 - any other outcome is the failure being reported
        check(False, f"{what}: raised {type(e).__name__}: {e}")
        return None
    check(False, f"{what}: no {exc.__name__}")
    return None


def poll(client, job_id, want, timeout=40):
    t0 = time.time()
    while time.time() - t0 < timeout:
        j = client.fine_tuning.jobs.retrieve(job_id)
        if j.status in want:
            return j
        time.sleep(0.1)
    return client.fine_tuning.jobs.retrieve(job_id)


def chat(client, model, prompt, stream=False):
    kw = dict(model=model, messages=[{"role": "user", "content": prompt}], temperature=0, max_tokens=16)
    if not stream:
        return client.chat.completions.create(**kw).choices[0].message.content
    return "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(stream=True, **kw) if c.choices)


PROMPT = "Tell me about Ben and the kite."


def main_phase(c1, c2, work, st):
    data = os.path.join(work, "d.jsonl")
    raw = open(data, "rb").read()
    f = c1.files.create(file=open(data, "rb"), purpose="fine-tune")
    check(f.id.startswith("file-") and f.object == "file" and f.bytes == len(raw) and f.filename == "d.jsonl" and f.purpose == "fine-tune"
          and f.status == "processed", f"files.create: {f}")
    check(any(x.id == f.id for x in c1.files.list()), "files.list lacks the upload")
    check(c1.files.retrieve(f.id).bytes == len(raw), "files.retrieve")
    check(c1.files.content(f.id).read() == raw, "files.content differs from the upload")
    # a file the data checker refuses: its findings (line, category) come back in the 400
    e = raises(openai.BadRequestError, lambda: c1.files.create(file=open(os.path.join(work, "bad.jsonl"), "rb"), purpose="fine-tune"),
               "a bad file upload")
    if e is not None:
        msg = e.body.get("message", "") if isinstance(e.body, dict) else str(e)
        check("line 2: json_syntax" in msg and "line 1:" in msg and e.body.get("param") == "file", f"bad upload's findings: {msg!r}")
    raises(openai.BadRequestError, lambda: c1.files.create(file=open(data, "rb"), purpose="batch"), "purpose batch")
    big = c1.files.create(file=open(os.path.join(work, "big.jsonl"), "rb"), purpose="fine-tune")

    # another key sees none of it
    raises(openai.NotFoundError, lambda: c2.files.retrieve(f.id), "key 2 reads key 1's file")
    raises(openai.NotFoundError, lambda: c2.files.content(f.id), "key 2 reads key 1's file content")
    check(not any(x.id == f.id for x in c2.files.list()), "key 2 lists key 1's file")
    raises(openai.BadRequestError, lambda: c2.fine_tuning.jobs.create(model="stories", training_file=f.id), "key 2 trains on key 1's file")

    # the job
    job = c1.fine_tuning.jobs.create(model="stories", training_file=f.id, suffix="kids", seed=5, metadata={"case": "sdk"},
                                     method={"type": "supervised", "supervised": {"hyperparameters": {
                                         "n_epochs": 8, "batch_size": 4, "learning_rate_multiplier": 5}}})
    check(job.object == "fine_tuning.job" and job.id.startswith("ftjob-") and job.status in ("queued", "running", "succeeded")
          and job.model == "stories" and job.training_file == f.id and job.seed == 5 and job.metadata == {"case": "sdk"}, f"jobs.create: {job}")
    j = poll(c1, job.id, ("succeeded", "failed", "cancelled"))
    check(j.status == "succeeded" and j.error is None, f"job status {j.status}: {j.error}")
    want = f"ft:stories:{j.organization_id}:kids:{job.id[6:]}"
    check(j.fine_tuned_model == want and re.fullmatch(r"key\d+", j.organization_id or ""), f"fine_tuned_model {j.fine_tuned_model} != {want}")
    check(j.trained_tokens and j.trained_tokens > 0 and j.finished_at >= j.created_at, f"trained_tokens {j.trained_tokens}")
    hp = j.method.supervised.hyperparameters
    check(hp.n_epochs == 8 and hp.batch_size == 4 and abs(hp.learning_rate_multiplier - 5) < 1e-9, f"hyperparameters {hp}")
    ev = list(c1.fine_tuning.jobs.list_events(job.id, limit=1000))[::-1]
    metrics = [x for x in ev if x.type == "metrics" and "train_loss" in (x.data or {})]
    steps = [x.data["step"] for x in metrics]
    check(len(steps) > 0 and steps == list(range(1, len(steps) + 1)) and metrics[-1].data.get("total_steps") == len(steps),
          f"metrics events' steps: {steps}")
    check(all(x.object == "fine_tuning.job.event" and x.level in ("info", "warn", "error") for x in ev), "event objects")
    msgs = [x.message for x in ev if x.type == "message"]
    check("Fine-tuning job started" in msgs and msgs[-1] == "The job has successfully completed", f"message events: {msgs}")
    # a single step's loss is noisy (batches differ): compare the means of the first and last thirds
    third = max(1, len(metrics) // 3)
    mean = lambda xs: sum(x.data["train_loss"] for x in xs) / len(xs)
    check(mean(metrics[-third:]) < mean(metrics[:third]), f"loss did not fall: first third {mean(metrics[:third])}, last {mean(metrics[-third:])}")
    page = c1.fine_tuning.jobs.list_events(job.id, limit=2)
    check(len(page.data) == 2 and page.has_more and page.data[0].id == ev[-1].id, "events page of 2")
    ck = list(c1.fine_tuning.jobs.checkpoints.list(job.id))
    check(len(ck) >= 1 and ck[0].step_number == len(steps) and ck[0].fine_tuned_model_checkpoint == f"{want}:ckpt-step-{len(steps)}"
          and ck[0].fine_tuning_job_id == job.id and "train_loss" in ck[0].metrics.model_dump(exclude_none=True), f"checkpoints: {ck}")

    # the model: listed for its owner only, answers at once
    check(any(m.id == want for m in c1.models.list()), "models.list lacks the ft: model")
    check(not any(m.id == want for m in c2.models.list()), "key 2 lists key 1's ft: model")
    raises(openai.NotFoundError, lambda: chat(c2, want, PROMPT), "key 2 chats with key 1's ft: model")
    raises(openai.NotFoundError, lambda: c2.fine_tuning.jobs.retrieve(job.id), "key 2 reads key 1's job")
    raises(openai.NotFoundError, lambda: c2.fine_tuning.jobs.list_events(job.id), "key 2 reads key 1's events")
    raises(openai.NotFoundError, lambda: c2.fine_tuning.jobs.cancel(job.id), "key 2 cancels key 1's job")
    check(not any(x.id == job.id for x in c2.fine_tuning.jobs.list()), "key 2 lists key 1's job")
    a, b = chat(c1, want, PROMPT), chat(c1, want, PROMPT, stream=True)
    base = chat(c1, "stories", PROMPT)
    check(a == b and a != base, f"ft: chat {a!r}, streamed {b!r}, base {base!r}")
    st.update(job=job.id, model=want, answer=a, big=big.id)

    # a second job, cancelled while it runs
    j2 = c1.fine_tuning.jobs.create(model="stories", training_file=big.id, method={"type": "supervised", "supervised": {
        "hyperparameters": {"n_epochs": 5, "batch_size": 4}}})
    t0 = time.time()
    while time.time() - t0 < 120 and not any(x.type == "metrics" for x in c1.fine_tuning.jobs.list_events(j2.id, limit=5)):
        time.sleep(0.05)
    check(c1.fine_tuning.jobs.retrieve(j2.id).status == "running", "the second job is not running")
    # requests are served while it trains: the ft: model answers as before
    during = chat(c1, want, PROMPT)
    check(during == a and c1.fine_tuning.jobs.retrieve(j2.id).status == "running", f"chat while a job trains: {during!r} != {a!r}")
    cj = c1.fine_tuning.jobs.cancel(j2.id)
    check(cj.status == "cancelled", f"cancel: {cj.status}")
    time.sleep(0.5)
    cj = c1.fine_tuning.jobs.retrieve(j2.id)
    check(cj.status == "cancelled" and cj.fine_tuned_model is None, f"after cancel: {cj.status} {cj.fine_tuned_model}")
    n = len([x for x in c1.fine_tuning.jobs.list_events(j2.id, limit=1000) if x.type == "metrics"])
    check(n < 500, f"the cancelled job ran all its {n} steps")
    raises(openai.BadRequestError, lambda: c1.fine_tuning.jobs.cancel(job.id), "cancel a succeeded job")
    pg = c1.fine_tuning.jobs.list(limit=1)
    check(len(pg.data) == 1 and pg.data[0].id == j2.id and pg.has_more, f"jobs.list(limit=1): {[x.id for x in pg.data]}")
    pg2 = c1.fine_tuning.jobs.list(limit=1, after=j2.id)
    check(len(pg2.data) == 1 and pg2.data[0].id == job.id, f"jobs.list(after): {[x.id for x in pg2.data]}")
    st["cancelled"] = j2.id

    # errors: unknown model, unknown file, a preference method on SFT data (validation fails the job)
    raises(openai.NotFoundError, lambda: c1.fine_tuning.jobs.create(model="gpt-9", training_file=f.id), "unknown model")
    raises(openai.BadRequestError, lambda: c1.fine_tuning.jobs.create(model="stories", training_file="file-nope"), "unknown file")
    jd = c1.fine_tuning.jobs.create(model="stories", training_file=f.id, method={"type": "dpo"})
    check(jd.status == "failed" and jd.error and jd.error.code == "invalid_training_file" and "preference" in jd.error.message,
          f"dpo on SFT data: {jd.status} {jd.error}")

    # SmolLM2 (when the .sh serves it as "smol"): one step on 4 chats, its model chats plain and streamed alike
    if os.path.exists(os.path.join(work, "d4.jsonl")):
        f4 = c1.files.create(file=open(os.path.join(work, "d4.jsonl"), "rb"), purpose="fine-tune")
        js = c1.fine_tuning.jobs.create(model="smol", training_file=f4.id, suffix="smol", method={"type": "supervised", "supervised": {
            "hyperparameters": {"n_epochs": 1, "batch_size": 4, "learning_rate_multiplier": 10}}})
        js = poll(c1, js.id, ("succeeded", "failed", "cancelled"), timeout=120)
        check(js.status == "succeeded" and js.fine_tuned_model.startswith("ft:smol:") and js.trained_tokens > 0, f"SmolLM2 job: {js.status} {js.error}")
        if js.fine_tuned_model:
            sa, sb = chat(c1, js.fine_tuned_model, PROMPT), chat(c1, js.fine_tuned_model, PROMPT, stream=True)
            check(sa and sa == sb, f"SmolLM2 ft: chat {sa!r}, streamed {sb!r}")

    # deletion
    tmp = c1.files.create(file=open(data, "rb"), purpose="fine-tune")
    d = c1.files.delete(tmp.id)
    check(d.deleted and d.id == tmp.id, f"files.delete: {d}")
    raises(openai.NotFoundError, lambda: c1.files.retrieve(tmp.id), "a deleted file")


def after_phase(c1, c2, work, st):
    j = c1.fine_tuning.jobs.retrieve(st["job"])
    check(j.status == "succeeded" and j.fine_tuned_model == st["model"], f"after restart: {j.status} {j.fine_tuned_model}")
    check(c1.fine_tuning.jobs.retrieve(st["cancelled"]).status == "cancelled", "the cancelled job after restart")
    check(len(list(c1.fine_tuning.jobs.list_events(st["job"], limit=1000))) > 5, "events after restart")
    check(any(m.id == st["model"] for m in c1.models.list()), "the ft: model after restart")
    check(chat(c1, st["model"], PROMPT) == st["answer"], "the ft: model answers differently after restart")
    raises(openai.NotFoundError, lambda: c2.fine_tuning.jobs.retrieve(st["job"]), "key 2 after restart")
    # a job for the kill -9 test: started here, killed by the .sh once it has a checkpoint
    k = c1.fine_tuning.jobs.create(model="stories", training_file=st["big"], seed=9, method={"type": "supervised", "supervised": {
        "hyperparameters": {"n_epochs": 1, "batch_size": 4}}})
    st["killed"] = k.id


def resume_phase(c1, c2, work, st):
    j = poll(c1, st["killed"], ("succeeded", "failed", "cancelled"))
    check(j.status == "succeeded" and j.fine_tuned_model, f"the job killed mid-run: {j.status} {j.error}")
    msgs = [x.message for x in c1.fine_tuning.jobs.list_events(st["killed"], limit=1000)]
    check(any(m.startswith("Resuming the job from its newest checkpoint") for m in msgs), "no resume event")
    check(any(m.startswith("resumed from ") and "step-" in m for m in msgs), "the trainer did not resume from a checkpoint")
    if j.fine_tuned_model:
        check(len(chat(c1, j.fine_tuned_model, PROMPT)) > 0, "the resumed job's model does not answer")


def main():
    phase, base, k1, k2, work = sys.argv[1:6]
    c1 = openai.OpenAI(base_url=base, api_key=k1, max_retries=0, timeout=120)
    c2 = openai.OpenAI(base_url=base, api_key=k2, max_retries=0, timeout=120)
    path = os.path.join(work, "state.json")
    st = json.load(open(path)) if os.path.exists(path) else {}
    {"main": main_phase, "after": after_phase, "resume": resume_phase}[phase](c1, c2, work, st)
    json.dump(st, open(path, "w"))
    finish_checks(f"serve_jobs {phase} (openai {openai.__version__})")


if __name__ == "__main__":
    main()
