#!/usr/bin/env python3
"""TRL side of the DPO step speed comparison (issue 8, bench/dpo.sh).

Runs TRL's DPOTrainer (PyTorch + PEFT LoRA, fp32 on CPU) on SmolLM2-135M-Instruct loaded by
transformers from the same GGUF file takumi trains (dequantized to float32, as
bench/train_peer.py does), on a preference file (TRL prompt/chosen/rejected records), with
torch.set_num_threads(T). The configuration mirrors bench/dpo.sh's takumi run: LoRA r/alpha/
dropout/targets, pairs per step, max_length, beta, sigmoid loss, AdamW at a constant lr, clip 1.0,
no gradient checkpointing (DPOConfig's default is on), fp32 (DPOConfig's default is bf16), the
reference = the base with the adapter off (TRL's PEFT path), no precomputed reference.

Timing: a TrainerCallback takes each optimizer step's wall time (on_step_begin .. on_step_end);
the tokens of a step are the non-padding tokens of its batch (prompt+chosen and prompt+rejected,
the attention mask's sum), counted by a wrapper around TRL's collator. Prints one JSON object:
tokens/s over the timed steps, median step time, tokens per step, the loss and
rewards/accuracies of each step, peak RSS, versions.

Example: python3 bench/dpo_peer.py --data examples/support/prefs_train.jsonl --batch 8 --steps 5
"""
import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf", help="GGUF file")
    ap.add_argument("--data", default="examples/support/prefs_train.jsonl")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8, help="pairs per optimizer step")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5, help="timed optimizer steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--lora-alpha", type=float, default=16)
    ap.add_argument("--targets", default="q,k,v,o,gate,up,down")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    import transformers
    import trl
    import peft
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    d, fname = os.path.split(os.path.abspath(args.model))
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=fname, torch_dtype=torch.float32, attn_implementation="sdpa")
    # the GGUF weights are dequantized to float32 Linear layers (what bench/train_peer.py trains); transformers
    # still marks the model as GGUF-quantized, which its Trainer refuses: clear the mark
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tok = AutoTokenizer.from_pretrained(d, gguf_file=fname)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token

    rows = []
    with open(args.data, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                rows.append({k: o[k] for k in ("prompt", "chosen", "rejected")})
    ds = Dataset.from_list(rows)

    names = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj", "gate": "gate_proj", "up": "up_proj", "down": "down_proj"}
    targets = [names[t.strip()] for t in args.targets.split(",") if t.strip()]
    lora = peft.LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=0.0, target_modules=targets,
                           bias="none", task_type="CAUSAL_LM")
    n_steps = args.warmup + args.steps
    out_dir = tempfile.mkdtemp(prefix="dpo_peer_")
    cfg = trl.DPOConfig(output_dir=out_dir, per_device_train_batch_size=args.batch, gradient_accumulation_steps=1,
                        max_steps=n_steps, learning_rate=args.lr, lr_scheduler_type="constant", warmup_steps=0,
                        weight_decay=0.0, max_grad_norm=1.0, beta=args.beta, loss_type=["sigmoid"],
                        max_length=args.max_length, gradient_checkpointing=False, bf16=False, fp16=False, use_cpu=True,
                        logging_steps=1, report_to="none", save_strategy="no", dataloader_num_workers=0, seed=args.seed,
                        data_seed=args.seed, disable_tqdm=True)

    trainer = trl.DPOTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok, peft_config=lora)

    batch_tokens = []
    inner = trainer.data_collator

    def counting_collator(examples):
        b = inner(examples)
        batch_tokens.append(int(b["attention_mask"].sum()))
        return b
    trainer.data_collator = counting_collator

    class Timer(TrainerCallback):
        def __init__(self):
            self.times, self.logs = [], []

        def on_step_begin(self, a, state, control, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            self.times.append(time.perf_counter() - self.t)
            print(f"dpo_peer.py: step {len(self.times)}/{n_steps}{' (warm-up)' if len(self.times) <= args.warmup else ''}: "
                  f"{self.times[-1]:.2f} s", file=sys.stderr, flush=True)

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.logs.append({k: logs.get(k) for k in ("loss", "rewards/accuracies", "rewards/margins")})
    timer = Timer()
    trainer.add_callback(timer)
    trainer.train()

    times = timer.times[args.warmup:]
    toks = batch_tokens[args.warmup:n_steps]
    res = {
        "side": "trl",
        "batch": args.batch,
        "max_length": args.max_length,
        "threads": args.threads,
        "steps_timed": len(times),
        "warmup": args.warmup,
        "tokens_per_s": sum(toks) / sum(times) if times else None,
        "step_s_median": statistics.median(times) if times else None,
        "tokens_per_step": sum(toks) / len(toks) if toks else None,
        "steps": timer.logs,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "lora": {"r": args.lora_r, "alpha": args.lora_alpha, "dropout": 0.0, "targets": targets},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
                     "trl": trl.__version__, "python": sys.version.split()[0]},
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
