#!/usr/bin/env python3
"""TRL reference for takumi's objectives beyond SFT on the real default model (tests/test_objectives_smollm2.c).

SmolLM2-135M-Instruct (models/SmolLM2-135M-Instruct.Q4_1.gguf, dequantized to float32 by transformers' GGUF
loader, eager attention) with a PEFT LoRA on q_proj and v_proj (r 4, alpha 8, dropout 0) initialised from
names by make_train_reference.hash_init (A: bound 1/sqrt(in), B: 0.02, so the policy already differs from
the reference; the reward model's score head: bound 1/sqrt(dim)), which the C test computes too. The
reference model is the same base with the adapter disabled. Real chat-template token sequences (the
model's tokenizer) about the example bicycle shop. The loss code is TRL 1.16's own, driven as the
stories260K references do (tools/make_dpo_reference.py, make_kto_reward_reference.py, make_grpo_reference.py):
  pref.*     two pairs (c0 c1 r0 r1, right-padded)        cases dpo_sigmoid, dpo_ipo, dpo_hinge, dpo_robust, orpo, simpo
  kto.*      four labelled examples + their KL sequences    case kto
  rm.*       the pairs through AutoModelForSequenceClassification (num_labels 1) + LoRA (SEQ_CLS)   case reward
  grpo.*     two prompts x three completions, fixed rewards, old log-probs = current + noise   case dapo (beta 0.04)
  distill.*  the two chosen answers; teacher = the base (adapter off); GKDTrainer.generalized_jsd_loss
             (beta 0.5, temperature 1) over the answers' tokens   case jsd
For each case: the loss, the gradients of layer 29's LoRA tensors (and the score head), the norm of every
LoRA gradient (metadata "gnorm": name -> norm), and for the cases in CURVES a STEPS-step AdamW loss curve
(make_train_reference's settings: lr 1e-3, weight decay 0.1 on matrices, clip 1.0, constant schedule).
Writes tests/fixtures/train/smollm2_objectives_ref.safetensors.
Usage: HF_HUB_OFFLINE=1 python3 tools/make_smollm2_objectives_reference.py
"""
import json
import math
import os
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
warnings.filterwarnings("ignore")
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_train_reference import ROOT, OUT, LR, WD, CLIP, hash_init  # noqa: E402
from make_dpo_reference import case_loss, token_logps  # noqa: E402
from make_kto_reward_reference import trl_kto, trl_reward, pad_rows  # noqa: E402
from make_grpo_reference import trl_grpo, trl_advantages, GEN  # noqa: E402
from trl.experimental.gkd import GKDTrainer  # noqa: E402

MODEL = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
STEPS = 10
CURVES = ("dpo_sigmoid", "dpo_ipo", "dpo_hinge", "dpo_robust", "orpo", "simpo", "kto", "reward", "dapo", "jsd")
KEEP_LAYER = "layers.29."
PREF_CASES = [("dpo_sigmoid", "dpo", "sigmoid", 0.1, 0.0), ("dpo_ipo", "dpo", "ipo", 0.1, 0.0), ("dpo_hinge", "dpo", "hinge", 0.1, 0.0),
              ("dpo_robust", "dpo", "robust", 0.1, 0.2), ("orpo", "orpo", None, 0.1, 0.0),
              ("simpo", "simpo", None, 2.0, 0.1)]
KTO = ("kto", 0.1, 1.0, 1.0)
GRPO = ("dapo", 0.04, 0.2, 0.28, 32)   # loss type, beta, epsilon low / high, max_completion_length
JSD = ("jsd", 0.5, 1.0, 64.0)          # beta, temperature, LoRA alpha: the student 8x further from the teacher than at
                                       # alpha 8, so D and its gradient are not differences of nearly equal float32 logits

USER = "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n"
PROMPTS = [USER % "When is the shop open on Saturdays?", USER % "Do you repair electric bikes?"]
GOOD = ["On Saturdays we are open from 10am to 4pm.<|im_end|>", "Yes, our workshop repairs electric bikes of every brand.<|im_end|>"]
BAD = ["We never open.<|im_end|>", "No.<|im_end|>"]
OTHER = ["Saturday hours are 10 to 4.<|im_end|>", "Sometimes, ask us.<|im_end|>"]


