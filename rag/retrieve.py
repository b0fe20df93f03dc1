"""Hybrid retrieval over a loaded index: filters, query analysis, dense + BM25 fused with
reciprocal rank fusion, collapsed to one hit per paper."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from rag.corpus.names import fold, name_match_tokens, name_matches, surname_key
from rag.index import PaperIndex, bm25_tokens, corpus_vocabulary
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
                rows = [i for i, first in self.by_surname.get(tokens[-1], ())
                        if wanted is None or first == wanted or (len(wanted) == 1 and first.startswith(wanted))]
                by_author[rows] = True
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

    def allowed(self, filters: Filters) -> list[Paper]:
        return [self.papers[i] for i in np.flatnonzero(self.mask(filters))]


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


def name_tokens(text: str) -> list[str]:
    """Folded words of a name or a question, without dots and possessives: "J. Smith's" -> ["j", "smith"]."""
    return re.findall(r"[^\W_]+(?:[-'’][^\W_]+)*", fold(re.sub(r"['’]s\b", "", text)))


class QueryAnalyser:
    """Recognises authors, years and "with code" in a question, against the corpus's names.

    Names are looked up by the word spans of the question (a dict hit per span), so the cost
    of a question does not grow with the number of known names.
    """

    MAX_NAME_TOKENS = 6

    def __init__(self, papers: list[Paper], person_owners: set[str] | None = None, other_owners: set[str] | None = None,
                 vocabulary: set[str] | None = None):
        self.person_owners = set(person_owners or ())
        # Listings no one person owns ("Daily Papers", a group page), by the phrases that name
        # them: the whole owner, or a part of it after a comma ("TU Munich").
        self.listing_phrases: dict[str, str] = {}
        for owner in other_owners or ():
            for phrase in [owner, *owner.split(",")[1:]]:
                if len(phrase.split()) >= 2:
                    self.listing_phrases[" ".join(name_tokens(phrase))] = owner
        self.full_names: dict[str, str] = {}  # "first last" and the whole name, as joined name_tokens -> display
        self.surnames: dict[str, set[str]] = {}
        names = dict.fromkeys(name for p in papers for name in (
            *p.authors, *(o for o in p.owners if person_owners is None or o in person_owners)))
        for name in names:  # each distinct name once, in order of appearance
            if not re.search(r"[A-Z]", name[:1] or ""):
                continue
            tokens = name.split()
            if len(tokens) < 2 or len(tokens) > self.MAX_NAME_TOKENS:
                continue
            self.full_names.setdefault(" ".join(name_tokens(f"{tokens[0]} {tokens[-1]}")), name)
            self.full_names.setdefault(" ".join(name_tokens(name)), name)
            self.surnames.setdefault(surname_key(name), set()).add(name)
        self.vocabulary = vocabulary if vocabulary is not None else corpus_vocabulary(papers)
        self._by_first_letter: dict[str, list[str]] = {}
        for word in sorted(self.vocabulary):
            self._by_first_letter.setdefault(word[0], []).append(word)

    def unknown_words(self, words: list[str]) -> list[str]:
        """Words no paper uses, after forgiving typos (same first letter, 80% similar)."""
        import difflib

        unknown = []
        for word in words:
            for part in (p for p in word.split("-") if len(p) > 2):
                stem = part[:-1] if part.endswith("s") and len(part) > 4 else part
                if part in self.vocabulary or stem in self.vocabulary or part + "s" in self.vocabulary:
                    continue
                if not difflib.get_close_matches(part, self._by_first_letter.get(part[0], []), n=1, cutoff=0.8):
                    unknown.append(part)
        return unknown

    def authors_in(self, query: str) -> list[str]:
        found: list[str] = []
        text = re.sub(r"['’]s\b", "", query)
        words = name_tokens(text)
        for i in range(len(words)):
            for j in range(i + 2, min(i + self.MAX_NAME_TOKENS, len(words)) + 1):
                if display := self.full_names.get(" ".join(words[i:j])):
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

    def listings_in(self, query: str) -> list[str]:
        words = " ".join(name_tokens(query))
        return [owner for phrase, owner in self.listing_phrases.items() if re.search(rf"\b{re.escape(phrase)}\b", words)]

    def analyse(self, query: str) -> QueryAnalysis:
        filters = Filters()
        notes = []
        filters.authors = self.authors_in(query)
        if listings := self.listings_in(query):
            # "Strodthoff's listing and the Daily Papers listing": people who own a listing are
            # read as their listing too, so that both listings are searched (filters are ANDed).
            owners = [a for a in filters.authors if any(name_matches(a, o) for o in self.person_owners)]
            filters.listings = listings + owners
            filters.authors = [a for a in filters.authors if a not in owners]
            notes.append("listing named: " + ", ".join(filters.listings))
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

    # How dense() applies filters (measured at 100k papers / 170k chunks; README "Scale").
    MAX_ID_LIST = 20000  # up to this many allowed papers: their chunk ids go to Chroma
    MAX_OVERSAMPLED = 5000  # above: at most this many neighbours (~30 ms), filtered here

    def __init__(self, index: PaperIndex):
        from rag.corpus import PERSONAL_LAYOUTS

        self.index = index
        self.settings = index.settings
        self.table = PaperTable(index.papers)
        owners = {r["owner"]: r.get("layout") in PERSONAL_LAYOUTS for r in index.reports if r.get("owner")}
        self.analyser = QueryAnalyser(index.papers, person_owners={o for o, person in owners.items() if person},
                                      other_owners={o for o, person in owners.items() if not person},
                                      vocabulary=index.vocabulary)
        # One thread: a single query embeds as fast on one core, and the LLM server needs the other.
        self.torch_threads = 1
        self._embed = None

    @property
    def embed_model(self):
        """Loaded on first use, so questions answered from the table never pay for it."""
        if self._embed is None:
            from rag.embed import embedder_name, get_embedder
            from rag.index import IndexMissingError

            built_with = self.index.state.get("config", {}).get("embed_model")
            wanted = embedder_name(self.settings, self.index.embed_path)
            if built_with and built_with != wanted:
                raise IndexMissingError(f"the index was embedded with {built_with}, but the settings ask for {wanted}; "
                                        "use the same RAG_EMBED_* settings, or rebuild with `rag ingest --rebuild`")
            self._embed = get_embedder(self.settings, self.index.embed_path)
            if self.torch_threads:
                import torch

                torch.set_num_threads(self.torch_threads)
        return self._embed

    def dense(self, query: str, n: int, allowed: np.ndarray | None
              ) -> tuple[list[str], dict[str, float], dict[str, list[str]]]:
        """Paper ids by best chunk similarity, their similarity, and the matching chunk ids.

        Chroma is asked for chunk ids and distances only (fetching metadata costs 10x more at
        100k papers); chunk ids name their paper. Filters reach Chroma as the list of allowed
        chunk ids (`ids=`, ~15 ms for 10k ids at 100k papers, where a `$in` on paper_id
        metadata took 600 ms for 2k ids); filters that allow most of a large corpus fetch more
        neighbours instead and are checked here.
        """
        vector = self.embed_model.get_query_embedding(query)
        if allowed is None:
            return self._nearest(vector, n, allowed=None)
        n_allowed = int(allowed.sum())
        if n_allowed > self.MAX_ID_LIST:
            top_k = min(int(n * len(allowed) / n_allowed) + n, self.MAX_OVERSAMPLED)
            return self._nearest(vector, top_k, allowed=allowed)
        papers = [self.index.papers[i].paper_id for i in np.flatnonzero(allowed)]
        counts = self.index.chunk_counts
        if counts is None:  # a generation written before chunk counts were saved
            return self._nearest(vector, n, where={"paper_id": {"$in": papers}})
        return self._nearest(vector, n, ids=[f"{pid}-{c}" for pid in papers for c in range(counts.get(pid, 0))])

    def _nearest(self, vector: list[float], top_k: int, allowed: np.ndarray | None = None,
                 ids: list[str] | None = None, where: dict | None = None):
        if ids == []:
            return [], {}, {}
        top_k = max(1, min(top_k, len(ids) if ids is not None else (self.index.state.get("chunks") or top_k)))
        result = self.index.collection.query(query_embeddings=[vector], n_results=top_k, ids=ids, where=where,
                                             include=["distances"])
        order: list[str] = []
        sims: dict[str, float] = {}
        chunk_ids: dict[str, list[str]] = {}
        for chunk_id, distance in zip(result["ids"][0], result["distances"][0]):
            pid = chunk_id.rsplit("-", 1)[0]
            if allowed is not None and not allowed[self.index.position[pid]]:
                continue
            if pid not in sims:
                order.append(pid)
                # The scale llama-index's ChromaVectorStore reports, on which answer.py's thresholds are set.
                sims[pid] = math.exp(-float(distance))
            chunk_ids.setdefault(pid, []).append(chunk_id)
        return order, sims, chunk_ids

    def chunk_texts(self, chunk_ids: list[str]) -> dict[str, str]:
        if not chunk_ids:
            return {}
        got = self.index.collection.get(ids=chunk_ids, include=["documents"])
        return dict(zip(got["ids"], got["documents"]))

    def bm25(self, query: str, n: int, allowed: np.ndarray | None) -> tuple[list[str], dict[str, float]]:
        tokens = bm25_tokens(query)
        if not tokens:
            return [], {}
        scores = np.asarray(self.index.bm25.get_scores(tokens), dtype=float)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        top = np.argsort(-scores)[:n]
        ids = [self.index.papers[i].paper_id for i in top if scores[i] > 0]
        return ids, {self.index.papers[i].paper_id: float(scores[i]) for i in top if scores[i] > 0}

    def resolve_filters(self, query: str, explicit: Filters | None = None,
                        analyse: bool = True) -> tuple[Filters, QueryAnalysis | None, np.ndarray | None]:
        """Explicit filters, filled in by what the query names, and the papers they allow
        (a mask over `index.papers`; None when nothing is filtered)."""
        explicit = explicit or Filters()
        analysis = self.analyser.analyse(query) if analyse else None
        effective = explicit.merged(analysis.filters) if analysis else explicit
        allowed = None if effective.is_empty() else self.table.mask(effective)
        if analysis and allowed is not None and not allowed.any() and not analysis.filters.is_empty():
            # What the question seemed to name matches nothing: fall back to the explicit filters.
            analysis.notes.append("filters from the question matched no paper; ignored")
            effective = explicit
            allowed = None if effective.is_empty() else self.table.mask(effective)
        return effective, analysis, allowed

    def allowed_papers(self, filters: Filters) -> list[Paper]:
        return self.index.papers if filters.is_empty() else self.table.allowed(filters)

    def search(self, query: str, k: int | None = None, filters: Filters | None = None,
               analyse: bool = True, mode: Mode = "hybrid") -> SearchResult:
        start = time.perf_counter()
        k = k or self.settings.top_k
        effective, analysis, allowed = self.resolve_filters(query, filters, analyse)
        candidates = len(self.index.papers) if allowed is None else int(allowed.sum())
        if candidates == 0:
            return SearchResult([], effective, analysis, time.perf_counter() - start, 0)

        n = max(self.settings.candidates, k)
        dense_ids, sims, chunk_ids = self.dense(query, n * 2, allowed) if mode in ("hybrid", "dense") else ([], {}, {})
        bm25_ids, bm25_scores = self.bm25(query, n, allowed) if mode in ("hybrid", "bm25") else ([], {})
        fused: dict[str, float] = {}
        for ranking in (dense_ids[:n], bm25_ids):
            for rank, pid in enumerate(ranking, start=1):
                fused[pid] = fused.get(pid, 0.0) + 1.0 / (self.settings.rrf_k + rank)
        ordered = sorted(fused, key=lambda pid: -fused[pid])[:k]
        dense_rank = {pid: r for r, pid in enumerate(dense_ids, start=1)}
        bm25_rank = {pid: r for r, pid in enumerate(bm25_ids, start=1)}
        texts = self.chunk_texts([c for pid in ordered for c in chunk_ids.get(pid, [])])
        chunks = {pid: [texts[c] for c in chunk_ids.get(pid, []) if c in texts] for pid in ordered}
        hits = []
        for pid in ordered:
            hits.append(SearchHit(self.index.by_id[pid], fused[pid], dense_rank.get(pid), bm25_rank.get(pid),
                                  chunks.get(pid, []), sims.get(pid), bm25_scores.get(pid)))
        return SearchResult(hits, effective, analysis, time.perf_counter() - start, candidates)
