#!/usr/bin/env python3
"""PyTorch + HF PEFT side of the training speed/memory comparison (issue 3, bench/).

Loads SmolLM2-135M (or any Llama-family GGUF) through transformers from the GGUF file
(dequantized to float32, the same weights takumi trains), then runs N timed optimizer
steps of LoRA (PEFT) or full fine-tuning at a given sequence length and batch size, in
fp32 or bf16 autocast, with torch.set_num_threads(T). One configuration per process,
so that the peak RSS belongs to that configuration alone. Prints one JSON object:
tokens/s (over the timed steps), median step time, peak RSS (getrusage ru_maxrss),
RSS after loading, losses, and versions.

Data: --data FILE (plain text, or JSONL whose lines carry "text" or "messages") is
tokenized with the model's tokenizer, concatenated and cut into rows of --seq tokens;
without it, rows of seeded random token ids are used (speed does not depend on them).
Loss: next-token cross-entropy on every token (labels = input ids), as HF computes it.

Example: python3 bench/train_peer.py --threads 2 --batch 1 --dtype fp32 --steps 10
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time


def rss_now_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return None


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def load_rows(args, tokenizer, n_rows, vocab, torch):
    """Returns a LongTensor [n_rows, seq] of training token ids."""
    seq = args.seq
    if args.data:
        ids = []
        with open(args.data, encoding="utf-8") as f:
            text = f.read()
        docs = []
        if args.data.endswith(".jsonl"):
            for line in text.splitlines():
                if not line.strip():
                    continue
                o = json.loads(line)
                if "messages" in o:
                    docs.append(tokenizer.apply_chat_template(o["messages"], tokenize=False))
                elif "text" in o:
                    docs.append(o["text"])
                else:
                    docs.append(json.dumps(o, ensure_ascii=False))
        else:
            docs = [text]
        for d in docs:
            ids.extend(tokenizer(d, add_special_tokens=False)["input_ids"])
        need = n_rows * seq
        if not ids:
            sys.exit(f"train_peer.py: {args.data}: no tokens")
        while len(ids) < need:  # repeat the data to fill the rows
            ids = ids + ids
        return torch.tensor(ids[:need], dtype=torch.long).view(n_rows, seq)
    g = torch.Generator().manual_seed(args.seed)
    return torch.randint(0, vocab, (n_rows, seq), generator=g)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf", help="GGUF file")
    ap.add_argument("--method", choices=["lora", "full"], default="lora")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                    help="bf16 = torch.autocast(cpu, bfloat16) over fp32 weights")
    ap.add_argument("--steps", type=int, default=10, help="timed optimizer steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--lora-alpha", type=float, default=16)
    ap.add_argument("--lora-dropout", type=float, default=0.0)
    ap.add_argument("--targets", default="q,k,v,o,gate,up,down")
    ap.add_argument("--lr", type=float, default=None, help="default 1e-4 (LoRA) / 1e-5 (full)")
    ap.add_argument("--data", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attn", default="sdpa", help="transformers attn_implementation")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rss0 = rss_now_mb()
    t0 = time.perf_counter()
    d, fname = os.path.split(os.path.abspath(args.model))
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=fname, torch_dtype=torch.float32,
                                                 attn_implementation=args.attn)
    tokenizer = AutoTokenizer.from_pretrained(d, gguf_file=fname) if args.data else None
    load_s = time.perf_counter() - t0

    peft_version = None
    if args.method == "lora":
        import peft
        peft_version = peft.__version__
        names = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj",
                 "gate": "gate_proj", "up": "up_proj", "down": "down_proj"}
        targets = [names[t.strip()] for t in args.targets.split(",") if t.strip()]
        cfg = peft.LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                              target_modules=targets, bias="none", task_type="CAUSAL_LM")
        model = peft.get_peft_model(model, cfg)
        lr = args.lr if args.lr is not None else 1e-4
    else:
        targets = None
        for p in model.parameters():
            p.requires_grad_(True)
        lr = args.lr if args.lr is not None else 1e-5
    model.train()
    rss_loaded = rss_now_mb()

    params = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in params)
    n_total = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)

    n_steps = args.warmup + args.steps
    rows = load_rows(args, tokenizer, n_steps * args.batch, model.config.vocab_size, torch)

    def step(i):
        x = rows[i * args.batch:(i + 1) * args.batch]
        if args.dtype == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(input_ids=x, labels=x)
        else:
            out = model(input_ids=x, labels=x)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(out.loss.detach())

    losses, times = [], []
    for i in range(n_steps):
        ts = time.perf_counter()
        loss = step(i)
        dt = time.perf_counter() - ts
        losses.append(loss)
        if i >= args.warmup:
            times.append(dt)
        print(f"train_peer.py: step {i + 1}/{n_steps}{' (warm-up)' if i < args.warmup else ''}: "
              f"loss {loss:.4f}, {dt:.3f} s", file=sys.stderr, flush=True)

    tok_per_step = args.batch * args.seq
    res = {
        "side": "pytorch",
        "method": args.method,
        "dtype": args.dtype,
        "batch": args.batch,
        "seq": args.seq,
        "threads": args.threads,
        "steps_timed": args.steps,
        "warmup": args.warmup,
        "tokens_per_s": tok_per_step * len(times) / sum(times) if times else None,
        "step_s_median": statistics.median(times) if times else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_load_mb": round(rss0, 1) if rss0 else None,
        "rss_after_load_mb": round(rss_loaded, 1) if rss_loaded else None,
        "load_s": round(load_s, 2),
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "trainable_params": n_trainable,
        "total_params": n_total,
        "lora": None if args.method != "lora" else
        {"r": args.lora_r, "alpha": args.lora_alpha, "dropout": args.lora_dropout, "targets": targets},
        "lr": lr,
        "attn": args.attn,
        "data": args.data or "random ids",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "peft": peft_version, "python": sys.version.split()[0]},
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
