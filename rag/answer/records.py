"""What an answer is made of: the streamed events, the numbered sources, the final answer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rag.types import Paper


class EventKind(StrEnum):
    STATUS = "status"
    PLAN = "plan"  # the QueryPlan, before anything else is computed
    SOURCES = "sources"
    TOKEN = "token"
    ERROR = "error"
    DONE = "done"


class AnswerKind(StrEnum):
    RAG = "rag"  # generated from sources by the LLM
    TABLE = "table"  # computed from the records
    REFUSAL = "refusal"
    ERROR = "error"
    SOURCES = "sources"  # sources only: generation was switched off


@dataclass
class Event:
    """One step of a streamed answer."""

    kind: str
    data: Any = None


@dataclass
class Source:
    n: int
    paper: Paper
    evidence: list[str]
    score: float = 0.0
    side: str = ""  # the comparison side this source was retrieved for

    def to_json(self) -> dict:
        data = {"n": self.n, **self.paper.to_json(), "evidence": self.evidence}
        if self.side:
            data["side"] = self.side
        return data


@dataclass
class Answer:
    question: str
    answer: str
    refused: bool
    citations: list[Source]
    sources: list[Source]
    model: str
    timings: dict[str, float | None]
    standalone_question: str = ""
    kind: str = AnswerKind.RAG
    filters: str = ""
    checks: dict[str, Any] = dataclasses.field(default_factory=dict)
    cut_off: bool = False
    plan: dict[str, Any] | None = None

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "citations": [s.to_json() for s in self.citations],
            "sources": [s.to_json() for s in self.sources],
            "model": self.model,
            "timings": self.timings,
            "standalone_question": self.standalone_question,
            "kind": str(self.kind),
            "filters": self.filters,
            "checks": self.checks,
            "cut_off": self.cut_off,
            "plan": self.plan,
        }
