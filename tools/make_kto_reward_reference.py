#!/usr/bin/env python3
"""TRL reference for takumi's KTO and reward-model objectives (src/objective/kto.c, reward.c): TRL's
own loss code (trl 1.16: KTOTrainer._compute_loss with loss_type "kto" and precomputed reference
log-probabilities; RewardTrainer.compute_loss) driven on outputs that PyTorch computes, so that
autograd gives the gradients through TRL's formulas. As tools/make_dpo_reference.py, TRL's
trainers are not run end to end: their loss code is called with a stand-in `self` holding the
hyperparameters and a stand-in model returning the real per-token log-probabilities (KTO:
TRL's fused LM head layout [B, L], zero outside the completion; the KL sequences through
KTOTrainer._compute_kl_logps, under TRL's no_grad) or the real rewards (reward: [2G, 1],
chosen rows first, as RewardTrainer's collator lays them out).

Two fixtures:
  tests/fixtures/objective/kto_reward_ref.safetensors   small head problems: h [T x C], h_ref,
      w [V x C], targets, sequence ids, values (KTO: 1 desirable / 0 undesirable / -1 KL); for
      the reward model h, the score head and the pooled rows. Loss, dh, dw (dscore) and metrics.
  tests/fixtures/train/stories260k_kto_reward_ref.safetensors   ../shared/models/stories260K/hf
      with a PEFT LoRA (r 4, alpha 8, all seven targets, dropout 0; A: PEFT's init, B: 0.05 randn):
      KTO: four labelled examples and their KL sequences (prompt i + completion i-1, cyclic, as
      TRL's add_kl_completion_ids), one per row, right-padded; the reference is the base with the
      adapter off. Reward: AutoModelForSequenceClassification (num_labels 1) + LoRA (task SEQ_CLS:
      the score head trains as modules_to_save), two pairs. For each: loss, every LoRA gradient
      (and the head's), and a 10-step AdamW loss curve with test_train_ref's settings.
Usage: HF_HUB_OFFLINE=1 python3 tools/make_kto_reward_reference.py
"""
import json
import os
import sys
from collections import defaultdict
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
from safetensors.torch import save_file

import trl
from trl.trainer.kto_trainer import KTOTrainer
from trl.trainer.reward_trainer import RewardTrainer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_dpo_reference import Acc, token_logps, TARGETS, N_STEPS, LR, WD, CLIP  # noqa: E402  (the DPO reference's helpers and settings)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TAKUMI_SHARED", os.path.join(ROOT, "..", "shared"))
KTO_CASES = [("kto", 0.1, 1.0, 1.0), ("kto_weighted", 0.5, 1.5, 0.7)]   # name, beta, desirable, undesirable weight
RM_CASES = [("reward", 0.0), ("reward_center", 0.05)]                     # name, center_rewards_coefficient
KTO_METRICS = ["rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected", "kl"]
RM_METRICS = ["accuracy", "margin", "mean_reward", "min_reward", "max_reward"]


def trl_kto(tok, mask, kl_tok, kl_mask, labels, ref, ref_kl, beta, wd, wu):
    """KTOTrainer._compute_loss on per-token log-probs tok [B, L] (completion mask [B, L]) and the KL
    sequences' kl_tok (a callable: computed when TRL asks, under its no_grad), precomputed reference sums."""
    B, L = tok.shape
    fake = SimpleNamespace(model=SimpleNamespace(training=True), accelerator=Acc(), aux_loss_enabled=False, calculate_KL=True,
                           precompute_ref_logps=True, loss_type="kto", beta=beta, desirable_weight=wd, undesirable_weight=wu,
                           _metrics=defaultdict(lambda: defaultdict(list)), _total_train_tokens=0, _tp_size=1)
    fake._compute_kl_logps = lambda model, batch: KTOTrainer._compute_kl_logps(fake, model, batch)
    ids, kl_ids = torch.zeros(B, L + 1, dtype=torch.long), torch.ones(B, kl_mask.shape[1] + 1, dtype=torch.long)

    def model(**kw):
        if kw["input_ids"] is kl_ids:
            lp = kl_tok() * kl_mask
        else:
            lp = tok * mask
        z = torch.zeros_like(lp)
        return SimpleNamespace(log_probs=lp, entropy=z, mean_logits=z)

    one = lambda m: torch.cat([torch.zeros(m.shape[0], 1), m], 1).long()
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "completion_mask": one(mask), "KL_input_ids": kl_ids,
              "KL_attention_mask": torch.ones_like(kl_ids), "KL_completion_mask": one(kl_mask), "label": labels,
              "ref_logps": ref, "ref_KL_logps": ref_kl}
    loss = KTOTrainer._compute_loss(fake, model, inputs, False)
    m = fake._metrics["train"]
    return loss, [m[k][0] for k in KTO_METRICS]


