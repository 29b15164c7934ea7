"""A tiny rule-based translation for tests: English number words -> their digits.

    "three hundred twenty one plus five" -> "3 2 1 + 5"     (each digit a word)

A small model learns it in seconds; reading a number needs the whole phrase (the
hundreds come first, "twelve" is two digits), so it exercises attention and search.
"""

from __future__ import annotations

import random
from pathlib import Path

ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
         "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def words(number: int) -> str:
    """English words of 0 <= number < 1000."""
    hundreds, rest = divmod(number, 100)
    parts = [ONES[hundreds], "hundred"] if hundreds else []
    if rest >= 20:
        parts.append(TENS[rest // 10])
        if rest % 10:
            parts.append(ONES[rest % 10])
    elif rest >= 10:
        parts.append(TEENS[rest - 10])
    elif rest or not hundreds:
        parts.append(ONES[rest])
    return " ".join(parts)


def pairs(count: int = 1000, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` (words, digits) pairs of sums of two numbers drawn from 0..999."""
    rng = random.Random(seed)
    sums = [(rng.randrange(1000), rng.randrange(1000)) for _ in range(count)]
    return [(f"{words(a)} plus {words(b)}", " ".join(f"{a}+{b}")) for a, b in sums]


def write_tsv(path: Path, count: int = 1000, seed: int = 0) -> Path:
    lines = ["source\ttarget"] + [f"{s}\t{t}" for s, t in pairs(count, seed)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
