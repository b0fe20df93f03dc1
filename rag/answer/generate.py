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
    """The sentences of each paper most similar to the question (in their original order); each
    question word a sentence shares adds `lexical_bonus` to its similarity, a number in it
    `number_bonus` (given when the question asks for a quantity)."""
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
    sources, offset = [], 0
    for n, (hit, sents) in enumerate(zip(hits, sentences, strict=True), start=start):
        scores = [
            sims[offset + i]
            + lexical_bonus * len(q_words & content_words(s))
            + (number_bonus if _DIGIT_RE.search(s) else 0.0)
            for i, s in enumerate(sents)
        ]
        offset += len(sents)
        best = sorted(np.argsort(scores)[::-1][:per_paper])
        sources.append(Source(n, hit.paper, [sents[i] for i in best], hit.score, side))
    return sources


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
