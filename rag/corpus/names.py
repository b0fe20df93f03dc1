"""Author names: a display form as printed, and a matching key.

The key folds spelling variants of one person (Müller = Mueller, Blücher = Bluecher, an
optional middle initial) while keeping different people with a shared surname apart: it is
the first given name plus the surname, so "Nils Strodthoff" and "Claas Strodthoff" differ.
"""

from __future__ import annotations

import re
import unicodedata

# German umlauts and ß are transliterated the German way, so that both spellings meet.
_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "ae", "Ö": "oe", "Ü": "ue"})


def fold(text: str) -> str:
    """Lower-case ASCII form of a name or word: umlauts as ae/oe/ue, other accents dropped."""
    if text.isascii():  # most text: nothing to transliterate or strip (10x faster on abstracts)
        return text.lower()
    text = text.translate(_TRANSLIT)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.lower()


_UMLAUT_SPELLINGS = re.compile(r"(?<=[aou])e")


def name_match_tokens(name: str) -> list[str]:
    """The folded tokens names are compared by: "N. Strodthoff" -> ["n", "strodthoff"].
    "Müller", "Mueller" and a typed "Muller" meet: ue/oe/ae compare as u/o/a."""
    return [_UMLAUT_SPELLINGS.sub("", t) for t in re.split(r"[\s.]+", fold(name)) if t]


def author_key(name: str) -> str:
    """Matching key of a full name: first given name (before any hyphen) + last token."""
    tokens = name_match_tokens(name)
    if not tokens:
        return ""
    if len(tokens) == 1:
        return tokens[0]
    first = tokens[0].split("-")[0]
    return f"{first} {tokens[-1]}"


def surname_key(name: str) -> str:
    """Folded last token of a name: what a question saying just "Strodthoff" matches."""
    tokens = name_match_tokens(name)
    return tokens[-1] if tokens else ""


def name_matches(query: str, author: str) -> bool:
    """Does a name as a user typed it ("strodthoff", "Nils Strodthoff", "N. Strodthoff") name this author?"""
    q = name_match_tokens(query)
    a = name_match_tokens(author)
    if not q or not a:
        return False
    if q[-1] != a[-1]:
        return False
    if len(q) == 1:
        return True
    first_q, first_a = q[0].split("-")[0], a[0].split("-")[0]
    if len(first_q) == 1:  # an initial
        return first_a.startswith(first_q)
    return first_q == first_a
