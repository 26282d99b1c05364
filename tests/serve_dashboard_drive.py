#!/usr/bin/env python3
"""Drives takumi serve's dashboard in headless Chromium (tests/serve_dashboard.sh).

usage: serve_dashboard_drive.py CHROMIUM URL ADMIN_KEY JOB_ID PROFILE_DIR RFT_JOB_ID

The DevTools pipe as tests/review_drive.py (its Browser class). Types the key into the page's form, then checks:
the page polls (its refresh counter rises), the job's training-loss polyline has N >= 2 points and later more
(the running job's curve advances), the models, deployments (bot: v2, previous v1; helper: canary v1 10%), usage
and feedback sections are filled, the key is in sessionStorage only; clicks bot's Rollback button and waits until
the page shows bot on v1; waits for the validation curve and the checkpoints' table (train and valid loss); submits the
canary form with 150% (refused by the form), with helper's own model (the server's refusal shown) and then 25% of helper's users on v2, and the new-deployment form
(fresh = v1), waiting until the table shows each; cancels the first job through the API and waits for the reinforcement
job's reward curves. Prints one line per check ("ok ..." / "FAIL ..."); exits 1 on a failure."""
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from review_drive import Browser  # noqa: E402

failures = 0


def check(what, ok, detail=""):
    global failures
    print(("ok   %s" if ok else "FAIL %s") % what + ("" if ok else ": %s" % detail))
    failures += 0 if ok else 1


def wait_for(b, expr, pred, seconds):
    """Evaluates expr in the page every 0.1 s until pred(value) holds; returns the last value."""
    deadline = time.monotonic() + seconds
    while True:
        v = b.eval(expr)
        if pred(v) or time.monotonic() > deadline:
            return v
        time.sleep(0.1)


