#!/usr/bin/env python3
"""Makes the small tokenizer.json fixtures in tests/fixtures/tokenizer/ with the HF
`tokenizers` library, plus the ids that library produces for a set of test strings.

  bpe_bytelevel/  a byte-level BPE (GPT-2 / SmolLM2 style: Digits + ByteLevel pre-tokenizer,
                  special and non-special added tokens)
  bpe_spm/        a SentencePiece-style BPE (Llama-2 / Mistral style: Prepend + Replace
                  normalizer, byte_fallback, <0xXX> byte tokens, TemplateProcessing BOS)
  bpe_nfc/        a Qwen2-style byte-level BPE: NFC normalizer, Split(regex) + ByteLevel
                  without regex; expected.jsonl also carries Python's NFC of each string

Each folder gets tokenizer.json, tokenizer_config.json and expected.jsonl, one line per
string: {"text", "ids" (encode without special tokens), "ids_special" (with), "decoded"}.
The training text is written here (no third-party data). Re-run to regenerate:
  python3 tools/make_tokenizer_fixtures.py
"""
import json
import os
import unicodedata

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "tokenizer")

TRAIN = """\
The quick brown fox jumps over the lazy dog. A tokenizer splits text into pieces that a model
can read; the pieces are numbered, and the numbers are what the model sees. Fine-tuning a small
model on your own data starts with reading that data the way the model reads it.
Once upon a time there was a little robot who loved to count: one, two, three, 1 2 3 4 5 6 7 8 9 0,
12 + 34 = 46, 2024-05-17, 3.14159, $19.99 and 100% of the time it was right.
def tokenize(text):
    for word in text.split():
        if word.startswith("#"):
            continue
        yield word.lower()
\tindented with a tab; {braces}, [brackets], (parens) and <angle> brackets.
Hello world! Hello, World? hello... HELLO!!! "Quoted" and 'single' quotes; semi;colon: colon.
It's, we're, they've, I'm, you'll, he'd -- contractions are common in English text.
Spaces   and    runs     of      spaces, and new
lines, and blank

lines too.
日本語の文章も少し入れておきます。こんにちは、世界。東京は日本の首都です。
Emoji: 🙂 🚀 🦙 and a family 👩‍👩‍👧 with zero width joiners.
""" * 3

STRINGS = [
    "",
    " ",
    "Hello world",
    " Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "It's 2024-05-17 and I'll pay $19.99 (100%)!",
    "def f(x):\n\treturn x * 2  # tab-indented\n",
    "    four spaces\n\n\n  and lines  ",
    " " * 50,
    "\t\t\n\n",
    "日本語の文章を書きます。",
    "今日は良い天気ですね",
    "Emoji 🙂🚀🦙 and ZWJ 👩‍👩‍👧 family",
    "mixed English 日本語 and 123456789",
    "unknown chars: Ωπ∑ ß ü ñ Ø",
    "<|im_start|>user\nHi there<|im_end|>",
    "text <tool> call </tool> end",
    "<s>Hello</s> world",
    "a<s>b",
]

# decomposed / composed forms for the NFC fixture
NFC_STRINGS = [
    "cafe\u0301 vs caf\u00e9",
    "A\u030a \u212b \u00c5",
    "\u1100\u1161\u11a8 \uac01 \u1100\u1161",
    "Vie\u0323\u0302t Nam",
    "q\u0307\u0323 x\u0323\u0307",
    "\u0958 \u0915\u093c",
    "\ufb01 \u2126 \u1e9b\u0323",
    "e\u0301\u0301\u0327",
    "\u304b\u3099 \u304c \u30cf\u309a",
    "\u0344 \u0f73 \u2adc",
]


def write(folder, tok, config, strings=None, nfc=False):
    d = os.path.join(OUT, folder)
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=1, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(d, "expected.jsonl"), "w") as f:
        for s in strings or STRINGS:
            ids = tok.encode(s, add_special_tokens=False).ids
            ids_sp = tok.encode(s, add_special_tokens=True).ids
            rec = {"text": s, "ids": ids, "ids_special": ids_sp,
                   "decoded": tok.decode(ids, skip_special_tokens=False)}
            if nfc:
                rec["nfc"] = unicodedata.normalize("NFC", s)
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(folder, tok.get_vocab_size(), "tokens")


def byte_level():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=420, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(TRAIN.split("\n"), tr)
    tok.add_tokens([AddedToken("<tool>", special=False), AddedToken("</tool>", special=False)])
    write("bpe_bytelevel", tok, {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                                 "add_bos_token": False, "add_eos_token": False})


def spm_like():
    # train on SentencePiece-normalized text, then lay the vocabulary out like Llama-2's
    norm = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    base = Tokenizer(models.BPE())
    base.normalizer = norm
    tr = trainers.BpeTrainer(vocab_size=360, show_progress=False)
    base.train_from_iterator(TRAIN.split("\n"), tr)
    trained = json.loads(base.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for piece, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if piece not in vocab:
            vocab[piece] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.normalizer = norm
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken("<unk>", normalized=False), AddedToken("<s>", normalized=False),
                            AddedToken("</s>", normalized=False)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    write("bpe_spm", tok, {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                           "add_bos_token": True, "add_eos_token": False})


def nfc_qwen_like():
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    split = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
             "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=460, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    text = TRAIN + "\n".join(unicodedata.normalize("NFC", x) for x in NFC_STRINGS) * 3
    tok.train_from_iterator(text.split("\n"), tr)
    write("bpe_nfc", tok, {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "add_bos_token": False},
          strings=STRINGS + NFC_STRINGS, nfc=True)


if __name__ == "__main__":
    byte_level()
    spm_like()
    nfc_qwen_like()
