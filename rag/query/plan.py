"""The typed result of understanding a question: what is asked (intent), about which papers
(filters), on what (topic and its facets), and what was recognised on the way (notes)."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from rag.query.filters import Filters


class Intent(StrEnum):
    """The closed set of things a question can ask; each has one handler in rag/answer/."""

    COUNT = "count"  # how many papers (match the filters / the topic)
    LIST = "list"  # the papers matching filters, no topic
    NEWEST = "newest"  # newest-k, with or without a topic
    OLDEST = "oldest"
    PER_YEAR = "per_year"
    PER_LISTING = "per_listing"
    COAUTHORS = "coauthors"  # who X publishes with
    JOINT = "joint"  # papers X wrote with Y (all named people)
    FIELD = "field"  # a field of one named paper
    SHARED = "shared"  # papers in more than one listing
    PROFILE = "profile"  # a statistic a profile page states
    COMPARE = "compare"  # two or more sides
    TOPIC_LIST = "topic_list"  # which papers are about a topic
    FACT = "fact"  # a factual or open question, answered from abstracts

    @property
    def from_table(self) -> bool:
        """Answered from the records alone, without retrieval or the LLM."""
        return self in TABLE_INTENTS


TABLE_INTENTS = frozenset(
    {
        Intent.COUNT,
        Intent.LIST,
        Intent.NEWEST,
        Intent.OLDEST,
        Intent.PER_YEAR,
        Intent.PER_LISTING,
        Intent.COAUTHORS,
        Intent.JOINT,
        Intent.FIELD,
        Intent.SHARED,
        Intent.PROFILE,
    }
)


@dataclass
class Side:
    """One side of a comparison: its own filters and, when it has one, its own topic."""

    label: str
    filters: Filters
    topic: str = ""


@dataclass
class Unheld:
    """Something asked that the records do not hold (unless an abstract happens to state it)."""

    what: str  # "the hardware used"
    evidence_words: list[str] = dataclasses.field(
        default_factory=list
    )  # words that would mean an abstract holds it


@dataclass
class QueryPlan:
    """A question, understood once and passed down; nothing downstream re-reads the text."""

    question: str
    intent: Intent
    filters: Filters = dataclasses.field(default_factory=Filters)
    topic: str = ""  # what remains after entities, cues and stop words
    facets: list[str] = dataclasses.field(default_factory=list)  # the topic's separable parts
    conjuncts: list[list[str]] = dataclasses.field(
        default_factory=list
    )  # facets grouped: a paper covers every group
    sides: list[Side] = dataclasses.field(default_factory=list)
    k: int | None = None  # "the three most recent"
    paper_id: str | None = None  # a paper the question names
    paper_label: str | None = None
    field: str | None = None  # authors | date | category | listing | n_authors
    stat: str | None = None  # profile statistic: h-index, citations, novelty, ai score
    unheld: Unheld | None = None
    is_followup: bool = False
    wants_number: bool = False  # "how well", "what accuracy": the answer is a quantity
    corrections: dict[str, str] = dataclasses.field(default_factory=dict)  # typed -> corrected cue word
    expansions: dict[str, str] = dataclasses.field(default_factory=dict)  # topic phrase -> corpus term(s)
    notes: list[str] = dataclasses.field(default_factory=list)
    confidence: float = 1.0  # 1.0: a cue named the intent; lower: inferred from what is missing
    source: str = "rules"  # "rules" or "llm"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["intent"] = str(self.intent)
        data["filters"] = self.filters.to_json()
        data["sides"] = [
            {"label": s.label, "filters": s.filters.to_json(), "topic": s.topic} for s in self.sides
        ]
        return data

    @property
    def computed(self) -> bool:
        """Answered from the records alone: a table intent, or a comparison of sides with no
        topic (their papers are counted)."""
        if self.unheld is not None:
            return False
        if self.intent is Intent.COMPARE:
            return bool(self.sides) and not (self.topic or any(side.topic for side in self.sides))
        return self.intent.from_table

    def search_text(self, text: str) -> str:
        """What retrieval searches for: the text plus the corpus's terms for its topic words."""
        extra = " ".join(v for v in self.expansions.values() if v.lower() not in text.lower())
        return f"{text} {extra}".strip()

    def summary(self) -> str:
        """One line: "list · author Harald Binder · 2026"."""
        parts = [str(self.intent).replace("_", " ")]
        if self.k:
            parts.append(f"k {self.k}")
        if described := self.filters.describe():
            parts.append(described.replace(": ", " "))
        if self.paper_label:
            parts.append(f"paper “{self.paper_label[:60]}”")
        if self.field:
            parts.append(f"field {self.field}")
        if self.stat:
            parts.append(self.stat)
        for side in self.sides:
            parts.append(f"side {side.label}")
        if self.topic:
            parts.append(f"topic “{self.topic}”")
        if self.unheld:
            parts.append(f"not in the records: {self.unheld.what}")
        for typed, corrected in {**self.corrections, **self.expansions}.items():
            parts.append(f"{typed}→{corrected}")
        return " · ".join(parts)
