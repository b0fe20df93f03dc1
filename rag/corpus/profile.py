"""Layout "profile": a researcher page with a stats header, then entries of

CVMar 31                      <- category glued to date (+ "Code" badge)
Title
<blank>
A, B, C et al. · org          <- author line, optional organisation after " · "
<blank>
Abstract
"""

from __future__ import annotations

import re

from rag.corpus.dates import parse_month_day
from rag.corpus.lines import CATEGORY_DATE_RE, parse_author_list, word_count
from rag.types import ListingEntry, SkippedLine

_STAT_RES = [
    re.compile(r"^(?P<key>[A-Za-z][A-Za-z -]*?)\s*(?P<value>\d[\d.,]*%?)$"),  # "h-index24", "Novelty38%"
    re.compile(r"^(?P<value>\d[\d.,]*)\s*(?P<key>[A-Za-z][A-Za-z ]*)$"),  # "18papers", "123citations"
]


def _header_stat(line: str) -> tuple[str, str] | None:
    for regex in _STAT_RES:
        m = regex.match(line)
        if m:
            return m.group("key").strip().lower(), m.group("value")
    return None


def parse(
    lines: list[tuple[int, str]],
) -> tuple[list[ListingEntry], list[SkippedLine], str | None, dict[str, str]]:
    """Entries, skipped lines, owner (the header's name) and the header's stats."""
    entries: list[ListingEntry] = []
    skipped: list[SkippedLine] = []
    profile: dict[str, str] = {}
    owner: str | None = None

    starts = [i for i, (_, text) in enumerate(lines) if CATEGORY_DATE_RE.match(text)]
    header = lines[: starts[0]] if starts else lines
    for no, text in header:
        if owner is None and word_count(text) <= 5 and not _header_stat(text):
            owner = text.strip()
            profile["name"] = owner
        elif stat := _header_stat(text):
            profile[stat[0]] = stat[1]
        elif re.fullmatch(r"[A-Z][A-Z-]*", text):
            profile["primary category"] = text
        skipped.append(SkippedLine(no, text, "header"))

    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        head_no, head = lines[start]
        m = CATEGORY_DATE_RE.match(head)
        assert m
        body = lines[start + 1 : end]
        entry = ListingEntry(
            listing="", abstract="", category=m.group("category"), has_code=bool(m.group("code"))
        )
        entry.lines.append(head_no)
        entry.parsed_date = parse_month_day(m.group("month"), m.group("day"), m.group("year"))
        rest: list[tuple[int, str]] = []
        for no, text in body:
            if not entry.authors and parse_author_list(text.split(" · ")[0]):
                names, truncated = parse_author_list(text.split(" · ")[0])  # type: ignore[misc]
                entry.authors, entry.authors_truncated = names, truncated
                if " · " in text:
                    entry.organisation = text.split(" · ", 1)[1].strip()
                entry.lines.append(no)
            else:
                rest.append((no, text))
        # What remains: an optional title line (before the authors) and the abstract.
        if len(rest) >= 2 and word_count(rest[0][1]) < word_count(rest[-1][1]):
            entry.title = rest[0][1].strip()
            entry.lines.append(rest[0][0])
            rest = rest[1:]
        if rest:
            entry.abstract = "\n".join(t for _, t in rest)
            entry.lines.extend(no for no, _ in rest)
            entries.append(entry)
        else:
            for no in entry.lines:
                text = dict(lines)[no]
                skipped.append(SkippedLine(no, text, "entry without abstract"))
    return entries, skipped, owner, profile
