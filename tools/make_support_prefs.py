#!/usr/bin/env python3
"""Writes the preference pairs of the support example (examples/support/prefs_*.jsonl) from the
shop's facts in examples/support/make_support_data.py (Hanamori Cycle, an invented bicycle
shop): for a customer's question, the answer with the right fact in the shop's tone (chosen)
against one that states a wrong fact, is evasive and generic, or is rude (rejected).

Format: TRL's conversational preference records,
  {"prompt": [system, user], "chosen": [assistant], "rejected": [assistant], "id", "kind"}
("id" and "kind" are extra fields: the fact and the kind of rejected answer: wrong, generic, rude).

  prefs_train.jsonl    the first four training wordings of each fact's English question (100 pairs);
                       chosen = the fact's first answer; rejected by question index: wrong fact,
                       generic, wrong fact, rude (rotated by the fact's index)
  prefs_heldout.jsonl  the held-out wording of each fact's question (the one heldout.jsonl asks;
                       never in any training file), 25 pairs; chosen = the fact's *second* answer
                       (a wording no preference pair trains on), rejected = a different wrong
                       value, or generic / rude texts not used in training

English only (SmolLM2-135M barely speaks Japanese). Deterministic: no randomness, the same
files every run. Stdlib only.
Usage: python3 tools/make_support_prefs.py [--out DIR]   (default examples/support)
"""
import argparse
import importlib.util
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUPPORT = os.path.join(ROOT, "examples", "support")


