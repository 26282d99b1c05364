"""The official openai Python SDK against takumi serve's reinforcement fine-tuning, checkpoint models and CPU usage
(run by tests/serve_rft.sh).

usage: serve_rft.py PHASE BASE_URL KEY1 KEY2 ADMIN WORK_DIR
  PHASE main:    an RFT job (method reinforcement, a string_check grader reading {{ item.name }}) polled to succeeded; its
                 metrics events carry the reward; the job object shows the grader and the hyperparameters; each kept
                 checkpoint is a model (listed for its owner only, pruned ones gone) that chats (its greedy answer in
                 WORK_DIR/state.json for the .sh to compare with takumi generate); bad bodies -> 400 naming the field;
                 /v1/usage: CPU seconds of requests and of the job > 0, and growing with another request.
  PHASE after:   after a restart: the checkpoint models are still served and answer the same.
Prints one line per failed check and "serve_rft PHASE: N checks passed, N failed"; exits 1 on any failure, 2 without openai.
"""
import json
import os
import sys
import time
import urllib.request

from serve_sdk import check, finish, openai  # noqa: E402  (exits 2 when the SDK is missing)

PROMPT = "Tell me about Tom."
GRADER = {"type": "string_check", "name": "has_name", "input": "{{ sample.output_text }}", "reference": "{{ item.name }}",
          "operation": "ilike"}


def chat(client, model):
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": PROMPT}], temperature=0, max_tokens=8)
    return r.choices[0].message.content


def usage(base, admin):
    req = urllib.request.Request(base + "/usage", headers={"Authorization": "Bearer " + admin})
    return json.load(urllib.request.urlopen(req))["data"]


def bad(client, fid, method, field, what):
    try:
        client.fine_tuning.jobs.create(model="stories", training_file=fid, method=method)
    except openai.BadRequestError as e:
        body = e.body if isinstance(e.body, dict) else {}
        check(body.get("param") == field, f"{what}: param {body.get('param')!r} != {field!r} ({body.get('message')})")
        return
    check(False, f"{what}: accepted")


