"""Generation from numbered sources: the evidence sentences of each paper, the prompt, the
streamed LLM answer and its citation check."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rag import prompts
from rag.answer.citations import (
    CITATION_RE,
    attribute_uncited,
    check_citations,
    content_words,
    reattribute,
    split_sentences,
)
from rag.answer.records import Event, EventKind, Source
from rag.answer.refusal import INJECTION_RE
from rag.config import AnswerSettings
from rag.llm import LLM, LLMUnavailable
from rag.types import SearchHit

_DEFAULTS = AnswerSettings()
_DIGIT_RE = re.compile(r"\d")


def scored_sentences(
    embed_model,
    question: str,
    hits: list[SearchHit],
    lexical_bonus: float = _DEFAULTS.lexical_bonus,
    number_bonus: float = 0.0,
) -> list[list[tuple[str, float]]]:
    """Each paper's abstract sentences (in their order) with their score for the question: the
    similarity, plus `lexical_bonus` per question word the sentence shares and `number_bonus`
    if it holds a number (given when the question asks for a quantity)."""
    sentences = [
        [s for s in split_sentences(h.paper.abstract) if not INJECTION_RE.search(s)]
        or ["(no usable sentence)"]
        for h in hits
    ]
    flat = [s for sents in sentences for s in sents]
    if not flat:
        return []
    q = np.asarray(embed_model.get_query_embedding(question))
    sims = np.asarray(embed_model.get_text_embedding_batch(flat)) @ q
    q_words = content_words(question)
    scored, offset = [], 0
    for sents in sentences:
        scored.append(
            [
                (
                    s,
                    float(sims[offset + i])
                    + lexical_bonus * len(q_words & content_words(s))
                    + _numeric(s, number_bonus),
                )
                for i, s in enumerate(sents)
            ]
        )
        offset += len(sents)
    return scored


def _numeric(sentence: str, bonus: float) -> float:
    return bonus if bonus and _DIGIT_RE.search(sentence) else 0.0


def _best(scored: list[tuple[str, float]], n: int) -> list[int]:
    """Indices of the `n` best-scored sentences, best first."""
    return sorted(range(len(scored)), key=lambda i: -scored[i][1])[:n]


def select_evidence(
    embed_model,
    question: str,
    hits: list[SearchHit],
    per_paper: int,
    start: int = 1,
    side: str = "",
    lexical_bonus: float = _DEFAULTS.lexical_bonus,
    number_bonus: float = 0.0,
) -> list[Source]:
    """Each paper's `per_paper` sentences most like the question (see `scored_sentences`), in
    their original order."""
    scored = scored_sentences(embed_model, question, hits, lexical_bonus, number_bonus)
    return [
        Source(n, hit.paper, [sents[i][0] for i in sorted(_best(sents, per_paper))], hit.score, side)
        for n, (hit, sents) in enumerate(zip(hits, scored, strict=True), start=start)
    ]


def fact_evidence(
    embed_model, question: str, hits: list[SearchHit], cfg: AnswerSettings, number_bonus: float = 0.0
) -> list[Source]:
    """Evidence for a factual prompt within `cfg.fact_prompt_tokens`: up to
    `fact_top_sentences` of the best paper and `evidence_sentences` of each runner-up, taken in
    order of need (`_fact_pick_order`) while the prompt's estimated new tokens stay within the
    budget."""
    scored = scored_sentences(embed_model, question, hits, cfg.lexical_bonus, number_bonus)
    if not scored:
        return []
    ranked = [
        _best(sents, cfg.fact_top_sentences if k == 0 else cfg.evidence_sentences)
        for k, sents in enumerate(scored)
    ]
    chosen: list[set[int]] = [set() for _ in hits]
    for step, (k, i) in enumerate(_fact_pick_order(ranked, cfg.fact_lead_sentences)):
        chosen[k].add(i)
        tokens = prompt_tokens(_sources(hits, scored, chosen), question, cfg.chars_per_token)
        if step and tokens > cfg.fact_prompt_tokens:
            chosen[k].discard(i)  # over budget; a shorter sentence later may still fit
    return [s for s in _sources(hits, scored, chosen) if s.evidence]


def _fact_pick_order(ranked: list[list[int]], lead: int) -> list[tuple[int, int]]:
    """(paper, sentence) pairs in the order a factual prompt needs them: the best paper's `lead`
    best sentences, then each runner-up's best, the best paper's next, each runner-up's next..."""
    top, runners = ranked[0], ranked[1:]
    order = [(0, i) for i in top[:lead]]
    for r in range(max([len(top)] + [len(x) for x in runners])):
        order += [(k, x[r]) for k, x in enumerate(runners, start=1) if r < len(x)]
        if r + lead < len(top):
            order.append((0, top[r + lead]))
    return order