def init_value(n, p):
    if "lora_A" in n:
        return hash_init(n, tuple(p.shape), 1.0 / math.sqrt(p.shape[1]))
    if "lora_B" in n:
        return hash_init(n, tuple(p.shape), 0.02)
    return hash_init(n, tuple(p.shape), 1.0 / math.sqrt(p.shape[-1]))   # the score head


def lora(base, task, dt):
    from peft import LoraConfig, get_peft_model
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], bias="none",
                                            task_type=task))
    named = [(n.replace(".modules_to_save.default", "").replace(".default", ""), p) for n, p in model.named_parameters() if p.requires_grad]
    with torch.no_grad():
        for n, p in named:
            p.copy_(init_value(n, p))
    assert all(p.dtype == dt for _, p in named), "adapter parameters not in %s" % dt
    return model, named


def run_case(name, named, loss_of, out, meta, extra, curves):
    """Loss, layer-29 gradients, every gradient's norm, and (CURVES) the loss curve from the initial values."""
    init = {n: p.detach().clone() for n, p in named}
    for _, p in named:
        p.grad = None
    loss, met = loss_of()
    loss.backward()
    gnorm = {}
    for n, p in named:
        gnorm[n] = p.grad.double().norm().item()
        if KEEP_LAYER in n or "score" in n:
            out["grad.%s.%s" % (name, n)] = p.grad.detach().float().clone()
    entry = {"loss": loss.item(), "metrics": met, "gnorm": gnorm}
    entry.update(extra)
    if curves and name in CURVES:
        for _, p in named:
            p.grad = None
        opt = torch.optim.AdamW([{"params": [p for _, p in named if p.ndim >= 2], "weight_decay": WD},
                                 {"params": [p for _, p in named if p.ndim < 2], "weight_decay": 0.0}], lr=LR, betas=(0.9, 0.999), eps=1e-8)
        curve = []
        for _ in range(STEPS):
            opt.zero_grad()
            loss, _ = loss_of()
            curve.append(loss.item())
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in named], CLIP)
            opt.step()
        with torch.no_grad():
            curve.append(loss_of()[0].item())
        entry["curve"] = curve
    with torch.no_grad():
        for n, p in named:
            p.copy_(init[n])
    meta[name] = json.dumps(entry)
    print("smollm2 %-12s loss %.6f%s" % (name, entry["loss"], (" curve %.5f -> %.5f" % (entry["curve"][0], entry["curve"][-1]))
                                          if "curve" in entry else ""), file=sys.stderr)


def put_rows(out, pre, ids, am, target, seq, **more):
    out.update({pre + ".ids": ids.to(torch.int32), pre + ".seg": torch.where(am > 0, 0, -1).to(torch.int32),
                pre + ".target": target.to(torch.int32), pre + ".seq": seq.to(torch.int32)})
    out.update({pre + "." + k: v for k, v in more.items()})


