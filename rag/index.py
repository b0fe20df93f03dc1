"""Papers -> chunks -> Chroma (through llama-index) and a BM25 index, built as one generation.

Layout of the data dir:

    state.json                  the active generation and the files it was built from
    chroma/                     the embedded Chroma store (persistent mode)
    generations/<gen>/          papers.json, reports.json and bm25/ of one generation

A generation is built completely (new Chroma collection, new folder) before `state.json`
is replaced atomically, so a failed or interrupted ingest leaves the previous index intact.
Embeddings of unchanged chunk texts are copied from the previous generation, not recomputed.
state.json, reports.json and the locks are read and written by rag/state.py; one ingest runs at
a time, and a generation that a running app has loaded stays until it is no longer in use.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from rag.config import IndexSettings, Settings
from rag.corpus import list_files, merge_entries, parse_text, read_text
from rag.corpus.names import author_key, fold
from rag.embed import count_tokens, embedder_name, get_tokenizer, model_path
from rag.errors import CorpusError, EmbeddingUnavailable, IndexMissingError, IngestBusy, IngestError
from rag.state import (
    FORMAT_VERSION,
    STATE_FILE,
    FileStats,
    IndexConfig,
    IndexState,
    ListingRecord,
    current_generation,
    generation_unused,
    hold_generation,
    ingest_lock,
    read_reports,
    read_state,
    write_reports,
    write_state,
)
from rag.types import ListingReport, Paper

T = TypeVar("T")
log = logging.getLogger(__name__)

__all__ = [  # besides what is defined here: names that moved to rag.state and rag.errors
    "FORMAT_VERSION",
    "STATE_FILE",
    "IndexMissingError",
    "IngestBusy",
    "IngestError",
    "IndexState",
    "ListingRecord",
    "ingest_lock",
    "read_state",
    "write_state",
]

# Words BM25 leaves out, in queries and abstracts alike.
_STOPWORD_TEXT = """a an and are as at be by for from has have in is it its of on or that the this
to was were which with we our these those their they using use used via into than then also can
not but been such more most other over under between both each how what when where who whom why
all any some no nor only own same so too very will would should could may might must do does did
paper papers study work works which about"""
_STOPWORDS = set(_STOPWORD_TEXT.split())


# --- Chroma -----------------------------------------------------------------------------


def chroma_client(settings: Settings):
    """An embedded PersistentClient in the data dir, or an HttpClient to a `chroma run` server."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_mode == "http":
        try:
            return chromadb.HttpClient(
                host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
            )
        except Exception as exc:  # connection refused and friends
            raise IndexMissingError(
                f"Chroma server at http://{settings.chroma_host}:{settings.chroma_port} is unreachable "
                f"({exc}); "
                "start it with `chroma run --host 127.0.0.1 --path DIR` or set RAG_CHROMA_MODE=persistent"
            ) from exc
    settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)


def open_collection(client, name: str, create: bool = False):
    # embedding_function=None: Chroma must never embed text itself (its default model would
    # try to download); every vector comes from our local model.
    if create:
        return client.create_collection(name, metadata={"hnsw:space": "cosine"}, embedding_function=None)
    return client.get_collection(name, embedding_function=None)


# --- chunks and metadata ------------------------------------------------------------------


def embed_prefix(paper: Paper) -> str:
    return f"{paper.title}\n" if paper.title else ""


