"""Retrieval and answer metrics. Pure functions over ids and strings; edge cases defined here.

Conventions: a question with no gold papers contributes no retrieval or citation-recall value
(None); an answer that cites nothing has citation precision None (not 0) and is counted
separately as "uncited"; duplicate ids count once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence


def _dedupe(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def recall_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float | None:
    gold = set(gold)
    if not gold:
        return None
    return len(set(_dedupe(ranked)[:k]) & gold) / len(gold)


def mrr(ranked: Sequence[str], gold: Iterable[str]) -> float | None:
    gold = set(gold)
    if not gold:
        return None
    for rank, pid in enumerate(_dedupe(ranked), start=1):
        if pid in gold:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float | None:
    gold = set(gold)
    if not gold:
        return None
    dcg = sum(1.0 / math.log2(i + 1) for i, pid in enumerate(_dedupe(ranked)[:k], start=1) if pid in gold)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(k, len(gold)) + 1))
    return dcg / ideal


def citation_recall(cited: Iterable[str], gold: Iterable[str]) -> float | None:
    """Which gold papers were cited (ALCE-style, paper level)."""
    gold = set(gold)
    if not gold:
        return None
    return len(set(cited) & gold) / len(gold)


def citation_precision(cited: Iterable[str], gold: Iterable[str]) -> float | None:
    """Which cited papers are gold; None when nothing was cited or there is no gold."""
    cited, gold = set(cited), set(gold)
    if not cited or not gold:
        return None
    return len(cited & gold) / len(cited)


def _norm(text: str) -> str:
    text = text.lower().replace("\u2009", " ")
    text = re.sub(r"(?<=\d)[,\s](?=\d{3}\b)", "", text)  # 193,311 == 193311 == 193 311
    return re.sub(r"\s+", " ", text)


def fact_accuracy(answer: str, facts: Iterable[str]) -> float | None:
    """Share of key facts found in the answer (case-insensitive, digit grouping ignored)."""
    facts = list(facts)
    if not facts:
        return None
    text = _norm(answer)
    return sum(_norm(f) in text for f in facts) / len(facts)


def mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of the non-None values."""
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    rank = max(1, math.ceil(q / 100 * len(vals)))
    return vals[rank - 1]