def main():
    exe, url, key, job, profile, rjob = sys.argv[1:7]
    b = Browser(exe, profile)
    try:
        b.session = b.open_page(url)
        check("the page asks for a key", b.eval("document.getElementById('status').textContent").startswith("enter an API key"),
              b.eval("document.getElementById('status').textContent"))
        b.eval("document.getElementById('key').focus()")
        b.send("Input.insertText", {"text": key})
        b.eval("document.getElementById('save').click()")
        check("the key is kept in sessionStorage, not localStorage",
              b.eval("[sessionStorage.getItem('takumi_key'), localStorage.length]") == [key, 0])
        pts = "(() => { const p = document.querySelector('#job-%s polyline.train'); return p ? Number(p.dataset.points) : -1; })()" % job
        n1 = wait_for(b, pts, lambda v: v >= 2, 30)
        t1 = time.monotonic()
        n2 = wait_for(b, pts, lambda v: v > n1, 20)
        print("info the job's curve: %d points, %d points %.1f s later" % (n1, n2, time.monotonic() - t1))
        check("the job's training-loss curve is drawn", n1 >= 2, n1)
        check("the running job's curve advances", n2 > n1, (n1, n2))
        drawn = b.eval("document.querySelector('#job-%s polyline.train').getAttribute('points').split(' ').length" % job)
        check("the polyline holds one point per metrics step", drawn >= n2, (drawn, n2))
        nv = wait_for(b, "Number(document.querySelector('#job-%s polyline.valid').dataset.points)" % job, lambda v: v >= 1, 30)
        check("the validation-loss curve is drawn", nv >= 1, nv)
        rows = "Array.from(document.querySelectorAll('#deployments tr')).slice(1).map(r => Array.from(r.cells).slice(0, 4).map(c => c.textContent))"
        check("deployments listed with canary and previous",
              sorted(b.eval(rows)) == [["bot", "v2", "-", "v1"], ["helper", "stories", "v1 (10%)", "-"]], b.eval(rows))
        models = b.eval("Array.from(document.querySelectorAll('#models tr')).slice(1).map(r => r.cells[0].textContent)")
        check("models listed", {"stories", "v1", "v2"} <= set(models), models)
        other = b.eval("[document.querySelectorAll('#usage tr').length, document.getElementById('feedback').textContent,"
                       " document.getElementById('status').className]")
        check("usage and feedback shown, no errors", other[0] >= 1 and "preference" in other[1] and other[2] != "err", other)
        b.eval("document.querySelector('#deployments button.rollback[data-alias=\"bot\"]').click()")
        bot = "Array.from(document.querySelectorAll('#deployments tr')).slice(1).filter(r => r.cells[0].textContent === 'bot')" \
              ".map(r => [r.cells[1].textContent, r.cells[3].textContent])[0]"
        after = wait_for(b, bot, lambda v: v == ["v1", "v2"], 10)
        check("a click on Rollback puts bot back on v1 (shown on the page)", after == ["v1", "v2"], after)
        # evaluation results: the checkpoints' metrics (the job writes one at its end), valid loss included
        ck = wait_for(b, "Array.from(document.querySelectorAll('#job-%s table.checkpoints tr')).slice(1).map(r => Array.from(r.cells).map(c => c.textContent))" % job,
                      lambda v: len(v) >= 1, 40)
        print("info checkpoints shown: %r; job status %s" % (ck, b.eval("document.querySelector('#job-%s .job-status').textContent" % job)))
        check("checkpoints listed with their train and valid loss", len(ck) >= 1 and all(len(r) == 3 and r[2] != "-" and float(r[2]) > 0 for r in ck), ck)

        # the canary form: a refused percent shows the server's message; then 25% of helper's users on v2
        def submit_canary(alias, model, pct):
            b.eval("(() => { const f = (id, v) => { document.getElementById(id).value = v; };"
                   " f('canary-alias', %s); f('canary-model', %s); f('canary-percent', %s);"
                   " document.getElementById('canary-set').click(); })()" % (json.dumps(alias), json.dumps(model), json.dumps(str(pct))))
        wait_for(b, "document.querySelectorAll('#canary-alias option').length", lambda v: v >= 2, 10)
        submit_canary("helper", "v2", 150)
        time.sleep(0.5)
        helper = "Array.from(document.querySelectorAll('#deployments tr')).slice(1).filter(r => r.cells[0].textContent === 'helper')" \
                 ".map(r => r.cells[2].textContent)[0]"
        st = b.eval("[document.getElementById('canary-percent').validity.rangeOverflow, %s]" % helper)
        check("the form itself refuses 150% (nothing sent)", st == [True, "v1 (10%)"], st)
        submit_canary("helper", "stories", 25)
        st = wait_for(b, "[document.getElementById('action').className, document.getElementById('action').textContent]",
                      lambda v: "err" in v[0] and "own model" in v[1], 10)
        check("the page shows the server's refusal of a canary on the deployment's own model", "err" in st[0] and "own model" in st[1], st)
        submit_canary("helper", "v2", 25)
        got = wait_for(b, helper, lambda v: v == "v2 (25%)", 10)
        check("the canary form sets helper's canary (shown on the page)", got == "v2 (25%)", got)
        b.eval("(() => { document.getElementById('new-alias').value = 'fresh'; document.getElementById('new-model').value = 'v1';"
               " document.getElementById('new-create').click(); })()")
        fresh = "Array.from(document.querySelectorAll('#deployments tr')).slice(1).filter(r => r.cells[0].textContent === 'fresh')" \
                ".map(r => r.cells[1].textContent)[0]"
        got = wait_for(b, fresh, lambda v: v == "v1", 10)
        check("the new-deployment form creates fresh = v1 (shown on the page)", got == "v1", got)

        # the reinforcement job: once the first is cancelled it runs, and its mean rewards are drawn
        req = urllib.request.Request(url.replace("/dashboard", "/v1/fine_tuning/jobs/%s/cancel" % job), data=b"{}", method="POST",
                                     headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).read()
        rw = "(() => { const p = document.querySelector('#job-%s polyline.%s'); return p ? Number(p.dataset.points) : -1; })()"
        nr = wait_for(b, rw % (rjob, "reward"), lambda v: v >= 2, 60)
        check("the reinforcement job's mean training reward is drawn", nr >= 2, nr)
        nvr = wait_for(b, rw % (rjob, "vreward"), lambda v: v >= 1, 30)
        label = b.eval("(() => { const e = document.querySelector('#job-%s .valid-reward'); return e ? e.textContent : ''; })()" % rjob)
        check("its validation reward is drawn and shown", nvr >= 1 and "valid reward" in label, (nvr, label))
    finally:
        b.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
