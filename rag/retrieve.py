"""Hybrid retrieval over a loaded index: dense + BM25 fused with reciprocal rank fusion,
collapsed to one hit per paper, restricted by the filters of a question's `QueryPlan`."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np

from rag.index import PaperIndex, bm25_tokens
from rag.query.analyse import QueryAnalyser
from rag.query.filters import Filters, PaperTable, author_matches, listing_matches
from rag.query.plan import QueryPlan
from rag.types import Paper, SearchHit

__all__ = ["Filters", "PaperTable", "Retriever", "SearchResult", "author_matches", "listing_matches"]

Mode = Literal["hybrid", "dense", "bm25"]


# --- search --------------------------------------------------------------------------------


@dataclass
class SearchResult:
    hits: list[SearchHit]
    filters: Filters
    plan: QueryPlan | None  # the question's plan, when the search analysed it
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
        owners = {r.owner: r.layout in PERSONAL_LAYOUTS for r in index.reports if r.owner}
        profiles = {r.owner: r.profile for r in index.reports if r.owner}
        self.analyser = QueryAnalyser(
            index.papers,
            person_owners={o for o, person in owners.items() if person},
            other_owners={o for o, person in owners.items() if not person},
            vocabulary=index.vocabulary,
            profiles=profiles,
            settings=self.settings.query,
        )
        # One thread: a single query embeds as fast on one core, and the LLM server needs the other.
        self.torch_threads = 1
        self._embed = None

    @property
    def embed_model(self):
        """Loaded on first use, so questions answered from the table never pay for it."""
        if self._embed is None:
            from rag.embed import embedder_name, get_embedder
            from rag.index import IndexMissingError

            built_with = self.index.state.config.embed_model
            wanted = embedder_name(self.settings, self.index.embed_path)
            if built_with and built_with != wanted:
                raise IndexMissingError(
                    f"the index was embedded with {built_with}, but the settings ask for {wanted}; "
                    "use the same RAG_EMBED_* settings, or rebuild with `rag ingest --rebuild`"
                )
            self._embed = get_embedder(self.settings, self.index.embed_path)
            if self.torch_threads:
                from rag.embed import (
                    set_threads,  # ONNX session threads, or torch's (no torch import for ONNX)
                )

                set_threads(self._embed, self.torch_threads)
        return self._embed

    def dense(
        self, query: str, n: int, allowed: np.ndarray | None
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
        return self._nearest(
            vector, n, ids=[f"{pid}-{c}" for pid in papers for c in range(counts.get(pid, 0))]
        )

    def _nearest(
        self,
        vector: list[float],
        top_k: int,
        allowed: np.ndarray | None = None,
        ids: list[str] | None = None,
        where: dict | None = None,
    ):
        if ids == []:
            return [], {}, {}
        top_k = max(1, min(top_k, len(ids) if ids is not None else (self.index.state.chunks or top_k)))
        result = self.index.collection.query(
            query_embeddings=[vector], n_results=top_k, ids=ids, where=where, include=["distances"]
        )
        order: list[str] = []
        sims: dict[str, float] = {}
        chunk_ids: dict[str, list[str]] = {}
        for chunk_id, distance in zip(result["ids"][0], result["distances"][0], strict=True):
            pid = chunk_id.rsplit("-", 1)[0]
            if allowed is not None and not allowed[self.index.position[pid]]:
                continue
            if pid not in sims:
                order.append(pid)
                # The scale llama-index's ChromaVectorStore reports, on which answer.py's thresholds are set.
                sims[pid] = math.exp(-float(distance))
            chunk_ids.setdefault(pid, []).append(chunk_id)
        return order, sims, chunk_ids

    def similarities(self, text: str, paper_ids: list[str]) -> dict[str, float]:
        """Each of these papers' best chunk similarity to `text` (papers with no chunk: absent)."""
        if not paper_ids:
            return {}
        allowed = np.zeros(len(self.index.papers), dtype=bool)
        allowed[[self.index.position[pid] for pid in paper_ids]] = True
        return self.dense(text, len(paper_ids), allowed)[1]

    def chunk_texts(self, chunk_ids: list[str]) -> dict[str, str]:
        if not chunk_ids:
            return {}
        got = self.index.collection.get(ids=chunk_ids, include=["documents"])
        return dict(zip(got["ids"], got["documents"], strict=True))

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

    def resolve_filters(self, filters: Filters) -> np.ndarray | None:
        """The papers the filters allow, as a mask over `index.papers`; None when nothing is filtered."""
        return None if filters.is_empty() else self.table.mask(filters)

    def allowed_papers(self, filters: Filters) -> list[Paper]:
        return self.index.papers if filters.is_empty() else self.table.allowed(filters)

    def search(
        self,
        query: str,
        k: int | None = None,
        filters: Filters | None = None,
        analyse: bool = True,
        mode: Mode = "hybrid",
        plan: QueryPlan | None = None,
    ) -> SearchResult:
        """Search for `query`. The filters are `filters` as given, or, with `analyse`, the ones
        the query's plan names (explicit filters first); a caller that has the plan passes it."""
        start = time.perf_counter()
        k = k or self.settings.top_k
        if plan is None and analyse:
            plan = self.analyser.analyse(query, filters)
        effective = plan.filters if plan is not None else (filters or Filters())
        allowed = self.resolve_filters(effective)
        if plan is not None and allowed is not None and not allowed.any() and filters is None:
            # What the question seemed to name matches nothing: search without it, and say so.
            plan.notes.append("filters from the question matched no paper; ignored")
            effective, allowed = Filters(), None
        candidates = len(self.index.papers) if allowed is None else int(allowed.sum())
        if candidates == 0:
            return SearchResult([], effective, plan, time.perf_counter() - start, 0)

        n = max(self.settings.candidates, k)
        query = plan.search_text(query) if plan is not None else query  # + the topic's corpus terms
        dense_ids, sims, chunk_ids = (
            self.dense(query, n * 2, allowed) if mode in ("hybrid", "dense") else ([], {}, {})
        )
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
            hits.append(
                SearchHit(
                    self.index.by_id[pid],
                    fused[pid],
                    dense_rank.get(pid),
                    bm25_rank.get(pid),
                    chunks.get(pid, []),
                    sims.get(pid),
                    bm25_scores.get(pid),
                )
            )
        return SearchResult(hits, effective, plan, time.perf_counter() - start, candidates)