def reference(DT, curves):
    """Every case with the model and adapter in dtype DT (and the curves when asked): (tensors, metadata)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
    d, f = os.path.split(MODEL)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    enc = lambda s: tok(s, add_special_tokens=False)["input_ids"]
    P, G, Bd, O = [enc(s) for s in PROMPTS], [enc(s) for s in GOOD], [enc(s) for s in BAD], [enc(s) for s in OTHER]
    out, meta = {}, {}
    base = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=DT, attn_implementation="eager")
    model, named = lora(base, "CAUSAL_LM", DT)

    def logps_of(ids, am, target):
        return token_logps(model(input_ids=ids, attention_mask=am.long()).logits[:, :-1], target[:, :-1])

    # ---- DPO family: c0 c1 r0 r1
    seqs = [P[0] + G[0], P[1] + G[1], P[0] + Bd[0], P[1] + Bd[1]]
    ids, am, cm, target, seq = pad_rows(seqs, [len(P[0]), len(P[1])] * 2)
    nllw = torch.zeros(ids.shape)
    nllw[:2] = (target[:2] >= 0).float()
    put_rows(out, "pref", ids, am, target, seq, weight=nllw, seq_group=torch.tensor([0, 1, 0, 1], dtype=torch.int32),
             seq_value=torch.tensor([1.0, 1.0, 0.0, 0.0]))
    shift = cm[:, 1:]
    with torch.no_grad(), model.disable_adapter():
        ref_tok = logps_of(ids, am, target)
    for name, kind, lt, beta, ls in PREF_CASES:
        def loss_of(kind=kind, lt=lt, beta=beta, ls=ls):
            logits = model(input_ids=ids, attention_mask=am.long()).logits[:, :-1]
            tk = token_logps(logits, target[:, :-1])
            w = nllw[:, :-1]
            nll = F.cross_entropy(logits[:2].reshape(-1, logits.shape[-1]), torch.where(w[:2] > 0, target[:2, :-1], -100).reshape(-1))
            return case_loss(kind, lt, beta, ls, tk, shift, ref_tok, nll)
        run_case(name, named, loss_of, out, meta, {"beta": beta, "label_smoothing": ls}, curves)
    # ---- KTO: four labelled examples, then their KL sequences (prompt i + completion i-1, cyclic)
    name, beta, wdes, wund = KTO
    ex = [(P[0], G[0], True), (P[1], Bd[1], False), (P[1], G[1], True), (P[0], Bd[0], False)]
    kl = [(ex[i][0], ex[(i - 1) % 4][1]) for i in range(4)]
    ids, am, cm, target, seq = pad_rows([p + c for p, c, _ in ex] + [p + c for p, c in kl], [len(p) for p, _, _ in ex] + [len(p) for p, _ in kl])
    labels = torch.tensor([lab for _, _, lab in ex])
    put_rows(out, "kto", ids, am, target, seq, seq_value=torch.tensor([1.0 if lab else 0.0 for lab in labels] + [-1.0] * 4))
    shift = cm[:, 1:]
    with torch.no_grad(), model.disable_adapter():
        ref = (logps_of(ids, am, target) * shift).sum(1)

    def kto_loss():
        tk = logps_of(ids, am, target)
        return trl_kto(tk[:4], shift[:4], lambda: logps_of(ids, am, target)[4:], shift[4:], labels, ref[:4], ref[4:], beta, wdes, wund)
    run_case(name, named, kto_loss, out, meta, {"beta": beta, "desirable_weight": wdes, "undesirable_weight": wund}, curves)
    # ---- GRPO (dapo with the KL term): two prompts x GEN completions, one per row
    name, beta, el, eh, L = GRPO
    assert GEN == 3
    prompts = [P[0]] * 3 + [P[1]] * 3
    comps = [G[0], Bd[0], O[0], G[1], Bd[1], O[1]]
    ids, am, cm, target, seq = pad_rows([p + c for p, c in zip(prompts, comps)], [len(p) for p in prompts])
    shift = cm[:, 1:]
    target[:, :-1] = torch.where(shift > 0, target[:, :-1], torch.full_like(target[:, :-1], -1))   # prompts carry no target
    rewards = torch.tensor([1.0, 0.0, 0.5, 1.0, 0.0, 0.2])
    adv = trl_advantages(rewards, "group")
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        old = torch.where(shift > 0, logps_of(ids, am, target) + 0.2 * torch.randn(shift.shape, generator=gen), torch.zeros(()))
        old = old.float().to(DT)   # as the fixture stores it
        with model.disable_adapter():
            ref_tok = logps_of(ids, am, target)
    old_rows = torch.zeros(ids.shape)
    old_rows[:, :-1] = old
    put_rows(out, "grpo", ids, am, target, seq, seq_value=adv, old_logp=old_rows, rewards=rewards)
    run_case(name, named, lambda: trl_grpo(logps_of(ids, am, target), shift, adv, old, ref_tok, name, beta, el, eh, L), out, meta,
             {"loss_type": name, "beta": beta, "epsilon_low": el, "epsilon_high": eh, "max_completion_length": L}, curves)
    # ---- distillation: generalised JSD against the base (adapter off) over the chosen answers' tokens
    name, jbeta, tau, jalpha = JSD
    lora_layers = [m for m in model.modules() if isinstance(getattr(m, "scaling", None), dict) and "default" in m.scaling]
    for m in lora_layers:
        m.scaling["default"] = jalpha / 4
    ids, am, cm, target, seq = pad_rows([P[0] + G[0], P[1] + G[1]], [len(P[0]), len(P[1])])
    shift = cm[:, 1:]
    target[:, :-1] = torch.where(shift > 0, target[:, :-1], torch.full_like(target[:, :-1], -1))
    labels = torch.where(target[:, :-1] >= 0, target[:, :-1], torch.full_like(target[:, :-1], -100))
    put_rows(out, "distill", ids, am, target, seq)
    with torch.no_grad(), model.disable_adapter():
        t_logits = model(input_ids=ids, attention_mask=am.long()).logits[:, :-1]

    def jsd_loss():
        s_logits = model(input_ids=ids, attention_mask=am.long()).logits[:, :-1]
        return GKDTrainer.generalized_jsd_loss(s_logits, t_logits, labels=labels, beta=jbeta, temperature=tau), []
    run_case(name, named, jsd_loss, out, meta, {"beta": jbeta, "temperature": tau, "lora_alpha": jalpha}, curves)
    for m in lora_layers:
        m.scaling["default"] = 8 / 4
    # ---- reward model: the pairs through a sequence-classification head, pooled at each sequence's last token
    seqs = [P[0] + G[0], P[1] + G[1], P[0] + Bd[0], P[1] + Bd[1]]
    ids, am, _, _, _ = pad_rows(seqs, [1] * 4)
    rseq = torch.full(ids.shape, -1, dtype=torch.int32)
    for i, s in enumerate(seqs):
        rseq[i, len(s) - 1] = i
    assert all(0 not in s for s in seqs)
    out.update({"rm.ids": ids.to(torch.int32), "rm.seg": torch.where(am > 0, 0, -1).to(torch.int32), "rm.seq": rseq,
                "rm.seq_group": torch.tensor([0, 1, 0, 1], dtype=torch.int32), "rm.seq_value": torch.tensor([1.0, 1.0, 0.0, 0.0])})
    del model, base
    base = AutoModelForSequenceClassification.from_pretrained(d, gguf_file=f, num_labels=1, dtype=DT, attn_implementation="eager")
    base.config.pad_token_id = 0   # padding id: never inside the sequences, so the pooled token is each one's last
    model, named = lora(base, "SEQ_CLS", DT)
    run_case("reward", named, lambda: trl_reward(model(input_ids=ids, attention_mask=am.long()).logits.squeeze(-1), 0.0), out, meta,
             {"center_rewards": 0.0}, curves)
    return out, meta


def main():
    """The fixture in float64 (the truth takumi's float32 is measured against), with PyTorch's own float32
    error on the same gradients beside it: per case "loss32", "grad32_err" (layer-29 tensor -> max |g32 - g64| /
    max |g64|) and "gnorm32" (every gradient's float32 norm)."""
    torch.set_num_threads(2)
    out32, meta32 = reference(torch.float32, False)
    out, meta = reference(torch.float64, True)
    for name in [k for k in meta if k in meta32]:
        e, e32 = json.loads(meta[name]), json.loads(meta32[name])
        pre = "grad.%s." % name
        e["loss32"], e["gnorm32"] = e32["loss"], e32["gnorm"]
        e["grad32_err"] = {k[len(pre):]: ((out32[k].double() - out[k].double()).abs().max() / out[k].double().abs().max()).item()
                           for k in out if k.startswith(pre)}
        meta[name] = json.dumps(e)
        print("smollm2 %-12s PyTorch float32 vs float64: layer-29 gradients max rel %.2e" % (name, max(e["grad32_err"].values())),
              file=sys.stderr)
    import trl
    meta.update({"lr": repr(LR), "weight_decay": repr(WD), "clip": repr(CLIP), "steps": str(STEPS),
                 "source": "trl %s, transformers %s, peft %s, torch %s, float64, eager attention, GGUF dequantized by transformers" % (
                     trl.__version__, __import__("transformers").__version__, __import__("peft").__version__, torch.__version__)})
    path = os.path.join(OUT, "smollm2_objectives_ref.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path, metadata=meta)
    print("wrote %s (%d tensors, %d bytes)" % (path, len(out), os.path.getsize(path)), file=sys.stderr)


if __name__ == "__main__":
    main()
