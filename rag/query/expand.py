"""Topic words as the corpus spells them: typos corrected against the corpus vocabulary,
acronyms and their long forms mined from the abstracts ("structured state space models
(SSMs)"), and a small documented list of everyday words (lexicon.SYNONYMS).

The result is a list of expansions shown in the plan and added to the search text; the
question itself is never rewritten.
"""

from __future__ import annotations

import re
from collections import Counter

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA
from wordfreq import zipf_frequency

from rag.config import QuerySettings
from rag.query import lexicon as lx
from rag.types import Paper

# Typo lengths and scores, the acronym context: settings.query (rag/config.py).
_ACRONYM_RE = re.compile(r"\(([A-Z][A-Za-z0-9-]*[A-Z][A-Za-z0-9]*?)s?\)")


def word_frequency(papers: list[Paper]) -> Counter[str]:
    """How many papers use each folded word (ties between typo corrections)."""
    return Counter(w for p in papers for w in {t.norm for t in lx.tokenize(p.abstract)})


def mine_acronyms(papers: list[Paper], context_chars: int) -> dict[str, str]:
    """acronym (folded, singular) -> long form, from "long form (ACRONYM)" in the abstracts; the
    long form is looked for in the `context_chars` characters before "("."""
    found: dict[str, str] = {}
    for paper in papers:
        for m in _ACRONYM_RE.finditer(paper.abstract):
            acronym = m.group(1)
            letters = [c.lower() for c in acronym if c.isupper()]
            before = paper.abstract[max(0, m.start() - context_chars) : m.start()]
            words = re.findall(r"[A-Za-z][\w]*", before)
            long_form = _long_form(words, letters)
            if long_form:
                found.setdefault(lx.fold(acronym), long_form)
    return found


def _long_form(words: list[str], letters: list[str]) -> str | None:
    """The last words whose initials spell the acronym's capitals (skipping "of", "and", …)."""
    picked: list[str] = []
    want = list(letters)
    for word in reversed(words):
        if not want:
            break
        if word.lower() in lx.STOP_WORDS and picked:
            picked.append(word)
            continue
        if word[:1].lower() != want[-1]:
            return None
        picked.append(word)
        want.pop()
    if want or len(picked) < 2:
        return None
    return " ".join(reversed(picked)).lower()


class Expander:
    """Expansions of a topic against one corpus."""

    def __init__(
        self,
        vocabulary: set[str],
        acronyms: dict[str, str],
        frequency: Counter[str] | None = None,
        settings: QuerySettings | None = None,
    ):
        self.settings = settings or QuerySettings()
        self.vocabulary = vocabulary
        self.frequency = frequency or Counter()
        self.acronyms = acronyms
        self.long_forms = {long: acr for acr, long in acronyms.items()}
        self.all_by_letter: dict[str, list[str]] = {}  # every corpus word, by its first letter
        for word in sorted(vocabulary):
            self.all_by_letter.setdefault(word[:1], []).append(word)
        shortest = self.settings.topic_typo_min_length  # what a typo may be corrected to
        self.by_letter = {c: [w for w in ws if len(w) >= shortest] for c, ws in self.all_by_letter.items()}

    def expand(self, topic: str) -> dict[str, str]:
        """typed phrase -> what the corpus says for it."""
        out: dict[str, str] = {}
        folded = " " + " ".join(t.norm for t in lx.tokenize(topic)) + " "
        for phrase, meaning in lx.SYNONYMS.items():
            if f" {phrase} " in folded:
                out[phrase] = meaning
        for tok in lx.tokenize(topic):
            word = tok.norm
            if word in out or any(word in p.split() for p in out):
                continue
            if (acr := self.acronyms.get(word) or self.acronyms.get(lx.singular(word))) is not None:
                out[word] = acr
            elif fix := self.correct(word):
                out[word] = fix
        for long, acr in self.long_forms.items():
            if f" {long} " in folded or f" {long}s " in folded:
                out.setdefault(long, acr)
        return out

    def correct(self, word: str) -> str | None:
        cfg = self.settings
        if len(word) < cfg.topic_typo_min_length or not word.isalpha() or self.known(word):
            return None
        if zipf_frequency(word, "en") >= cfg.english_word_zipf:  # "ship", "older": words, not typos
            return None
        # One edit (a swap counts one) for short words, two for long ones; the more frequent
        # corpus word wins a tie ("modles" -> "models", not "modules").
        limit = 1 if len(word) < 8 else 2
        near = process.extract(
            word,
            self.by_letter.get(word[0], []),
            scorer=OSA.distance,
            score_cutoff=limit,
            limit=cfg.topic_typo_candidates,
        )
        if near:
            return min(near, key=lambda m: (m[1], -self.frequency[m[0]]))[0]
        # Else a shortened or garbled form close to one corpus word ("imgs" -> "images").
        close = process.extractOne(
            word, self.by_letter.get(word[0], []), scorer=fuzz.ratio, score_cutoff=cfg.topic_short_form_score
        )
        return close[0] if close else None

    def unknown(self, words: list[str], typo_score: int) -> list[str]:
        """The parts of `words` no paper uses, after forgiving typos (a corpus word with the same
        first letter and a rapidfuzz ratio of at least `typo_score`); English words count too."""
        unknown = []
        for word in words:
            for part in (p for p in lx.fold(word).split("-") if len(p) > 2):
                if (
                    part in self.vocabulary
                    or lx.singular(part) in self.vocabulary
                    or part + "s" in self.vocabulary
                ):
                    continue
                near = self.all_by_letter.get(part[0], [])
                if not process.extractOne(part, near, scorer=fuzz.ratio, score_cutoff=typo_score):
                    unknown.append(part)
        return unknown

    def known(self, word: str) -> bool:
        return word in self.vocabulary or lx.singular(word) in self.vocabulary or word in lx.KNOWN_WORDS
