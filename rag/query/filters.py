"""Filters over the paper table: what a question or the user restricts the papers to, and
`PaperTable`, the columnar form that applies them in milliseconds at 100k papers (and counts
the papers each word occurs in)."""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rag.corpus.names import fold, name_match_tokens, name_matches
from rag.query import lexicon as lx
from rag.types import Paper


@dataclass
class Filters:
    """Restrictions on which papers may be returned. Empty fields restrict nothing."""

    listings: list[str] = field(default_factory=list)  # file name, or (part of) the owner's name
    authors: list[str] = field(default_factory=list)  # as typed: "Strodthoff", "Nils Strodthoff"
    year_from: int | None = None
    year_to: int | None = None
    categories: list[str] = field(default_factory=list)
    has_code: bool | None = None

    def is_empty(self) -> bool:
        return not (
            self.listings
            or self.authors
            or self.categories
            or self.has_code is not None
            or self.year_from is not None
            or self.year_to is not None
        )

    def merged(self, other: Filters) -> Filters:
        """These filters, with `other` filling the fields left empty."""
        return Filters(
            listings=self.listings or other.listings,
            authors=self.authors or other.authors,
            year_from=self.year_from if self.year_from is not None else other.year_from,
            year_to=self.year_to if self.year_to is not None else other.year_to,
            categories=self.categories or other.categories,
            has_code=self.has_code if self.has_code is not None else other.has_code,
        )

    def describe(self) -> str:
        parts = []
        if self.authors:
            parts.append("author: " + " or ".join(self.authors))
        if self.listings:
            parts.append("listing: " + " or ".join(self.listings))
        if self.year_from is not None or self.year_to is not None:
            if self.year_from == self.year_to:
                parts.append(f"year: {self.year_from}")
            else:
                parts.append(f"years: {self.year_from or '…'}–{self.year_to or '…'}")
        if self.categories:
            parts.append("category: " + " or ".join(self.categories))
        if self.has_code is not None:
            parts.append("with code" if self.has_code else "without code")
        return ", ".join(parts)

    def matches(self, paper: Paper) -> bool:
        if self.listings and not any(listing_matches(q, paper) for q in self.listings):
            return False
        if self.authors and not any(author_matches(q, paper) for q in self.authors):
            return False
        if self.year_from is not None and (paper.year is None or paper.year < self.year_from):
            return False
        if self.year_to is not None and (paper.year is None or paper.year > self.year_to):
            return False
        if self.categories and (paper.category or "").upper() not in {c.upper() for c in self.categories}:
            return False
        return self.has_code is None or paper.has_code == self.has_code

    def apply(self, papers: list[Paper]) -> list[Paper]:
        return [p for p in papers if self.matches(p)]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def listing_matches(query: str, paper: Paper) -> bool:
    q = fold(query).strip()
    if any(fold(name) == q or fold(name).startswith(q) for name in paper.listings):
        return True
    return any(q in fold(owner) or name_matches(query, owner) for owner in paper.owners)


def author_matches(query: str, paper: Paper) -> bool:
    """Named among the visible authors, or the owner of a personal listing that holds the paper
    (a researcher's profile lists their papers even where "et al." hides their name)."""
    return any(name_matches(query, a) for a in paper.authors) or any(
        name_matches(query, o) for o in paper.owners
    )


def paper_words(paper: Paper) -> set[str]:
    """A paper's title and abstract words, with the parts of hyphenated ones ("state-space")."""
    words = lx.words(f"{paper.title or ''} {paper.abstract}")
    return words | {part for w in words if "-" in w for part in lx.words(w.replace("-", " "))}


class PaperTable:
    """The paper table as columns, so that filters over 100k papers take milliseconds.

    Gives the same answer as `Filters.apply` (tests/test_search.py checks it), but an author is
    looked up by surname instead of being compared with every name, listings are matched once
    per distinct set of listings, and years, badges and categories are numpy arrays.
    """

    def __init__(self, papers: list[Paper]):
        self.papers = papers
        self.years = np.array([p.year if p.year is not None else -1 for p in papers], dtype=np.int64)
        self.has_code = np.array([p.has_code for p in papers], dtype=bool)
        self.categories = np.array([(p.category or "").upper() for p in papers], dtype=object)
        self.category_spellings: dict[str, set[str]] = {}  # upper-case -> as stored
        # surname -> (paper row, first given name) of every visible author and owner: what
        # `name_matches` compares, folded once here instead of on every query.
        self.by_surname: dict[str, list[tuple[int, str]]] = {}
        keys: dict[str, tuple[str, str]] = {}
        groups: dict[tuple, list[int]] = {}
        for i, p in enumerate(papers):
            for name in (*p.authors, *p.owners):
                if name not in keys:
                    tokens = name_match_tokens(name)
                    keys[name] = (tokens[-1], tokens[0].split("-")[0]) if tokens else ("", "")
                surname, first = keys[name]
                self.by_surname.setdefault(surname, []).append((i, first))
            groups.setdefault((tuple(p.listings), tuple(p.owners)), []).append(i)
            if p.category:
                self.category_spellings.setdefault(p.category.upper(), set()).add(p.category)
        self.listing_groups = [(papers[rows[0]], np.array(rows)) for rows in groups.values()]

    def mask(self, filters: Filters) -> np.ndarray:
        """Which papers the filters allow, as a boolean array over `papers`."""
        allowed = np.ones(len(self.papers), dtype=bool)
        if filters.listings:
            in_listing = np.zeros_like(allowed)
            for example, rows in self.listing_groups:
                if any(listing_matches(q, example) for q in filters.listings):
                    in_listing[rows] = True
            allowed &= in_listing
        if filters.authors:
            by_author = np.zeros_like(allowed)
            for q in filters.authors:
                tokens = name_match_tokens(q)
                if not tokens:
                    continue
                # As name_matches: same surname, and the same first name or its initial, if given.
                wanted = tokens[0].split("-")[0] if len(tokens) > 1 else None
                matched: list[int] = [
                    i
                    for i, first in self.by_surname.get(tokens[-1], ())
                    if wanted is None or first == wanted or (len(wanted) == 1 and first.startswith(wanted))
                ]
                by_author[matched] = True
            allowed &= by_author
        if filters.year_from is not None:
            allowed &= self.years >= filters.year_from
        if filters.year_to is not None:
            allowed &= (self.years >= 0) & (self.years <= filters.year_to)
        if filters.categories:
            allowed &= np.isin(self.categories, [c.upper() for c in filters.categories])
        if filters.has_code is not None:
            allowed &= self.has_code == filters.has_code
        return allowed

    @functools.cached_property
    def word_papers(self) -> Counter[str]:
        """In how many papers each content word occurs (title and abstract, `paper_words`)."""
        return Counter(w for p in self.papers for w in paper_words(p))

    def allowed(self, filters: Filters) -> list[Paper]:
        return [self.papers[i] for i in np.flatnonzero(self.mask(filters))]