def _sources(
    hits: list[SearchHit], scored: list[list[tuple[str, float]]], chosen: list[set[int]]
) -> list[Source]:
    """Numbered from 1 in hit order, papers with no chosen sentence left out."""
    kept = [(h, sents, picks) for h, sents, picks in zip(hits, scored, chosen, strict=True) if picks]
    return [
        Source(n, h.paper, [sents[i][0] for i in sorted(picks)], h.score)
        for n, (h, sents, picks) in enumerate(kept, 1)
    ]


def prompt_tokens(sources: list[Source], question: str, chars_per_token: float) -> int:
    """Estimated tokens of a factual user prompt (the new tokens; the system prompt is cached)."""
    text = prompts.ANSWER_PROMPT.format(sources=source_block(sources), question=question)
    return round(len(text) / chars_per_token)


def source_block(sources: list[Source]) -> str:
    blocks = []
    for s in sources:
        p = s.paper
        who = p.author_names(1) or (f"{p.n_authors} authors" if p.n_authors else "authors not listed")
        blocks.append(
            prompts.SOURCE_TEMPLATE.format(
                n=s.n,
                label=p.label,
                who=who,
                year=f", {p.year}" if p.year else "",
                owner=p.owner or "unknown",
                evidence=CITATION_RE.sub("", " ".join(s.evidence)),
            )
        )  # only our numbers in the prompt
    return "\n\n".join(blocks)


@dataclass
class Generated:
    text: str
    cited: list[int]
    checks: dict
    cut_off: bool
    error: str | None


def stream_answer(
    llm: LLM,
    user_prompt: str,
    sources: list[Source],
    timings: dict,
    clock,
    cfg: AnswerSettings = _DEFAULTS,
) -> Iterator[Event | Generated]:
    """Token events, then one `Generated` with the checked text (rag/answer/citations.py)."""
    messages = [
        {"role": "system", "content": prompts.SYSTEM_PROMPT},
        {"role": "user", "content": user_prompt},
    ]
    raw: list[str] = []
    error = None
    sent = clock()
    try:
        for delta in llm.stream(messages):
            if not raw:  # the model's first token: it has read the prompt
                timings["prefill_s"] = round(clock() - sent, 3)
            if timings.get("first_token_s") is None:
                timings["first_token_s"] = clock()
            raw.append(delta)
            yield Event(EventKind.TOKEN, delta)
    except LLMUnavailable as exc:
        error = str(exc)
        yield Event(EventKind.ERROR, error)
    timings.update(llm.last_prompt_stats)  # prompt_tokens, cached_tokens (embedded server)
    clean, cited, removed = check_citations("".join(raw), len(sources))
    clean, added = attribute_uncited(clean, sources, cfg.attribution_threshold)
    clean, moved, flagged = reattribute(clean, sources, cfg)
    if added or moved:
        _, cited, _ = check_citations(clean, len(sources))
    cut_off = bool(error and raw)
    if error and not raw:
        clean = error
    elif cut_off:
        clean += prompts.CUT_OFF_NOTICE.format(reason=error)
    checks = {
        "invalid_citations_removed": removed,
        "citations_added": added,
        "citations_moved": len(moved),
        "moved": moved,
        "unsupported": flagged,
    }
    yield Generated(clean, cited, checks, cut_off, error if not raw else None)