def main_phase(base, c1, c2, admin, work, st):
    f = c1.files.create(file=open(os.path.join(work, "rft.jsonl"), "rb"), purpose="fine-tune")
    rft = lambda g, h=None: {"type": "reinforcement", "reinforcement": {"grader": g, "hyperparameters": h or {}}}
    # bad bodies: 400 naming the field
    bad(c1, f.id, rft({k: v for k, v in GRADER.items() if k != "operation"}), "method.reinforcement.grader.operation", "grader without operation")
    bad(c1, f.id, rft(dict(GRADER, operation="sounds_like")), "method.reinforcement.grader.operation", "unknown operation")
    bad(c1, f.id, rft({"type": "python", "source": "def grade(s, i): return 1"}), "method.reinforcement.grader.type", "python grader")
    bad(c1, f.id, rft({"type": "multi", "graders": {"a": GRADER, "b": {"type": "command", "command": ["true"]}}, "calculate_output": "a"}),
        "method.reinforcement.grader.graders.b.type", "a command grader inside multi")
    bad(c1, f.id, rft({"type": "multi", "graders": {"a": dict(GRADER, type="string_chek")}, "calculate_output": "a"}),
        "method.reinforcement.grader.graders.a.type", "a sub-grader of unknown type")
    bad(c1, f.id, rft({"type": "score_model", "name": "j", "model": "gpt-4o", "input": [{"role": "user", "content": "{{ sample.output_text }}"}]}),
        "method.reinforcement.grader.model", "a judge model not served")
    bad(c1, f.id, rft(GRADER, {"compute_multiplier": 2}), "method.reinforcement.hyperparameters.compute_multiplier", "compute_multiplier")
    bad(c1, f.id, rft(GRADER, {"reasoning_effort": "high"}), "method.reinforcement.hyperparameters.reasoning_effort", "reasoning_effort")
    bad(c1, f.id, rft(GRADER, {"eval_interval": 1.5}), "method.reinforcement.hyperparameters.eval_interval", "eval_interval 1.5")
    bad(c1, f.id, {"type": "reinforcement", "reinforcement": {"hyperparameters": {}}}, "method.reinforcement.grader", "no grader")
    sft = c1.files.create(file=open(os.path.join(work, "sft.jsonl"), "rb"), purpose="fine-tune")
    j0 = c1.fine_tuning.jobs.create(model="stories", training_file=sft.id, method=rft(GRADER))   # fails while validating its file
    check(j0.status == "failed" and j0.error is not None and j0.error.code == "invalid_training_file" and "prompts" in j0.error.message,
          f"an rft job on chat data: {j0.status} {j0.error}")

    v = c1.files.create(file=open(os.path.join(work, "val.jsonl"), "rb"), purpose="fine-tune")
    job = c1.fine_tuning.jobs.create(model="stories", training_file=f.id, validation_file=v.id, suffix="rl", seed=3,
                                     method=rft(GRADER, {"n_epochs": 1, "batch_size": 2, "eval_interval": 2, "reasoning_effort": "default"}))
    t0 = time.time()
    while time.time() - t0 < 90 and c1.fine_tuning.jobs.retrieve(job.id).status not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.2)
    j = c1.fine_tuning.jobs.retrieve(job.id)
    check(j.status == "succeeded" and j.error is None, f"rft job: {j.status} {j.error}")
    want = f"ft:stories:{j.organization_id}:rl:{job.id[6:]}"
    check(j.fine_tuned_model == want and j.method.type == "reinforcement", f"fine_tuned_model {j.fine_tuned_model}, method {j.method.type}")
    r = j.method.reinforcement
    check(r is not None and r.grader is not None and r.grader.type == "string_check" and r.grader.reference == "{{ item.name }}",
          f"the job's grader: {r}")
    hp = r.hyperparameters if r else None
    check(hp is not None and hp.n_epochs == 1 and hp.batch_size == 2 and hp.eval_interval == 2 and hp.reasoning_effort == "default",
          f"the job's hyperparameters: {hp}")
    ev = list(c1.fine_tuning.jobs.list_events(job.id, limit=1000))[::-1]
    steps = [x.data for x in ev if x.type == "metrics" and "train_loss" in (x.data or {})]
    check(len(steps) == 4 and all(0 <= d.get("train_reward_mean", -1) <= 1 for d in steps), f"metrics events with the reward: {steps}")
    check(any("valid_reward_mean" in (x.data or {}) for x in ev if x.type == "metrics"), "no graded validation event")
    check(sum(1 for x in ev if x.message.startswith("Checkpoint created at step")) == 4, "4 checkpoint events")
    # checkpoints: the newest 2 kept (steps 3, 4), each a model of its owner
    ck = list(c1.fine_tuning.jobs.checkpoints.list(job.id))
    names = [c.fine_tuned_model_checkpoint for c in ck]
    check(names == [f"{want}:ckpt-step-4", f"{want}:ckpt-step-3"], f"checkpoints: {names}")
    ids1 = {m.id for m in c1.models.list()}
    check(want in ids1 and all(n in ids1 for n in names), f"models.list lacks the job's models: {sorted(ids1)}")
    check(not any(f"{want}:ckpt-step-{s}" in ids1 for s in (1, 2)), "pruned checkpoints are still listed")
    check(not any(m.id.startswith(want) for m in c2.models.list()), "key 2 lists key 1's checkpoint models")
    try:
        chat(c2, names[1])
        check(False, "key 2 chats with key 1's checkpoint model")
    except openai.NotFoundError:
        check(True, "")
    try:
        chat(c1, f"{want}:ckpt-step-1")
        check(False, "a pruned checkpoint model answers")
    except openai.NotFoundError:
        check(True, "")
    final = chat(c1, want)
    check(isinstance(final, str) and len(final) > 0, f"the fine-tuned model's chat: {final!r}")
    a3 = chat(c1, names[1])
    check(isinstance(a3, str) and len(a3) > 0, f"checkpoint chat: {a3!r}")
    st.update(job=job.id, ckpt=names[1], ckpt_answer=a3, model=want)
    # CPU seconds: requests and the job; another request adds to them
    u = {(x["key"], x["model"]): x for x in usage(base, admin)}
    reqs = u.get((j.organization_id, names[1]), {})
    train = u.get((j.organization_id, "stories"), {})
    check(reqs.get("request_cpu_seconds", 0) > 0 and reqs.get("requests") == 1, f"usage of the checkpoint model: {reqs}")
    check(train.get("training_cpu_seconds", 0) > 0 and train.get("cpu_seconds", 0) >= train.get("training_cpu_seconds", 0)
          and train.get("trained_tokens", 0) > 0, f"usage of the job: {train}")
    chat(c1, names[1])
    again = {(x["key"], x["model"]): x for x in usage(base, admin)}.get((j.organization_id, names[1]), {})
    check(again.get("requests") == 2 and again.get("request_cpu_seconds", 0) > reqs.get("request_cpu_seconds", 0), f"usage did not grow: {again}")
    # a longer job, which the .sh kills (-9) after its first checkpoint; the "after" phase sees it resume and succeed
    big = c1.files.create(file=open(os.path.join(work, "rft_big.jsonl"), "rb"), purpose="fine-tune")
    lj = c1.fine_tuning.jobs.create(model="stories", training_file=big.id, suffix="long", seed=4,
                                    method=rft(GRADER, {"n_epochs": 1, "batch_size": 2}))
    st.update(long=lj.id)


