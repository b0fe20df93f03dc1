"""Citations in generated text: numbers that name no source are dropped, sentences without a
citation get one where a source clearly supports them, weakly supported ones are flagged."""

from __future__ import annotations

import re

import numpy as np

from rag.query import lexicon as lx

CITATION_RE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])|\n+")
SUPPORT_THRESHOLD = 0.25  # share of a sentence's content words found in the cited abstract
ATTRIBUTION_THRESHOLD = 0.5  # support a source needs to get an uncited sentence


def content_words(text: str) -> set[str]:
    """The words two texts are compared by (lexicon.words, minus generic research words)."""
    return lx.words(text) - lx.GENERIC_RESEARCH_WORDS - lx.TOPIC_VERBS


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_RE.split(text) if s and s.strip()]


def cited_numbers(text: str) -> list[int]:
    return [int(x) for m in CITATION_RE.finditer(text) for x in re.split(r"\s*[,;]\s*", m.group(1))]


def check_citations(answer: str, n_sources: int) -> tuple[str, list[int], int]:
    """Drop citation numbers that name no source. Returns (clean text, cited n in order, removed count)."""
    removed = 0
    cited: list[int] = []

    def fix(match: re.Match) -> str:
        nonlocal removed
        kept = []
        for part in re.split(r"\s*[,;]\s*", match.group(1)):
            n = int(part)
            if 1 <= n <= n_sources:
                kept.append(n)
                if n not in cited:
                    cited.append(n)
            else:
                removed += 1
        return "".join(f"[{n}]" for n in kept)

    clean = CITATION_RE.sub(fix, answer)
    clean = re.sub(r"[ \t]+([.,;:])", r"\1", clean)
    return clean.strip(), cited, removed


def support(sentence: str, source_text: str) -> float:
    """Share of the sentence's content words (citations removed) that occur in the source."""
    words = content_words(CITATION_RE.sub("", sentence))
    if not words:
        return 1.0
    return len(words & content_words(source_text)) / len(words)


def source_text(source) -> str:
    p = source.paper
    return f"{p.label} {' '.join(p.authors)} {p.owner or ''} {p.abstract}"


def unsupported_sentences(answer: str, sources: list) -> list[dict]:
    flagged = []
    for sentence in split_sentences(answer):
        for n in cited_numbers(sentence):
            if 1 <= n <= len(sources):
                score = support(sentence, source_text(sources[n - 1]))
                if score < SUPPORT_THRESHOLD:
                    flagged.append({"sentence": sentence, "n": n, "support": round(score, 2)})
    return flagged


def attribute_uncited(
    answer: str, sources: list, threshold: float = ATTRIBUTION_THRESHOLD
) -> tuple[str, int]:
    """Post-hoc attribution for an answer the model left uncited: a sentence gets [n] when one
    source clearly supports it. Returns (text, citations added)."""
    if CITATION_RE.search(answer):
        return answer, 0
    added = 0
    out = []
    for sentence in split_sentences(answer):
        # A sentence naming a source's title belongs to it; else the clearly best-supported one.
        named = [
            i
            for i, s in enumerate(sources)
            if s.paper.title and len(s.paper.title) > 15 and s.paper.title.lower() in sentence.lower()
        ]
        scores = [support(sentence, source_text(s)) for s in sources]
        best = named[0] if len(named) == 1 else (int(np.argmax(scores)) if scores else -1)
        if best >= 0 and (named or scores[best] >= threshold) and len(content_words(sentence)) >= 3:
            sentence = re.sub(r"([.!?]?)$", rf" [{best + 1}]\1", sentence, count=1)
            added += 1
        out.append(sentence)
    return " ".join(out), added
