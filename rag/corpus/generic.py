"""Fallback for files in no known layout: each prose paragraph (blank-line separated, or a
long line on its own) becomes an untitled paper; everything else is reported as skipped."""

from __future__ import annotations

from rag.corpus.lines import looks_like_prose
from rag.types import ListingEntry, SkippedLine


def parse(
    lines: list[tuple[int, str]],
) -> tuple[list[ListingEntry], list[SkippedLine], str | None, dict[str, str]]:
    entries: list[ListingEntry] = []
    skipped: list[SkippedLine] = []
    for no, text in lines:
        if looks_like_prose(text, 30):
            entries.append(ListingEntry(listing="", abstract=text, lines=[no]))
        else:
            skipped.append(SkippedLine(no, text, "not prose"))
    return entries, skipped, None, {}
