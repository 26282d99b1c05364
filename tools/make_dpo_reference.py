#!/usr/bin/env python3
"""TRL reference for takumi's preference objectives (src/objective/dpo.c): TRL's own loss code
(trl 1.16: DPOTrainer._compute_loss, ORPOTrainer.odds_ratio_loss + its chosen NLL,
CPOTrainer.cpo_loss with loss_type "simpo") driven on log-probabilities that PyTorch computes,
so that autograd gives the gradients through TRL's formulas. TRL's trainers are not run
end to end (their data pipeline needs a tokenizer and datasets); their loss code is called
with a stand-in `self` that holds the hyperparameters, and for DPO a stand-in model whose
`log_probs` are the real per-token log-probabilities (the layout of TRL's fused LM head:
[2B, T-1], zero outside the completion, chosen rows first).

Two fixtures:
  tests/fixtures/objective/dpo_ref.safetensors   a small head problem: h [T x C], h_ref,
      w [V x C], targets, sequence ids (packed, with prompt rows), pairs; for each case
      (dpo_sigmoid, dpo_ipo, dpo_hinge, dpo_robust, orpo, simpo): loss, dh, dw and metrics.
  tests/fixtures/train/stories260k_dpo_ref.safetensors   ../shared/models/stories260K/hf
      with a PEFT LoRA (r 4, alpha 8, all seven targets, dropout 0; A: PEFT's init, B:
      0.05 randn), four sequences (two pairs, right-padded as TRL's collator does, chosen
      rows first); the reference is the same model with the adapter disabled. For each case:
      loss and every LoRA gradient; for dpo_sigmoid, orpo and simpo a 10-step AdamW loss
      curve with test_train_ref's settings (lr 1e-3, wd 0.1 on matrices, clip 1.0).
Usage: HF_HUB_OFFLINE=1 python3 tools/make_dpo_reference.py
"""
import json
import os
import sys
from types import SimpleNamespace
from collections import defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import trl
from trl.trainer.dpo_trainer import DPOTrainer
from trl.experimental.orpo.orpo_trainer import ORPOTrainer
from trl.experimental.cpo.cpo_trainer import CPOTrainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TAKUMI_SHARED", os.path.join(ROOT, "..", "shared"))
CASES = [("dpo_sigmoid", "dpo", "sigmoid", 0.1, 0.0), ("dpo_ipo", "dpo", "ipo", 0.1, 0.0), ("dpo_hinge", "dpo", "hinge", 0.1, 0.0),
         ("dpo_robust", "dpo", "robust", 0.1, 0.2), ("orpo", "orpo", None, 0.1, 0.0), ("simpo", "simpo", None, 2.0, 0.1)]
SIMPO_GAMMA = 0.5
METRICS = ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"]


class Acc:
    device = torch.device("cpu")

    def gather(self, x):
        return x

    gather_for_metrics = gather


def trl_dpo(tok_logp, mask, ref_c, ref_r, loss_type, beta, ls):
    """DPOTrainer._compute_loss on per-token log-probs tok_logp [2G, L] (chosen rows first) with
    completion mask [2G, L] (1 where a token counts) and precomputed reference sums."""
    G2, L = tok_logp.shape
    out = SimpleNamespace(log_probs=tok_logp * mask, entropy=torch.zeros(G2, L), mean_logits=torch.zeros(G2, L),
                          is_top1=torch.zeros(G2, L, dtype=torch.bool))
    fake = SimpleNamespace(model=SimpleNamespace(training=True), accelerator=Acc(), aux_loss_enabled=False, ld_alpha=None,
                           precompute_ref_logps=True, f_divergence_type="reverse_kl", loss_types=[loss_type], loss_weights=[1.0],
                           beta=beta, label_smoothing=ls, use_weighting=False, _metrics=defaultdict(lambda: defaultdict(list)),
                           _total_train_tokens=0, _tp_size=1)
    cm = torch.cat([torch.zeros(G2, 1), mask], dim=1)  # TRL's completion_mask is over input_ids: one column more
    inputs = {"input_ids": torch.zeros(G2, L + 1, dtype=torch.long), "attention_mask": torch.ones(G2, L + 1, dtype=torch.long),
              "completion_mask": cm.long(), "ref_chosen_logps": ref_c, "ref_rejected_logps": ref_r}
    loss = DPOTrainer._compute_loss(fake, lambda **kw: out, inputs, False)
    m = fake._metrics["train"]
    return loss, [m[k][0] for k in METRICS]


def trl_orpo(lp_mean_c, lp_mean_r, nll, beta):
    fake = SimpleNamespace(beta=beta, accelerator=Acc())
    losses, cr, rr, ratio, _ = ORPOTrainer.odds_ratio_loss(fake, lp_mean_c, lp_mean_r)
    loss = nll - losses.mean()
    met = [cr.mean().item(), rr.mean().item(), (cr > rr).float().mean().item(), (cr - rr).mean().item(),
           lp_mean_c.mean().item(), lp_mean_r.mean().item(), nll.item(), ratio.item()]
    return loss, met