def trl_reward(rewards, center):
    """RewardTrainer.compute_loss on rewards [2G] (chosen first)."""
    fake = SimpleNamespace(model=SimpleNamespace(training=True), accelerator=Acc(), args=SimpleNamespace(center_rewards_coefficient=center or None),
                           _metrics=defaultdict(lambda: defaultdict(list)), _total_train_tokens=0, _tp_size=1)
    model = lambda **kw: SimpleNamespace(logits=rewards.unsqueeze(-1))
    loss = RewardTrainer.compute_loss(fake, model, {"attention_mask": torch.ones(rewards.shape[0], 1, dtype=torch.long)})
    m = fake._metrics["train"]
    return loss, [m[k][0] for k in RM_METRICS]


def rows_of(tok_rows, seq, order):
    """Per-sequence rows of tok_rows (flat [T]) for the sequences in order, right-padded: [len(order), Lmax] + mask."""
    vs = [tok_rows[seq == s] for s in order]
    L = max(v.numel() for v in vs)
    pad = lambda v: torch.cat([v, torch.zeros(L - v.numel(), dtype=v.dtype)])
    return torch.stack([pad(v) for v in vs]), torch.stack([pad(torch.ones(v.numel())) for v in vs])


def head_problem():
    g = torch.Generator().manual_seed(11)
    C, V = 12, 40
    # (prompt rows, completion rows, value): 4 labelled sequences, then their 4 KL sequences, packed with prompt rows
    layout = [(3, 4, 1), (2, 6, 0), (4, 3, 1), (3, 5, 1), (2, 3, -1), (3, 4, -1), (2, 5, -1), (4, 6, -1)]
    seq = []
    for i, (p, c, _) in enumerate(layout):
        seq += [-1] * p + [i] * c
    T = len(seq)
    h = torch.randn(T, C, generator=g)
    h_ref = h + 0.3 * torch.randn(T, C, generator=g)
    w = 0.5 * torch.randn(V, C, generator=g)
    target = torch.randint(0, V, (T,), generator=g)
    seq = torch.tensor(seq)
    value = torch.tensor([float(v) for _, _, v in layout])
    out = {"h": h, "h_ref": h_ref, "w": w, "target": target.to(torch.int32), "seq": seq.to(torch.int32), "seq_value": value}
    meta = {}
    lab, klq = [0, 1, 2, 3], [4, 5, 6, 7]
    for name, beta, wd, wu in KTO_CASES:
        hh = h.clone().requires_grad_(True)
        ww = w.clone().requires_grad_(True)
        tok_all = token_logps(hh @ ww.T, target)
        ref_all = token_logps(h_ref @ w.T, target)
        tok, mask = rows_of(tok_all, seq, lab)
        ref = torch.stack([ref_all[seq == s].sum() for s in lab])
        ref_kl = torch.stack([ref_all[seq == s].sum() for s in klq])
        kl_mask = rows_of(tok_all.detach(), seq, klq)[1]
        loss, met = trl_kto(tok, mask, lambda: rows_of(token_logps(hh @ ww.T, target), seq, klq)[0], kl_mask,
                            torch.tensor([bool(layout[s][2]) for s in lab]), ref, ref_kl, beta, wd, wu)
        loss.backward()
        out[name + "_dh"], out[name + "_dw"] = hh.grad, ww.grad
        meta[name] = json.dumps({"loss": loss.item(), "beta": beta, "desirable_weight": wd, "undesirable_weight": wu, "metrics": met})
        print("%-14s loss %.6f metrics %s" % (name, loss.item(), ["%.4f" % x for x in met]), file=sys.stderr)
    # reward: 3 pairs (c0 r0 c1 r1 c2 r2 in row order), pooled at each sequence's last row
    lens = [5, 3, 4, 6, 2, 4]
    rseq = []
    for i, n in enumerate(lens):
        rseq += [-1] * (n - 1) + [i] + [-1]   # one padding row after each
    Tr = len(rseq)
    hr = torch.randn(Tr, C, generator=g)
    score = 0.3 * torch.randn(C, generator=g)
    rseq = torch.tensor(rseq)
    last = torch.tensor([int((rseq == s).nonzero()[-1]) for s in range(len(lens))])
    out.update({"rm_h": hr, "rm_score": score, "rm_seq": rseq.to(torch.int32), "rm_seq_group": torch.tensor([i // 2 for i in range(6)], dtype=torch.int32),
                "rm_seq_value": torch.tensor([1.0 - (i % 2) for i in range(6)])})
    for name, center in RM_CASES:
        hh = hr.clone().requires_grad_(True)
        ss = score.clone().requires_grad_(True)
        r = (hh[last] @ ss)
        loss, met = trl_reward(torch.cat([r[0::2], r[1::2]]), center)
        loss.backward()
        out[name + "_dh"], out[name + "_dscore"] = hh.grad, ss.grad
        meta[name] = json.dumps({"loss": loss.item(), "center_rewards": center, "metrics": met})
        print("%-14s loss %.6f metrics %s" % (name, loss.item(), ["%.4f" % x for x in met]), file=sys.stderr)
    return out, meta


def pad_rows(seqs, plen):
    """Right-padded ids [B, T], attention mask, completion mask (TRL's), targets and takumi's seq (completion target rows)."""
    B, T = len(seqs), max(len(s) for s in seqs)
    ids = torch.zeros(B, T, dtype=torch.long)
    am, cm = torch.zeros(B, T), torch.zeros(B, T)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        am[i, :len(s)] = 1
        cm[i, plen[i]:len(s)] = 1
    target = torch.full((B, T), -1, dtype=torch.long)
    target[:, :-1] = torch.where(am[:, 1:] > 0, ids[:, 1:], torch.full_like(ids[:, 1:], -1))
    seq = torch.full((B, T), -1, dtype=torch.int32)
    seq[:, :-1] = torch.where(cm[:, 1:] > 0, torch.arange(B, dtype=torch.int32).unsqueeze(1).expand(B, T - 1), seq[:, :-1])
    return ids, am, cm, target, seq


def lora_model(base, task):
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(1234)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, bias="none", task_type=task))
    gen = torch.Generator().manual_seed(99)
    named = [(n.replace(".modules_to_save.default", "").replace(".default", ""), p) for n, p in model.named_parameters() if p.requires_grad]
    init = {}
    with torch.no_grad():
        for n, p in named:
            if "lora_B" in n:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            init[n] = p.detach().clone()
    return model, named, init


