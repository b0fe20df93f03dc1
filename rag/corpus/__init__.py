"""Listing files -> paper records.

`parse_file` reads one file, detects its layout by content (never by name) and returns a
`ListingReport`; `load_corpus` parses many files and merges the same paper seen in several
places into one `Paper` naming every listing.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from rag.corpus import daily, generic, group, profile, threeline
from rag.corpus.dates import resolve_years
from rag.corpus.group import SECTION_RE
from rag.corpus.lines import AUTHOR_COUNT_RE, CATEGORY_DATE_RE
from rag.corpus.names import fold
from rag.errors import CorpusError as CorpusError  # re-exported; defined in rag.errors
from rag.types import ListingEntry, ListingReport, Paper

MAX_FILE_BYTES = 20 * 1024 * 1024
PARSERS = {
    "profile": profile.parse,
    "three-line": threeline.parse,
    "group": group.parse,
    "daily": daily.parse,
    "generic": generic.parse,
}

# Layouts of one researcher's own listing: their owner is a person, whose name a question may use.
# (A group page or "Daily Papers" is owned by no one person.)
PERSONAL_LAYOUTS = {"profile", "three-line"}


def read_text(path: Path) -> str:
    """Decode a listing: UTF-8 (BOM optional), UTF-16 with BOM, else Latin-1. Refuse binary/empty."""
    if not path.exists():
        raise CorpusError(f"{path}: no such file")
    if not path.is_file():
        raise CorpusError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise CorpusError(f"{path}: empty file")
    if size > MAX_FILE_BYTES:
        raise CorpusError(
            f"{path}: {size / 1e6:.1f} MB is larger than the {MAX_FILE_BYTES // 2**20} MiB limit "
            "for a listing"
        )
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    if b"\x00" in raw:
        raise CorpusError(f"{path}: binary file (contains NUL bytes), not a text listing")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if sum(not (ch.isprintable() or ch in "\n\r\t") for ch in text) > 0.05 * len(text):
        raise CorpusError(f"{path}: binary file (mostly unprintable characters), not a text listing")
    if not text.strip():
        raise CorpusError(f"{path}: contains only white space")
    return text


def detect_layout(raw_lines: list[str]) -> str:
    """Which layout a file is in, from its content."""
    starts = [i for i, t in enumerate(raw_lines) if CATEGORY_DATE_RE.match(t.strip())]
    if sum(bool(AUTHOR_COUNT_RE.match(t)) for t in raw_lines) >= 2:
        return "daily"
    if len(starts) >= 2:
        blank_after_title = sum(1 for i in starts if i + 2 < len(raw_lines) and not raw_lines[i + 2].strip())
        return "profile" if blank_after_title >= len(starts) / 2 else "three-line"
    head = [t for t in raw_lines if t.strip()][:3]
    if any(group._BIO_RE.search(t) for t in head) or sum(bool(SECTION_RE.match(t)) for t in raw_lines) >= 2:
        return "group"
    return "generic"


def parse_text(text: str, listing: str, path: str = "") -> ListingReport:
    """Parse the text of one listing file."""
    raw_lines = text.splitlines()
    lines = [(no, t.rstrip()) for no, t in enumerate(raw_lines, start=1) if t.strip()]
    layout = detect_layout(raw_lines)
    entries, skipped, owner, prof = PARSERS[layout](lines)
    warnings: list[str] = []
    if layout == "generic":
        warnings.append(
            f"{listing}: layout not recognised; parsed as plain paragraphs "
            "(titles, authors and dates unknown)"
        )
    if not entries:
        warnings.append(f"{listing}: no papers found")
    parsed = [e.parsed_date for e in entries]
    dates, inferred_year = resolve_years(parsed)
    for entry, iso, p in zip(entries, dates, parsed, strict=True):
        entry.listing = listing
        entry.date = iso
        entry.year = int(iso[:4]) if iso else None
        entry.date_inferred_year = bool(p and p[2] is None and iso)
        entry.lines.sort()
    if inferred_year is not None and any(e.date_inferred_year for e in entries):
        prof["year-less dates read as"] = str(inferred_year)
    return ListingReport(
        listing=listing,
        path=path,
        layout=layout,
        owner=owner,
        entries=entries,
        skipped=sorted(skipped, key=lambda s: s.line_no),
        warnings=warnings,
        profile=prof,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
    )


def parse_file(path: Path) -> ListingReport:
    return parse_text(read_text(path), listing=path.name, path=str(path))


def normalise_abstract(text: str) -> str:
    """The form papers are identified by: section labels dropped, folded, words only."""
    text = "\n".join(SECTION_RE.sub("", line) for line in text.splitlines())
    return " ".join(re.findall(r"[a-z0-9]+", fold(text)))


def paper_id(abstract: str) -> str:
    return hashlib.sha256(normalise_abstract(abstract).encode()).hexdigest()[:12]


def _shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = normalise_abstract(text).split()
    return {tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}


def _same_paper(a: set, b: set) -> bool:
    return len(a & b) / max(1, min(len(a), len(b))) >= 0.8


def display_label(title: str | None, abstract: str, words: int = 9) -> str:
    if title:
        return title
    first = SECTION_RE.sub("", abstract.splitlines()[0]).split()
    return "[untitled] " + " ".join(first[:words]) + ("…" if len(first) > words else "")


def merge_entries(reports: list[ListingReport]) -> list[Paper]:
    """One Paper per distinct abstract; entries whose abstracts overlap by 80% of their
    5-word shingles (the same abstract with or without "Background:" labels, say) merge."""
    groups: list[list[tuple[ListingEntry, str | None]]] = []
    shingle_sets: list[set] = []
    for report in reports:
        for entry in report.entries:
            sh = _shingles(entry.abstract)
            for k, other in enumerate(shingle_sets):
                if _same_paper(sh, other):
                    groups[k].append((entry, report.owner))
                    break
            else:
                groups.append([(entry, report.owner)])
                shingle_sets.append(sh)
    papers = []
    for members in groups:
        # The richest entry (title, then authors, then date) gives the display fields.
        best, best_owner = max(
            members, key=lambda m: (m[0].title is not None, len(m[0].authors), m[0].date is not None)
        )
        listings = list(dict.fromkeys(e.listing for e, _ in members))
        # The owner is that of the listing giving the display fields; `owners` names them all.
        owners = list(dict.fromkeys(o for o in [best_owner] + [o for _, o in members] if o))
        dated = next((e for e, _ in members if e.date), None)
        papers.append(
            Paper(
                paper_id=paper_id(best.abstract),
                listings=listings,
                owner=owners[0] if owners else None,
                owners=owners,
                title=best.title,
                label=display_label(best.title, best.abstract),
                authors=best.authors,
                authors_truncated=best.authors_truncated,
                n_authors=best.n_authors
                if best.n_authors is not None
                else next((e.n_authors for e, _ in members if e.n_authors is not None), None),
                date=dated.date if dated else None,
                year=dated.year if dated else None,
                category=best.category or next((e.category for e, _ in members if e.category), None),
                has_code=any(e.has_code for e, _ in members),
                abstract=best.abstract,
            )
        )
    return papers


def list_files(paths: list[Path]) -> list[Path]:
    """The listing files under `paths` (directories are read non-recursively, hidden files skipped)."""
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise CorpusError(f"{path}: no such file or directory")
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")))
        else:
            files.append(path)
    return list(dict.fromkeys(f.resolve() for f in files))


def load_corpus(paths: list[Path]) -> tuple[list[Paper], list[ListingReport]]:
    """Parse every listing under `paths` and merge them into papers. Raises CorpusError."""
    reports = [parse_file(f) for f in list_files(paths)]
    return merge_entries(reports), reports
