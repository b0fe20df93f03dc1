"""Refusal is decided by the app, not the model: a question that steers the assistant, asks
for what the records do not hold, or finds no paper close enough gets a plain answer saying so."""

from __future__ import annotations

import re

from rag import prompts
from rag.answer.records import Source
from rag.config import AnswerSettings
from rag.query import lexicon as lx
from rag.query.plan import QueryPlan
from rag.types import SearchHit

# Thresholds: settings.answer (rag/config.py): min_dense_sim, unknown_word_sim, typo_score.

# Text that tries to steer the model. Abstracts are data: such sentences never become evidence,
# and a question made of them gets the assistant's scope instead of an answer.
INJECTION_RE = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instructions?|prompts?|rules|above|previous)\b|"
    r"\bsystem prompt\b|^\s*(system|assistant|user)\s*:|\byou are now\b|\bnew instructions?\b|"
    r"<\|im_start\|>|\[INST\]",
    re.IGNORECASE | re.MULTILINE,
)


def unheld_reason(plan: QueryPlan, hits: list[SearchHit], n_papers: int) -> str | None:
    """What the plan asks for that the records do not hold, unless the nearest abstracts state it."""
    if plan.unheld is None:
        return None
    evidence = set(plan.unheld.evidence_words)
    if evidence:
        text = {t.norm for h in hits[:n_papers] for t in lx.tokenize(h.paper.abstract)}
        if text & evidence:
            return None
    return plan.unheld.what


def weak_retrieval(best_sim: float, topic_words: list[str], unknown: list[str], cfg: AnswerSettings) -> bool:
    """Nothing close enough; or half the topic unknown to the corpus ("quantum cryptography")
    with no close paper. A single paraphrased word ("fundus" for "fundoscopies") is not enough."""
    return best_sim < cfg.min_dense_sim or (
        len(unknown) >= max(1, len(topic_words)) / 2 and best_sim < cfg.unknown_word_sim
    )


def refusal_text(reason: str | None) -> str:
    return prompts.REFUSAL_NOT_IN_RECORDS.format(what=reason) if reason else prompts.REFUSAL_NO_EVIDENCE


def near_miss_text(nearest: dict[str, list[SearchHit]], sources: list[Source]) -> str:
    """ "The listings don't cover A and B together … A: X [1], Y [2]; B: …", or for one part,
    "The listings don't cover A … The nearest: X [1], Y [2]." """
    number = {s.paper.paper_id: s.n for s in sources}

    def refs(hits: list[SearchHit]) -> str:
        return ", ".join(f"{h.paper.label} [{number[h.paper.paper_id]}]" for h in hits)

    quoted = " and ".join(f"“{f}”" for f in nearest)
    if len(nearest) == 1:
        return prompts.NOTHING_ON_TOPIC.format(combination=quoted, refs=refs(next(iter(nearest.values()))))
    lines = [prompts.NEAR_MISS.format(combination=quoted)]
    for facet, hits in nearest.items():
        lines.append(
            prompts.NEAR_MISS_FACET.format(facet=facet, refs=refs(hits))
            if hits
            else prompts.NEAR_MISS_NONE.format(facet=facet)
        )
    return "\n".join(lines)
