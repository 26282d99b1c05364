"""PEFT in PyTorch on the configuration of scripts/demo_classify.sh, for comparison with takumi: SmolLM2-135M-Instruct
(transformers' GGUF loader: the Q4_1 file dequantized to f32) as LlamaForSequenceClassification, a PEFT LoRA (task
SEQ_CLS; r 8, alpha 16, dropout 0.05, all seven linears: takumi's defaults) or the head alone, AdamW (lr 1e-3, no weight
decay, clip 1, cosine after a 3% linear warmup), 2 epochs of batches of 4 texts (takumi packs about 4 of these short
texts into each row), texts cut to --max-seq-len tokens. Prints accuracy, macro-F1 and the training time.

Usage: python3 tools/peft_classify_demo.py --train T.tsv --eval E.tsv --labels a,b [--method lora|head] [--max-seq-len N]
       [--threads 2] [--epochs 2] [--batch 4] [--lower-frozen N]
--lower-frozen N: LoRA on layers N.. only (PEFT's layers_to_transform), as takumi's --freeze-layers N.
"""
import argparse
import math
import os
import random
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_tsv(path, labels):
    rows = []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line or "\t" not in line:
            continue
        text, lab = line.rsplit("\t", 1)
        lab = lab.strip()
        if lab in labels:
            rows.append((text, labels.index(lab)))
        elif lab.isdigit() and int(lab) < len(labels):
            rows.append((text, int(lab)))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--method", default="lora", choices=["lora", "head"])
    ap.add_argument("--max-seq-len", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lower-frozen", type=int, default=0)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    random.seed(42)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    import transformers
    transformers.utils.logging.set_verbosity_error()
    labels = a.labels.split(",")
    d, f = os.path.split(os.path.realpath(a.model))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(d, gguf_file=f, num_labels=len(labels), torch_dtype=torch.float32,
                                                               id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    model.config.pad_token_id = tok.pad_token_id
    if a.method == "lora":
        from peft import LoraConfig, get_peft_model
        n_layers = model.config.num_hidden_layers
        upper = list(range(a.lower_frozen, n_layers)) if a.lower_frozen else None
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, task_type="SEQ_CLS", layers_to_transform=upper,
                                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    else:
        for n, p in model.named_parameters():
            p.requires_grad_(n.startswith("score."))
    params = [p for p in model.parameters() if p.requires_grad]
    train, ev = read_tsv(a.train, labels), read_tsv(a.eval, labels)
    steps = a.epochs * math.ceil(len(train) / a.batch)
    warm = max(1, round(0.03 * steps))
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else
                                              0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))
    enc = lambda texts: tok(texts, truncation=True, max_length=a.max_seq_len, padding=True, return_tensors="pt")
    t0 = time.time()
    model.train()
    for e in range(a.epochs):
        order = list(range(len(train)))
        random.shuffle(order)
        for i in range(0, len(order), a.batch):
            b = [train[k] for k in order[i:i + a.batch]]
            x = enc([t for t, _ in b])
            loss = model(**x, labels=torch.tensor([y for _, y in b])).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
    t_train = time.time() - t0
    model.eval()
    pred = []
    with torch.no_grad():
        for i in range(0, len(ev), 8):
            x = enc([t for t, _ in ev[i:i + 8]])
            pred += model(**x).logits.argmax(-1).tolist()
    t_eval = time.time() - t0 - t_train
    gold = [y for _, y in ev]
    acc = sum(p == g for p, g in zip(pred, gold)) / len(gold)
    f1s = []
    for k in range(len(labels)):
        tp = sum(p == k and g == k for p, g in zip(pred, gold))
        fp = sum(p == k and g != k for p, g in zip(pred, gold))
        fn = sum(p != k and g == k for p, g in zip(pred, gold))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    print("peft %s: %d training texts, %d steps (batch %d), %d eval texts: accuracy %.4f, macro-F1 %.4f; train %.0f s, eval %.0f s "
          "(torch %s, %d threads)" % (a.method, len(train), steps, a.batch, len(ev), acc, sum(f1s) / len(f1s), t_train, t_eval,
                                      torch.__version__, a.threads))


if __name__ == "__main__":
    main()
