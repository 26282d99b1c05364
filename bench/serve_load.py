"""Load client of bench/serve_load.sh: N concurrent clients, each a loop of chat completions (one keep-alive
connection per client, a fixed rotation of short user questions, greedy, max_tokens answers) against an
OpenAI-compatible server for a fixed time. Standard library only.
Usage: serve_load.py --url http://127.0.0.1:PORT --clients N --seconds S [--max-tokens 64]
                     [--models a,b,...] (client i uses models[i % len]) [--lora K] (llama-server: client i sends
                     "lora": [{"id": i % K, "scale": 1}]) [--label TEXT]
Clients start requests for --seconds; the requests running then finish. Prints one JSON line: clients, seconds (from
the start to the last answer), requests, errors, req_s, p50_s, p99_s, tokens (completion tokens of every answer),
tok_s = tokens / seconds, label."""
import argparse, http.client, json, threading, time, urllib.parse

QUESTIONS = ["What is the capital of France?", "Give me three tips for staying healthy.", "Explain photosynthesis briefly.",
             "Write a haiku about the sea.", "What does a CPU do?", "Name three primary colors.",
             "How do I boil an egg?", "Why is the sky blue?", "Describe a cat in two sentences.",
             "What is 12 times 7?", "Suggest a name for a bakery.", "What is machine learning?"]

ap = argparse.ArgumentParser()
ap.add_argument("--url", required=True)
ap.add_argument("--clients", type=int, required=True)
ap.add_argument("--seconds", type=float, required=True)
ap.add_argument("--max-tokens", type=int, default=64)
ap.add_argument("--models", default="default")
ap.add_argument("--lora", type=int, default=0)
ap.add_argument("--label", default="")
a = ap.parse_args()
u = urllib.parse.urlparse(a.url)
models = a.models.split(",")
lat, tokens, errors, lock = [], [0], [0], threading.Lock()
t_end, last = [0.0], [0.0]


def client(i):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    k = i
    while True:
        t0 = time.monotonic()
        if t0 >= t_end[0]:
            break
        body = {"model": models[i % len(models)], "messages": [{"role": "user", "content": QUESTIONS[k % len(QUESTIONS)]}],
                "max_tokens": a.max_tokens, "temperature": 0}
        if a.lora:
            body["lora"] = [{"id": i % a.lora, "scale": 1.0}]
        k += 1
        try:
            conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
            r = conn.getresponse()
            raw = r.read()
            t1 = time.monotonic()
            if r.status != 200:
                with lock:
                    errors[0] += 1
                continue
            n = json.loads(raw)["usage"]["completion_tokens"]
            with lock:
                lat.append(t1 - t0)
                tokens[0] += n
                last[0] = max(last[0], t1)
        except Exception:  # noqa: BLE001 - counted as an error, the client reconnects
            with lock:
                errors[0] += 1
            conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)


t_start = time.monotonic()
t_end[0] = t_start + a.seconds
th = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
for t in th:
    t.start()
for t in th:
    t.join()
lat.sort()
wall = max(last[0], t_end[0]) - t_start
pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
print(json.dumps({"label": a.label, "clients": a.clients, "seconds": round(wall, 2), "requests": len(lat), "errors": errors[0],
                  "req_s": len(lat) / wall, "p50_s": pct(0.5), "p99_s": pct(0.99), "tokens": tokens[0],
                  "tok_s": tokens[0] / wall}))