def trl_simpo(lp_mean_c, lp_mean_r, beta, ls):
    fake = SimpleNamespace(alpha=0.0, loss_type="simpo", simpo_gamma=SIMPO_GAMMA, beta=beta, label_smoothing=ls, accelerator=Acc())
    losses, cr, rr = CPOTrainer.cpo_loss(fake, lp_mean_c, lp_mean_r)
    met = [cr.mean().item(), rr.mean().item(), (cr > rr).float().mean().item(), (cr - rr).mean().item(),
           lp_mean_c.mean().item(), lp_mean_r.mean().item()]
    return losses.mean(), met


def case_loss(kind, loss_type, beta, ls, tok, mask, ref_tok, nll):
    """tok, ref_tok: per-token log-probs [2G, L] (chosen rows first); mask [2G, L]; nll: the chosen NLL (ORPO)."""
    G = tok.shape[0] // 2
    sums = (tok * mask).sum(1)
    means = sums / mask.sum(1)
    if kind == "dpo":
        ref = (ref_tok * mask).sum(1).detach()
        return trl_dpo(tok, mask, ref[:G], ref[G:], loss_type, beta, ls)
    if kind == "orpo":
        return trl_orpo(means[:G], means[G:], nll, beta)
    return trl_simpo(means[:G], means[G:], beta, ls)


def token_logps(logits, target):
    """log softmax(logits)[target] per row, 0 where target < 0."""
    lp = torch.log_softmax(logits.double(), -1).to(logits.dtype)
    return torch.where(target >= 0, lp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1), torch.zeros(()))


