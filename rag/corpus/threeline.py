"""Layout "three-line": entries of exactly three lines, no blank lines between them.

43.0CVJun 1Code               <- optional score, category glued to date, optional badge
Some TitleFirst Author, Second Author et al.   <- title glued to authors, no separator
Abstract
"""

from __future__ import annotations

from rag.corpus.dates import parse_month_day
from rag.corpus.lines import CATEGORY_DATE_RE, most_common_author, split_title_authors
from rag.types import ListingEntry, SkippedLine


def parse(
    lines: list[tuple[int, str]],
) -> tuple[list[ListingEntry], list[SkippedLine], str | None, dict[str, str]]:
    entries: list[ListingEntry] = []
    skipped: list[SkippedLine] = []
    starts = [i for i, (_, text) in enumerate(lines) if CATEGORY_DATE_RE.match(text)]
    for no, text in lines[: starts[0] if starts else len(lines)]:
        skipped.append(SkippedLine(no, text, "before first entry"))
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        block = lines[start:end]
        m = CATEGORY_DATE_RE.match(block[0][1])
        assert m
        entry = ListingEntry(
            listing="", abstract="", category=m.group("category"), has_code=bool(m.group("code"))
        )
        entry.parsed_date = parse_month_day(m.group("month"), m.group("day"), m.group("year"))
        entry.lines.append(block[0][0])
        if len(block) < 3:
            for no, text in block:
                skipped.append(SkippedLine(no, text, "incomplete entry (no abstract)"))
            continue
        title, authors, truncated = split_title_authors(block[1][1].strip())
        entry.title, entry.authors, entry.authors_truncated = title, authors, truncated
        entry.lines.append(block[1][0])
        entry.abstract = "\n".join(text for _, text in block[2:])
        entry.lines.extend(no for no, _ in block[2:])
        entries.append(entry)
    owner = most_common_author([e.authors for e in entries])
    return entries, skipped, owner, {}
