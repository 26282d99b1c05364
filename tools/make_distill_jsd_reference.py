#!/usr/bin/env python3
"""TRL reference for takumi's generalised Jensen-Shannon distillation loss (tests/test_distill_jsd.c).

Writes tests/fixtures/distill/jsd_ref.safetensors. Sizes are stories260K's (../shared/models/stories260K:
dim 64, vocabulary 512): the student head is stories260K's output matrix, the teacher head a scaled, perturbed
copy of it (so the two distributions differ but overlap); hidden states are random (fixed seed), two
sequences of 16 positions with labels -100 at prompt and padding positions. For each (beta, temperature) case,
TRL 1.16's GKDTrainer.generalized_jsd_loss (float64, labels given, reduction batchmean: the token mean over
the trained positions) gives the loss, and autograd its gradient w.r.t. the student's hidden states and head:

  inputs   h [T x C], w [V x C] (student), th [T x C], tw [V x C] (teacher), labels [T] (int32, -100 = untrained)
  per case k: jsd<k>_dh [T x C], jsd<k>_dw [V x C]; metadata jsd<k>_beta, jsd<k>_tau, jsd<k>_loss; n_cases

Usage: python3 tools/make_distill_jsd_reference.py
"""
import os
import warnings

import numpy as np
import torch
from safetensors.torch import load_file, save_file

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
warnings.filterwarnings("ignore")
from trl.experimental.gkd import GKDTrainer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TAKUMI_SHARED", os.path.join(ROOT, "..", "shared"))
OUT = os.path.join(ROOT, "tests", "fixtures", "distill", "jsd_ref.safetensors")
CASES = [(0.5, 1.0), (0.1, 1.0), (0.9, 2.0), (0.5, 0.7), (0.0, 1.0), (1.0, 2.0)]


def main():
    wts = load_file(os.path.join(SHARED, "models", "stories260K", "hf", "model.safetensors"))
    w = (wts["lm_head.weight"] if "lm_head.weight" in wts else wts["model.embed_tokens.weight"]).float()
    V, C = w.shape
    T = 32
    rng = np.random.default_rng(20261207)
    h = torch.from_numpy(rng.standard_normal((T, C)).astype(np.float32))
    th = torch.from_numpy((h.numpy() + 0.5 * rng.standard_normal((T, C))).astype(np.float32))
    tw = (1.5 * w + 0.05 * torch.from_numpy(rng.standard_normal((V, C)).astype(np.float32))).float()
    labels = torch.from_numpy(rng.integers(0, V, T).astype(np.int32))
    for t in list(range(0, 5)) + [15] + list(range(16, 19)) + [28, 29, 30, 31]:
        labels[t] = -100   # prompts, a sequence end, padding
    out = {"h": h, "w": w.contiguous(), "th": th, "tw": tw.contiguous(), "labels": labels}
    meta = {"n_cases": repr(len(CASES))}
    for k, (beta, tau) in enumerate(CASES):
        hd = h.double().clone().requires_grad_(True)
        wd = w.double().clone().requires_grad_(True)
        s = (hd @ wd.T).view(1, T, V)
        t = (th.double() @ tw.double().T).view(1, T, V)
        loss = GKDTrainer.generalized_jsd_loss(s, t, labels=labels.long().view(1, T), beta=beta, temperature=tau)
        loss.backward()
        out[f"jsd{k}_dh"] = hd.grad.float()
        out[f"jsd{k}_dw"] = wd.grad.float()
        meta[f"jsd{k}_beta"] = repr(beta)
        meta[f"jsd{k}_tau"] = repr(tau)
        meta[f"jsd{k}_loss"] = repr(loss.item())
        print(f"case {k}: beta {beta} tau {tau}: loss {loss.item():.9f}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(out, OUT, metadata=meta)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