def head_problem():
    """Packed rows: 3 pairs (6 sequences) of different lengths with prompt rows between them."""
    g = torch.Generator().manual_seed(7)
    C, V = 12, 40
    layout = [(3, 4), (2, 6), (4, 3), (3, 7), (2, 2), (3, 5)]  # (prompt rows, completion rows) per sequence: c0 r0 c1 r1 c2 r2
    seq, weight = [], []
    for i, (p, c) in enumerate(layout):
        chosen = i % 2 == 0
        seq += [-1] * p + [i] * c
        weight += [1.0 if chosen and k > 0 else 0.0 for k in range(p)] + [1.0 if chosen else 0.0] * c  # NLL rows (ORPO)
    T = len(seq)
    h = torch.randn(T, C, generator=g)
    h_ref = h + 0.3 * torch.randn(T, C, generator=g)
    w = 0.5 * torch.randn(V, C, generator=g)
    target = torch.randint(0, V, (T,), generator=g)
    seq = torch.tensor(seq)
    weight = torch.tensor(weight)
    S = len(layout)
    group = torch.tensor([i // 2 for i in range(S)], dtype=torch.int32)
    value = torch.tensor([1.0 if i % 2 == 0 else 0.0 for i in range(S)])
    out = {"h": h, "h_ref": h_ref, "w": w, "target": target.to(torch.int32), "seq": seq.to(torch.int32), "weight": weight,
           "seq_group": group, "seq_value": value}
    meta = {}
    Lmax = max(c for _, c in layout)
    order = [0, 2, 4, 1, 3, 5]  # chosen rows first, as TRL's batches

    def arrange(tok_rows):
        rows, masks = [], []
        for s in order:
            v = tok_rows[seq == s]
            rows.append(F.pad(v, (0, Lmax - v.numel())))
            masks.append(F.pad(torch.ones(v.numel()), (0, Lmax - v.numel())))
        return torch.stack(rows), torch.stack(masks)

    for name, kind, lt, beta, ls in CASES:
        hh = h.clone().requires_grad_(True)
        ww = w.clone().requires_grad_(True)
        tok_all = token_logps(hh @ ww.T, target)
        tok, mask = arrange(tok_all)
        ref_tok, _ = arrange(token_logps(h_ref @ w.T, target))
        nll = -(tok_all * weight).sum() / weight.sum()
        loss, met = case_loss(kind, lt, beta, ls, tok, mask, ref_tok, nll)
        loss.backward()
        out[name + "_dh"], out[name + "_dw"] = hh.grad, ww.grad
        meta[name] = json.dumps({"loss": loss.item(), "beta": beta, "label_smoothing": ls, "metrics": met})
        print("%-12s loss %.6f metrics %s" % (name, loss.item(), ["%.4f" % x for x in met]), file=sys.stderr)
    meta["simpo_gamma"] = repr(SIMPO_GAMMA)
    return out, meta


TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
N_STEPS, LR, WD, CLIP = 10, 1e-3, 0.1, 1.0


def stories_problem():
    from transformers import AutoModelForCausalLM
    from peft import LoraConfig, get_peft_model
    folder = os.path.join(SHARED, "models", "stories260K", "hf")
    greedy = json.loads(open(os.path.join(folder, "greedy_64_from_bos.txt")).readline())
    # two pairs: the prompt is the story's start; chosen = its greedy continuation, rejected = other story tokens
    p0, p1 = [1] + greedy[:5], [1] + greedy[20:24]
    seqs = [p0 + greedy[5:14], p1 + greedy[24:30], p0 + greedy[40:46], p1 + greedy[50:61]]  # c0 c1 r0 r1
    plen = [len(p0), len(p1), len(p0), len(p1)]
    T = max(len(s) for s in seqs)
    ids = torch.zeros(4, T, dtype=torch.long)
    cmask = torch.zeros(4, T)  # TRL's completion_mask
    amask = torch.zeros(4, T)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        cmask[i, plen[i]:len(s)] = 1
        amask[i, :len(s)] = 1
    target = torch.full((4, T), -1, dtype=torch.long)
    target[:, :-1] = torch.where(amask[:, 1:] > 0, ids[:, 1:], torch.full_like(ids[:, 1:], -1))
    shift = cmask[:, 1:]
    seq = torch.full((4, T), -1, dtype=torch.int32)
    seq[:, :-1] = torch.where(shift > 0, torch.arange(4, dtype=torch.int32).unsqueeze(1).expand(4, T - 1), seq[:, :-1])
    # ORPO's NLL rows: every next-token target of the chosen rows (prompt and completion), as TRL's ORPOTrainer
    nllw = torch.zeros(4, T)
    nllw[:2] = (target[:2] >= 0).float()
    torch.manual_seed(1234)
    gen = torch.Generator().manual_seed(99)
    base = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="eager")
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, bias="none"))
    named = [(n.replace(".default", ""), p) for n, p in model.named_parameters() if p.requires_grad]
    init = {}
    with torch.no_grad():
        for n, p in named:
            if "lora_B" in n:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            init[n] = p.detach().clone()
    out = {"ids": ids.to(torch.int32), "seg": torch.where(amask > 0, 0, -1).to(torch.int32), "target": target.to(torch.int32),
           "seq": seq, "weight": nllw, "seq_group": torch.tensor([0, 1, 0, 1], dtype=torch.int32),
           "seq_value": torch.tensor([1.0, 1.0, 0.0, 0.0])}
    out.update({"init." + n: v for n, v in init.items()})
    with torch.no_grad(), model.disable_adapter():
        ref_tok = token_logps(model(input_ids=ids, attention_mask=amask.long()).logits[:, :-1], target[:, :-1])

    def loss_of(kind, lt, beta, ls):
        logits = model(input_ids=ids, attention_mask=amask.long()).logits[:, :-1]
        tok = token_logps(logits, target[:, :-1])
        w = nllw[:, :-1]
        nll = F.cross_entropy(logits[:2].reshape(-1, logits.shape[-1]), torch.where(w[:2] > 0, target[:2, :-1], -100).reshape(-1))
        return case_loss(kind, lt, beta, ls, tok, shift, ref_tok, nll)

    meta = {}
    for name, kind, lt, beta, ls in CASES:
        with torch.no_grad():
            for n, p in named:
                p.copy_(init[n])
        model.zero_grad()
        loss, met = loss_of(kind, lt, beta, ls)
        loss.backward()
        for n, p in named:
            out["grad.%s.%s" % (name, n)] = p.grad.detach().clone()
        entry = {"loss": loss.item(), "beta": beta, "label_smoothing": ls, "metrics": met}
        if name in ("dpo_sigmoid", "orpo", "simpo"):
            model.zero_grad()
            decay = [p for n, p in named if p.ndim >= 2]
            opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}], lr=LR, betas=(0.9, 0.999), eps=1e-8)
            curve = []
            for _ in range(N_STEPS):
                opt.zero_grad()
                loss, _ = loss_of(kind, lt, beta, ls)
                curve.append(loss.item())
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for _, p in named], CLIP)
                opt.step()
            with torch.no_grad():
                curve.append(loss_of(kind, lt, beta, ls)[0].item())
            entry["curve"] = curve
        meta[name] = json.dumps(entry)
        print("stories %-12s loss %.6f %s" % (name, entry["loss"], ("curve %.5f -> %.5f" % (curve[0], curve[-1])) if "curve" in entry else ""),
              file=sys.stderr)
    meta.update({"simpo_gamma": repr(SIMPO_GAMMA), "lr": repr(LR), "weight_decay": repr(WD), "clip": repr(CLIP), "steps": str(N_STEPS)})
    return out, meta


def main():
    torch.set_num_threads(2)
    src = "trl %s, transformers %s, peft %s, torch %s, float32" % (trl.__version__, __import__("transformers").__version__,
                                                                  __import__("peft").__version__, torch.__version__)
    for (tensors, meta), path in ((head_problem(), "tests/fixtures/objective/dpo_ref.safetensors"),
                                  (stories_problem(), "tests/fixtures/train/stories260k_dpo_ref.safetensors")):
        meta["source"] = src
        full = os.path.join(ROOT, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        save_file({k: v.contiguous() for k, v in tensors.items()}, full, metadata=meta)
        print("wrote %s (%d tensors, %d bytes)" % (path, len(tensors), os.path.getsize(full)), file=sys.stderr)


if __name__ == "__main__":
    main()
