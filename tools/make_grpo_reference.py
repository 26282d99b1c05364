#!/usr/bin/env python3
"""TRL reference for takumi's GRPO objective (src/objective/grpo.c): TRL's own loss code (trl 1.16:
GRPOTrainer._compute_loss, importance_sampling_level "token") driven on per-token log-probabilities
that PyTorch computes from a small head problem, so that autograd gives dh and dW through TRL's
formulas. As tools/make_kto_reward_reference.py, the trainer is not run end to end: _compute_loss is
called with a stand-in `self` holding the hyperparameters (one process, gradient_accumulation_steps =
steps_per_generation = 1, no vLLM, no entropy mask or bonus) whose _get_per_token_logps_and_entropies
returns the real per-token log-probs [B, L] of the completions (TRL's right-padded layout).

The advantages are not produced by TRL's code (they are computed inside _generate_and_score_completions,
which needs generation and reward functions): they are reproduced here from its source lines
(sum_then_normalize: group mean, trl.trainer.utils.nanstd, `/ (std + 1e-4)`, nan_to_num) for the
three scale_rewards settings, on rewards with a NaN (an unscorable completion), and written beside the
rewards for tests/test_grpo.c to compare with tk_grpo_advantages.

The problem: h [T x C] (packed rows: prompt rows with seq -1, then each completion's rows), h_ref,
w [V x C], targets, sequence ids, 2 groups of 3 completions; old log-probs = the policy's + 0.25 randn
(so that tokens are clipped on both sides). Cases: each loss type (dapo, grpo, bnpo, dr_grpo) with and
without the KL term; per case loss, dh, dw and TRL's logged metrics kl, clip_ratio/low_mean,
clip_ratio/high_mean, clip_ratio/region_mean.
Writes tests/fixtures/objective/grpo_ref.safetensors.
Usage: python3 tools/make_grpo_reference.py
"""
import json
import os
import sys
from collections import defaultdict
from types import SimpleNamespace

import torch
from safetensors.torch import save_file

import trl
from trl.trainer.grpo_trainer import GRPOTrainer
from trl.trainer.utils import nanstd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_dpo_reference import token_logps  # noqa: E402  (log softmax(logits)[target] per row)
from make_kto_reward_reference import rows_of  # noqa: E402  (per-sequence rows, right-padded, + mask)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# name, loss_type, beta, epsilon_low, epsilon_high, max_completion_length
CASES = [("dapo", "dapo", 0.0, 0.2, 0.2, 16), ("dapo_kl", "dapo", 0.04, 0.2, 0.28, 16), ("grpo", "grpo", 0.0, 0.2, 0.2, 16),
         ("grpo_kl", "grpo", 0.1, 0.15, 0.25, 16), ("bnpo_kl", "bnpo", 0.04, 0.2, 0.2, 16), ("dr_grpo_kl", "dr_grpo", 0.04, 0.2, 0.2, 9)]
METRICS = ["kl", "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean"]
GEN = 3  # num_generations


class Acc:
    device = torch.device("cpu")
    num_processes = 1

    def gather(self, x):
        return x

    def reduce(self, x, reduction="sum"):
        return x

    gather_for_metrics = gather


def trl_grpo(tok, mask, adv, old, ref, loss_type, beta, el, eh, L):
    """GRPOTrainer._compute_loss on per-token log-probs tok [B, L] (completion mask [B, L])."""
    B, Lc = tok.shape
    metrics = defaultdict(lambda: defaultdict(list))
    fake = SimpleNamespace(model=SimpleNamespace(training=True), accelerator=Acc(), aux_loss_enabled=False, top_entropy_quantile=1.0,
                           off_policy_mask_threshold=None, importance_sampling_level="token", beta=beta, loss_type=loss_type,
                           epsilon_low=el, epsilon_high=eh, use_vllm=False, current_gradient_accumulation_steps=1,
                           max_completion_length=L, _entropy_bonus_enabled=False, _metrics=metrics,
                           args=SimpleNamespace(delta=None, use_bias_correction_kl=False, steps_per_generation=1))
    fake._get_per_token_logps_and_entropies = lambda model, ids, am, keep, **kw: (tok, torch.zeros_like(tok), None)
    inputs = {"prompt_ids": torch.zeros(B, 2, dtype=torch.long), "prompt_mask": torch.ones(B, 2, dtype=torch.long),
              "completion_ids": torch.zeros(B, Lc, dtype=torch.long), "completion_mask": mask.long(), "advantages": adv,
              "old_per_token_logps": old, "num_items_in_batch": mask.sum()}
    if beta != 0.0:
        inputs["ref_per_token_logps"] = ref
    loss = GRPOTrainer._compute_loss(fake, None, inputs)
    return loss, [metrics["train"][k][-1] if metrics["train"][k] else 0.0 for k in METRICS]


