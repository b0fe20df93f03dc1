"""Comparisons: each side is retrieved with its own filters and topic, and the groups reach
the model labelled by side, so neither side can crowd the other out."""

from __future__ import annotations

import dataclasses

from rag import prompts
from rag.answer.generate import select_evidence, source_block
from rag.answer.records import Source
from rag.query.plan import QueryPlan
from rag.retrieve import Retriever

PAPERS_PER_SIDE = 3
SENTENCES_PER_PAPER = 1
MIN_SIDE_SIM = 0.30  # a side's hits below this similarity are not about the question


def side_sources(plan: QueryPlan, retriever: Retriever, question: str) -> list[tuple[str, list[Source]]]:
    """Each side's label and its numbered sources (numbers run on across the sides)."""
    groups: list[tuple[str, list[Source]]] = []
    n = 1
    for side in plan.sides:
        filters = side.filters.merged(plan.filters)
        side_plan = dataclasses.replace(plan, filters=filters, sides=[])
        hits = retriever.search(side.topic or plan.topic or question, k=PAPERS_PER_SIDE, plan=side_plan).hits
        hits = [h for h in hits if (h.dense_sim or 0.0) >= MIN_SIDE_SIM]
        sources = select_evidence(retriever.embed_model, question, hits, SENTENCES_PER_PAPER, start=n, side=side.label)
        n += len(sources)
        groups.append((side.label, sources))
    return groups


def compare_prompt(question: str, groups: list[tuple[str, list[Source]]]) -> str:
    blocks = [prompts.COMPARE_GROUP.format(label=label, sources=source_block(sources)) if sources
              else prompts.COMPARE_EMPTY_SIDE.format(label=label) for label, sources in groups]
    return prompts.COMPARE_PROMPT.format(groups="\n\n".join(blocks), question=question)
