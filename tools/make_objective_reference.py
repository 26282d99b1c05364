#!/usr/bin/env python3
"""PyTorch reference for takumi's objective building blocks (tests/test_objective.c).

Writes tests/fixtures/objective/objective_ref.safetensors: a small random LM head and
hidden states over a packed batch, and what PyTorch (float64 autograd, from the same
float32 inputs) computes from them:

  inputs   h [T x C] (policy), h_ref [T x C] (frozen reference), w [V x C] (head),
           target [T] (-1 = none), seq [T] (-1 = no sequence), seq_group [S] (pair),
           seq_value [S] (1 chosen, 0 rejected); teacher_h [T x Ct], teacher_w [V x Ct],
           distill_rows [N] (selected rows), distill_weight [T].
  logp     per-sequence sums and means of log p(target | h) for the policy and the
           reference (logp_sum, logp_mean, ref_logp_sum, ref_logp_mean).
  DPO      loss = mean over pairs of -log sigmoid(beta * ((lp_c - ref_c) - (lp_r - ref_r)))
           with lp = per-sequence sums; dpo_dh = d loss / d h, dpo_dw = d loss / d w.
  distill  for forward KL, reverse KL and cross-entropy at temperature tau between
           softmax(teacher logits / tau) and softmax(student logits / tau) at the selected
           rows: loss_sum = sum_i weight[row_i] * D_i, <kind>_dh = d loss_sum / d h,
           <kind>_dw = d loss_sum / d w.

Scalars (beta, tau, losses) go to the safetensors __metadata__ as repr() strings.
Usage: python3 tools/make_objective_reference.py
"""
import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "objective", "objective_ref.safetensors")

T, C, CT, V = 32, 16, 12, 50
BETA, TAU = 0.1, 2.0


def batch(rng):
    """Two packed rows of 16 tokens, each holding a prompt then a chosen and a rejected answer
    (DPO pairs laid out as in a packed preference batch); the last token of each answer has no
    target (next segment), a few answer tokens have target -1 too (masked)."""
    seq = np.full(T, -1, np.int32)
    target = rng.integers(0, V, T).astype(np.int32)
    group, value = [], []
    # row 0: prompt 0..3, chosen 4..9, rejected 10..15; row 1: prompt 16..18, chosen 19..25, rejected 26..31
    spans = [(4, 10, 0, 1.0), (10, 16, 0, 0.0), (19, 26, 1, 1.0), (26, 32, 1, 0.0)]
    for s, (a, b, g, v) in enumerate(spans):
        seq[a:b] = s
        target[b - 1] = -1
        group.append(g)
        value.append(v)
    target[7] = -1   # a masked token inside a sequence
    target[2] = -1   # and one in a prompt
    return target, seq, np.array(group, np.int32), np.array(value, np.float32)


def seq_logp(h, w, target, seq, S):
    logits = h @ w.T
    lsm = F.log_softmax(logits, dim=-1)
    t = torch.as_tensor(target, dtype=torch.long)
    s = torch.as_tensor(seq, dtype=torch.long)
    keep = (t >= 0) & (s >= 0)
    lp = torch.where(keep, lsm.gather(1, t.clamp(min=0)[:, None])[:, 0], torch.zeros((), dtype=h.dtype))
    sums = torch.zeros(S, dtype=h.dtype).index_add(0, s.clamp(min=0), lp)
    counts = torch.zeros(S, dtype=h.dtype).index_add(0, s.clamp(min=0), keep.to(h.dtype))
    return sums, sums / counts


def distill(h, w, th, tw, rows, weight, kind):
    r = torch.as_tensor(rows, dtype=torch.long)
    ls = F.log_softmax((h[r] @ w.T) / TAU, dim=-1)
    lt = F.log_softmax((th[r] @ tw.T) / TAU, dim=-1)
    if kind == "forward_kl":
        d = (lt.exp() * (lt - ls)).sum(-1)
    elif kind == "reverse_kl":
        d = (ls.exp() * (ls - lt)).sum(-1)
    else:
        d = -(lt.exp() * ls).sum(-1)
    return (torch.as_tensor(weight, dtype=h.dtype)[r] * d).sum()


def main():
    rng = np.random.default_rng(20261206)
    target, seq, group, value = batch(rng)
    S = len(group)
    h32 = rng.standard_normal((T, C)).astype(np.float32)
    href32 = (h32 + 0.3 * rng.standard_normal((T, C))).astype(np.float32)
    w32 = (0.5 * rng.standard_normal((V, C))).astype(np.float32)
    th32 = rng.standard_normal((T, CT)).astype(np.float32)
    tw32 = (0.5 * rng.standard_normal((V, CT))).astype(np.float32)
    rows = np.array([1, 4, 5, 6, 9, 12, 17, 20, 21, 22, 25, 30, 31], np.int32)
    dweight = rng.uniform(0.25, 1.5, T).astype(np.float32)
    dweight[6] = 0.0  # a selected row with weight 0 (contributes nothing)

    d = lambda a: torch.tensor(a, dtype=torch.float64, requires_grad=True)
    out = {}
    meta = {"beta": repr(BETA), "tau": repr(TAU)}

    h, w = d(h32), d(w32)
    with torch.no_grad():
        rs, rm = seq_logp(torch.tensor(href32, dtype=torch.float64), torch.tensor(w32, dtype=torch.float64), target, seq, S)
    ps, pm = seq_logp(h, w, target, seq, S)
    out["logp_sum"], out["logp_mean"] = ps.detach(), pm.detach()
    out["ref_logp_sum"], out["ref_logp_mean"] = rs, rm
    n_pair = int(group.max()) + 1
    losses = []
    for g in range(n_pair):
        c = [s for s in range(S) if group[s] == g and value[s] == 1.0][0]
        r = [s for s in range(S) if group[s] == g and value[s] == 0.0][0]
        margin = (ps[c] - rs[c]) - (ps[r] - rs[r])
        losses.append(-F.logsigmoid(BETA * margin))
    loss = torch.stack(losses).mean()
    loss.backward()
    meta["dpo_loss"] = repr(loss.item())
    out["dpo_dh"], out["dpo_dw"] = h.grad, w.grad

    for kind in ("forward_kl", "reverse_kl", "cross_entropy"):
        h, w = d(h32), d(w32)
        L = distill(h, w, torch.tensor(th32, dtype=torch.float64), torch.tensor(tw32, dtype=torch.float64), rows, dweight, kind)
        L.backward()
        meta[kind + "_loss_sum"] = repr(L.item())
        out[kind + "_dh"], out[kind + "_dw"] = h.grad, w.grad

    tensors = {k: v.to(torch.float32).contiguous() for k, v in out.items()}
    tensors.update({
        "h": torch.from_numpy(h32), "h_ref": torch.from_numpy(href32), "w": torch.from_numpy(w32),
        "target": torch.from_numpy(target), "seq": torch.from_numpy(seq), "seq_group": torch.from_numpy(group),
        "seq_value": torch.from_numpy(value), "teacher_h": torch.from_numpy(th32), "teacher_w": torch.from_numpy(tw32),
        "distill_rows": torch.from_numpy(rows), "distill_weight": torch.from_numpy(dweight),
    })
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(tensors, OUT, metadata=meta)
    print(f"wrote {OUT}: dpo loss {loss.item():.6f}, {len(tensors)} tensors")


if __name__ == "__main__":
    main()
