"""Citations in generated text, checked against the sources' whole abstracts.

In order (`check_answer`): numbers that name no source are dropped; an answer the model left
uncited gets [n] where one source clearly supports a sentence; a cited sentence that none of its
sources supports moves to the source that clearly does, or is marked as unsupported in the text.
"Support" is lexical: the share of a sentence's content words found in a source's text."""

from __future__ import annotations

import re

import numpy as np

from rag import prompts
from rag.config import AnswerSettings
from rag.query import lexicon as lx

CITATION_RE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])|\n+")
_DEFAULTS = AnswerSettings()


def content_words(text: str) -> set[str]:
    """The words two texts are compared by (lexicon.words, minus generic research words)."""
    return lx.words(text) - lx.GENERIC_RESEARCH_WORDS - lx.TOPIC_VERBS


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_RE.split(text) if s and s.strip()]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, so a sentence can be rewritten in place, layout kept."""
    spans, start = [], 0
    for sep in [*_SENTENCE_RE.finditer(text), None]:
        end = sep.start() if sep else len(text)
        if text[start:end].strip():
            spans.append((start, end))
        start = sep.end() if sep else end
    return spans


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


def unsupported_sentences(
    answer: str, sources: list, threshold: float = _DEFAULTS.support_threshold
) -> list[dict]:
    flagged = []
    for sentence in split_sentences(answer):
        for n in cited_numbers(sentence):
            if 1 <= n <= len(sources):
                score = support(sentence, source_text(sources[n - 1]))
                if score < threshold:
                    flagged.append({"sentence": sentence, "n": n, "support": round(score, 2)})
    return flagged


def attribute_uncited(
    answer: str, sources: list, threshold: float = _DEFAULTS.attribution_threshold
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


def _recite(sentence: str, n: int) -> str:
    """The sentence with its citations replaced by one [n] at its end."""
    bare = re.sub(r"\s+([.,;:!?])", r"\1", CITATION_RE.sub("", sentence)).rstrip()
    return re.sub(r"([.!?:]?)$", rf" [{n}]\1", bare, count=1)


def reattribute(
    answer: str, sources: list, cfg: AnswerSettings = _DEFAULTS
) -> tuple[str, list[dict], list[dict]]:
    """Check each cited sentence against all sources.

    Supported by one of its citations: kept. Supported by none, but another source holds at least
    `attribution_threshold` of its words: its citations become that source's number (moved).
    Supported by no source: marked in the text (unsupported). Returns (text, moved, unsupported).
    """
    moved: list[dict] = []
    unsupported: list[dict] = []
    parts, last = [], 0
    for start, end in sentence_spans(answer):
        sentence = answer[start:end]
        cited = [n for n in cited_numbers(sentence) if 1 <= n <= len(sources)]
        scores = [support(sentence, source_text(s)) for s in sources] if cited else []
        if cited and max(scores[n - 1] for n in cited) < cfg.support_threshold:
            best = int(np.argmax(scores))
            if scores[best] >= cfg.attribution_threshold:
                moved.append({"sentence": sentence.strip(), "from": cited, "to": best + 1})
                sentence = _recite(sentence, best + 1)
            else:
                worst = max(cited, key=lambda n: scores[n - 1])
                unsupported.append(
                    {"sentence": sentence.strip(), "n": worst, "support": round(scores[worst - 1], 2)}
                )
                sentence = sentence.rstrip() + prompts.UNSUPPORTED_MARK
        parts += [answer[last:start], sentence]
        last = end
    parts.append(answer[last:])
    return "".join(parts), moved, unsupported
