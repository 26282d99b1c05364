"""Drives tests/serve_batch.sh's server: concurrent clients (plain and SSE, three adapters, different max_tokens,
greedy and seeded) against the answers `takumi generate` gave one at a time; a client that leaves mid-stream.
Standard library only (http.client, threads). Usage: serve_batch_drive.py PORT CASES.json MODE
MODE all: every case at once, prints one JSON line {"ok": n, "bad": [...], "tokens": sum of completion tokens, "rows": n}
MODE leave: the same with one extra streaming client that closes its socket after 2 chunks."""
import http.client, json, socket, sys, threading

port, cases_file, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cases = json.load(open(cases_file, encoding="utf-8"))
results = [None] * len(cases)
start = threading.Barrier(len(cases) + (1 if mode == "leave" else 0))


def body(c):
    b = {"model": c["model"], "prompt": c["prompt"], "max_tokens": c["max_tokens"], "temperature": c["temperature"], "stream": c["stream"]}
    if c["stream"]:
        b["stream_options"] = {"include_usage": True}
    if c.get("seed") is not None:
        b["seed"] = c["seed"]
        b["top_p"] = 1
    return json.dumps(b)


def run(i, c):
    start.wait()
    try:
        h = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        h.request("POST", "/v1/completions", body(c), {"Content-Type": "application/json"})
        r = h.getresponse()
        raw = r.read().decode("utf-8")
        if r.status != 200:
            results[i] = ("status %d: %s" % (r.status, raw[:200]), 0)
            return
        if c["stream"]:
            text, tokens = "", None
            for ev in raw.split("\n\n"):
                if not ev.startswith("data: ") or ev == "data: [DONE]":
                    continue
                o = json.loads(ev[6:])
                for ch in o.get("choices", []):
                    text += ch.get("text") or ""
                if o.get("usage"):
                    tokens = o["usage"]["completion_tokens"]
            results[i] = (text, tokens if tokens is not None else 0)
        else:
            o = json.loads(raw)
            results[i] = (o["choices"][0]["text"], o["usage"]["completion_tokens"])
    except Exception as e:  # noqa: BLE001 - reported as a failed case
        results[i] = ("error: %r" % e, 0)


def leaver(c):
    start.wait()
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    b = json.dumps({"model": c["model"], "prompt": c["prompt"], "max_tokens": 400, "temperature": 0, "stream": True}).encode()
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(b) + b)
    got = b""
    while got.count(b"data: ") < 3:  # the role-less first chunk + 2 text chunks
        d = s.recv(4096)
        if not d:
            break
        got += d
    s.close()


threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(cases)]
if mode == "leave":
    threads.append(threading.Thread(target=leaver, args=(cases[0],)))
for t in threads:
    t.start()
for t in threads:
    t.join()
bad, tokens = [], 0
for c, (text, n) in zip(cases, results):
    if text != c["want"]:
        bad.append({"case": c["name"], "got": text, "want": c["want"]})
    tokens += n
print(json.dumps({"ok": len(cases) - len(bad), "bad": bad, "tokens": tokens, "rows": len(cases)}))
