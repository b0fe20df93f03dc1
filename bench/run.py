"""Benchmarks of paper-rag: ingest, startup, search, scale, answers. Numbers, not tests.

Run from the project root:

    python -m bench.run                          # everything; `answers` needs the 1.5B model (slow)
    python -m bench.run --quick                  # scale at 2k/10k instead of 10k/100k; skips `answers`
    python -m bench.run --only search,coldstart  # a subset: ingest startup coldstart search scale answers
    python -m bench.run --quick --only answers   # `answers` runs whenever it is named in --only
    python -m bench.run --out DIR                # default bench/results

Each benchmark prints a table. All numbers go to DIR/results-<UTC time>.json (rewritten after every
benchmark, so a crash keeps what was measured); `scale` also draws DIR/scale.png. Everything is built
in a temporary dir that is deleted at the end; the user's data dir is only read (a joined 1.5B model
file there is reused). A seed index is built once and shared by the benchmarks. Times are wall clock
(perf_counter); "p50/p95" are nearest-rank percentiles (eval.metrics.percentile); the 1-minute load
average is stored next to every benchmark: on a busy 2-core machine all times are inflated.

ingest   cold: `rag.index.ingest` of a copy of seeds/ (5 files, 216 papers) into an empty data dir,
         with the embedding model already loaded (its load time is `model_load_s`); papers/s = papers /
         cold seconds. unchanged: the same call again (sha256 check only). one file touched: one
         abstract gets a sentence appended (re-embeds that paper's chunks, copies the rest); reverted:
         the file restored. disk: bytes allocated under the data dir (like `du`) after cold and after
         the updates. plain llama-index: the same 216 abstracts (already parsed: no parsing, no BM25)
         as one Document each -> VectorStoreIndex into a fresh Chroma collection, same embedding model;
         `ratio` = our cold seconds / its seconds. (It makes one node per abstract at chunk size 1024;
         the model truncates at 256 wordpieces, so long abstracts are embedded only in part.)
startup  fresh `python -m rag.cli search ... --json`, `rag.cli ask "How many papers does Harald Binder
         have?" --json` (a table question: no LLM) and `python -c "import ui.app"` against the seed
         index (RAG_DATA_DIR): wall seconds, CPU seconds and peak RSS of that process (GNU
         /usr/bin/time %M), median of 3 runs (1 with --quick), peak RSS the max. `ok` checks the
         output (hits returned, answer kind "table").
coldstart  fresh `rag search` and cold `rag ingest` processes with the ONNX encoder (default) and with
         RAG_EMBED_BACKEND=torch, the one-time ONNX build, and the ONNX vectors against torch and
         sentence-transformers: see bench/coldstart.py.
search   `Retriever.search` (k=10, query analysis on, as `rag search`) over the eval questions that have
         gold papers (follow-ups made standalone without a model, eval.run.standalone), after one
         warm-up query, per mode (hybrid, dense, bm25): p50/p95/mean ms, and the median ms spent in
         query analysis, query embedding (timed again on its own), the Chroma query through
         ChromaVectorStore (dense minus embedding), BM25 and the rest (filters over the paper table,
         fusion); `filtered` = queries where analysis set a filter.
         plain llama-index: `VectorStoreIndex.as_retriever(similarity_top_k=10).retrieve` on the plain
         index of `ingest`; ratio = our hybrid p50 / its p50. The modes and the baseline take turns
         on each question, so bursts of load from other processes hit them alike.
scale    synthetic corpora of 216 (the seeds), 10k and 100k papers (--quick: 2k and 10k). Papers 1-216
         are the seed papers as indexed; paper j>216 copies the metadata of seed paper j mod 216 under a
         new id, its abstract and each chunk text are that paper's sentences shuffled, and each chunk
         vector is the real 384-d chunk embedding (read from the seed index's Chroma collection) plus
         Gaussian noise (sigma 0.02), renormalised: no model calls. A generation is written the way
         rag/index.py writes one (Chroma collection through ChromaVectorStore, papers.json,
         reports.json, chunks.json, vocabulary.txt, bm25/, state.json) so that `PaperIndex` +
         `Retriever` load it unchanged. Then a
         fresh process loads it and runs 40 hybrid searches (30 with --quick; query embedding as
         usual): load seconds, first-query seconds, p50/p95 ms with the breakdown above, and its RSS
         (VmRSS at the end, VmHWM peak). Done for the embedded PersistentClient and for a `chroma run`
         server (started on a free port, restarted after the build so its RSS is that of serving;
         `server_rss_mb` counts the server's process tree). scale.png: p95 latency and RSS vs papers.
         Note: names are reused, so the author vocabulary does not grow with the corpus.
answers  with the embedded Qwen2.5-Coder-1.5B and with SmolLM2-135M (both through llama.cpp, started by
         rag.llm), over 20 stratified dev questions (eval/questions.jsonl, eval.run.load_questions(
         limit=20)) and every held-out question (eval/heldout.jsonl), after one warm-up completion,
         per split: answer kinds; of the generated answers, prompt tokens, the new ones the server
         read (not from its prefix cache), cached tokens and prefill seconds (from the server's log,
         rag.llm.prompt_stats); first-token and total p50/p95 s ("generated_*": only the answers the
         model wrote; table answers and refusals need no model); and the same questions through
         llama-index's CitationQueryEngine (eval.run) on the same server: ratios of total p50 and p95
         over all questions, and of p50 over the questions ours generated for. Evidence: for the same
         questions, the factual prompt with the budgeted evidence (rag.answer.generate.fact_evidence)
         vs with the whole abstracts of the same papers (chars; no generation).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from eval.metrics import percentile
from rag.config import PROJECT_ROOT, Settings

BENCHES = ("ingest", "startup", "coldstart", "search", "scale", "answers")
SIGMA = 0.02


# --- helpers ---------------------------------------------------------------------------------


def stats_ms(seconds: list[float]) -> dict:
    return {
        "n": len(seconds),
        "p50_ms": 1000 * percentile(seconds, 50),
        "p95_ms": 1000 * percentile(seconds, 95),
        "mean_ms": 1000 * sum(seconds) / len(seconds),
    }


def disk_mb(path: Path) -> float:
    """Allocated size of a tree, like `du`."""
    return (
        sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20
    )


def proc_status_mb(field: str, pid: str = "self") -> float:
    return (
        int(re.search(rf"^{field}:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M).group(1)) / 1024
    )


def tree_rss_mb(pid: int) -> float:
    """VmRSS of a process and all its descendants."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError, AttributeError):
            total += proc_status_mb("VmRSS", str(p))
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return total


