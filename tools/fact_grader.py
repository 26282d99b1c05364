#!/usr/bin/env python3
"""A `command` grader (OpenAI-form graders, takumi's extension) that checks the required facts of an answer.

takumi runs it once per sampled answer with {"item": {... "facts": [[alternatives], ...]}, "sample": {"output_text": ...}}
on stdin; it prints the fraction of the item's fact entries of which the answer contains at least one alternative,
compared after tools/fact_match.py's normalisation (NFKC, lower case, commas and spaces removed, dashes unified; a
number never matches inside a longer number). Grader document:
  {"type": "command", "name": "facts", "command": ["python3", "tools/fact_grader.py"], "timeout_s": 10}
Stdlib only.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fact_match import contains, norm  # noqa: E402


def main():
    doc = json.load(sys.stdin)
    facts = doc["item"]["facts"]
    answer = norm(doc["sample"]["output_text"])
    hit = sum(1 for alts in facts if any(contains(answer, norm(a)) for a in alts))
    print(hit / len(facts) if facts else 0.0)


if __name__ == "__main__":
    main()
