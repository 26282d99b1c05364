#!/usr/bin/env python3
"""Writes the second fact-set example dataset of takumi (examples/policy/), written by the
project for this purpose: customer-support conversations of Larkspur Home Goods, a fictional
online shop for kitchen appliances whose assistant is called Mara. Its facts are those of
examples/policy/policy.md (every fact there is one entry of FACTS below); every name, price,
number, address and policy is invented, so a base model cannot know them. It is a second domain
next to examples/support/ (a bicycle shop, made by make_support_data.py, whose design this
script follows), so that a recipe for small fact-heavy data sets is not tuned to one file.

Outputs (OpenAI chat JSONL: {"messages": [system, user, assistant, ...]}), English only:
  train.jsonl          each fact asked in four wordings (the two answer phrasings alternating),
                       a few two-question conversations, greetings / thanks / off-topic requests
                       (tone)
  valid.jsonl          one further wording per fact (for validation loss)
  heldout_facts.jsonl  {"id", "lang", "system", "question", "facts": [[alternatives], ...]}: two
                       further wordings per scored fact ("<fact>-1", "<fact>-2"), never trained on,
                       phrased as a customer would ask (indirect, situational); an answer passes
                       when it contains, for every entry of "facts", one of its alternatives
                       (tools/fact_match.py's norm/contains: NFKC, commas/spaces removed, dashes
                       unified, lower case, a number never inside a longer number). The "-1"
                       wordings of the twelve facts of heldout.jsonl (scripts/demo_context_distill.sh)
                       are its questions verbatim, with the same alternatives; heldout.jsonl itself
                       is read, checked against FACTS, and not written.
  facts.md             the company's facts as one table (for people)

Self-check (fails loudly): every answer phrasing of a fact passes the fact's own alternatives under
tools/fact_match.py's passes(); no held-out or validation question is also a training question
(normalised); heldout.jsonl agrees with FACTS. Near-duplicate questions are left to
`takumi data check TRAIN --against EVAL...`, which reads chat files, not the held-out layout: give it
the held-out questions as chat records (user question, the fact's answer).

Deterministic: no randomness, the same files every run. Stdlib only.
Usage: python3 examples/policy/make_policy_data.py
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tools"))
from fact_match import norm, passes  # noqa: E402  (the scorer's own normalisation and test)

SYSTEM = "You are Mara, the customer support assistant of Larkspur Home Goods. Answer politely and briefly."

# Each fact: answers (two phrasings, always stating the fact the same way), questions (5: 4 train,
# 1 validation), held (2 held-out wordings: "-1", "-2") and the held-out alternatives (keys).
FACTS = [
    {
        "id": "return-window",
        "table": ("Return window", "45 days from delivery"),
        "a": ["You can return an item within 45 days of delivery, as long as it is unused and in its original packaging.",
              "Returns are accepted for 45 days after delivery; the item must be unused and in its original packaging."],
        "q": ["How long do I have to return something?", "What is your return window?",
              "How many days do I have to send an item back?", "Is there a time limit for returns?",
              "Until when can I return my order after it arrives?"],
        "held": ["I got my order three weeks ago. How many days do I have in total to send it back?",
                 "The coffee grinder I ordered came about five weeks ago and it's still sealed. Am I too late to send it back?"],
        "k": [["45 days", "45-day", "45 day"]],
    },
    {
        "id": "condition",
        "table": ("Return condition", "unused and in the original packaging"),
        "a": ["Items must be unused and in their original packaging to be returned.",
              "We accept returns of items that are unused and in their original packaging."],
        "q": ["What condition does an item need to be in for a return?", "Can I return an item I have already used?",
              "Do I need the original packaging to return something?", "What are the requirements for returning a product?",
              "Does a returned item have to be unused?"],
        "held": ["I threw away the box my waffle maker came in and made waffles once. Can I still return it?",
                 "I tried my new juicer one time and didn't like it. Will you take it back the way it is now?"],
        "k": [["unused"], ["original packaging"]],
    },
    {
        "id": "restocking",
        "table": ("Restocking fee", "12% on opened electronics"),
        "a": ["Opened electronics have a 12% restocking fee when they are returned.",
              "If an electronic item has been opened, we charge a 12% restocking fee on the return."],
        "q": ["Is there a restocking fee?", "How much is the restocking fee for opened electronics?",
              "Do you charge anything to return an opened appliance?", "What fee applies if I return an electronic item I've unboxed?",
              "What percentage do you keep when I return an opened electronic item?"],
        "held": ["I opened the box of my new electric grill and want to return it. Will you charge me anything?",
                 "I unpacked the rice cooker to look at it but never plugged it in. If I send it back, how much of my money do I lose?"],
        "k": [["12%", "12 percent"]],
    },
    {
        "id": "label-cost",
        "table": ("Return label", "$7.50; free when the item is defective"),
        "a": ["A return label costs $7.50. If the item is defective, the label is free.",
              "We charge $7.50 for a return label, but it is free when the item is defective."],
        "q": ["How much does a return label cost?", "Do I have to pay for return shipping?",
              "Is the return label free?", "What does it cost to send an item back?",
              "What is the charge for a return shipping label?"],
        "held": ["What do I pay for the label to ship a return back to you?",
                 "The blender works fine, I just don't need it anymore. If I mail it back, what will that cost me?"],
        "k": [["7.50", "7.5"]],
    },
    {
        "id": "refund-time",
        "table": ("Refunds", "to the original payment method within 7 business days after we receive the item"),
        "a": ["Your refund goes to your original payment method within 7 business days after we receive the item.",
              "Once we receive your return, we refund your original payment method within 7 business days."],
        "q": ["How long does a refund take?", "When will I get my refund?", "Where does my refund go?",
              "How soon after a return is the money refunded?", "How many days until my refund is processed?"],
        "held": ["After you get my returned blender, how soon will I see the money?",
                 "I mailed back a toaster last week and the tracking says you got it yesterday. When should the money be back on my credit card?"],
        "k": [["7 business days", "seven business days", "7 days"]],
    },
    {
        "id": "standard-fee",
        "table": ("Standard shipping fee", "$5.95 (free on orders over $79)"),
        "a": ["Standard shipping costs $5.95 and takes 4-6 business days.",
              "Our standard shipping is $5.95, and it is free on orders over $79."],
        "q": ["How much is standard shipping?", "What does shipping cost?", "What is your delivery fee?",
              "Do you charge for shipping?", "How much will standard delivery cost me?"],
        "held": ["What's the price of regular delivery?",
                 "I'm only ordering one set of measuring spoons. What will you add on top for getting it to me?"],
        "k": [["5.95"]],
    },
    {
        "id": "standard-time",
        "table": ("Standard shipping time", "4-6 business days"),
        "a": ["Standard shipping takes 4-6 business days.",
              "With standard shipping, your order arrives in 4-6 business days."],
        "q": ["How long does standard shipping take?", "When will my order arrive?", "How many days does delivery take?",
              "How fast is regular shipping?", "If I order today with standard shipping, when will it come?"],
        "held": ["I'm ordering a pasta maker for my mom's birthday and don't want to pay extra for speed. How long will it take to get there?",
                 "My old kettle just died. If I pick the normal shipping option, how many days will I be without one?"],
        "k": [["4-6", "4 to 6"]],
    },
    {
        "id": "free-threshold",
        "table": ("Free standard shipping", "on orders over $79"),
        "a": ["Standard shipping is free on orders over $79.",
              "Orders over $79 get free standard shipping; below that, it costs $5.95."],
        "q": ["Do you offer free shipping?", "When is shipping free?", "What is the minimum order for free shipping?",
              "Is there an order amount that gets free delivery?", "How much do I have to buy to ship for free?"],
        "held": ["How much do I need to spend to get delivery for free?",
                 "My cart is at $65 right now. If I add a set of oven mitts, could I stop paying for shipping? What total do I need?"],
        "k": [["$79", "79 dollars"]],
    },
    {
        "id": "express",
        "table": ("Express shipping", "2 business days, $19"),
        "a": ["Express shipping takes 2 business days and costs $19.",
              "With express shipping, your order arrives in 2 business days for $19."],
        "q": ["How much is express shipping?", "Do you have faster shipping?", "How fast is express shipping?",
              "Can I get my order sooner?", "What are the price and speed of express delivery?"],
        "held": ["I need my kettle quickly. What are my options for fast delivery?",
                 "We're hosting a dinner party this weekend and I just realised I need a new roasting pan. Can you get it to me in time, and what would that cost?"],
        "k": [["$19", "19 dollars"], ["2 business days", "two business days", "2 days", "two days"]],
    },
    {
        "id": "warehouse",
        "table": ("Warehouse", "Dayton, Ohio (all orders ship from there)"),
        "a": ["All our orders ship from our warehouse in Dayton, Ohio.",
              "Every order is sent from the Larkspur warehouse in Dayton, Ohio."],
        "q": ["Where do your orders ship from?", "Where is your warehouse?", "Which city is the Larkspur warehouse in?",
              "Where are packages sent from?", "From what location do you ship orders?"],
        "held": ["From which state will my package be sent?",
                 "I'm watching the tracking page for my toaster. Which city should the first scan show?"],
        "k": [["Ohio", "Dayton"]],
    },
    {
        "id": "hawaii",
        "table": ("Alaska and Hawaii", "$25 surcharge"),
        "a": ["Orders to Alaska and Hawaii pay a $25 surcharge.",
              "We add a $25 surcharge to orders shipped to Alaska or Hawaii."],
        "q": ["Is there an extra charge for shipping to Hawaii?", "How much extra does shipping to Alaska cost?",
              "Do you ship to Alaska and Hawaii?", "What is the surcharge for Hawaii?",
              "Does it cost more to deliver to Alaska?"],
        "held": ["I live in Honolulu. Does delivery cost more for me?",
                 "I'm sending a stand mixer to my son in Anchorage. Is there anything extra on top of the normal shipping?"],
        "k": [["$25", "25 dollars"]],
    },
    {
        "id": "kettle-warranty",
        "table": ("Kettles and toasters warranty", "2 years"),
        "a": ["Kettles and toasters have a 2-year warranty.",
              "Our kettles and toasters come with a 2-year warranty."],
        "q": ["What is the warranty on a kettle?", "How long is the warranty on toasters?", "Do your kettles have a warranty?",
              "How many years is a toaster covered?", "What warranty comes with an electric kettle?"],
        "held": ["My kettle stopped working after 18 months. Is it still under warranty?",
                 "The toaster I bought from you two and a half years ago only browns one side now. Will you fix it for free?"],
        "k": [["2-year", "2 year", "two year", "2 years", "two years"]],
    },
    {
        "id": "mixer-warranty",
        "table": ("Aurora stand mixer warranty", "5 years on the motor"),
        "a": ["The Aurora stand mixer has a 5-year warranty on its motor.",
              "The motor of the Aurora stand mixer is covered by a 5-year warranty."],
        "q": ["What warranty does the Aurora stand mixer have?", "How many years is the Aurora mixer motor covered?",
              "Is the Aurora mixer's motor under warranty?", "How long is the warranty on the stand mixer?",
              "What does the Aurora mixer's warranty cover, and for how long?"],
        "held": ["The motor of my Aurora mixer has started grinding, and I bought it four years ago. Is that still covered?",
                 "I bake bread every weekend and want a mixer that lasts. How long do you stand behind the Aurora's motor?"],
        "k": [["5-year", "5 year", "five year", "5 years", "five years"]],
    },
    {
        "id": "claim-email",
        "table": ("Warranty claims", "email warranty@larkspurhome.example with the order number and a photo"),
        "a": ["To claim, email warranty@larkspurhome.example with your order number and a photo.",
              "Please send your order number and a photo to warranty@larkspurhome.example to make a warranty claim."],
        "q": ["How do I make a warranty claim?", "What email address do I use for warranty claims?",
              "What do I need to send for a warranty claim?", "Where do I send a warranty request?",
              "How can I claim my warranty?"],
        "held": ["Where should I write to claim a repair under warranty?",
                 "The lid hinge on my kettle snapped after three months. Who do I contact to get it sorted, and what should I include?"],
        "k": [["warranty@larkspurhome.example"]],
    },
    {
        "id": "replacement-time",
        "table": ("Warranty replacement", "ships within 10 business days of an approved claim"),
        "a": ["A replacement ships within 10 business days of an approved claim.",
              "Once your warranty claim is approved, we ship the replacement within 10 business days."],
        "q": ["How long until a warranty replacement ships?", "When will I get my replacement?",
              "How quickly do you send a warranty replacement?", "How many days does a replacement take after my claim is approved?",
              "After my claim is approved, when does the new item ship?"],
        "held": ["You approved my warranty claim for the toaster this morning. How long until the new one is on its way?",
                 "My claim for the broken mixer motor went through. Roughly when should I expect the new one to leave your warehouse?"],
        "k": [["10 business days", "ten business days", "10 days"]],
    },
    {
        "id": "phone",
        "table": ("Phone", "1-800-555-0142"),
        "a": ["You can call us at 1-800-555-0142, Monday to Friday, 8 am to 6 pm Eastern time.",
              "Our phone number is 1-800-555-0142. We answer Monday to Friday from 8 am to 6 pm Eastern time."],
        "q": ["What is your phone number?", "How can I call you?", "Do you have a customer service number?",
              "Is there a number I can call for support?", "Which number do I dial to reach support?"],
        "held": ["Can I call someone at Larkspur? What number?",
                 "Typing emails takes me forever. I'd rather just talk to a person. How do I reach one?"],
        "k": [["1-800-555-0142", "800-555-0142"]],
    },
    {
        "id": "phone-hours",
        "table": ("Phone hours", "Monday to Friday, 8 am to 6 pm Eastern time"),
        "a": ["Our phone line is open Monday to Friday, 8 am to 6 pm Eastern time.",
              "You can reach us by phone Monday to Friday from 8 am to 6 pm Eastern time, at 1-800-555-0142."],
        "q": ["What are your support phone hours?", "When can I call you?", "What hours is your phone line open?",
              "Can I call on weekends?", "What time does phone support close?"],
        "held": ["I work night shifts and can only call during the day. When is someone there to take my call?",
                 "Is it worth phoning you on a Saturday morning, or when should I call instead?"],
        "k": [["8 am", "8:00"], ["6 pm", "6:00", "18:00"]],
    },
    {
        "id": "price-match",
        "table": ("Price match", "a lower price from another store, within 14 days of purchase"),
        "a": ["We match a lower price from another store within 14 days of purchase.",
              "If you find a lower price at another store within 14 days of your purchase, we will match it."],
        "q": ["Do you match prices from other stores?", "Do you have a price match policy?", "Will you match a competitor's price?",
              "How long after buying can I ask for a price match?", "Can I get the difference back if another shop is cheaper?"],
        "held": ["I bought a coffee maker from you ten days ago and now it's $20 cheaper at another store. Can you do anything about that?",
                 "Before I order the Aurora mixer: if another shop puts it on sale after I buy it, how long do I have to get the lower price from you?"],
        "k": [["14 days", "14-day", "14 day", "two weeks"]],
    },
    {
        "id": "products",
        "table": ("What Larkspur sells", "kitchen appliances, online"),
        "a": ["Larkspur Home Goods sells kitchen appliances online.",
              "We are an online shop for kitchen appliances."],
        "q": ["What do you sell?", "What kind of products does Larkspur carry?", "Are you an online shop?",
              "What does Larkspur Home Goods offer?", "What sort of store is Larkspur?"],
        "held": ["A friend mentioned Larkspur Home Goods. Would I find sofas and beds there, or what is it you sell?",
                 "I'm setting up the kitchen in my first flat. Is Larkspur the right place, and do I order from you on the web or in a store?"],
        "k": [["kitchen appliance"], ["online"]],
    },
    {
        "id": "assistant",
        "table": ("Support assistant", "Mara"),
        "a": ["My name is Mara. I'm the customer support assistant of Larkspur Home Goods.",
              "I'm Mara, Larkspur Home Goods' support assistant."],
        "q": ["What is your name?", "Who am I talking to?", "What is the name of the Larkspur support assistant?",
              "Are you a person or an assistant?", "May I ask who is helping me today?"],
        "held": None,
        "k": None,  # the system prompt names Mara, so an answer would not show learning: trained and validated, not scored
    },
]

# Two-question conversations: (fact a, fact b) pairs; the questions are taken from the training wordings.
PAIRS = [("return-window", "label-cost"), ("standard-fee", "standard-time"), ("express", "hawaii"),
         ("kettle-warranty", "claim-email"), ("mixer-warranty", "replacement-time"), ("phone", "phone-hours"),
         ("free-threshold", "warehouse"), ("restocking", "refund-time"), ("condition", "price-match"),
         ("products", "assistant")]

TONE = [
    ("Hello!", "Hello, this is Mara from Larkspur Home Goods. How can I help you today?"),
    ("Hi, I have a question.", "Hello! I'm Mara from Larkspur Home Goods. Please go ahead and ask."),
    ("Thank you, that's all.", "Thank you for contacting Larkspur Home Goods. Enjoy your kitchen!"),
    ("Thanks for your help!", "You're welcome! If you have any other questions, just ask."),
    ("Can you give me a good recipe for lasagna?", "I'm sorry, I can only help with questions about Larkspur Home Goods' products, orders and policies. Is there anything about your order I can help with?"),
    ("Who will win the football game on Sunday?", "I'm sorry, I can only help with questions about Larkspur Home Goods. Is there anything about our products or your order I can help with?"),
    ("My new toaster arrived with a cracked housing. I'm really upset.", "I'm very sorry about the damage. A defective item's return label is free, and kettles and toasters have a 2-year warranty. Please email warranty@larkspurhome.example with your order number and a photo, and we will sort it out."),
    ("My order still hasn't arrived and nobody told me anything!", "I'm very sorry for the wait and the lack of updates. Standard shipping takes 4-6 business days. Please tell me your order number and I will check it right away."),
]


def conv(turns):
    msgs = [{"role": "system", "content": SYSTEM}]
    for q, a in turns:
        msgs.append({"role": "user", "content": q})
        msgs.append({"role": "assistant", "content": a})
    return {"messages": msgs}


def check_facts():
    """Fails loudly when a fact's answers do not pass its own keys, a question is reused or heldout.jsonl disagrees."""
    ids = [f["id"] for f in FACTS]
    assert len(set(ids)) == len(ids), "duplicate fact id"
    trained = set()
    for f in FACTS:
        assert len(f["q"]) == 5 and len(f["a"]) == 2, f["id"]
        assert (f["held"] is None) == (f["k"] is None), f["id"]
        if f["k"] is not None:
            assert len(f["held"]) == 2, f["id"]
            for a in f["a"]:  # every answer phrasing states the fact the way the scorer looks for it
                if not passes(a, f["k"]):
                    sys.exit(f"make_policy_data: fact {f['id']}: answer {a!r} fails its own keys {f['k']}")
        trained.update(norm(q) for q in f["q"][:4])
    asked = [q for f in FACTS for q in f["q"][4:] + (f["held"] or [])]
    for q in asked:
        if norm(q) in trained:
            sys.exit(f"make_policy_data: validation / held-out question is also a training question: {q!r}")
    if len(set(map(norm, asked))) != len(asked):
        sys.exit("make_policy_data: a validation / held-out question is used twice")
    by_id = {f["id"]: f for f in FACTS}
    with open(os.path.join(HERE, "heldout.jsonl"), encoding="utf-8") as fp:
        for n, line in enumerate(fp, 1):
            h = json.loads(line)
            f = by_id.get(h["id"])
            if f is None or f["held"] is None or f["held"][0] != h["question"] or f["k"] != h["facts"]:
                sys.exit(f"make_policy_data: heldout.jsonl line {n} ({h['id']}) is not the \"-1\" wording and keys of its fact")


