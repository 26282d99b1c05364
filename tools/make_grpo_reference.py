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

Second fixture, tests/fixtures/train/stories260k_grpo_ref.safetensors: ../shared/models/stories260K/hf
with a PEFT LoRA (r 4, alpha 8, all seven targets, dropout 0; A: PEFT's init, B: 0.05 randn, as
tools/make_dpo_reference.py), two prompts with three completions each (one per row, right-padded),
fixed rewards -> TRL's group advantages, old log-probs = the initial policy's + 0.2 randn on the
completion tokens, the reference = the base with the adapter off. For dapo (beta 0.04), grpo (beta 0.1)
and dr_grpo (beta 0.04): the loss, TRL's metrics, every LoRA gradient and a 10-step AdamW curve
with the completions, advantages, old and reference log-probs held fixed (TRL's num_iterations
passes over one generation batch; test_train_ref's optimizer settings).
Usage: HF_HUB_OFFLINE=1 python3 tools/make_grpo_reference.py
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
from trl.trainer.grpo_trainer import GRPOTrainer
from trl.trainer.utils import nanstd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_dpo_reference import token_logps, LR, WD, CLIP, N_STEPS, SHARED  # noqa: E402  (the DPO reference's helpers and settings)
from make_kto_reward_reference import rows_of, lora_model, train_case  # noqa: E402  (rows per sequence; the LoRA model and its 10-step curve)

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


def head_problem():
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
    return out, meta


STORIES_CASES = [("dapo", 0.04), ("grpo", 0.1), ("dr_grpo", 0.04)]  # loss type, beta
STORIES_L = 16  # dr_grpo's max_completion_length


def stories_problem():
    from transformers import AutoModelForCausalLM
    folder = os.path.join(SHARED, "models", "stories260K", "hf")
    greedy = json.loads(open(os.path.join(folder, "greedy_64_from_bos.txt")).readline())
    # two prompts (a story's start), three completions each (stretches of story tokens of different lengths)
    p0, p1 = [1] + greedy[:5], [1] + greedy[20:24]
    comps = [greedy[5:14], greedy[40:46], greedy[30:41], greedy[24:30], greedy[50:61], greedy[8:12]]
    prompts = [p0, p0, p0, p1, p1, p1]
    seqs = [p + c for p, c in zip(prompts, comps)]
    B, T = len(seqs), max(len(s) for s in seqs)
    ids = torch.zeros(B, T, dtype=torch.long)
    cmask, amask = torch.zeros(B, T), torch.zeros(B, T)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        cmask[i, len(prompts[i]):len(s)] = 1
        amask[i, :len(s)] = 1
    target = torch.full((B, T), -1, dtype=torch.long)
    target[:, :-1] = torch.where(amask[:, 1:] > 0, ids[:, 1:], torch.full_like(ids[:, 1:], -1))
    shift = cmask[:, 1:]  # completion mask over the next-token positions
    target[:, :-1] = torch.where(shift > 0, target[:, :-1], torch.full_like(target[:, :-1], -1))  # prompts carry no target
    seq = torch.full((B, T), -1, dtype=torch.int32)
    seq[:, :-1] = torch.where(shift > 0, torch.arange(B, dtype=torch.int32).unsqueeze(1).expand(B, T - 1), seq[:, :-1])
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.5, 1.0, 0.0])
    adv = trl_advantages(rewards, "group")
    base = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="eager")
    model, named, init = lora_model(base, None)
    gen = torch.Generator().manual_seed(7)
    tok_of = lambda: token_logps(model(input_ids=ids, attention_mask=amask.long()).logits[:, :-1], target[:, :-1])
    with torch.no_grad():
        old = torch.where(shift > 0, tok_of() + 0.2 * torch.randn(B, T - 1, generator=gen), torch.zeros(()))
        with model.disable_adapter():
            ref = tok_of()
    old_rows = torch.zeros(B, T)
    old_rows[:, :-1] = old
    out = {"ids": ids.to(torch.int32), "seg": torch.where(amask > 0, 0, -1).to(torch.int32), "target": target.to(torch.int32),
           "seq": seq, "seq_value": adv, "old_logp": old_rows, "rewards": rewards}
    out.update({"init." + n: v for n, v in init.items()})
    meta = {}
    for lt, beta in STORIES_CASES:
        entry = train_case(lt, named, init, lambda: trl_grpo(tok_of(), shift, adv, old, ref, lt, beta, 0.2, 0.2, STORIES_L), out)
        entry.update({"loss_type": lt, "beta": beta, "epsilon_low": 0.2, "epsilon_high": 0.2, "max_completion_length": STORIES_L})
        meta[lt] = json.dumps(entry)
    meta.update({"lr": repr(LR), "weight_decay": repr(WD), "clip": repr(CLIP), "steps": str(N_STEPS)})
    return out, meta


def main():
    torch.set_num_threads(2)
    src = "trl %s, transformers %s, peft %s, torch %s, float32" % (trl.__version__, __import__("transformers").__version__,
                                                                  __import__("peft").__version__, torch.__version__)
    for (tensors, meta), path in ((head_problem(), "tests/fixtures/objective/grpo_ref.safetensors"),
                                  (stories_problem(), "tests/fixtures/train/stories260k_grpo_ref.safetensors")):
        meta["source"] = src
        full = os.path.join(ROOT, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        save_file({k: v.contiguous() for k, v in tensors.items()}, full, metadata=meta)
        print("wrote %s (%d tensors, %d bytes)" % (path, len(tensors), os.path.getsize(full)), file=sys.stderr)


if __name__ == "__main__":
    main()
