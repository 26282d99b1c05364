"""transformers/PEFT reference for takumi's classification and regression heads (src/objective/classify.c;
`takumi train --task classify|regress`): stories260K (../shared/models/stories260K/hf) as
LlamaForSequenceClassification, four token sequences of different lengths (right-padded, the pad
token <unk> = 0 never in them, so the pooled token is each sequence's last), and:

  cls       num_labels 3, single_label_classification (cross-entropy), PEFT LoRA (task SEQ_CLS, the head in
            modules_to_save)
  reg       num_labels 1, problem_type regression (MSE), PEFT LoRA
  cls_head  num_labels 3, the body frozen: only score.weight trains (takumi's --method head)

For each: the initial parameters (LoRA B non-zero so that the adapter matters; the head as transformers
initialises it), the logits, loss and every trainable gradient, and the 10-step AdamW loss curve with the
DPO reference's settings (tools/make_dpo_reference.py: lr, weight decay on matrices, clipping).
Writes tests/fixtures/train/stories260k_classify_<case>_ref.safetensors, one per case (read by tests/test_classify.c
through tests/objective_ref.h: "init.<name>", "grad.<case>.<name>", the curve in the case's metadata).

Usage: HF_HUB_OFFLINE=1 python3 tools/make_classify_reference.py
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_dpo_reference import LR, WD, CLIP, N_STEPS  # noqa: E402
from make_kto_reward_reference import lora_model, train_case  # noqa: E402  (the reward model's LoRA set-up and AdamW curve)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TAKUMI_SHARED", os.path.join(ROOT, "..", "shared"))
CASES = [("cls", 3, "single_label_classification", True), ("reg", 1, "regression", True), ("cls_head", 3, "single_label_classification", False)]


def model_for(folder, K, problem, lora):
    """LlamaForSequenceClassification with K labels; LoRA as the reward-model reference sets it up, or the head alone."""
    from transformers import AutoModelForSequenceClassification
    torch.manual_seed(4321)
    base = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=K, problem_type=problem, torch_dtype=torch.float32,
                                                              attn_implementation="eager")
    base.config.pad_token_id = 0
    if lora:
        return lora_model(base, "SEQ_CLS")
    for n, p in base.named_parameters():
        p.requires_grad_(n == "score.weight")
    named = [("score.weight", base.score.weight)]
    return base, named, {"score.weight": base.score.weight.detach().clone()}


def main():
    torch.set_num_threads(2)
    folder = os.path.join(SHARED, "models", "stories260K", "hf")
    greedy = json.loads(open(os.path.join(folder, "greedy_64_from_bos.txt")).readline())
    seqs = [[1] + greedy[:9], [1] + greedy[20:24], [1] + greedy[30:44], [1] + greedy[50:56]]
    B, T = len(seqs), max(len(s) for s in seqs)
    ids = torch.zeros(B, T, dtype=torch.long)
    am = torch.zeros(B, T, dtype=torch.long)
    seq = torch.full((B, T), -1, dtype=torch.int32)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        am[i, :len(s)] = 1
        seq[i, :len(s)] = i
    labels = {"cls": torch.tensor([2, 0, 1, 2]), "reg": torch.tensor([0.5, -1.25, 2.0, 0.125])}
    src = "transformers %s, peft %s, torch %s, float32" % (__import__("transformers").__version__, __import__("peft").__version__, torch.__version__)
    for name, K, problem, lora in CASES:
        out = {"ids": ids.to(torch.int32), "seg": torch.where(am > 0, 0, -1).to(torch.int32), "seq": seq}
        y = labels["reg" if problem == "regression" else "cls"]
        out["seq_value"] = y.to(torch.float32)
        model, named, init = model_for(folder, K, problem, lora)
        out.update({"init." + n: v for n, v in init.items()})

        logits = model(input_ids=ids, attention_mask=am).logits
        out["logits"] = logits.detach().clone()
        entry = train_case(name, named, init, lambda: (model(input_ids=ids, attention_mask=am, labels=y).loss, []), out)
        loss, curve = entry["loss"], entry["curve"]
        meta = {"case": json.dumps({"name": name, "loss": loss, "labels": K, "regress": problem == "regression", "lora": lora,
                                    "curve": curve}),
                "lr": repr(LR), "weight_decay": repr(WD), "clip": repr(CLIP), "steps": str(N_STEPS), "source": src}
        path = os.path.join(ROOT, "tests/fixtures/train/stories260k_classify_%s_ref.safetensors" % name)
        save_file({k: v.contiguous() for k, v in out.items()}, path, metadata=meta)
        print("wrote %s (%d tensors, %d bytes)" % (path, len(out), os.path.getsize(path)), file=sys.stderr)


if __name__ == "__main__":
    main()