def main():
    check_facts()
    by_id = {f["id"]: f for f in FACTS}
    train, valid, held = [], [], []
    for f in FACTS:
        for i, q in enumerate(f["q"][:4]):
            train.append(conv([(q, f["a"][i % 2])]))
        valid.append(conv([(f["q"][4], f["a"][0])]))
        if f["k"] is None:
            continue
        for j, q in enumerate(f["held"], 1):
            held.append({"id": f"{f['id']}-{j}", "lang": "en", "system": SYSTEM, "question": q, "facts": f["k"]})
    for k, (a, b) in enumerate(PAIRS):
        fa, fb = by_id[a], by_id[b]
        train.append(conv([(fa["q"][k % 4], fa["a"][k % 2]), (fb["q"][(k + 1) % 4], fb["a"][(k + 1) % 2])]))
    for q, a in TONE:
        train.append(conv([(q, a)]))
    # interleave deterministically so that neighbouring lines differ in topic
    train = train[0::3] + train[1::3] + train[2::3]
    write_jsonl("train.jsonl", train)
    write_jsonl("valid.jsonl", valid)
    write_jsonl("heldout_facts.jsonl", held)
    with open(os.path.join(HERE, "facts.md"), "w", encoding="utf-8") as fp:
        fp.write("# Larkspur Home Goods — the facts of the example dataset\n\n"
                 "A fictional online shop for kitchen appliances; everything here is invented (policy.md, "
                 "make_policy_data.py).\n\n| topic | fact |\n|---|---|\n")
        for f in FACTS:
            fp.write(f"| {f['table'][0]} | {f['table'][1]} |\n")
    print(f"facts {len(FACTS)} ({sum(f['k'] is not None for f in FACTS)} scored), train {len(train)}, "
          f"valid {len(valid)}, held-out {len(held)}")


def write_jsonl(name, rows):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as fp:
        for r in rows:
            fp.write(json.dumps(r, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
