"""Line-level helpers shared by the layout parsers: category/date lines, author lists, prose."""

from __future__ import annotations

import re
from collections import Counter

from rag.corpus.dates import MONTH_RE
from rag.corpus.names import author_key

# "CVMar 31", "MSMay 13, 2020Code", "43.0CVJun 1", "MED-PHApr 5, 2023": optional score,
# upper-case arXiv-style category (may be hyphenated), month, day, optional year, optional badge.
CATEGORY_DATE_RE = re.compile(
    rf"^(?P<score>\d+\.\d+)?(?P<category>[A-Z][A-Z]*(?:-[A-Z]+)*?)"
    rf"(?P<month>{MONTH_RE}) (?P<day>\d{{1,2}})(?:, (?P<year>\d{{4}}))?(?P<code>Code)?$"
)
# A bare date line of the daily-papers layout: "Aug 29, 2022", "Jan 23", "Jun 22, 2025 1".
DATE_LINE_RE = re.compile(rf"^(?P<month>{MONTH_RE}) (?P<day>\d{{1,2}})(?:, (?P<year>\d{{4}}))?(?:\s+\d+)?$")
AUTHOR_COUNT_RE = re.compile(r"^\s*[•·*-]?\s*(?P<n>\d+) authors?\s*$")
ET_AL_RE = re.compile(r",?\s+et al\.?$")

_PARTICLES = {
    "von",
    "van",
    "der",
    "den",
    "de",
    "da",
    "del",
    "della",
    "di",
    "du",
    "le",
    "la",
    "dos",
    "das",
    "bin",
    "ten",
    "ter",
    "zu",
}


def _is_name_part(part: str) -> bool:
    if not part:
        return False
    if re.fullmatch(r"(?:Mc|Mac)[^\W\d_][^\W\d_]+", part):
        return True
    head, rest = part[0], part[1:]
    return head.isalpha() and head.isupper() and (rest == "" or (rest.isalpha() and rest.islower()))


def is_name_token(token: str) -> bool:
    """A word of a person's name: "Nils", "J.", "M", "Al-Masud", "O'Neil", "von"."""
    if token in _PARTICLES:
        return True
    if len(token) == 2 and token.endswith("."):
        token = token[0]
    if len(token) == 1:
        return token.isalpha() and token.isupper()
    return all(_is_name_part(p) for p in re.split(r"[-'’]", token))


def is_person_name(text: str) -> bool:
    """Two to six name tokens, ending in a surname of two or more letters."""
    tokens = text.split()
    if not 2 <= len(tokens) <= 6:
        return False
    if not all(is_name_token(t) for t in tokens):
        return False
    return len(tokens[-1].rstrip(".")) >= 2 and tokens[-1] not in _PARTICLES


def parse_author_list(text: str) -> tuple[list[str], bool] | None:
    """ "A B, C D et al." -> (["A B", "C D"], True); None when the text is not an author list."""
    text = text.strip()
    truncated = bool(ET_AL_RE.search(text))
    if truncated:
        text = ET_AL_RE.sub("", text)
    names = [n.strip() for n in text.split(",")]
    if not names or not all(is_person_name(n) for n in names):
        return None
    return names, truncated


def split_title_authors(line: str) -> tuple[str | None, list[str], bool]:
    """Split "Some TitleFirst Author, Second Author et al." where title and authors are glued.

    The split point is a capital letter glued to the character before it (no space); the
    leftmost such point whose remainder parses as an author list wins, so capitals inside
    the title ("ProtoMask", "MIMIC-III-Ext-PPG") are passed over because what follows them
    does not read as names. Returns (None, authors, truncated) when the whole line is an
    author list, and (line, [], False) when no split works.
    """
    whole = parse_author_list(line)
    if whole:
        return None, whole[0], whole[1]
    for i in range(1, len(line)):
        ch, prev = line[i], line[i - 1]
        if ch.isupper() and not prev.isspace() and prev not in "-(/[":
            parsed = parse_author_list(line[i:])
            if parsed:
                return line[:i].rstrip(), parsed[0], parsed[1]
    return line, [], False


def word_count(text: str) -> int:
    return len(text.split())


def looks_like_prose(text: str, min_words: int = 20) -> bool:
    """An abstract-like line: many words and sentence punctuation."""
    return word_count(text) >= min_words and bool(re.search(r"[.;:?!]", text))


def most_common_author(author_lists: list[list[str]], min_share: float = 0.5) -> str | None:
    """The author on at least `min_share` of the entries (a personal listing's owner), else None."""
    if not author_lists:
        return None
    keys: Counter[str] = Counter()
    display: dict[str, Counter[str]] = {}
    for authors in author_lists:
        for name in {author_key(a): a for a in authors}.values():
            key = author_key(name)
            keys[key] += 1
            display.setdefault(key, Counter())[name] += 1
    if not keys:  # entries without any author names
        return None
    key, count = keys.most_common(1)[0]
    if count < min_share * len(author_lists):
        return None
    return display[key].most_common(1)[0][0]