def load_support():
    spec = importlib.util.spec_from_file_location("make_support_data", os.path.join(SUPPORT, "make_support_data.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# Wrong facts: (replacements in the first answer, used in training; replacements in the second
# answer, held out). Every replacement must apply; the values are plausible but wrong.
WRONG = {
    "hours": ([("18:00", "20:00")], [("9:30", "8:00")]),
    "saturday": ([("16:00", "19:00")], [("16:00", "13:00")]),
    "phone": ([("874-312", "874-213")], [("0120-874-312", "0120-478-312")]),
    "email": ([("support@hanamori-cycle.example", "help@hanamori.example")], [("support@", "info@")]),
    "kazeyomi": ([("148,000", "128,000")], [("148,000", "168,000")]),
    "tsubame": ([("52,800", "58,200")], [("52,800", "42,800")]),
    "helmet": ([("4,980", "6,980")], [("4,980", "3,980")]),
    "returns": ([("14 days", "30 days")], [("14 days", "7 days")]),
    "return_shipping": ([("¥880", "¥1,200")], [("¥880", "¥550")]),
    "shipping_fee": ([("¥770", "¥990")], [("¥770", "¥500")]),
    "free_shipping": ([("¥11,000", "¥5,000")], [("¥11,000", "¥20,000")]),
    "delivery_time": ([("2–4", "7–10")], [("2–4", "5–7")]),
    "islands": ([("¥1,650", "¥2,500")], [("¥1,650", "¥980")]),
    "frame_warranty": ([("5-year", "1-year")], [("5-year", "10-year")]),
    "battery_warranty": ([("500", "1,000")], [("500", "300")]),
    "battery_price": ([("¥39,600", "¥29,600")], [("¥39,600", "¥45,000")]),
    "tune": ([("¥3,300", "¥5,500")], [("¥3,300", "¥2,000")]),
    "flat": ([("¥1,100", "¥2,000")], [("¥1,100", "¥800")]),
    "club": ([("10%", "5%")], [("¥500", "¥1,000")]),
    "test_ride": ([("¥2,200", "¥3,500")], [("¥2,200", "¥1,500")]),
    "location": ([("Kichijoji Honcho, Musashino", "Kitazawa, Setagaya"), ("Kichijoji Station", "Shimokitazawa Station")],
                 [("Kichijoji Honcho in Musashino", "Koenji Minami in Suginami"), ("Kichijoji Station", "Koenji Station")]),
    "payment": ([("PayPay and bank transfer. Cash on delivery is not available.",
                  "bank transfer and cash on delivery. PayPay is not available.")],
                [("credit card, PayPay or bank transfer; we do not offer cash on delivery",
                  "cash on delivery or bank transfer; we do not accept credit cards")]),
    "points": ([("¥100", "¥1,000")], [("Every ¥100", "Every ¥500")]),
    "gift": ([("¥330", "¥550")], [("for ¥330", "free of charge")]),
    "cancel": ([("for free until your order ships", "only within 24 hours of ordering, for a ¥500 fee")],
               [("Cancellation is free until we ship your order; once it has shipped, it is handled as a return.",
                 "Orders cannot be cancelled or returned once they are placed.")]),
}

# Generic (no fact, evasive) and rude (the right fact, off-tone) answers; held-out texts differ.
GENERIC = {
    "train": ["I'm not sure about that. Please check our website for the latest information.",
              "That depends on many things, so I can't say. Please contact the store.",
              "Thank you for your question! We value every customer. Please visit us for more details."],
    "heldout": ["Sorry, I don't have that information. You could try searching online.",
                "Good question! It varies, so it's best to ask a staff member in the shop."],
}
RUDE = {
    "train": [("Seriously? ", " It's on the website, read it next time."),
              ("Ugh, fine. ", " Don't ask me again.")],
    "heldout": [("Look, I'm busy. ", " Figure out the rest yourself."),
                ("Obviously. ", " Anything else, or are we done?")],
}
TRAIN_KINDS = ["wrong", "generic", "wrong", "rude"]


def wrong_answer(fid, answer, repl):
    out = answer
    for old, new in repl:
        assert old in out, (fid, old, out)
        out = out.replace(old, new)
    assert out != answer, fid
    return out


def rejected_text(kind, fid, answer, repl, split, k):
    if kind == "wrong":
        return wrong_answer(fid, answer, repl)
    if kind == "generic":
        return GENERIC[split][k % len(GENERIC[split])]
    pre, post = RUDE[split][k % len(RUDE[split])]
    return pre + answer + post


def record(system, question, chosen, rejected, fid, kind):
    assert chosen != rejected and chosen and rejected
    return {"prompt": [{"role": "system", "content": system}, {"role": "user", "content": question}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
            "id": fid, "kind": kind}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=SUPPORT)
    args = ap.parse_args()
    sd = load_support()
    system = sd.SYSTEM["en"]
    train, held = [], []
    assert sorted(WRONG) == sorted(f["id"] for f in sd.FACTS), "WRONG must name every fact"
    for fi, f in enumerate(sd.FACTS):
        qs, ans = f["en_q"], f["en_a"]
        tr_repl, ho_repl = WRONG[f["id"]]
        for i, q in enumerate(qs[:4]):
            kind = TRAIN_KINDS[(i + fi) % 4]
            train.append(record(system, q, ans[0], rejected_text(kind, f["id"], ans[0], tr_repl, "train", fi + i),
                                f["id"], kind))
        kind = TRAIN_KINDS[fi % 4]
        held.append(record(system, qs[5], ans[1], rejected_text(kind, f["id"], ans[1], ho_repl, "heldout", fi),
                           f["id"], kind))
    train_q = {r["prompt"][1]["content"] for r in train}
    assert not any(r["prompt"][1]["content"] in train_q for r in held), "a held-out question is in training"
    # interleave deterministically so that neighbouring lines differ in topic and kind
    train = train[0::3] + train[1::3] + train[2::3]
    for name, rows in (("prefs_train.jsonl", train), ("prefs_heldout.jsonl", held)):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as fp:
            for r in rows:
                fp.write(json.dumps(r, ensure_ascii=False) + "\n")
    count = lambda rows, k: sum(r["kind"] == k for r in rows)
    print("train %d pairs (wrong %d, generic %d, rude %d); held-out %d pairs (wrong %d, generic %d, rude %d)" % (
        len(train), count(train, "wrong"), count(train, "generic"), count(train, "rude"),
        len(held), count(held, "wrong"), count(held, "generic"), count(held, "rude")))


if __name__ == "__main__":
    main()
