"""Tables and plot data for the Browse and Overview tabs: the paper table, papers per year per
listing, and a 2-D PCA map of the corpus embeddings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rag.corpus.names import fold
from rag.types import Paper

TABLE_COLUMNS = ["Title", "Authors", "Date", "Category", "Code", "Listing", "paper_id"]
SOURCE_GROUP = "source of last answer"


def short_authors(paper: Paper, n: int = 3) -> str:
    if not paper.authors:
        return f"{paper.n_authors} authors" if paper.n_authors else ""
    return paper.author_names(n)


def papers_table(papers: list[Paper], query: str = "") -> pd.DataFrame:
    """One row per paper matching every word of `query` (title, authors, abstract, listing,
    category, date), newest first."""
    words = fold(query).split()
    rows = []
    for p in papers:
        haystack = fold(" ".join([p.label, " ".join(p.authors), p.abstract, p.owner or "", " ".join(p.listings),
                                  p.category or "", p.date or ""]))
        if all(w in haystack for w in words):
            rows.append([p.label, short_authors(p), p.date or "", p.category or "", "yes" if p.has_code else "",
                         p.owner or "", p.paper_id])
    rows.sort(key=lambda r: r[2], reverse=True)
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def papers_per_year(papers: list[Paper]) -> pd.DataFrame:
    """Counts per (year, listing owner); undated papers count under "undated"."""
    counts: dict[tuple[str, str], int] = {}
    for p in papers:
        key = (str(p.year) if p.year else "undated", p.owner or "unknown")
        counts[key] = counts.get(key, 0) + 1
    df = pd.DataFrame([(y, o, c) for (y, o), c in counts.items()], columns=["year", "listing", "papers"])
    return df.sort_values(["year", "listing"]).reset_index(drop=True)


def paper_vectors(index, embed_model=None) -> dict[str, np.ndarray]:
    """One unit vector per paper: the mean of its chunk embeddings in Chroma, or (if Chroma
    cannot be read) a fresh embedding of title + abstract."""
    try:
        from rag.index import chroma_client, open_collection

        got = open_collection(chroma_client(index.settings), index.state["collection"]).get(
            include=["embeddings", "metadatas"])
        sums: dict[str, list[np.ndarray]] = {}
        for vec, meta in zip(got["embeddings"], got["metadatas"]):
            sums.setdefault(meta["paper_id"], []).append(np.asarray(vec, dtype=float))
        vectors = {pid: np.mean(vs, axis=0) for pid, vs in sums.items()}
    except Exception:
        if embed_model is None:
            raise
        texts = [f"{p.title or ''}\n{p.abstract}" for p in index.papers]
        vectors = {p.paper_id: np.asarray(v, dtype=float)
                   for p, v in zip(index.papers, embed_model.get_text_embedding_batch(texts))}
    return {pid: v / (np.linalg.norm(v) or 1.0) for pid, v in vectors.items()}


def pca_2d(matrix: np.ndarray) -> np.ndarray:
    centred = matrix - matrix.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def corpus_map(papers: list[Paper], vectors: dict[str, np.ndarray]) -> pd.DataFrame:
    """x, y of every paper with a vector, its listing (the colour) and hover text."""
    kept = [p for p in papers if p.paper_id in vectors]
    if len(kept) < 2:
        return pd.DataFrame(columns=["x", "y", "group", "title", "listing", "year", "paper_id"])
    xy = pca_2d(np.stack([vectors[p.paper_id] for p in kept]))
    return pd.DataFrame({
        "x": np.round(xy[:, 0], 4), "y": np.round(xy[:, 1], 4),
        "group": [p.owner or "unknown" for p in kept],
        "title": [p.label[:90] for p in kept],
        "listing": [p.owner or "unknown" for p in kept],
        "year": [str(p.year or "undated") for p in kept],
        "paper_id": [p.paper_id for p in kept],
    })


def highlight_sources(base: pd.DataFrame, source_ids: set[str]) -> pd.DataFrame:
    """The map with the last answer's sources as their own series, drawn last (on top)."""
    df = base.copy()
    is_source = df["paper_id"].isin(source_ids)
    df.loc[is_source, "group"] = SOURCE_GROUP
    return pd.concat([df[~is_source], df[is_source]], ignore_index=True)