def eval_queries(n: int | None = None) -> list[str]:
    """Eval questions with gold papers, standalone; n of them spread over the file."""
    from eval.run import load_questions, standalone

    qs = [standalone(q) for q in load_questions() if q["gold"]]
    if n and n < len(qs):
        qs = [qs[i * len(qs) // n] for i in range(n)]
    return qs


def show(title: str, rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(v) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:.1f}" if abs(v) >= 10 else f"{v:.3g}"
        return str(v)

    table = Table(title=title, title_justify="left")
    cols = list(dict.fromkeys(k for r in rows for k in r))
    for c in cols:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*(fmt(r.get(c)) for c in cols))
    Console(width=160).print(table)


def time_queries(retriever, queries: list[str], modes=("hybrid",), baseline=None) -> dict[str, dict]:
    """Latency of Retriever.search per mode, split into its parts (timing wrappers on the instance).

    The modes (and `baseline`, a callable taking the query) take turns on each query, so a burst of
    load from other processes hits all of them alike."""
    parts: dict[str, float] = defaultdict(float)

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                parts[name] += time.perf_counter() - t

        return wrapper

    retriever.analyser.analyse = timed("analyse", retriever.analyser.analyse)
    retriever.dense = timed("dense", retriever.dense)
    retriever.bm25 = timed("bm25", retriever.bm25)
    rows: dict[str, list[dict]] = {m: [] for m in modes}
    errors: dict[str, list[str]] = {m: [] for m in modes}
    base: list[float] = []
    try:
        for mode in modes:  # warm-up: model, BM25 and collection loaded
            with contextlib.suppress(Exception):
                retriever.search(queries[0], mode=mode)
        if baseline:
            baseline(queries[0])
        for q in queries:
            t = time.perf_counter()
            retriever.embed_model.get_query_embedding(q)  # the query embedding alone
            embed = time.perf_counter() - t
            for mode in modes:
                parts.clear()
                t = time.perf_counter()
                try:
                    result = retriever.search(q, mode=mode)
                except Exception as exc:  # a failing query is a finding: counted and reported, not fatal
                    errors[mode].append(f"{q[:60]!r}: {type(exc).__name__}: {str(exc)[:200]}")
                    continue
                row = {"total": time.perf_counter() - t, "filtered": not result.filters.is_empty(), **parts}
                if "dense" in parts:
                    row["embed"] = min(embed, parts["dense"])
                rows[mode].append(row)
            if baseline:
                t = time.perf_counter()
                baseline(q)
                base.append(time.perf_counter() - t)
    finally:
        del retriever.analyser.analyse, retriever.dense, retriever.bm25
    out = {mode: summarise(rows[mode], errors[mode], mode, len(queries)) for mode in modes}
    if baseline:
        out["baseline"] = stats_ms(base)
    return out


def summarise(rows: list[dict], errors: list[str], mode: str, n: int) -> dict:
    if errors:
        print(f"{len(errors)} of {n} {mode} searches failed, e.g. {errors[0]}")
    if not rows:
        return {"n": 0, "errors": len(errors), "error_examples": errors[:3]}

    def median_ms(part) -> float:
        return 1000 * percentile([part(r) for r in rows], 50)

    out = stats_ms([r["total"] for r in rows])
    out |= {
        "analyse_ms": median_ms(lambda r: r.get("analyse", 0.0)),
        "embed_ms": median_ms(lambda r: r.get("embed", 0.0)),
        "chroma_ms": median_ms(lambda r: r.get("dense", 0.0) - r.get("embed", 0.0)),
        "bm25_ms": median_ms(lambda r: r.get("bm25", 0.0)),
        "rest_ms": median_ms(
            lambda r: r["total"] - r.get("analyse", 0.0) - r.get("dense", 0.0) - r.get("bm25", 0.0)
        ),
        "filtered": sum(r["filtered"] for r in rows),
        "errors": len(errors),
    }
    filtered = [r["total"] for r in rows if r["filtered"]]
    out["filtered_p50_ms"] = 1000 * percentile(filtered, 50) if filtered else None
    if errors:
        out["error_examples"] = errors[:3]
    return out


class Context:
    """What the benchmarks share: the temp dir, the seed index and the plain llama-index index."""

    def __init__(self, tmp: Path, out: Path, quick: bool):
        self.tmp, self.out, self.quick = tmp, out, quick
        self.seed: Settings | None = None
        self.plain = None  # (VectorStoreIndex, seconds to build)

    def seed_settings(self) -> Settings:
        if self.seed is None:
            from rag.index import ingest

            settings = Settings(data_dir=self.tmp / "seed", chroma_mode="persistent")
            ingest(settings)
            self.seed = settings
        return self.seed

    def plain_index(self):
        if self.plain is None:
            from rag.index import PaperIndex

            index = PaperIndex(self.seed_settings())
            t = time.perf_counter()
            index = build_plain_index(index.papers, index.embed_path, self.tmp / "plain-chroma")
            self.plain = (index, time.perf_counter() - t)
        return self.plain[0]


def build_plain_index(papers, embed_path: str, chroma_path: Path):
    """The plain llama-index pipeline: one Document per abstract -> VectorStoreIndex in Chroma."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.core import Settings as LlamaSettings
    from llama_index.core.llms import MockLLM
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from rag.embed import get_embed_model

    LlamaSettings.embed_model = get_embed_model(embed_path)  # the default batch size of rag/config.py
    LlamaSettings.llm = MockLLM()
    client = chromadb.PersistentClient(
        path=str(chroma_path), settings=ChromaSettings(anonymized_telemetry=False)
    )
    collection = client.create_collection("plain", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    docs = [
        Document(
            text=p.abstract,
            metadata={"paper_id": p.paper_id, "title": p.title or ""},
            excluded_embed_metadata_keys=["paper_id"],
            excluded_llm_metadata_keys=["paper_id"],
        )
        for p in papers
    ]
    storage = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=collection))
    return VectorStoreIndex.from_documents(docs, storage_context=storage)


# --- 1. ingest ---------------------------------------------------------------------------------


def touch_one_abstract(seed_dir: Path, papers) -> tuple[Path, bytes]:
    """Append a sentence to one single-line abstract that occurs once in one file; return the original."""
    files = sorted(seed_dir.glob("*.txt"))
    for p in papers:
        needle = p.abstract.encode()
        if b"\n" in needle or len(p.listings) != 1:
            continue
        found = [f for f in files if f.read_bytes().count(needle) == 1]
        if len(found) == 1:
            original = found[0].read_bytes()
            found[0].write_bytes(
                original.replace(needle, needle + b" This sentence was added by the benchmark.")
            )
            return found[0], original
    raise RuntimeError("no single-line abstract found verbatim in the seed files")


def bench_ingest(ctx: Context) -> dict:
    from rag.embed import get_embed_model, model_path
    from rag.index import PaperIndex, ingest

    seeds = ctx.tmp / "seeds-copy"
    shutil.copytree(PROJECT_ROOT / "seeds", seeds)
    settings = Settings(data_dir=ctx.tmp / "ingest", seeds=[seeds], chroma_mode="persistent")
    t = time.perf_counter()
    get_embed_model(model_path(settings.embed_model_path), settings.embed_batch_size).get_text_embedding(
        "warm-up"
    )
    model_load_s = time.perf_counter() - t

    rows = []

    def step(name: str) -> None:
        t = time.perf_counter()
        s = ingest(settings)
        rows.append(
            {
                "step": name,
                "seconds": time.perf_counter() - t,
                "status": s.status,
                "papers": s.papers,
                "chunks": s.chunks,
                "embedded": s.embedded,
                "reused": s.reused,
                "disk_mb": disk_mb(settings.data_dir),
            }
        )

    step("cold")
    step("unchanged")
    path, original = touch_one_abstract(seeds, PaperIndex(settings).papers)
    step(f"one file touched ({path.name})")
    path.write_bytes(original)
    step("reverted")
    ctx.seed = settings  # back to the seed content: the shared index for the other benchmarks

    papers = PaperIndex(settings).papers
    ctx.plain_index()
    plain_s = ctx.plain[1]
    cold = rows[0]["seconds"]
    nodes = ctx.plain[0].vector_store.client.count()  # ChromaVectorStore.client is the collection
    rows.append(
        {
            "step": f"plain llama-index ({len(papers)} Documents)",
            "seconds": plain_s,
            "papers": len(papers),
            "chunks": nodes,
            "embedded": nodes,
            "disk_mb": disk_mb(ctx.tmp / "plain-chroma"),
        }
    )
    result = {
        "model_load_s": model_load_s,
        "steps": rows,
        "cold_papers_per_s": rows[0]["papers"] / cold,
        "plain_papers_per_s": len(papers) / plain_s,
        "ratio_cold_vs_plain": cold / plain_s,
        "cold_texts_embedded_per_s": rows[0]["embedded"] / cold,
        "plain_texts_embedded_per_s": nodes / plain_s,
    }
    show(f"ingest (embedding model load {model_load_s:.1f} s, not included)", rows)
    print(
        f"cold: {result['cold_papers_per_s']:.2f} papers/s; "
        f"plain llama-index: {result['plain_papers_per_s']:.2f} papers/s; "
        f"ours/plain = {result['ratio_cold_vs_plain']:.2f}x (texts embedded/s: "
        f"{result['cold_texts_embedded_per_s']:.1f} vs {result['plain_texts_embedded_per_s']:.1f})"
    )
    return result


# --- 2. startup --------------------------------------------------------------------------------


def run_measured(cmd: list[str], env: dict) -> dict:
    """Wall time, and the peak RSS and CPU time from GNU time, of one fresh process.

    Not os.wait4/RUSAGE_CHILDREN: a child forked from this (large) process inherits its peak RSS.
    """
    with tempfile.TemporaryDirectory() as d:
        usage = Path(d) / "usage"
        timer = (
            ["/usr/bin/time", "-f", "%M %U %S", "-o", str(usage)] if Path("/usr/bin/time").exists() else []
        )
        t = time.perf_counter()
        proc = subprocess.run(
            timer + cmd, capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL
        )
        wall = time.perf_counter() - t
        rss = cpu = None
        if timer:  # the last line; GNU time puts "Command exited with non-zero status" before it
            kb, user, system = usage.read_text().split("\n")[-2].split()
            rss, cpu = int(kb) / 1024, float(user) + float(system)
        return {
            "wall_s": wall,
            "max_rss_mb": rss,
            "cpu_s": cpu,
            "rc": proc.returncode,
            "stdout": proc.stdout,
            "stderr": proc.stderr,
        }


def bench_startup(ctx: Context) -> dict:
    settings = ctx.seed_settings()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_CHROMA", "RAG_INDEX__CHROMA"))} | {
        "RAG_DATA_DIR": str(settings.data_dir)
    }
    py = sys.executable
    cmds = {
        "rag search": (
            [py, "-m", "rag.cli", "search", "state space models", "--json"],
            lambda out: isinstance(json.loads(out), list) and len(json.loads(out)) > 0,
        ),
        "rag ask (table)": (
            [py, "-m", "rag.cli", "ask", "How many papers does Harald Binder have?", "--json"],
            lambda out: json.loads(out)["kind"] == "table",
        ),
    }
    if (PROJECT_ROOT / "ui" / "app.py").exists():
        cmds["import ui.app"] = ([py, "-c", "import ui.app"], lambda out: True)
    else:
        print("startup: ui/app.py does not exist; skipped")
    runs = 1 if ctx.quick else 3
    rows = []
    for name, (cmd, check) in cmds.items():
        samples = [run_measured(cmd, env) for _ in range(runs)]
        ok = all(s["rc"] == 0 for s in samples)
        try:
            ok = ok and all(check(s["stdout"]) for s in samples)
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            print(f"startup: {name} failed (rc {samples[-1]['rc']}): {samples[-1]['stderr'][-500:]}")
        walls = sorted(s["wall_s"] for s in samples)
        rows.append(
            {
                "command": name,
                "runs": runs,
                "wall_s": walls[len(walls) // 2],
                "wall_min_s": walls[0],
                "cpu_s": percentile([s["cpu_s"] for s in samples], 50),
                "peak_rss_mb": max((s["max_rss_mb"] for s in samples if s["max_rss_mb"]), default=None),
                "ok": ok,
            }
        )
    show("startup (fresh process, seed index)", rows)
    return {"commands": rows}


def bench_coldstart(ctx: Context) -> dict:
    """Fresh `rag search` / `rag ingest` processes, ONNX vs torch encoder: bench/coldstart.py."""
    from bench.coldstart import bench_coldstart as run

    return run(ctx)


# --- 3. search ---------------------------------------------------------------------------------


def bench_search(ctx: Context) -> dict:
    from rag.index import PaperIndex
    from rag.retrieve import Retriever

    retriever = Retriever(PaperIndex(ctx.seed_settings()))
    queries = eval_queries()
    plain = ctx.plain_index().as_retriever(similarity_top_k=retriever.settings.top_k)
    timings = time_queries(retriever, queries, ("hybrid", "dense", "bm25"), baseline=plain.retrieve)
    result = {"queries": len(queries), **timings}
    result["plain llama-index"] = result.pop("baseline")
    result["ratio_hybrid_vs_plain_p50"] = result["hybrid"]["p50_ms"] / result["plain llama-index"]["p50_ms"]
    show(
        f"search latency, ms ({len(queries)} eval questions, warm, k=10)",
        [
            {"retriever": k} | {m: x for m, x in v.items() if m != "error_examples"}
            for k, v in result.items()
            if isinstance(v, dict)
        ],
    )
    print(f"hybrid p50 / plain llama-index p50 = {result['ratio_hybrid_vs_plain_p50']:.2f}x")
    return result


# --- 4. scale ----------------------------------------------------------------------------------


def build_synthetic(seed: Settings, n: int, data_dir: Path, http_port: int | None) -> dict:
    """Write a generation of n papers (see the module docstring) to data_dir (and to a Chroma server)."""
    import bm25s
    import numpy as np
    from llama_index.core.schema import MetadataMode, TextNode
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from rag.answer import split_sentences
    from rag.index import (
        PaperIndex,
        bm25_text,
        bm25_tokens,
        chroma_client,
        corpus_vocabulary,
        open_collection,
        paper_metadata,
    )
    from rag.state import IndexState, write_reports, write_state

    index = PaperIndex(seed)
    got = open_collection(chroma_client(seed), index.state.collection).get(
        include=["embeddings", "metadatas", "documents"]
    )
    chunks: dict[str, list] = defaultdict(list)
    for doc, emb, meta in sorted(
        zip(got["documents"], got["embeddings"], got["metadatas"], strict=True),
        key=lambda r: (r[2]["paper_id"], r[2]["chunk"]),
    ):
        chunks[meta["paper_id"]].append((doc, np.asarray(emb, dtype=np.float32)))
    rng = np.random.default_rng(0)

    def shuffled(text: str) -> str:
        sents = split_sentences(text)
        return " ".join(sents[i] for i in rng.permutation(len(sents))) if len(sents) > 1 else text

    def jittered(vec):
        v = vec + rng.normal(0.0, SIGMA, vec.shape).astype(np.float32)
        return (v / np.linalg.norm(v)).tolist()

    generation = f"gbench{n}"
    collection = f"{seed.collection_prefix}_{generation}"
    targets = [Settings(data_dir=data_dir, chroma_mode="persistent")]
    if http_port:
        targets.append(Settings(data_dir=data_dir, chroma_mode="http", chroma_port=http_port))
    stores = [
        ChromaVectorStore(chroma_collection=open_collection(chroma_client(s), collection, create=True))
        for s in targets
    ]
    add_s = [0.0] * len(stores)
    papers, batch, n_chunks = [], [], 0
    counts: dict[str, int] = {}

    def flush():
        for k, store in enumerate(stores):
            t = time.perf_counter()
            store.add(batch)
            add_s[k] += time.perf_counter() - t
        batch.clear()

    t0 = time.perf_counter()
    for j in range(n):
        base = index.papers[j % len(index.papers)]
        real = j < len(index.papers)
        paper = (
            base
            if real
            else dataclasses.replace(
                base,
                paper_id=hashlib.sha256(f"bench-{j}".encode()).hexdigest()[:12],
                abstract=shuffled(base.abstract),
            )
        )
        papers.append(paper)
        meta = paper_metadata(paper)
        parts = chunks[base.paper_id]
        counts[paper.paper_id] = len(parts)
        for i, (doc, vec) in enumerate(parts):
            node = TextNode(
                id_=f"{paper.paper_id}-{i}",
                text=doc if real else shuffled(doc),
                metadata={**meta, "chunk": i, "n_chunks": len(parts)},
                excluded_embed_metadata_keys=[k for k in meta if k != "title"]
                + ["chunk", "n_chunks", "embed_sha"],
                excluded_llm_metadata_keys=list(meta) + ["chunk", "n_chunks", "embed_sha"],
                metadata_template="{value}",
                text_template="{metadata_str}\n{content}",
                embedding=vec.tolist() if real else jittered(vec),
            )
            node.metadata["embed_sha"] = hashlib.sha256(
                node.get_content(metadata_mode=MetadataMode.EMBED).encode()
            ).hexdigest()[:16]
            batch.append(node)
            n_chunks += 1
        if len(batch) >= 1000:
            flush()
    if batch:
        flush()
    total_chroma = sum(add_s)

    t = time.perf_counter()
    gen_dir = data_dir / "generations" / generation
    gen_dir.mkdir(parents=True)
    bm25 = bm25s.BM25()
    bm25.index([bm25_tokens(bm25_text(p)) for p in papers], show_progress=False)
    bm25.save(str(gen_dir / "bm25"))
    (gen_dir / "papers.json").write_text(
        json.dumps([p.to_json() | {"owners": p.owners} for p in papers], ensure_ascii=False)
    )
    (gen_dir / "vocabulary.txt").write_text("\n".join(sorted(corpus_vocabulary(papers))))
    (gen_dir / "chunks.json").write_text(json.dumps(counts))
    write_reports(gen_dir, index.reports)
    write_state(
        data_dir,
        IndexState(
            generation=generation,
            collection=collection,
            config=index.state.config,
            files={},
            papers=len(papers),
            chunks=n_chunks,
            built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        ),
    )
    return {
        "chunks": n_chunks,
        "build_s": time.perf_counter() - t0,
        "chroma_add_s": dict(zip(["persistent", "http"], add_s, strict=False)),  # http only when a server ran
        "bm25_and_files_s": time.perf_counter() - t,
        "nodes_s": t - t0 - total_chroma,
    }


@contextlib.contextmanager
def chroma_server(path: Path):
    """`chroma run` on a free port; yields (port, process); stopped on exit."""
    from rag.llm import free_port

    port = free_port()
    path.mkdir(parents=True, exist_ok=True)
    with open(path.parent / "chroma-server.log", "ab") as log:
        proc = subprocess.Popen(
            [shutil.which("chroma"), "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(path)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chroma server did not start; see {path.parent / 'chroma-server.log'}")
            time.sleep(0.3)
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def probe(data_dir: str, chroma_mode: str, port: str, n_queries: str) -> None:
    """Run by bench_scale in a fresh process: load a generation, time hybrid searches, print JSON."""
    from rag.index import PaperIndex
    from rag.retrieve import Retriever

    t = time.perf_counter()
    retriever = Retriever(
        PaperIndex(Settings(data_dir=Path(data_dir), chroma_mode=chroma_mode, chroma_port=int(port)))
    )
    load_s = time.perf_counter() - t
    queries = eval_queries(int(n_queries))
    t = time.perf_counter()
    with contextlib.suppress(Exception):  # counted by time_queries
        retriever.search(queries[-1])
    first_s = time.perf_counter() - t
    result = time_queries(retriever, queries)["hybrid"]
    print(
        json.dumps(
            {
                "load_s": load_s,
                "first_query_s": first_s,
                **result,
                "rss_mb": proc_status_mb("VmRSS"),
                "peak_rss_mb": proc_status_mb("VmHWM"),
            }
        )
    )


def run_probe(data_dir: Path, mode: str, port: int, n_queries: int) -> dict:
    code = "import sys; from bench.run import probe; probe(*sys.argv[1:])"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(data_dir), mode, str(port), str(n_queries)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=3600,
    )
    if proc.returncode != 0:  # recorded; the other sizes and modes still run
        print(f"scale: probe of {data_dir.name} ({mode}) failed:\n{proc.stderr[-1500:]}")
        return {"error": proc.stderr[-1500:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_scale(ctx: Context) -> dict:
    from chromadb.api.client import SharedSystemClient

    seed = ctx.seed_settings()
    sizes = [216] + ([2_000, 10_000] if ctx.quick else [10_000, 100_000])
    n_queries = 30 if ctx.quick else 40
    has_server = shutil.which("chroma") is not None
    if not has_server:
        print("scale: no `chroma` command on PATH; server mode skipped")
    rows = []
    for n in sizes:
        data_dir = ctx.tmp / f"scale-{n}"
        server_dir = ctx.tmp / f"scale-{n}-server" / "chroma"
        print(f"scale: building {n} papers ...", flush=True)
        with chroma_server(server_dir) if has_server else contextlib.nullcontext((None, None)) as (port, _):
            build = build_synthetic(seed, n, data_dir, port)
        SharedSystemClient.clear_system_cache()  # let go of the new store before another process opens it
        gc.collect()
        row = {"papers": n, **build, "disk_mb": disk_mb(data_dir)}
        row["persistent"] = run_probe(data_dir, "persistent", 0, n_queries)
        if has_server:
            with chroma_server(server_dir) as (
                port,
                proc,
            ):  # a fresh server: RSS of serving, not of the build
                row["http"] = run_probe(data_dir, "http", port, n_queries)
                row["http"]["server_rss_mb"] = tree_rss_mb(proc.pid)
            row["server_disk_mb"] = disk_mb(server_dir)
        rows.append(row)
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(server_dir.parent, ignore_errors=True)
    show(
        "scale: build",
        [
            {k: v for k, v in r.items() if not isinstance(v, dict)}
            | {f"add_{k}_s": v for k, v in r["chroma_add_s"].items()}
            for r in rows
        ],
    )
    show(
        f"scale: hybrid search ({n_queries} eval questions, fresh process)",
        [
            {"papers": r["papers"], "chroma": mode}
            | {k: v for k, v in r[mode].items() if k not in ("n", "mean_ms", "rss_mb", "error_examples")}
            for r in rows
            for mode in ("persistent", "http")
            if "p50_ms" in r.get(mode, {})
        ],
    )
    plot_scale(rows, ctx.out / "scale.png")
    return {"sizes": sizes, "queries": n_queries, "sigma": SIGMA, "rows": rows}


def plot_scale(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        print("scale: matplotlib is not installed (pip install matplotlib); no plot")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(mode: str, key: str) -> tuple[list, list]:
        points = [(r["papers"], r[mode][key]) for r in rows if r.get(mode, {}).get(key) is not None]
        return [p[0] for p in points], [p[1] for p in points]

    x = [r["papers"] for r in rows]
    fig, (lat, mem) = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode, colour in (("persistent", "tab:blue"), ("http", "tab:orange")):
        lat.plot(*series(mode, "p95_ms"), "o-", color=colour, label=f"{mode} p95")
        lat.plot(*series(mode, "p50_ms"), "o--", color=colour, alpha=0.5, label=f"{mode} p50")
        for r in rows:
            if r.get(mode, {}).get("errors"):
                lat.annotate(
                    f"{r[mode]['errors']} failed", (r["papers"], r[mode]["p95_ms"]), fontsize=7, color=colour
                )
    mem.plot(*series("persistent", "peak_rss_mb"), "o-", label="persistent: process (peak)")
    mem.plot(*series("http", "peak_rss_mb"), "o-", label="http: client process (peak)")
    mem.plot(*series("http", "server_rss_mb"), "o-", label="http: chroma server")
    for ax, label in ((lat, "hybrid search latency (ms)"), (mem, "RSS (MB)")):
        ax.set_xscale("log")
        ax.set_xticks(x, [f"{v:,}" for v in x])
        ax.tick_params(axis="x", which="minor", labelbottom=False)
        ax.set_xlabel("papers in the corpus")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("paper-rag at scale (synthetic corpora from the seed papers)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"scale: plot written to {path}")


# --- 5. answers --------------------------------------------------------------------------------


ANSWER_SPLITS = {"dev": ("questions.jsonl", 20), "heldout": ("heldout.jsonl", None)}  # file, limit


def prompt_messages(sources, question: str) -> list[dict]:
    from rag import prompts
    from rag.answer.generate import source_block

    user = prompts.ANSWER_PROMPT.format(sources=source_block(sources), question=question)
    return [{"role": "system", "content": prompts.SYSTEM_PROMPT}, {"role": "user", "content": user}]


def evidence_sizes(seed: Settings, questions: list[dict]) -> dict:
    """Characters of the factual prompt with the budgeted evidence vs with whole abstracts."""
    from eval.run import standalone
    from rag.answer import Assistant, Source
    from rag.answer.generate import fact_evidence

    assistant = Assistant(seed.model_copy(update={"openai_base_url": None}))  # the server never starts
    sizes = []
    try:
        for q in questions:
            query = standalone(q)
            hits = assistant.retriever.search(query, k=seed.top_k).hits[: seed.answer.prompt_papers]
            if hits:
                evidence = fact_evidence(assistant.retriever.embed_model, query, hits, seed.answer)
                whole = [Source(n, h.paper, [h.paper.abstract], h.score) for n, h in enumerate(hits, 1)]
                sizes.append(
                    [sum(len(m["content"]) for m in prompt_messages(s, query)) for s in (evidence, whole)]
                )
    finally:
        assistant.close()
    return {
        "n": len(sizes),
        "evidence_chars_mean": sum(s[0] for s in sizes) / len(sizes),
        "abstract_chars_mean": sum(s[1] for s in sizes) / len(sizes),
        "ratio_mean": sum(s[0] / s[1] for s in sizes) / len(sizes),
    }


def answer_rows(assistant, questions: list[dict]) -> list[dict]:
    """Each question answered once: its kind and timings (prompt tokens from the server's log)."""
    rows = []
    for q in questions:
        history = [
            turn
            for h in q.get("history", [])
            for turn in ({"role": "user", "content": h}, {"role": "assistant", "content": ""})
        ]
        answer = assistant.ask(q["question"], history=history)
        rows.append({"id": q["id"], "kind": answer.kind, **answer.timings})
    return rows


def answer_summary(per_q: list[dict], cqe: list[dict]) -> dict:
    gen = [r for r in per_q if r["kind"] == "rag"]
    gen_ids = {r["id"] for r in gen}

    def p(rows: list[dict], key: str, q: int) -> float | None:
        return percentile([r[key] for r in rows if r.get(key) is not None], q)

    summary = {
        "n": len(per_q),
        "kinds": dict(Counter(r["kind"] for r in per_q)),
        "prompt_tokens_p50": p(gen, "prompt_tokens", 50),
        "prompt_tokens_p95": p(gen, "prompt_tokens", 95),
        "new_prompt_tokens_p50": p(gen, "prompt_eval_tokens", 50),
        "new_prompt_tokens_p95": p(gen, "prompt_eval_tokens", 95),
        "cached_tokens_p50": p(gen, "cached_tokens", 50),
        "prefill_p50_s": p(gen, "prefill_s", 50),
        "first_token_p50_s": p(per_q, "first_token_s", 50),
        "first_token_p95_s": p(per_q, "first_token_s", 95),
        "total_p50_s": p(per_q, "total_s", 50),
        "total_p95_s": p(per_q, "total_s", 95),
        "generated_first_token_p50_s": p(gen, "first_token_s", 50),
        "generated_total_p50_s": p(gen, "total_s", 50),
        "cqe_total_p50_s": p(cqe, "total_s", 50),
        "cqe_total_p95_s": p(cqe, "total_s", 95),
        "cqe_errors": sum(r["answer"].startswith("error:") for r in cqe),
    }
    # All questions (ours answers table questions without the model), and only the questions
    # ours generated for, against the baseline on those same questions.
    cqe_gen = p([r for r in cqe if r["id"] in gen_ids], "total_s", 50)
    summary["ratio_total_p50_vs_cqe"] = summary["total_p50_s"] / summary["cqe_total_p50_s"]
    summary["ratio_total_p95_vs_cqe"] = summary["total_p95_s"] / summary["cqe_total_p95_s"]
    summary["ratio_generated_p50_vs_cqe"] = (
        summary["generated_total_p50_s"] / cqe_gen if gen and cqe_gen else None
    )
    return summary


def bench_answers(ctx: Context, models: dict | None = None, splits: dict | None = None) -> dict:
    from eval.run import QUESTIONS, evaluate_citation_query_engine, load_questions
    from rag.answer import Assistant
    from rag.config import get_settings
    from rag.llm import QWEN_FILE, smollm_path

    seed = ctx.seed_settings()
    splits = splits or ANSWER_SPLITS
    questions = {name: load_questions(QUESTIONS.parent / f, limit=n) for name, (f, n) in splits.items()}
    joined = get_settings().data_dir / "models" / QWEN_FILE  # reuse the user's joined model
    models = models or {
        "qwen2.5-coder-1.5b": {"llm_model_path": joined if joined.exists() else None},
        "smollm2-135m": {"llm_model_path": smollm_path(), "llm_model": "smollm2"},
    }
    result: dict = {"questions": {name: [q["id"] for q in qs] for name, qs in questions.items()}}
    result["evidence_vs_abstracts"] = evidence_sizes(seed, [q for qs in questions.values() for q in qs])
    show(
        "answers: factual prompt chars, budgeted evidence vs whole abstracts",
        [result["evidence_vs_abstracts"]],
    )
    rows = []
    for name, update in models.items():
        assistant = Assistant(
            seed.model_copy(update={"openai_base_url": None, "openai_api_key": None, **update})
        )
        try:
            t = time.perf_counter()
            endpoint = assistant.llm.endpoint()  # joins the model if needed and starts llama.cpp
            start_s = time.perf_counter() - t
            t = time.perf_counter()
            assistant.llm.complete([{"role": "user", "content": "Say OK."}], max_tokens=4)
            result[name] = {"server_start_s": start_s, "warmup_s": time.perf_counter() - t}
            for split, qs in questions.items():
                per_q = answer_rows(assistant, qs)
                cqe = evaluate_citation_query_engine(assistant.index, endpoint, qs)["questions"]
                summary = {"model": name, "split": split, **answer_summary(per_q, cqe)}
                rows.append(summary)
                result[name][split] = {
                    "summary": summary,
                    "questions": per_q,
                    "cqe": [{k: r[k] for k in ("id", "total_s", "answer")} for r in cqe],
                }
        except Exception as exc:  # e.g. the server cannot start: keep the other model's numbers
            traceback.print_exc()
            result[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        finally:
            assistant.close()
    if rows:
        show(
            "answers (times in s; cqe = llama-index CitationQueryEngine, same model, same questions)",
            [
                {"": k} | {f"{r['model']} {r['split']}": r[k] for r in rows}
                for k in rows[0]
                if k not in ("model", "split", "kinds")
            ],
        )
    for r in rows:
        print(f"{r['model']} {r['split']}: answer kinds {r['kinds']}")
    return result


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description="paper-rag benchmarks (see the module docstring)."
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller scale corpora (2k, 10k); answers only if named in --only",
    )
    parser.add_argument("--only", help="comma-separated: " + ",".join(BENCHES))
    parser.add_argument(
        "--out",
        type=Path,
        default=PROJECT_ROOT / "bench" / "results",
        help="where results JSON and scale.png go",
    )
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else list(BENCHES)
    if unknown := [s for s in only if s not in BENCHES]:
        parser.error(f"--only: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    run = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    out_file = args.out / f"results-{run}.json"
    results: dict = {
        "run": run,
        "quick": args.quick,
        "only": only,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    funcs = {
        "ingest": bench_ingest,
        "startup": bench_startup,
        "coldstart": bench_coldstart,
        "search": bench_search,
        "scale": bench_scale,
        "answers": bench_answers,
    }
    failed = False
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        ctx = Context(Path(tmp), args.out, args.quick)
        for name in BENCHES:
            if name not in only:
                continue
            if name == "answers" and args.quick and not args.only:
                print(
                    "answers: skipped with --quick (it generates with the 1.5B model); "
                    "run `python -m bench.run --quick --only answers`"
                )
                results[name] = {"skipped": "--quick"}
                continue
            print(f"\n== {name} ==", flush=True)
            t = time.perf_counter()
            load = os.getloadavg()[0]
            try:
                results[name] = funcs[name](ctx)
            except Exception as exc:  # one broken benchmark must not lose the others
                traceback.print_exc()
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                failed = True
            results[name] |= {
                "bench_seconds": time.perf_counter() - t,
                "load_avg_1m": [load, os.getloadavg()[0]],
            }
            out_file.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nresults: {out_file}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
