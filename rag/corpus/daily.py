"""Layout "daily papers": a page header, then entries of

    Title
    Abstract
      • 7 authors
    ·
    Aug 29, 2022                  <- the date of the paper ABOVE it

with blank lines in between. The author/date block can be missing for an entry. The bare
date under the page header ("Apr 22") is the page's date, not a paper's.
"""

from __future__ import annotations

from rag.corpus.dates import parse_month_day
from rag.corpus.lines import AUTHOR_COUNT_RE, DATE_LINE_RE, looks_like_prose, word_count
from rag.types import ListingEntry, SkippedLine


def parse(
    lines: list[tuple[int, str]],
) -> tuple[list[ListingEntry], list[SkippedLine], str | None, dict[str, str]]:
    entries: list[ListingEntry] = []
    skipped: list[SkippedLine] = []
    profile: dict[str, str] = {}
    owner: str | None = None
    current: ListingEntry | None = None
    pending_title: tuple[int, str] | None = None

    # The header ends at the first title: a short line followed by an abstract-like line.
    first = next(
        (
            i
            for i in range(len(lines) - 1)
            if not looks_like_prose(lines[i][1]) and looks_like_prose(lines[i + 1][1], 40)
        ),
        len(lines),
    )
    for no, text in lines[:first]:
        if text.strip() in ("Daily Papers",):
            owner = text.strip()
        elif text.startswith("by") and owner:
            profile["curated by"] = text[2:].strip()
        elif DATE_LINE_RE.match(text):
            profile["page date"] = text.strip()
        skipped.append(SkippedLine(no, text, "header"))

    for no, text in lines[first:]:
        if m := AUTHOR_COUNT_RE.match(text):
            if current is not None and current.n_authors is None:
                current.n_authors = int(m.group("n"))
                current.lines.append(no)
            else:
                skipped.append(SkippedLine(no, text, "author count without paper"))
        elif text.strip() == "·":
            (current.lines.append(no) if current else skipped.append(SkippedLine(no, text, "noise")))
        elif m := DATE_LINE_RE.match(text):
            if current is not None and not hasattr(current, "_parsed_date"):
                current.parsed_date = parse_month_day(m.group("month"), m.group("day"), m.group("year"))
                current.lines.append(no)
            else:
                skipped.append(SkippedLine(no, text, "date without paper"))
        elif pending_title is None and word_count(text) < 40 and not looks_like_prose(text, 40):
            pending_title = (no, text)
        else:
            title_no, title = pending_title if pending_title else (None, None)
            current = ListingEntry(listing="", abstract=text, title=title.strip() if title else None)
            current.lines = [n for n in (title_no, no) if n is not None]
            entries.append(current)
            pending_title = None
    if pending_title:
        skipped.append(SkippedLine(pending_title[0], pending_title[1], "title without abstract"))
    return entries, skipped, owner, profile
