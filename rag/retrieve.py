"""Hybrid retrieval over a loaded index: filters, query analysis, dense + BM25 fused with
reciprocal rank fusion, collapsed to one hit per paper."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from rag.corpus.names import fold, name_matches, surname_key
from rag.index import PaperIndex, bm25_tokens
from rag.types import Paper, SearchHit

Mode = Literal["hybrid", "dense", "bm25"]


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
        return not (self.listings or self.authors or self.categories or self.has_code is not None
                    or self.year_from is not None or self.year_to is not None)

    def merged(self, other: "Filters") -> "Filters":
        """These filters, with `other` filling the fields left empty."""
        return Filters(
            listings=self.listings or other.listings, authors=self.authors or other.authors,
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
        if self.has_code is not None and paper.has_code != self.has_code:
            return False
        return True

    def apply(self, papers: list[Paper]) -> list[Paper]:
        return [p for p in papers if self.matches(p)]


def listing_matches(query: str, paper: Paper) -> bool:
    q = fold(query).strip()
    if any(fold(name) == q or fold(name).startswith(q) for name in paper.listings):
        return True
    return any(q in fold(owner) or name_matches(query, owner) for owner in paper.owners)


def author_matches(query: str, paper: Paper) -> bool:
    """Named among the visible authors, or the owner of a personal listing that holds the paper
    (a researcher's profile lists their papers even where "et al." hides their name)."""
    return any(name_matches(query, a) for a in paper.authors) or any(name_matches(query, o) for o in paper.owners)


# --- query analysis ------------------------------------------------------------------------

_YEAR = r"(19[5-9]\d|20\d\d)"
_CODE_RE = re.compile(r"\b(with|have|has|having|release[sd]?|provide[sd]?|public|available|open[- ]source)\b.{0,20}\bcode\b|"
                      r"\bcode\b.{0,12}\b(badge|available|released|public)\b|\bopen[- ]source\b", re.IGNORECASE)


@dataclass
class QueryAnalysis:
    """What a question names that becomes a retrieval filter."""

    filters: Filters
    notes: list[str] = field(default_factory=list)


def analyse_years(query: str) -> tuple[int | None, int | None]:
    if m := re.search(rf"\bbetween {_YEAR} and {_YEAR}\b|\b{_YEAR}\s*(?:-|–|to|until)\s*{_YEAR}\b", query):
        years = [int(y) for y in m.groups() if y]
        return min(years), max(years)
    if m := (re.search(rf"\b(?:since|after|starting(?: in| from)?|later than)\s+(?:the year\s+)?{_YEAR}\b", query, re.IGNORECASE)
             or re.search(rf"\bfrom\s+{_YEAR}\s+(?:on|onwards?)\b", query, re.IGNORECASE)):
        year = int(m.group(1))
        return (year + 1 if re.search(r"after|later", m.group(0), re.IGNORECASE) else year), None
    if m := re.search(rf"\b(?:before|until|prior to|earlier than|up to)\s+{_YEAR}\b", query, re.IGNORECASE):
        year = int(m.group(1))
        return None, (year - 1 if re.search(r"before|prior|earlier", m.group(0), re.IGNORECASE) else year)
    years = [int(y) for y in re.findall(rf"\b{_YEAR}\b", query)]
    if years:
        return min(years), max(years)
    return None, None


class QueryAnalyser:
    """Recognises authors, years and "with code" in a question, against the corpus's names."""

    def __init__(self, papers: list[Paper]):
        self.full_names: dict[str, str] = {}  # folded "first last" -> display
        self.surnames: dict[str, set[str]] = {}
        vocabulary: set[str] = set()
        for p in papers:
            for name in list(p.authors) + list(p.owners):
                if not re.search(r"[A-Z]", name[:1] or ""):
                    continue
                tokens = name.split()
                if len(tokens) < 2 or len(tokens) > 6:
                    continue
                self.full_names.setdefault(fold(f"{tokens[0]} {tokens[-1]}"), name)
                self.full_names.setdefault(fold(name), name)
                self.surnames.setdefault(surname_key(name), set()).add(name)
            vocabulary.update(re.findall(r"[a-z]+", fold(p.abstract + " " + (p.title or ""))))
        self.vocabulary = vocabulary

    def authors_in(self, query: str) -> list[str]:
        found: list[str] = []
        text = re.sub(r"['’]s\b", "", query)
        folded = fold(text)
        for full, display in self.full_names.items():
            if re.search(rf"\b{re.escape(full)}\b", folded):
                found.append(display)
        covered = {surname_key(n) for n in found}
        for token in re.findall(r"[^\W\d_][\w-]*", text):
            key = fold(token)
            if key in covered or key not in self.surnames or len(key) < 2:
                continue
            # A lower-case word that is also an ordinary word of the corpus ("wind") is not a name.
            if token[0].islower() and (len(key) < 5 or key in self.vocabulary):
                continue
            found.append(token)
            covered.add(key)
        return list(dict.fromkeys(found))

    def analyse(self, query: str) -> QueryAnalysis:
        filters = Filters()
        notes = []
        filters.authors = self.authors_in(query)
        if filters.authors:
            notes.append("author named: " + ", ".join(filters.authors))
        filters.year_from, filters.year_to = analyse_years(query)
        if filters.year_from or filters.year_to:
            notes.append("year named")
        if _CODE_RE.search(query):
            filters.has_code = True
            notes.append("asks for code")
        return QueryAnalysis(filters, notes)


# --- search --------------------------------------------------------------------------------


@dataclass
class SearchResult:
    hits: list[SearchHit]
    filters: Filters
    analysis: QueryAnalysis | None
    seconds: float
    candidates: int  # papers allowed by the filters


class Retriever:
    """Hybrid search over one loaded index."""

    def __init__(self, index: PaperIndex):
        self.index = index
        self.settings = index.settings
        self.analyser = QueryAnalyser(index.papers)
        self.torch_threads: int | None = None
        self._embed = None

    @property
    def embed_model(self):
        """Loaded on first use, so questions answered from the table never pay for it."""
        if self._embed is None:
            from rag.embed import get_embed_model

            self._embed = get_embed_model(self.index.embed_path, self.settings.embed_batch_size)
            if self.torch_threads:
                import torch

                torch.set_num_threads(self.torch_threads)
        return self._embed

    def dense(self, query: str, n: int, allowed: set[str] | None) -> tuple[list[str], dict[str, float], dict[str, list[str]]]:
        """Paper ids by best chunk similarity, their similarity, and the matching chunk texts."""
        from llama_index.core.vector_stores import FilterOperator, MetadataFilter, MetadataFilters, VectorStoreQuery

        vector = self.embed_model.get_query_embedding(query)
        filters = None
        if allowed is not None:
            filters = MetadataFilters(filters=[MetadataFilter(key="paper_id", value=sorted(allowed), operator=FilterOperator.IN)])
        result = self.index.store.query(VectorStoreQuery(query_embedding=vector, similarity_top_k=n, filters=filters))
        order: list[str] = []
        sims: dict[str, float] = {}
        chunks: dict[str, list[str]] = {}
        for node, sim in zip(result.nodes or [], result.similarities or []):
            pid = node.metadata["paper_id"]
            if pid not in sims:
                order.append(pid)
                sims[pid] = float(sim)
            chunks.setdefault(pid, []).append(node.get_content())
        return order, sims, chunks

    def bm25(self, query: str, n: int, allowed: set[str] | None) -> tuple[list[str], dict[str, float]]:
        tokens = bm25_tokens(query)
        if not tokens:
            return [], {}
        scores = np.asarray(self.index.bm25.get_scores(tokens), dtype=float)
        if allowed is not None:
            mask = np.array([p.paper_id in allowed for p in self.index.papers])
            scores = np.where(mask, scores, 0.0)
        top = np.argsort(-scores)[:n]
        ids = [self.index.papers[i].paper_id for i in top if scores[i] > 0]
        return ids, {self.index.papers[i].paper_id: float(scores[i]) for i in top if scores[i] > 0}

    def search(self, query: str, k: int | None = None, filters: Filters | None = None,
               analyse: bool = True, mode: Mode = "hybrid") -> SearchResult:
        start = time.perf_counter()
        k = k or self.settings.top_k
        explicit = filters or Filters()
        analysis = self.analyser.analyse(query) if analyse else None
        effective = explicit.merged(analysis.filters) if analysis else explicit
        allowed_papers = effective.apply(self.index.papers)
        if analysis and not allowed_papers and not analysis.filters.is_empty():
            # What the question seemed to name matches nothing: fall back to the explicit filters.
            analysis.notes.append("filters from the question matched no paper; ignored")
            effective = explicit
            allowed_papers = effective.apply(self.index.papers)
        allowed = None if effective.is_empty() else {p.paper_id for p in allowed_papers}
        if allowed is not None and not allowed:
            return SearchResult([], effective, analysis, time.perf_counter() - start, 0)

        n = max(self.settings.candidates, k)
        dense_ids, sims, chunks = self.dense(query, n * 2, allowed) if mode in ("hybrid", "dense") else ([], {}, {})
        bm25_ids, bm25_scores = self.bm25(query, n, allowed) if mode in ("hybrid", "bm25") else ([], {})
        fused: dict[str, float] = {}
        for ranking in (dense_ids[:n], bm25_ids):
            for rank, pid in enumerate(ranking, start=1):
                fused[pid] = fused.get(pid, 0.0) + 1.0 / (self.settings.rrf_k + rank)
        ordered = sorted(fused, key=lambda pid: -fused[pid])[:k]
        dense_rank = {pid: r for r, pid in enumerate(dense_ids, start=1)}
        bm25_rank = {pid: r for r, pid in enumerate(bm25_ids, start=1)}
        hits = []
        for pid in ordered:
            hit = SearchHit(self.index.by_id[pid], fused[pid], dense_rank.get(pid), bm25_rank.get(pid), chunks.get(pid, []))
            hit.dense_sim = sims.get(pid)  # type: ignore[attr-defined]
            hit.bm25_score = bm25_scores.get(pid)  # type: ignore[attr-defined]
            hits.append(hit)
        return SearchResult(hits, effective, analysis, time.perf_counter() - start,
                            len(allowed_papers) if allowed is not None else len(self.index.papers))
