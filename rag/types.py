"""Typed records that flow through the pipeline: seeds -> papers -> hits -> answers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SkippedLine:
    """A non-blank input line that belongs to no paper, and why."""

    line_no: int
    text: str
    reason: str  # "header", "bio", "noise", "footer", ...


@dataclass
class ListingEntry:
    """One paper as it appears in one listing file, before cross-listing merging."""

    listing: str
    abstract: str
    title: str | None = None
    authors: list[str] = field(default_factory=list)
    authors_truncated: bool = False
    n_authors: int | None = None
    date: str | None = None  # ISO yyyy-mm-dd
    year: int | None = None
    date_inferred_year: bool = False  # the listing showed no year; see corpus/dates.py
    category: str | None = None
    has_code: bool = False
    organisation: str | None = None
    lines: list[int] = field(default_factory=list)  # 1-based source line numbers
    # (month, day, year or None) as printed, before corpus/dates.py resolves year-less dates.
    parsed_date: tuple[int, int, int | None] | None = field(default=None, repr=False)


@dataclass
class ListingReport:
    """What parsing one file produced: its layout, owner, entries and skipped lines."""

    listing: str
    path: str
    layout: str
    owner: str | None
    entries: list[ListingEntry]
    skipped: list[SkippedLine]
    warnings: list[str] = field(default_factory=list)
    profile: dict[str, str] = field(default_factory=dict)  # header stats a profile page states
    sha256: str = ""


@dataclass
class Paper:
    """A paper of the corpus: one record even when several listings carry it."""

    paper_id: str
    listings: list[str]
    owner: str | None
    title: str | None
    label: str
    authors: list[str]
    authors_truncated: bool
    n_authors: int | None
    date: str | None
    year: int | None
    category: str | None
    has_code: bool
    abstract: str
    owners: list[str] = field(default_factory=list)

    def author_names(self, n: int) -> str:
        """The first `n` visible names, "et al." when more exist; "" when the listing names none."""
        more = len(self.authors) > n or self.authors_truncated
        return ", ".join(self.authors[:n]) + (" et al." if more and self.authors else "")

    def to_json(self) -> dict[str, Any]:
        """The documented JSON form of a paper (README: "JSON fields")."""
        data = asdict(self)
        data.pop("owners")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Paper:
        data = dict(data)
        data.pop("score", None)
        data.setdefault("owners", [data["owner"]] if data.get("owner") else [])
        return cls(**data)


@dataclass
class SearchHit:
    """A paper returned by retrieval, with its fused score and the chunks that matched."""

    paper: Paper
    score: float
    dense_rank: int | None = None
    bm25_rank: int | None = None
    chunks: list[str] = field(default_factory=list)
    dense_sim: float | None = None  # exp(-cosine distance) of the best chunk, when dense retrieval found it
    bm25_score: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = self.paper.to_json()
        data["score"] = round(self.score, 6)
        return data
