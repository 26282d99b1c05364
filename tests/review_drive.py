#!/usr/bin/env python3
"""Clicks through a takumi review page in headless Chromium (tests/review_chromium.sh).

usage: review_drive.py CHROMIUM PAGE DOWNLOAD_DIR PROFILE_DIR

Talks the DevTools protocol over --remote-debugging-pipe (the browser reads commands from fd 3 and
writes replies to fd 4, NUL-separated JSON), so only the standard library is needed. The page built
by the test has 7 items; this script:
  item 1: key "1" (left better)            item 2: a click on "Right better"
  item 3: types a correction, Esc, key "t" (tie)
  reloads the page (localStorage must keep the judgements and the position), goes back with "p" to
  check item 3's correction and choice, forward with "n";
  item 4: key ArrowRight (right better)    items 5-7: left unjudged
  checks that the answer holding <script>/<img onerror> is shown as text and ran nothing, then clicks
  "Download judgements" and waits for DOWNLOAD_DIR/judgements.jsonl.
Prints one line per check; exits 1 on the first failure."""
import fcntl
import json
import os
import pathlib
import subprocess
import sys
import time

TIMEOUT = 20.0  # a guard against a hung browser, not a timing: every wait ends on an event


class Browser:
    def __init__(self, exe, profile):
        cmd_r, self.cmd_w = os.pipe()
        self.res_r, res_w = os.pipe()
        # move the child's ends above 2..4 so that dup2 onto 3 and 4 cannot clobber one with the other
        hi_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD_CLOEXEC, 10)
        hi_w = fcntl.fcntl(res_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(cmd_r)
        os.close(res_w)

        def child_fds():
            os.dup2(hi_r, 3)   # dup2 clears close-on-exec on 3 and 4
            os.dup2(hi_w, 4)

        args = [exe, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                "--disable-sync", "--disable-component-update", "--user-data-dir=" + profile, "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(profile, "chromium.log"), "wb"),
                                     preexec_fn=child_fds, close_fds=False)
        os.close(hi_r)
        os.close(hi_w)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def _read_message(self, deadline):
        while b"\0" not in self.buf:
            if time.monotonic() > deadline:
                raise RuntimeError("no answer from the browser in %.0f s" % TIMEOUT)
            import select
            r, _, _ = select.select([self.res_r], [], [], 0.5)
            if r:
                chunk = os.read(self.res_r, 1 << 16)
                if not chunk:
                    raise RuntimeError("the browser closed its DevTools pipe (see chromium.log)")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=True):
        """session: True = the current page's, False = the browser's, or a session id."""
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        sid = self.session if session is True else session or None
        if sid:
            msg["sessionId"] = sid
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method, pred=lambda p, e: True):
        deadline = time.monotonic() + TIMEOUT
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == method and pred(e.get("params", {}), e):
                    return self.events.pop(i)
            self.events.append(self._read_message(deadline))

    def eval(self, expr, session=True):
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True}, session)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def key(self, key, code, vk, text=None):
        down = {"type": "keyDown" if text else "rawKeyDown", "key": key, "code": code, "windowsVirtualKeyCode": vk}
        if text:
            down["text"] = text
        self.send("Input.dispatchKeyEvent", down)
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk})

    def open_page(self, url):
        """A new tab showing url; returns its session id."""
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        sid = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        self.send("Page.enable", session=sid)
        self.send("Runtime.enable", session=sid)
        self.load("Page.navigate", {"url": url}, sid)
        return sid

    def load(self, method, params, session=True):
        sid = self.session if session is True else session
        self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired" or e.get("sessionId") != sid]
        self.send(method, params, sid)
        self.wait_event("Page.loadEventFired", lambda p, e: e.get("sessionId") == sid)

    def close(self):
        try:
            self.send("Browser.close", session=False)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


failures = 0


def check(what, got, want):
    global failures
    if got == want:
        print("ok   %s" % what)
    else:
        failures += 1
        print("FAIL %s: got %r, want %r" % (what, got, want))


def main():
    exe, page, dl, profile = sys.argv[1:5]
    url = pathlib.Path(page).resolve().as_uri()
    b = Browser(exe, profile)
    try:
        b.send("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": os.path.abspath(dl),
                                               "eventsEnabled": True}, session=False)
        b.session = b.open_page(url)
        text = lambda el: b.eval("document.getElementById(%s).textContent" % json.dumps(el))
        check("first item shown", (text("progress"), text("item-id"), text("judged"), b.eval("document.title")),
              ("1 of 7", "item p1", "0 judged", "Test review"))
        check("no network: one self-contained file", b.eval(
            "Array.from(document.querySelectorAll('[src],[href],link')).length"), 0)
        b.key("1", "Digit1", 49, "1")
        check("key 1 records left and moves on", (text("progress"), text("judged")), ("2 of 7", "1 judged"))
        check("item 2 shows the conversation", b.eval(
            "Array.from(document.querySelectorAll('#prompt .msg')).map(m => m.textContent)"),
            ["systemBe brief.", "userCapital of France?"])
        b.eval("document.getElementById('btn-right').click()")
        check("click on Right better moves on", (text("progress"), text("judged")), ("3 of 7", "2 judged"))
        answers = (text("left-text"), text("right-text"))
        check("answer with <script> shown as text",
              sorted(answers), sorted(["</script><script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">hi!", "Hello & welcome."]))
        check("no injected script or image ran", b.eval(
            "[typeof window.pwned, document.scripts.length, document.images.length]"), ["undefined", 2, 0])
        b.eval("document.getElementById('correction').focus()")
        b.send("Input.insertText", {"text": "Hi there! <b>not bold</b>"})
        b.key("1", "Digit1", 49, "1")  # typed into the correction, not a shortcut
        check("keys in the correction box are text", (b.eval("document.getElementById('correction').value"),
                                                      text("progress")), ("Hi there! <b>not bold</b>1", "3 of 7"))
        b.key("Backspace", "Backspace", 8)
        b.key("Escape", "Escape", 27)
        b.key("t", "KeyT", 84, "t")
        check("Esc, then t records a tie", (text("progress"), text("judged")), ("4 of 7", "3 judged"))
        # Chromium's renderer may drop its copy of localStorage between a reload's two documents and ask
        # the browser again; under load that question can overtake the old document's last writes (a
        # person never reloads that fast). So: reload until the state is there, or fail after 50 reloads
        # (loading the page writes nothing, so another reload changes nothing).
        for reloads in range(1, 51):
            b.load("Page.reload", {})
            if text("judged") != "0 judged":
                break
        check("reload keeps judgements and position", (text("progress"), text("judged")), ("4 of 7", "3 judged"))
        b.key("p", "KeyP", 80, "p")
        check("p goes back; the correction and the tie survived the reload",
              (text("progress"), b.eval("document.getElementById('correction').value"),
               b.eval("document.getElementById('btn-tie').className")), ("3 of 7", "Hi there! <b>not bold</b>", "chosen"))
        b.key("n", "KeyN", 78, "n")
        b.key("ArrowRight", "ArrowRight", 39)
        check("ArrowRight records right and moves on", (text("progress"), text("judged")), ("5 of 7", "4 judged"))
        b.eval("document.getElementById('download').click()")
        done = b.wait_event("Browser.downloadProgress", lambda p, e: p.get("state") in ("completed", "canceled"))
        check("download completed", done["params"]["state"], "completed")
        out = os.path.join(dl, "judgements.jsonl")
        check("judgements.jsonl saved", os.path.isfile(out), True)
    finally:
        b.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