def chunk_paper(
    paper: Paper,
    embed_path: str,
    window: int = IndexSettings().chunk_tokens,
    overlap: int = IndexSettings().chunk_overlap,
) -> list[str]:
    """Abstract chunks that, with the title prefixed, fit the model's wordpiece window."""
    from llama_index.core.node_parser import SentenceSplitter

    prefix_tokens = count_tokens(embed_prefix(paper), embed_path) if paper.title else 2
    budget = window - prefix_tokens - 2  # margin for the joiner
    tok = get_tokenizer(embed_path)
    if count_tokens(paper.abstract, embed_path) - 2 <= budget:
        return [paper.abstract]
    splitter = SentenceSplitter(
        chunk_size=budget,
        chunk_overlap=min(overlap, budget // 4),
        tokenizer=lambda text: tok.encode(text, add_special_tokens=False).ids,
    )
    return splitter.split_text(paper.abstract)


def paper_metadata(paper: Paper) -> dict:
    """Flat metadata carried by every chunk (Chroma takes no lists or None)."""
    meta = {
        "paper_id": paper.paper_id,
        "label": paper.label,
        "title": paper.title or "",
        "authors": "; ".join(paper.authors),
        "listings": "; ".join(paper.listings),
        "owner": paper.owner or "",
        "category": paper.category or "",
        "has_code": paper.has_code,
        "date": paper.date or "",
    }
    if paper.year is not None:
        meta["year"] = paper.year
    return meta


def bm25_tokens(text: str) -> list[str]:
    """Folded words minus stop words, with a light plural strip ("models" -> "model")."""
    words = re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", fold(text))
    out = []
    for w in words:
        if w in _STOPWORDS or len(w) < 2:
            continue
        out.append(w)
        if "-" in w:
            out.extend(p for p in w.split("-") if len(p) > 1 and p not in _STOPWORDS)
    return [w[:-1] if len(w) > 4 and w.endswith("s") and not w.endswith("ss") else w for w in out]


def corpus_vocabulary(papers: list[Paper]) -> set[str]:
    """Every folded word of the titles and abstracts (for typo-tolerant "is this topic covered?")."""
    words: set[str] = set()
    for p in papers:
        words.update(re.findall(r"[a-z]+", fold(p.abstract + " " + (p.title or ""))))
    return words


def chunk_counts(nodes) -> dict[str, int]:
    """Chunks per paper id: with the "<paper_id>-<n>" chunk ids, what search needs to restrict
    Chroma to the chunks of some papers."""
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node.metadata["paper_id"]] = counts.get(node.metadata["paper_id"], 0) + 1
    return counts


def bm25_text(paper: Paper) -> str:
    return " ".join([paper.title or "", " ".join(paper.authors), paper.abstract])


# --- state ----------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- ingest ---------------------------------------------------------------------------------


@dataclass
class FileSummary:
    listing: str
    path: str
    status: str  # "added", "changed", "unchanged", "removed"
    layout: str = ""
    owner: str | None = None
    records: int = 0
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)
    skipped_lines: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass
class IngestSummary:
    status: str  # "unchanged", "updated", "built"
    files: list[FileSummary]
    papers: int
    chunks: int
    embedded: int
    reused: int
    seconds: float
    generation: str


def _config_fingerprint(settings: Settings, embed_path: str) -> IndexConfig:
    http = settings.chroma_mode == "http"
    return IndexConfig(
        format=FORMAT_VERSION,
        embed_model=embedder_name(settings, embed_path),
        chunk_tokens=settings.chunk_tokens,
        chunk_overlap=settings.chunk_overlap,
        chroma_mode=settings.chroma_mode,
        chroma_address=f"{settings.chroma_host}:{settings.chroma_port}" if http else "",
    )