def train_case(name, named, init, loss_of, out):
    with torch.no_grad():
        for n, p in named:
            p.copy_(init[n])
    for _, p in named:
        p.grad = None
    loss, met = loss_of()
    loss.backward()
    for n, p in named:
        out["grad.%s.%s" % (name, n)] = p.grad.detach().clone()
    entry = {"loss": loss.item(), "metrics": met}
    for _, p in named:
        p.grad = None
    opt = torch.optim.AdamW([{"params": [p for n, p in named if p.ndim >= 2], "weight_decay": WD}], lr=LR, betas=(0.9, 0.999), eps=1e-8)
    curve = []
    for _ in range(N_STEPS):
        opt.zero_grad()
        loss, _ = loss_of()
        curve.append(loss.item())
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in named], CLIP)
        opt.step()
    with torch.no_grad():
        curve.append(loss_of()[0].item())
    entry["curve"] = curve
    print("stories %-8s loss %.6f curve %.5f -> %.5f" % (name, entry["loss"], curve[0], curve[-1]), file=sys.stderr)
    return entry


def stories_problem():
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    folder = os.path.join(SHARED, "models", "stories260K", "hf")
    greedy = json.loads(open(os.path.join(folder, "greedy_64_from_bos.txt")).readline())
    p0, p1 = [1] + greedy[:5], [1] + greedy[20:24]
    good0, good1, bad0, bad1 = greedy[5:14], greedy[24:30], greedy[40:46], greedy[50:61]
    out, meta = {}, {}
    # ---- KTO: four labelled examples, then their KL sequences (prompt i + completion i-1, cyclic)
    ex = [(p0, good0, True), (p1, bad1, False), (p1, good1, True), (p0, bad0, False)]
    kl = [(ex[i][0], ex[(i - 1) % 4][1]) for i in range(4)]
    seqs = [p + c for p, c, _ in ex] + [p + c for p, c in kl]
    plen = [len(p) for p, _, _ in ex] + [len(p) for p, _ in kl]
    ids, am, cm, target, seq = pad_rows(seqs, plen)
    labels = torch.tensor([l for _, _, l in ex])
    out.update({"kto.ids": ids.to(torch.int32), "kto.seg": torch.where(am > 0, 0, -1).to(torch.int32), "kto.target": target.to(torch.int32),
                "kto.seq": seq, "kto.seq_value": torch.tensor([1.0 if l else 0.0 for l in labels] + [-1.0] * 4)})
    base = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="eager")
    model, named, init = lora_model(base, "CAUSAL_LM")
    out.update({"kto.init." + n: v for n, v in init.items()})
    shift = cm[:, 1:]

    def logps(m):
        return token_logps(m(input_ids=ids, attention_mask=am.long()).logits[:, :-1], target[:, :-1])

    with torch.no_grad(), model.disable_adapter():
        ref_tok = logps(model)
    ref = (ref_tok * shift).sum(1)
    for name, beta, wd, wu in KTO_CASES:
        def loss_of():
            tok = logps(model)
            return trl_kto(tok[:4], shift[:4], lambda: logps(model)[4:], shift[4:], labels, ref[:4], ref[4:], beta, wd, wu)
        entry = train_case(name, named, init, loss_of, out)
        entry.update({"beta": beta, "desirable_weight": wd, "undesirable_weight": wu})
        meta[name] = json.dumps(entry)
    # ---- reward model: two pairs, c0 c1 r0 r1; pooled at each sequence's last token
    seqs = [p0 + good0, p1 + good1, p0 + bad0, p1 + bad1]
    ids, am, _, _, _ = pad_rows(seqs, [1] * 4)
    rseq = torch.full(ids.shape, -1, dtype=torch.int32)
    for i, s in enumerate(seqs):
        rseq[i, len(s) - 1] = i
    out.update({"rm.ids": ids.to(torch.int32), "rm.seg": torch.where(am > 0, 0, -1).to(torch.int32), "rm.seq": rseq,
                "rm.seq_group": torch.tensor([0, 1, 0, 1], dtype=torch.int32), "rm.seq_value": torch.tensor([1.0, 1.0, 0.0, 0.0])})
    base = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1, torch_dtype=torch.float32, attn_implementation="eager")
    base.config.pad_token_id = 0   # <unk>: never in the sequences, so the pooled token is each sequence's last
    model, named, init = lora_model(base, "SEQ_CLS")
    out.update({"rm.init." + n: v for n, v in init.items()})
    for name, center in RM_CASES:
        loss_of = lambda: trl_reward(model(input_ids=ids, attention_mask=am.long()).logits.squeeze(-1), center)
        entry = train_case(name, named, init, loss_of, out)
        entry["center_rewards"] = center
        meta[name] = json.dumps(entry)
    meta.update({"lr": repr(LR), "weight_decay": repr(WD), "clip": repr(CLIP), "steps": str(N_STEPS)})
    return out, meta


def main():
    torch.set_num_threads(2)
    src = "trl %s, transformers %s, peft %s, torch %s, float32" % (trl.__version__, __import__("transformers").__version__,
                                                                  __import__("peft").__version__, torch.__version__)
    for (tensors, meta), path in ((head_problem(), "tests/fixtures/objective/kto_reward_ref.safetensors"),
                                  (stories_problem(), "tests/fixtures/train/stories260k_kto_reward_ref.safetensors")):
        meta["source"] = src
        full = os.path.join(ROOT, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        save_file({k: v.contiguous() for k, v in tensors.items()}, full, metadata=meta)
        print("wrote %s (%d tensors, %d bytes)" % (path, len(tensors), os.path.getsize(full)), file=sys.stderr)


if __name__ == "__main__":
    main()
