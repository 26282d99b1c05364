#!/usr/bin/env python3
"""PyTorch + HF PEFT reference for takumi's prompt tuning (tests/test_peft_prompt.c).

stories260K (../shared/models/stories260K/hf, float32, eager attention), the batch of
tools/make_train_reference.py, and two cases of PromptTuningConfig(task_type="CAUSAL_LM"):
  "prompt"       num_virtual_tokens=4, prompt_tuning_init RANDOM (PEFT's nn.Embedding N(0, 1), torch
                 seed 1234);
  "prompt_text"  num_virtual_tokens=8, prompt_tuning_init TEXT with "Once upon a time": PEFT's own
                 code (tokenize, repeat, cut to P, the model's input embeddings); stories260K's HF
                 folder has no tokenizer, so AutoTokenizer is replaced by one giving llama2.c's ids
                 of that text, [1, 403, 407, 261, 378] (BOS included, as add_special_tokens does).
PEFT prepends the virtual tokens (labels -100) and returns logits for P + T positions; the loss and
logits here are those of the T real tokens (logits[:, P:]), as takumi's model returns them.
Written into tests/fixtures/train/stories260k_peft_prompt.safetensors with the keys of
tools/make_peft_methods_reference.py: ids/target/weight, "<case>.init.prompt_encoder.embedding.weight",
"<case>.grad.prompt_encoder.embedding.weight", "<case>.logits" (first 64 vocabulary entries),
metadata <case>_loss and <case>_losses (10 AdamW steps as make_train_reference: decay on matrices,
so on the prompt; then the loss after the last update), and "<case>.saved" (what save_pretrained
writes: prompt_embeddings).

SmolLM2 (argument "smollm2"; models/SmolLM2-135M-Instruct.Q4_1.gguf dequantized to f32 by
transformers' GGUF loader, the one-row chat batch of make_train_reference.py's smollm2()), written into
tests/fixtures/train/smollm2_peft_prompt.safetensors with the same keys: "prompt_text",
num_virtual_tokens=12, TEXT init with SMOL_TEXT through PEFT's own code and the model's real tokenizer
(tokenizer_kwargs gguf_file), also saved as "prompt_text.init_ids".

Usage: HF_HUB_OFFLINE=1 python3 tools/make_peft_prompt_reference.py [smollm2]
"""
import json
import os
import sys
import types

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_train_reference import CLIP, LR, N_STEPS, SHARED, WD, batch_tensors  # noqa: E402
from make_train_reference import train_losses as train_losses_ndim  # noqa: E402
from make_peft_methods_reference import OUT, record, takumi_name  # noqa: E402

INIT_TEXT = "Once upon a time"
INIT_IDS = [1, 403, 407, 261, 378]
SMOL_TEXT = "Answer the customer's question politely."


class RealTokens(torch.nn.Module):
    """The PEFT model with the virtual tokens' logits dropped: logits of the T real tokens."""

    def __init__(self, peft_model, P):
        super().__init__()
        self.m = peft_model
        self.P = P

    def forward(self, input_ids):
        return types.SimpleNamespace(logits=self.m(input_ids=input_ids).logits[:, self.P:])


class FixedTokenizer:
    def __call__(self, text):
        assert text == INIT_TEXT
        return {"input_ids": list(INIT_IDS)}


def smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from peft import PromptTuningConfig, get_peft_model
    from make_train_reference import ROOT, smollm2_batch
    path = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    d, f = os.path.split(path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    ids, target, weight = smollm2_batch(tok)
    tensors = {"ids": ids.to(torch.int32), "target": target.to(torch.int32), "weight": weight,
               "prompt_text.init_ids": torch.tensor(tok(SMOL_TEXT)["input_ids"], dtype=torch.int32)}
    meta = {"source": "transformers %s, peft %s, torch %s, float32, eager attention, GGUF dequantized by transformers/gguf" % (
        __import__("transformers").__version__, __import__("peft").__version__, torch.__version__),
        "lr": repr(LR), "weight_decay": repr(WD), "clip": repr(CLIP), "steps": str(N_STEPS), "init_text": SMOL_TEXT}
    cfg = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=12, prompt_tuning_init="TEXT", prompt_tuning_init_text=SMOL_TEXT,
                             tokenizer_name_or_path=d, tokenizer_kwargs={"gguf_file": f})
    base = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32, attn_implementation="eager")
    pm = get_peft_model(base, cfg)
    model = RealTokens(pm, cfg.num_virtual_tokens)
    named = [(takumi_name(n), p) for n, p in pm.named_parameters() if p.requires_grad]
    record("prompt_text", model, named, (ids, target, weight), tensors, meta, train_losses_ndim)
    path = os.path.join(OUT, "smollm2_peft_prompt.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)
    print("%s: %d bytes" % (path, os.path.getsize(path)), file=sys.stderr)


def main():
    if sys.argv[1:] == ["smollm2"]:
        torch.set_num_threads(2)
        return smollm2()
    import transformers
    from transformers import AutoModelForCausalLM
    from peft import PromptTuningConfig, get_peft_model
    torch.set_num_threads(2)
    folder = os.path.join(SHARED, "models", "stories260K", "hf")
    greedy = json.loads(open(os.path.join(folder, "greedy_64_from_bos.txt")).readline())
    seq = [1] + greedy[:31]
    ids, target, weight = batch_tensors([seq[:16], seq[16:32]], [[0.0] * 4 + [1.0] * 12, [1.0] * 7 + [0.5] + [1.0] * 8])
    tensors = {"ids": ids.to(torch.int32), "target": target.to(torch.int32), "weight": weight}
    meta = {"source": "transformers %s, peft %s, torch %s, float32, eager attention" % (
        transformers.__version__, __import__("peft").__version__, torch.__version__),
        "lr": repr(LR), "weight_decay": repr(WD), "clip": repr(CLIP), "steps": str(N_STEPS)}
    transformers.AutoTokenizer.from_pretrained = staticmethod(lambda *a, **k: FixedTokenizer())
    configs = {
        "prompt": PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
        "prompt_text": PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=8, prompt_tuning_init="TEXT",
                                          prompt_tuning_init_text=INIT_TEXT, tokenizer_name_or_path="stories260K"),
    }
    for method, cfg in configs.items():
        torch.manual_seed(1234)
        base = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, attn_implementation="eager")
        pm = get_peft_model(base, cfg)
        model = RealTokens(pm, cfg.num_virtual_tokens)
        named = [(takumi_name(n), p) for n, p in pm.named_parameters() if p.requires_grad]
        record(method, model, named, (ids, target, weight), tensors, meta, train_losses_ndim,
               lambda mo, m=method: {m + ".saved": mo.m.get_prompt_embedding_to_save("default").contiguous()})
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "stories260k_peft_prompt.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)
    print("%s: %d bytes" % (path, os.path.getsize(path)), file=sys.stderr)


if __name__ == "__main__":
    main()
