"""Topic lists: the members (rag/answer/members.py) listed at once, each with its label, year,
owner and best evidence sentence, cited; then a short synthesis the model may add."""

from __future__ import annotations

from rag import prompts
from rag.answer.generate import source_block
from rag.answer.records import Source
from rag.query.plan import QueryPlan

EVIDENCE_CHARS = 220  # of the evidence sentence shown beside each item


def topic_list_text(plan: QueryPlan, sources: list[Source]) -> str:
    scope = plan.filters.describe()
    header = prompts.TOPIC_LIST_HEADER.format(
        n=len(sources), topic=plan.topic, scope=f" ({scope})" if scope else ""
    )
    return "\n".join([header] + [_item(s) for s in sources])


def _item(source: Source) -> str:
    p = source.paper
    evidence = " ".join(source.evidence)
    if len(evidence) > EVIDENCE_CHARS:
        evidence = evidence[: EVIDENCE_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return prompts.TOPIC_LIST_ITEM.format(
        n=source.n, label=p.label, year=p.year or "undated", owner=p.owner or "unknown", evidence=evidence
    )


def cited(sources: list[Source]) -> list[int]:
    return [s.n for s in sources]


def synthesis_prompt(question: str, sources: list[Source]) -> str:
    return prompts.TOPIC_SYNTHESIS_PROMPT.format(sources=source_block(sources), question=question)
