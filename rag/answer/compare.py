"""Comparisons: each side is retrieved with its own filters and topic; every side's papers are
listed at once (computed, cited), then the groups reach the model labelled by side, so neither
side can crowd the other out."""

from __future__ import annotations

import dataclasses

from rag import prompts
from rag.answer.generate import select_evidence, source_block
from rag.answer.members import membership
from rag.answer.records import Source
from rag.query.plan import QueryPlan
from rag.retrieve import Retriever

# Per side in the prompt: settings.answer.compare_papers_per_side papers with
# compare_sentences_per_paper sentences each; every member of a side is among the sources.


def side_sources(plan: QueryPlan, retriever: Retriever, question: str) -> list[tuple[str, list[Source]]]:
    """Each side's label and its sources: every paper of the side about the topic (decided as
    for topic lists), best first. The prompt numbers the first few of each side."""
    groups: list[tuple[str, list[Source]]] = []
    for side in plan.sides:
        own_topic = bool(side.topic) and side.topic != plan.topic  # a facet of the question
        side_plan = dataclasses.replace(
            plan,
            filters=side.filters.merged(plan.filters),
            sides=[],
            topic=side.topic or plan.topic,
            facets=[side.topic] if own_topic else plan.facets,
            conjuncts=[[side.topic]] if own_topic else plan.conjuncts,
        )
        hits = membership(side_plan, retriever).members if side_plan.topic else []
        cfg = retriever.settings.answer
        sources = select_evidence(
            retriever.embed_model,
            question,
            hits,
            cfg.compare_sentences_per_paper,
            side=side.label,
            lexical_bonus=cfg.lexical_bonus,
        )
        groups.append((side.label, sources))
    return groups


def number_for_prompt(
    groups: list[tuple[str, list[Source]]], per_side: int
) -> tuple[list[Source], list[tuple[str, list[Source]]]]:
    """All sources numbered: each side's first `per_side` (what the model sees) come first."""
    shown = [(label, sources[:per_side]) for label, sources in groups]
    rest = [s for _, sources in groups for s in sources[per_side:]]
    ordered = [s for _, sources in shown for s in sources] + rest
    for n, source in enumerate(ordered, start=1):
        source.n = n
    return ordered, shown


def compare_prompt(question: str, shown: list[tuple[str, list[Source]]]) -> str:
    blocks = [
        prompts.COMPARE_GROUP.format(label=label, sources=source_block(sources))
        if sources
        else prompts.COMPARE_EMPTY_SIDE.format(label=label)
        for label, sources in shown
    ]
    return prompts.COMPARE_PROMPT.format(groups="\n\n".join(blocks), question=question)


def side_lists_text(plan: QueryPlan, groups: list[tuple[str, list[Source]]]) -> str:
    """One line per side: its papers on the topic, each cited, in the order of the sources."""
    lines = []
    for (label, sources), side in zip(groups, plan.sides, strict=True):
        topic = side.topic or plan.topic
        if not sources:
            lines.append(prompts.COMPARE_SIDE_NONE.format(label=label, topic=topic))
            continue
        items = "; ".join(
            prompts.COMPARE_SIDE_ITEM.format(label=s.paper.label, year=s.paper.year or "undated", n=s.n)
            for s in sorted(sources, key=lambda s: s.n)
        )
        lines.append(prompts.COMPARE_SIDE_LIST.format(label=label, n=len(sources), topic=topic, items=items))
    return "\n".join(lines)