def trl_advantages(rewards, scale):
    """_generate_and_score_completions' advantages (sum_then_normalize, one reward function), line for line."""
    mean = torch.nanmean(rewards.view(-1, GEN), dim=1).repeat_interleave(GEN, dim=0)
    if scale in ["group", "none"]:
        std = nanstd(rewards.view(-1, GEN), dim=1).repeat_interleave(GEN, dim=0)
    else:
        std = nanstd(rewards).expand_as(rewards)
    adv = rewards - mean
    if scale != "none":
        adv = adv / (std + 1e-4)
    return torch.nan_to_num(adv, nan=0.0)


def main():
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(23)
    C, V = 12, 40
    comp = [5, 3, 7, 4, 6, 2]                 # completion rows of the 6 sequences (2 groups of 3)
    prompt = [3, 0, 2, 4, 1, 2]               # prompt rows before each
    seq = []
    for i, (p, c) in enumerate(zip(prompt, comp)):
        seq += [-1] * p + [i] * c
    seq.append(-1)                            # a padding row
    T, S = len(seq), len(comp)
    seq = torch.tensor(seq)
    h = torch.randn(T, C, generator=g)
    h_ref = h + 0.3 * torch.randn(T, C, generator=g)
    w = 0.5 * torch.randn(V, C, generator=g)
    target = torch.randint(0, V, (T,), generator=g)
    target[seq < 0] = -1                      # prompts carry no target
    rewards = torch.tensor([1.0, 0.0, 0.5, 2.0, -1.0, 2.0], dtype=torch.float32)
    rewards_nan = torch.tensor([1.0, float("nan"), 0.25, float("nan"), float("nan"), 3.0])
    adv = trl_advantages(rewards, "group")
    tok0 = token_logps(h @ w.T, target)
    old_rows = torch.where(seq >= 0, tok0 + 0.25 * torch.randn(T, generator=g), torch.zeros(()))
    out = {"h": h, "h_ref": h_ref, "w": w, "target": target.to(torch.int32), "seq": seq.to(torch.int32), "seq_value": adv,
           "old_logp": old_rows, "rewards": rewards, "rewards_nan": rewards_nan}
    for sc in ("group", "batch", "none"):
        out["adv_" + sc] = trl_advantages(rewards, sc)
        out["adv_nan_" + sc] = trl_advantages(rewards_nan, sc)
    meta = {}
    order = list(range(S))
    for name, lt, beta, el, eh, L in CASES:
        hh = h.clone().requires_grad_(True)
        ww = w.clone().requires_grad_(True)
        tok, mask = rows_of(token_logps(hh @ ww.T, target), seq, order)
        old = rows_of(old_rows, seq, order)[0]
        ref = rows_of(token_logps(h_ref @ w.T, target), seq, order)[0]
        loss, met = trl_grpo(tok, mask, adv, old, ref, lt, beta, el, eh, L)
        loss.backward()
        out[name + "_dh"], out[name + "_dw"] = hh.grad, ww.grad
        meta[name] = json.dumps({"loss": loss.item(), "loss_type": lt, "beta": beta, "epsilon_low": el, "epsilon_high": eh,
                                 "max_completion_length": L, "metrics": met})
        print("%-11s loss %.6f metrics %s" % (name, loss.item(), ["%.4f" % x for x in met]), file=sys.stderr)
    meta["source"] = "trl %s, torch %s, float32" % (trl.__version__, torch.__version__)
    path = "tests/fixtures/objective/grpo_ref.safetensors"
    full = os.path.join(ROOT, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    save_file({k: v.contiguous() for k, v in out.items()}, full, metadata=meta)
    print("wrote %s (%d tensors, %d bytes)" % (path, len(out), os.path.getsize(full)), file=sys.stderr)


if __name__ == "__main__":
    main()
