"""Which papers are about a topic: hybrid-search candidates kept when they hold every facet of
the plan's topic (its words, or the corpus terms the plan expanded them to), or are very close
to it by dense similarity. Topic lists, counts and comparison sides all decide membership here,
and a topic whose facets no single paper covers is a near miss the chain refuses."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rag.query import lexicon as lx
from rag.query.filters import paper_words
from rag.query.plan import QueryPlan
from rag.retrieve import Retriever
from rag.types import SearchHit

# Thresholds: settings.answer (rag/config.py): topic_candidates, member_sim, facet_word_share,
# common_word_share, nearest_per_facet.


@dataclass
class Membership:
    members: list[SearchHit]  # about the topic, in search order
    by_facet: dict[str, list[SearchHit]] = field(default_factory=dict)  # candidates holding each facet
    candidates: list[SearchHit] = field(default_factory=list)  # all searched, best first

    def near_miss(self) -> bool:
        """Two or more facets, each held by some paper, but no paper about all of them together."""
        return len(self.by_facet) >= 2 and all(self.by_facet.values()) and not self.members

    def nearest(self, n: int) -> dict[str, list[SearchHit]]:
        """The `n` closest papers for each facet; for a one-facet topic, the closest candidates."""
        if len(self.by_facet) == 1:
            return {facet: self.candidates[:n] for facet in self.by_facet}
        return {facet: hits[:n] for facet, hits in self.by_facet.items()}


def membership(plan: QueryPlan, retriever: Retriever) -> Membership:
    """A candidate holds a part of the topic (plan.conjuncts: facets a joining preposition
    separates) when it holds one of the part's facets by its words (or the plan's expansions of
    them), or by dense similarity: to the whole topic when it has one part, to each part on its
    own when it has several (a federated chest X-ray paper is close to "federated learning for
    mammography" as a whole, not to "mammography"). Members hold every part."""
    cfg = retriever.settings.answer
    result = retriever.search(plan.topic, k=cfg.topic_candidates, plan=plan)
    parts = {" ".join(group): group for group in _parts(plan)}
    ids = [h.paper.paper_id for h in result.hits]
    close = (
        {name: retriever.similarities(facet_text(name, plan.expansions), ids) for name in parts}
        if len(parts) > 1
        else {name: {h.paper.paper_id: h.dense_sim or 0.0 for h in result.hits} for name in parts}
    )
    variants = {
        f: [distinctive(v, retriever) for v in facet_variants(f, plan.expansions)]
        for group in parts.values()
        for f in group
    }
    out = Membership([], {name: [] for name in parts}, result.hits)
    for hit in result.hits:
        text = paper_words(hit.paper)
        held = [
            name
            for name, group in parts.items()
            if any(facet_covered(variants[f], cfg.facet_word_share, text) for f in group)
            or close[name].get(hit.paper.paper_id, 0.0) >= cfg.member_sim
        ]
        for name in held:
            out.by_facet[name].append(hit)
        if parts and len(held) == len(parts):
            out.members.append(hit)
    return out


def _parts(plan: QueryPlan) -> list[list[str]]:
    groups = [[f for f in group if lx.words(f)] for group in plan.conjuncts]
    return [g for g in groups if g] or [[f] for f in plan.facets if lx.words(f)]


def facet_text(facet: str, expansions: dict[str, str]) -> str:
    """The facet with the corpus terms its words were expanded to, for dense similarity."""
    words = lx.words(facet)
    return " ".join([facet] + [term for typed, term in expansions.items() if lx.words(typed) <= words])


def facet_variants(facet: str, expansions: dict[str, str]) -> list[set[str]]:
    """The facet's words, and the same words with the plan's expansions put in for what they
    expand: a corrected spelling replaces its typo ("federated lerning" -> {federated, learning}),
    a long form its acronym, each listed synonym its everyday phrase ("heart signals" -> {ecg} or
    {electrocardiogram}; lx.SYNONYMS lists alternatives comma-separated)."""
    variants = [_unhyphenated(facet)]
    for typed, term in expansions.items():
        replaced = _unhyphenated(typed)
        variants += [
            (v - replaced) | _unhyphenated(alternative)
            for v in variants
            if replaced <= v
            for alternative in term.split(",")
            if lx.words(alternative)
        ]
    return [(v - lx.GENERIC_RESEARCH_WORDS) or v for v in variants]


def _unhyphenated(text: str) -> set[str]:
    """Words of a facet, a hyphenated one as its parts: "state-space" matches "state space"."""
    return lx.words(text.replace("-", " "))


def facet_covered(variants: list[set[str]], share: float, text: set[str]) -> bool:
    """Some variant of the facet has `share` of its (distinctive) words in the text."""
    return any(v and len(v & text) >= math.ceil(share * len(v)) for v in variants)


def distinctive(words: set[str], retriever: Retriever) -> set[str]:
    """A facet's words without those most papers use ("data" in "speech data"); all if every one is."""
    df, n = retriever.table.word_papers, len(retriever.table.papers)
    rare = {w for w in words if df[w] <= retriever.settings.answer.common_word_share * n}
    return rare or words