def ingest(
    settings: Settings,
    paths: list[Path] | None = None,
    rebuild: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    wait: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> IngestSummary:
    """Bring the index in line with the listing files under `paths` (default: the seeds).

    The index mirrors the given files: new and changed files are (re)parsed, files no longer
    present are dropped. Raises CorpusError for unreadable input and IngestError otherwise;
    in both cases the active generation is left as it was.

    One ingest runs at a time per data dir: while another holds the lock this one waits for it
    (calling `on_wait` with a message first), or with `wait=False` raises `IngestBusy`.
    """
    start = time.perf_counter()
    paths = [Path(p) for p in (paths or settings.seeds)]
    embed_path = model_path(settings.embed_model_path)
    data_dir = settings.data_dir
    with ingest_lock(data_dir, wait=wait, on_wait=on_wait):
        files = list_files(paths)
        if not files:
            raise CorpusError(f"no listing files under {', '.join(map(str, paths))}")
        state = read_state(data_dir) if not rebuild else None
        old_files = state.files if state else {}
        # Read every file; one that cannot be read is reported and left out, unless the
        # current index holds it (dropping its papers silently would lose them).
        hashes: dict[str, str] = {}
        failed: list[FileSummary] = []
        seen: dict[str, str] = {}
        readable: list[tuple[Path, str]] = []
        for f in files:
            try:
                text = read_text(f)
            except CorpusError as exc:
                if str(f) in old_files:
                    raise CorpusError(f"{exc} (it is in the current index; fix or remove it)") from exc
                failed.append(FileSummary(f.name, str(f), "error", warnings=[str(exc)]))
                continue
            digest = hashlib.sha256(text.encode()).hexdigest()
            if digest in seen:
                failed.append(
                    FileSummary(
                        f.name,
                        str(f),
                        "duplicate",
                        warnings=[f"{f}: same content as {seen[digest]}; skipped"],
                    )
                )
                continue
            seen[digest] = str(f)
            hashes[str(f)] = file_sha256(f)
            readable.append((f, text))
        if not readable:
            raise CorpusError("no usable listing: " + "; ".join(w for s in failed for w in s.warnings))
        fingerprint = _config_fingerprint(settings, embed_path)
        if (
            state
            and state.config == fingerprint
            and old_files == hashes
            and _generation_usable(settings, state)
        ):
            summary = [FileSummary(Path(p).name, p, "unchanged") for p in hashes]
            for s in summary:
                s.records, s.skipped = state.stats(s.path).records, state.stats(s.path).skipped
            _drop_unused_generations(settings, keep=state.generation)
            return IngestSummary(
                "unchanged",
                summary + failed,
                state.papers,
                state.chunks,
                0,
                0,
                time.perf_counter() - start,
                state.generation,
            )

        reports: list[ListingReport] = [parse_text(text, f.name, str(f)) for f, text in readable]
        if not any(r.entries for r in reports):
            raise CorpusError("no papers found in " + ", ".join(r.path for r in reports))
        papers = merge_entries(reports)
        summaries = []
        for r in reports:
            status = (
                "unchanged"
                if old_files.get(r.path) == hashes[r.path]
                else ("changed" if r.path in old_files else "added")
            )
            summaries.append(
                FileSummary(
                    r.listing,
                    r.path,
                    status,
                    r.layout,
                    r.owner,
                    len(r.entries),
                    len(r.skipped),
                    r.warnings,
                    [(s.line_no, s.reason, s.text) for s in r.skipped],
                )
            )
        summaries += [FileSummary(Path(p).name, p, "removed") for p in old_files if p not in hashes] + failed

        generation = datetime.now(UTC).strftime("g%Y%m%dT%H%M%S%f")
        if rebuild:
            _set_aside_unreadable_store(settings)
        # Vectors are reused only from a generation embedded by the same model.
        same_model = state is not None and not rebuild and state.config.embed_model == fingerprint.embed_model
        built = _build_generation(
            settings, embed_path, generation, papers, reports, state if same_model else None, progress
        )
        new_state = IndexState(
            generation=generation,
            collection=built.collection,
            config=fingerprint,
            files=hashes,
            file_stats={r.path: FileStats(records=len(r.entries), skipped=len(r.skipped)) for r in reports},
            papers=len(papers),
            chunks=built.chunks,
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        write_state(data_dir, new_state)
        _drop_unused_generations(settings, keep=generation)
        return IngestSummary(
            "built" if not state else "updated",
            summaries,
            len(papers),
            built.chunks,
            built.embedded,
            built.reused,
            time.perf_counter() - start,
            generation,
        )


def ensure_index(
    settings: Settings,
    progress: Callable[[str, int, int], None] | None = None,
    on_build: Callable[[str], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> IngestSummary | None:
    """Build the index from the seeds when the data dir has none yet (what `rag ui` and the
    commands that need an index do); None when there is one. `on_build` gets a one-line
    message first. An unreadable state.json raises IndexMissingError (rebuilding is the user's
    call: `rag ingest --rebuild`)."""
    if read_state(settings.data_dir) is not None:
        return None
    if on_build:
        seeds = ", ".join(map(str, settings.seeds))
        on_build(
            f"no index in {settings.data_dir} yet: building it from {seeds} (once; `rag ingest` updates it)"
        )
    return ingest(settings, progress=progress, on_wait=on_wait)


def _set_aside_unreadable_store(settings: Settings) -> None:
    """--rebuild on a corrupt embedded store: move it aside (kept, not deleted) and start anew."""
    if settings.chroma_mode != "persistent" or not settings.chroma_dir.exists():
        return
    try:
        chroma_client(settings).list_collections()
    except Exception:
        aside = settings.chroma_dir.with_name(f"chroma.unreadable-{int(time.time())}")
        settings.chroma_dir.rename(aside)


def _generation_usable(settings: Settings, state: IndexState) -> bool:
    gen_dir = settings.data_dir / "generations" / state.generation
    if not (gen_dir / "papers.json").exists():
        return False
    try:
        return open_collection(chroma_client(settings), state.collection).count() == state.chunks
    except Exception:
        return False


def _old_embeddings(settings: Settings, state: IndexState | None) -> dict[str, list[float]]:
    """Embeddings of the previous generation, keyed by the sha of the text that was embedded."""
    if not state:
        return {}
    try:
        col = open_collection(chroma_client(settings), state.collection)
        got = col.get(include=["embeddings", "metadatas"])
    except Exception:
        return {}
    return {
        m["embed_sha"]: list(e)
        for e, m in zip(got["embeddings"], got["metadatas"], strict=True)
        if m and "embed_sha" in m
    }


@dataclass
class _Built:
    collection: str
    chunks: int
    embedded: int
    reused: int


def _build_generation(
    settings: Settings,
    embed_path: str,
    generation: str,
    papers: list[Paper],
    reports: list[ListingReport],
    previous: IndexState | None,
    progress: Callable[[str, int, int], None] | None,
) -> _Built:
    import bm25s
    from llama_index.core.schema import BaseNode, MetadataMode, TextNode
    from llama_index.vector_stores.chroma import ChromaVectorStore

    gen_dir = settings.data_dir / "generations" / generation
    collection_name = f"{settings.collection_prefix}_{generation}"
    client = chroma_client(settings)
    try:
        gen_dir.mkdir(parents=True)
        nodes: list[TextNode] = []
        for paper in papers:
            meta = paper_metadata(paper)
            chunks = chunk_paper(paper, embed_path, settings.chunk_tokens, settings.chunk_overlap)
            for i, chunk in enumerate(chunks):
                # Chunk ids are "<paper_id>-<n>": search maps Chroma hits to papers by id alone.
                node = TextNode(
                    id_=f"{paper.paper_id}-{i}",
                    text=chunk,
                    metadata={**meta, "chunk": i, "n_chunks": len(chunks)},
                    excluded_embed_metadata_keys=[k for k in meta if k != "title"] + ["chunk", "n_chunks"],
                    excluded_llm_metadata_keys=list(meta) + ["chunk", "n_chunks"],
                    metadata_template="{value}",
                    text_template="{metadata_str}\n{content}",
                )
                embed_text = node.get_content(metadata_mode=MetadataMode.EMBED)
                node.metadata["embed_sha"] = hashlib.sha256(embed_text.encode()).hexdigest()[:16]
                node.excluded_embed_metadata_keys.append("embed_sha")
                node.excluded_llm_metadata_keys.append("embed_sha")
                nodes.append(node)

        cache = _old_embeddings(settings, previous)
        todo = [n for n in nodes if n.metadata["embed_sha"] not in cache]
        if todo:
            from rag.embed import embed_threads, get_embedder

            model = get_embedder(settings, embed_path)
            # Longest first, batches of similar length: less padding, and the slowest batch
            # shows in the progress bar at once.
            texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in todo]
            tok = get_tokenizer(embed_path)
            order = sorted(range(len(texts)), key=lambda i: -len(tok.encode(texts[i]).ids))
            step = max(1, settings.embed_batch_size)
            with embed_threads(model, os.cpu_count() or 1):
                for i in range(0, len(order), step):
                    batch = order[i : i + step]
                    try:
                        vectors = model.get_text_embedding_batch([texts[j] for j in batch])
                    except EmbeddingUnavailable as exc:
                        raise IngestError(str(exc)) from exc
                    for j, vec in zip(batch, vectors, strict=True):
                        cache[todo[j].metadata["embed_sha"]] = vec
                    if progress:
                        progress("embedding", min(i + step, len(texts)), len(texts))
        for node in nodes:
            node.embedding = cache[node.metadata["embed_sha"]]

        collection = open_collection(client, collection_name, create=True)
        store = ChromaVectorStore(chroma_collection=collection)
        for i in range(0, len(nodes), 1000):
            to_add: list[BaseNode] = [*nodes[i : i + 1000]]
            store.add(to_add)

        corpus_tokens = [bm25_tokens(bm25_text(p)) for p in papers]
        retriever = bm25s.BM25()
        retriever.index(corpus_tokens, show_progress=False)
        retriever.save(str(gen_dir / "bm25"))
        (gen_dir / "papers.json").write_text(
            json.dumps([p.to_json() | {"owners": p.owners} for p in papers], ensure_ascii=False)
        )
        (gen_dir / "vocabulary.txt").write_text("\n".join(sorted(corpus_vocabulary(papers))))
        (gen_dir / "chunks.json").write_text(json.dumps(chunk_counts(nodes)))
        write_reports(gen_dir, [listing_record(r) for r in reports])
        if collection.count() != len(nodes):
            raise IngestError(f"Chroma holds {collection.count()} chunks, expected {len(nodes)}")
        return _Built(collection_name, len(nodes), len(todo), len(nodes) - len(todo))
    except BaseException:
        # Including KeyboardInterrupt: remove the half-built generation, keep the old one.
        with contextlib.suppress(Exception):
            client.delete_collection(collection_name)
        shutil.rmtree(gen_dir, ignore_errors=True)
        raise


def listing_record(report: ListingReport) -> ListingRecord:
    """What the index keeps of a parsed listing (the entries themselves go to papers.json)."""
    return ListingRecord(
        listing=report.listing,
        path=report.path,
        layout=report.layout,
        owner=report.owner,
        profile=report.profile,
        records=len(report.entries),
        skipped=len(report.skipped),
        warnings=report.warnings,
    )


_GENERATION_RE = re.compile(r"g\d{8}T\d{6,}")


def _drop_unused_generations(settings: Settings, keep: str) -> list[str]:
    """Remove every generation but `keep` that no process has loaded (its Chroma collection
    and its folder); a generation a running app still uses stays, for a later ingest to remove.
    Runs under the ingest lock. Returns the generations kept because they are in use."""
    gen_root = settings.data_dir / "generations"
    in_use: list[str] = []
    dropped = False
    for gen_dir in sorted(gen_root.iterdir()) if gen_root.is_dir() else []:
        if gen_dir.name == keep or not _GENERATION_RE.fullmatch(gen_dir.name):
            continue
        with generation_unused(gen_dir) as unused:
            if not unused:
                in_use.append(gen_dir.name)
                continue
            with contextlib.suppress(Exception):
                chroma_client(settings).delete_collection(f"{settings.collection_prefix}_{gen_dir.name}")
            shutil.rmtree(gen_dir, ignore_errors=True)
            dropped = True
    if dropped and settings.chroma_mode == "persistent":
        _remove_orphan_segment_dirs(settings.chroma_dir)
    return in_use


_SEGMENT_DIR_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _remove_orphan_segment_dirs(chroma_dir: Path) -> None:
    """Delete vector-segment folders no collection uses any more. Chroma's delete_collection
    leaves them on disk (chroma-core/chroma#5520), so each update would leave a full copy of
    the old vectors behind. A folder is kept unless Chroma's own table no longer lists it."""
    import sqlite3

    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{chroma_dir / 'chroma.sqlite3'}?mode=ro", uri=True)
        ) as db:
            live = {row[0] for row in db.execute("SELECT id FROM segments")}
    except sqlite3.Error:
        return  # an unknown store layout: leave everything as it is
    for path in chroma_dir.iterdir():
        if path.is_dir() and _SEGMENT_DIR_RE.fullmatch(path.name) and path.name not in live:
            shutil.rmtree(path, ignore_errors=True)


# --- loading --------------------------------------------------------------------------------


class PaperIndex:
    """A loaded generation: the paper table, its BM25 index and its Chroma collection."""

    def __init__(self, settings: Settings):
        state, gen_dir, self._hold = _load_generation(settings.data_dir)
        try:
            rows = json.loads((gen_dir / "papers.json").read_text())
            self.reports: list[ListingRecord] = read_reports(gen_dir)
        except (OSError, json.JSONDecodeError) as exc:
            raise IndexMissingError(
                f"index files in {gen_dir} are missing or corrupt ({exc}); "
                "rebuild with `rag ingest --rebuild`"
            ) from exc
        self.settings = settings
        self.state: IndexState = state
        self._state_stat = _stat_key(settings.data_dir / STATE_FILE)
        self.papers: list[Paper] = [Paper.from_json(r) for r in rows]
        self.by_id: dict[str, Paper] = {p.paper_id: p for p in self.papers}
        self.position: dict[str, int] = {p.paper_id: i for i, p in enumerate(self.papers)}
        self.embed_path = model_path(settings.embed_model_path)
        self._gen_dir = gen_dir
        self._bm25: Any = None
        self._store: Any = None
        self._collection: Any = None
        self._chunk_counts: dict[str, int] | None = None

    @property
    def generation(self) -> str:
        return self.state.generation

    def is_current(self) -> bool:
        """Whether state.json still names this generation (one stat() while it does)."""
        path = self.settings.data_dir / STATE_FILE
        if _stat_key(path) == self._state_stat:
            return True
        return current_generation(self.settings.data_dir) == self.state.generation

    def reload(self) -> PaperIndex:
        """The index of the generation state.json names now (self when that is this one)."""
        return self if self.is_current() else PaperIndex(self.settings)

    def close(self) -> None:
        """Let ingest remove this generation (also happens when the object is collected)."""
        if self._hold is not None:
            self._hold.close()
            self._hold = None

    @property
    def chunk_counts(self) -> dict[str, int] | None:
        """Chunks per paper id, saved at ingest; None for a generation written without them."""
        if self._chunk_counts is None:
            path = self._gen_dir / "chunks.json"
            self._chunk_counts = json.loads(path.read_text()) if path.exists() else {}
        return self._chunk_counts or None

    @property
    def vocabulary(self) -> set[str] | None:
        """The corpus words saved at ingest; None for a generation written without them."""
        path = self._gen_dir / "vocabulary.txt"
        return set(path.read_text().split("\n")) if path.exists() else None

    @property
    def bm25(self):
        if self._bm25 is None:
            import bm25s

            self._bm25 = bm25s.BM25.load(str(self._gen_dir / "bm25"))
        return self._bm25

    @property
    def collection(self):
        """The generation's Chroma collection (queried directly by rag/retrieve.py)."""
        if self._collection is None:
            try:
                self._collection = open_collection(chroma_client(self.settings), self.state.collection)
            except IndexMissingError:
                raise
            except Exception as exc:
                raise IndexMissingError(
                    f"Chroma collection {self.state.collection} is missing or unreadable "
                    f"({exc}); rebuild with `rag ingest --rebuild`"
                ) from exc
        return self._collection

    @property
    def store(self):
        """The same collection as a llama-index vector store."""
        if self._store is None:
            from llama_index.vector_stores.chroma import ChromaVectorStore

            self._store = ChromaVectorStore(chroma_collection=self.collection)
        return self._store

    def author_keys(self, paper: Paper) -> set[str]:
        return {author_key(a) for a in paper.authors}


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _load_generation(data_dir: Path, attempts: int = 5) -> tuple[IndexState, Path, IO[str] | None]:
    """The active generation, held (shared lock) so that no ingest removes it while loaded.
    An ingest may switch generations between reading state.json and taking the lock; then the
    old folder is gone and the new state is read again."""
    for _ in range(attempts):
        state = read_state(data_dir)
        if not state:
            raise IndexMissingError(f"no index in {data_dir}; build it with `rag ingest`")
        gen_dir = data_dir / "generations" / state.generation
        hold = hold_generation(gen_dir)
        if (gen_dir / "papers.json").exists():
            return state, gen_dir, hold
        if hold is not None:
            hold.close()
        if current_generation(data_dir) == state.generation:
            break  # not a switch: the folder is really missing
    raise IndexMissingError(
        f"index files in {data_dir / 'generations'} are missing or corrupt; "
        "rebuild with `rag ingest --rebuild`"
    )


class LiveIndex(Generic[T]):
    """What a long-running app serves from: `get()` returns `make(PaperIndex)` for the
    generation state.json names now, built once per generation. After an ingest the next
    `get()` loads the new generation; requests that still hold the old object keep answering
    from it (its generation stays on disk while it is loaded). Thread-safe. When loading the
    new generation fails, the old one keeps serving and the load is tried again later."""

    def __init__(self, settings: Settings, make: Callable[[PaperIndex], T], retry_s: float = 5.0):
        self.settings = settings
        self._make = make
        self._lock = threading.Lock()
        self._index = PaperIndex(settings)
        self._value = make(self._index)
        self._retry_s = retry_s
        self._failed_at = 0.0

    @property
    def index(self) -> PaperIndex:
        return self._index

    def get(self) -> T:
        if self._index.is_current():
            return self._value
        with self._lock:
            if self._index.is_current() or time.monotonic() - self._failed_at < self._retry_s:
                return self._value
            try:
                index = PaperIndex(self.settings)
                value = self._make(index)
            except Exception as exc:
                self._failed_at = time.monotonic()
                log.warning(
                    "keeping generation %s: the new one does not load (%s)", self._index.generation, exc
                )
                return self._value
            self._index, self._value = index, value
            return value