def after_phase(base, c1, c2, admin, work, st):
    # the job killed mid-run resumes from its newest checkpoint (its grader read again) and succeeds
    t0 = time.time()
    while time.time() - t0 < 180 and c1.fine_tuning.jobs.retrieve(st["long"]).status not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.3)
    lj = c1.fine_tuning.jobs.retrieve(st["long"])
    check(lj.status == "succeeded", f"the killed job after a restart: {lj.status} {lj.error}")
    ev = list(c1.fine_tuning.jobs.list_events(lj.id, limit=1000))[::-1]
    msgs = [x.message for x in ev if x.type == "message"]
    steps = sorted({x.data["step"] for x in ev if x.type == "metrics" and "train_reward_mean" in (x.data or {})})
    check(any(m.startswith("Resuming the job from its newest checkpoint") for m in msgs), f"no resume event: {msgs}")
    check(steps == list(range(1, 33)), f"the resumed job's steps: {steps}")
    ck = [c.fine_tuned_model_checkpoint for c in c1.fine_tuning.jobs.checkpoints.list(lj.id)]
    ids = {m.id for m in c1.models.list()}
    check(len(ck) == 2 and ck[0].endswith(":ckpt-step-32") and all(n in ids for n in ck), f"the resumed job's checkpoint models: {ck}")
    ids = {m.id for m in c1.models.list()}
    check(st["ckpt"] in ids and st["model"] in ids, f"after a restart the models are gone: {sorted(ids)}")
    check(chat(c1, st["ckpt"]) == st["ckpt_answer"], "the checkpoint model answers differently after a restart")
    check(not any(m.id.startswith(st["model"] + ":ckpt-step-1") for m in c1.models.list()), "a pruned checkpoint came back")


def main():
    phase, base, k1, k2, admin, work = sys.argv[1:7]
    c1, c2 = openai.OpenAI(base_url=base, api_key=k1, max_retries=0), openai.OpenAI(base_url=base, api_key=k2, max_retries=0)
    path = os.path.join(work, "state.json")
    st = json.load(open(path)) if os.path.exists(path) else {}
    {"main": main_phase, "after": after_phase}[phase](base, c1, c2, admin, work, st)
    json.dump(st, open(path, "w"))
    finish(f"serve_rft {phase}")


if __name__ == "__main__":
    main()
