"""Tables and plot data for the Browse and Overview tabs: the paper table and its filters,
papers per year per listing, a researcher's co-authors, and a 2-D PCA map of the corpus
embeddings with its clusters labelled by their most distinctive words."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from rag.corpus.names import author_key, fold, name_matches
from rag.retrieve import Filters, PaperTable
from rag.types import Paper
from ui.mathtext import plain_math

TABLE_COLUMNS = ["Title", "Authors", "Date", "Category", "Code", "Listing", "paper_id"]
SOURCE_GROUP = "source of last answer"


def short_authors(paper: Paper, n: int = 3) -> str:
    if not paper.authors:
        return f"{paper.n_authors} authors" if paper.n_authors else ""
    return paper.author_names(n)


def matches_words(paper: Paper, words: list[str]) -> bool:
    haystack = fold(
        " ".join(
            [
                paper.label,
                plain_math(paper.label),
                " ".join(paper.authors),
                paper.abstract,
                paper.owner or "",
                " ".join(paper.listings),
                paper.category or "",
                paper.date or "",
            ]
        )
    )
    return all(w in haystack for w in words)


def browse_papers(
    table: PaperTable, filters: Filters | None = None, all_authors: list[str] | None = None, query: str = ""
) -> list[Paper]:
    """The papers Browse shows: allowed by `filters`, by every name of `all_authors` (a paper
    "by" someone as everywhere in the app: named among the visible authors, or in their own
    personal listing), and containing every word of `query`; newest first, undated last."""
    mask = table.mask(filters or Filters())
    for name in all_authors or []:
        if name and name.strip():
            mask &= table.mask(Filters(authors=[name.strip()]))
    words = fold(query or "").split()
    papers = [table.papers[i] for i in np.flatnonzero(mask)]
    papers = [p for p in papers if matches_words(p, words)] if words else papers
    return sorted(papers, key=lambda p: p.date or "", reverse=True)


def papers_table(papers: list[Paper], query: str = "") -> pd.DataFrame:
    """One row per paper matching every word of `query` (title, authors, abstract, listing,
    category, date), newest first; LaTeX in titles as plain text."""
    words = fold(query).split()
    rows = [
        [
            plain_math(p.label),
            short_authors(p),
            p.date or "",
            p.category or "",
            "yes" if p.has_code else "",
            p.owner or "",
            p.paper_id,
        ]
        for p in papers
        if matches_words(p, words)
    ]
    rows.sort(key=lambda r: r[2], reverse=True)
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


# --- a researcher and their co-authors ------------------------------------------------------


def researchers(papers: list[Paper], person_owners: list[str]) -> list[str]:
    """Names to choose in the co-author view: owners of personal listings first, then every
    author named on at least two papers, by number of papers; one spelling per person."""
    spellings: dict[str, Counter] = {}
    counts: Counter = Counter()
    for p in papers:
        for key in {author_key(a) for a in p.authors}:
            counts[key] += 1
        for a in p.authors:
            spellings.setdefault(author_key(a), Counter())[a] += 1
    owner_keys = {author_key(o) for o in person_owners}
    others = [
        spellings[k].most_common(1)[0][0] for k, n in counts.most_common() if n >= 2 and k not in owner_keys
    ]
    return list(person_owners) + others


def coauthors(papers: list[Paper], researcher: str) -> pd.DataFrame:
    """The researcher's co-authors by number of shared papers (most first, then by name): the
    other visible authors of `papers`, the researcher's papers. Spelling variants of one person
    (Zöller, Zoeller) count together under their most frequent spelling."""
    counts: Counter = Counter()
    spellings: dict[str, Counter] = {}
    for p in papers:
        keys = set()
        for a in p.authors:
            if name_matches(researcher, a):
                continue
            key = author_key(a)
            spellings.setdefault(key, Counter())[a] += 1
            keys.add(key)
        counts.update(keys)
    rows = [(spellings[k].most_common(1)[0][0], n) for k, n in counts.items()]
    rows.sort(key=lambda r: (-r[1], r[0]))
    return pd.DataFrame(rows, columns=["co-author", "papers"])


def years_of(papers: list[Paper]) -> pd.DataFrame:
    """Papers per year (every year from the first to the last, zeros included; undated last)."""
    years = Counter(p.year for p in papers if p.year)
    rows = [(str(y), years.get(y, 0)) for y in range(min(years), max(years) + 1)] if years else []
    undated = sum(1 for p in papers if not p.year)
    if undated:
        rows.append(("undated", undated))
    return pd.DataFrame(rows, columns=["year", "papers"])


def papers_per_year(papers: list[Paper]) -> pd.DataFrame:
    """Counts per (year, listing owner); undated papers count under "undated"."""
    counts: dict[tuple[str, str], int] = {}
    for p in papers:
        key = (str(p.year) if p.year else "undated", p.owner or "unknown")
        counts[key] = counts.get(key, 0) + 1
    df = pd.DataFrame([(y, o, c) for (y, o), c in counts.items()], columns=["year", "listing", "papers"])
    return df.sort_values(["year", "listing"]).reset_index(drop=True)


def paper_vectors(index, get_embed_model: Callable[[], Any] | None = None) -> dict[str, np.ndarray]:
    """One unit vector per paper: the mean of its chunk embeddings in Chroma, or (if Chroma
    cannot be read) a fresh embedding of title + abstract by `get_embed_model()` (a callable, so
    the embedding model is loaded only then)."""
    try:
        got = index.collection.get(include=["embeddings", "metadatas"])
        sums: dict[str, list[np.ndarray]] = {}
        for vec, meta in zip(got["embeddings"], got["metadatas"], strict=True):
            sums.setdefault(meta["paper_id"], []).append(np.asarray(vec, dtype=float))
        vectors = {pid: np.mean(vs, axis=0) for pid, vs in sums.items()}
    except Exception:
        if get_embed_model is None:
            raise
        texts = [f"{p.title or ''}\n{p.abstract}" for p in index.papers]
        embedded = get_embed_model().get_text_embedding_batch(texts)
        vectors = {
            p.paper_id: np.asarray(v, dtype=float) for p, v in zip(index.papers, embedded, strict=True)
        }
    return {pid: v / (np.linalg.norm(v) or 1.0) for pid, v in vectors.items()}


def pca_2d(matrix: np.ndarray) -> np.ndarray:
    centred = matrix - matrix.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


# --- topics of the corpus map ----------------------------------------------------------------

# Words that say nothing about a topic: English function words and what every abstract says.
STOPWORDS = frozenset(
    re.findall(
        r"\S+",
        """a about above across after again against all almost also although always among an and another any
    are around as at based be because been before being below between both but by can could did do does
    doing done due during each either enable enables etc even ever every few for from further given had
    has have having here how however if in into is it its itself just less like made make makes many may
    might more most much must near need needs new no nor not novel now of off often on once one only onto
    or other others otherwise our ours out over own paper per present presents propose proposed proposes
    provide provides rather same several shall she should show shows since so some such than that the
    their them then there these they this those though through thus to too toward towards two under
    until up upon us use used uses using very via was we well were what when where whether which while
    who whom whose why will with within without would yet approach approaches method methods model models
    result results study studies work task tasks data performance framework existing across learning
    based achieve achieves demonstrate demonstrates first three however significantly across available
    code github com https http www""",
    )
)
_WORD_RE = re.compile(r"[a-z][a-z0-9-]{2,}")


def kmeans(matrix: np.ndarray, k: int, seed: int = 0, iterations: int = 50) -> np.ndarray:
    """Cluster numbers of the rows of `matrix` (unit vectors): k-means++ seeding with a fixed
    seed, so the map is the same on every start."""
    rng = np.random.default_rng(seed)
    n = len(matrix)
    k = max(1, min(k, n))
    centres = [matrix[rng.integers(n)]]
    for _ in range(k - 1):
        d2 = np.min([((matrix - c) ** 2).sum(axis=1) for c in centres], axis=0)
        total = d2.sum()
        centres.append(matrix[rng.choice(n, p=d2 / total)] if total > 0 else matrix[rng.integers(n)])
    centre_matrix = np.stack(centres)
    labels = np.zeros(n, dtype=int)
    for step in range(iterations):
        new = np.argmin(((matrix[:, None, :] - centre_matrix[None, :, :]) ** 2).sum(axis=2), axis=1)
        if step and np.array_equal(new, labels):
            break
        labels = new
        for c in range(k):
            if (labels == c).any():
                centre_matrix[c] = matrix[labels == c].mean(axis=0)
    return labels


def paper_words(paper: Paper) -> set[str]:
    text = fold(plain_math(f"{paper.title or ''} {paper.abstract}"))
    return {w.strip("-") for w in _WORD_RE.findall(text) if w.strip("-") not in STOPWORDS}


def distinctive_words(clusters: list[list[Paper]], n: int = 3) -> list[list[str]]:
    """For each cluster, the `n` words that most set it apart from the rest of the corpus: a
    word scores p(word | cluster) * log(p(word | cluster) / p(word)), with p the share of papers
    that use the word, counted only when at least two papers of the cluster use it."""
    words_of = [[paper_words(p) for p in cluster] for cluster in clusters]
    total = sum(len(c) for c in clusters)
    df: Counter = Counter()
    for cluster in words_of:
        for words in cluster:
            df.update(words)
    out = []
    for cluster in words_of:
        inside: Counter = Counter()
        for words in cluster:
            inside.update(words)
        size = max(len(cluster), 1)
        scored = []
        for word, count in inside.items():
            if count < 2 and size > 2:
                continue
            p_in, p_all = count / size, df[word] / total
            scored.append((p_in * math.log(p_in / p_all), word))
        scored.sort(key=lambda t: (-t[0], t[1]))
        chosen: list[str] = []
        for _, word in scored:  # "segmentation" and "segment" say the same: keep the first
            if not any(word.startswith(c[:6]) or c.startswith(word[:6]) for c in chosen):
                chosen.append(word)
            if len(chosen) == n:
                break
        out.append(chosen)
    return out


def topic_labels(papers: list[Paper], points: np.ndarray, k: int = 8) -> list[str]:
    """The label of each paper's cluster of `points` (one row per paper), from the cluster's
    most distinctive words, e.g. "ecg · electrocardiogram · physiological"."""
    if len(papers) < 2:
        return ["topic 1"] * len(papers)
    labels = kmeans(points, k)
    clusters = [[p for p, c in zip(papers, labels, strict=True) if c == i] for i in range(labels.max() + 1)]
    names = [" · ".join(words) or f"topic {i + 1}" for i, words in enumerate(distinctive_words(clusters))]
    return [names[c] for c in labels]


def corpus_map(papers: list[Paper], vectors: dict[str, np.ndarray], k: int = 8) -> pd.DataFrame:
    """x, y of every paper with a vector, its topic (the colour), listing and hover text.

    Topics are clusters of the map's own plane (k-means on x, y), not of the full embeddings:
    each is a region of the map, so its label, written at the middle of the region, names what
    lies there (clusters of the 384-d vectors overlap in two dimensions and their labels pile up
    in the middle)."""
    columns = ["x", "y", "group", "topic", "title", "listing", "year", "paper_id"]
    kept = [p for p in papers if p.paper_id in vectors]
    if len(kept) < 2:
        return pd.DataFrame(columns=columns)
    xy = pca_2d(np.stack([vectors[p.paper_id] for p in kept]))
    topics = topic_labels(kept, xy, k)
    return pd.DataFrame(
        {
            "x": np.round(xy[:, 0], 4),
            "y": np.round(xy[:, 1], 4),
            "group": topics,
            "topic": topics,
            "title": [plain_math(p.label)[:90] for p in kept],
            "listing": [p.owner or "unknown" for p in kept],
            "year": [str(p.year or "undated") for p in kept],
            "paper_id": [p.paper_id for p in kept],
        },
        columns=columns,
    )


def topic_summary(base: pd.DataFrame) -> pd.DataFrame:
    """One row per topic of the map: its words, how many papers, and the listing most of them are in."""
    rows = []
    for topic, group in base.groupby("topic", sort=False):
        listing = group["listing"].value_counts()
        rows.append((topic, len(group), f"{listing.index[0]} ({listing.iloc[0]})"))
    rows.sort(key=lambda r: -r[1])
    return pd.DataFrame(rows, columns=["topic (most distinctive words)", "papers", "mostly in listing"])


def colour_by(base: pd.DataFrame, column: str) -> pd.DataFrame:
    """The map coloured by "topic" or "listing"."""
    df = base.copy()
    df["group"] = df[column]
    return df
