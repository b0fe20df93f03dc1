"""Cold start of the query and ingest paths: fresh processes, ONNX (default) vs torch encoder.

    python -m bench.run --only coldstart          # with the other benchmarks' context and results JSON
    python -m bench.coldstart [--quick]           # on its own (prints the tables, writes no file)

search   `python -m rag.cli search "state space models" --json` against the seed index, in a fresh
         process: wall seconds, CPU seconds and peak RSS (GNU time %M), median of 3 runs (1 with
         --quick), for RAG_EMBED_BACKEND=onnx and =torch. `heavy` lists which of torch, llama_index,
         transformers the process had imported at exit (an atexit hook; the measured run has none).
ingest   `python -m rag.cli --data-dir EMPTY ingest SEEDS` (a copy of seeds/: 5 files, 216 papers) in a
         fresh process: wall, CPU and peak RSS of everything (imports, model load, parsing, chunking,
         embedding on every core, Chroma, BM25), 1 run per backend. The ONNX model is already in the
         machine's cache (built once per machine; see `build`).
build    the one-time ONNX build into an empty cache dir in a fresh process: from the safetensors
         only (no torch), and with the check against the torch encoder that `onnx_path` runs.
vectors  every chunk text of the seed index (title + chunk, as embedded) through the ONNX and the
         torch encoder, and sentence-transformers where installed: max abs difference and minimum
         cosine (tests/test_embed.py requires < 1e-5).
The 1-minute load average before and after each row is stored: the machine has 2 cores shared with
other jobs, so treat every time as an upper bound.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rag.config import PROJECT_ROOT

HEAVY = ("torch", "llama_index", "transformers", "sentence_transformers")
_HOOK = (
    "import atexit, json, sys\n"
    "atexit.register(lambda: print('HEAVY=' + json.dumps(sorted({{m.split('.')[0] for m in sys.modules}}"
    " & set({heavy!r}))), file=sys.stderr))\n"
    "sys.argv = ['rag'] + {args!r}\n"
    "from rag.cli import app\n"
    "app()\n"
)


def _cli(args: list[str]) -> list[str]:
    """A fresh `rag ARGS` process that reports the heavy modules it imported."""
    return [sys.executable, "-c", _HOOK.format(heavy=HEAVY, args=args)]


def _heavy(stderr: str) -> str:
    for line in reversed(stderr.splitlines()):
        if line.startswith("HEAVY="):
            return ", ".join(json.loads(line[6:])) or "none"
    return "?"


def _row(name: str, backend: str, samples: list[dict], ok: bool, load: tuple[float, float]) -> dict:
    from eval.metrics import percentile

    walls = sorted(s["wall_s"] for s in samples)
    return {
        "what": name,
        "backend": backend,
        "runs": len(samples),
        "wall_s": walls[len(walls) // 2],
        "wall_min_s": walls[0],
        "cpu_s": percentile([s["cpu_s"] for s in samples], 50) if samples[0]["cpu_s"] is not None else None,
        "peak_rss_mb": max((s["max_rss_mb"] for s in samples if s["max_rss_mb"]), default=None),
        "heavy": _heavy(samples[-1]["stderr"]),
        "ok": ok,
        "load_1m": f"{load[0]:.1f}->{load[1]:.1f}",
    }


def bench_search(seed_dir: Path, runs: int) -> list[dict]:
    from bench.run import run_measured

    rows = []
    for backend in ("onnx", "torch"):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_CHROMA", "RAG_INDEX__CHROMA"))}
        env |= {"RAG_DATA_DIR": str(seed_dir), "RAG_EMBED_BACKEND": backend}
        cmd = _cli(["search", "state space models", "--json"])
        run_measured(cmd, env)  # warm the page cache: cold means a fresh process, not a cold disk
        load0 = os.getloadavg()[0]
        samples = [run_measured(cmd, env) for _ in range(runs)]
        ok = all(s["rc"] == 0 for s in samples)
        try:
            ok = ok and all(len(json.loads(s["stdout"])) > 0 for s in samples)
        except ValueError:
            ok = False
        if not ok:
            print(f"coldstart: search ({backend}) failed: {samples[-1]['stderr'][-500:]}")
        rows.append(_row("rag search", backend, samples, ok, (load0, os.getloadavg()[0])))
    return rows


def bench_ingest(tmp: Path) -> list[dict]:
    from bench.run import run_measured

    seeds = tmp / "coldstart-seeds"
    if not seeds.exists():
        shutil.copytree(PROJECT_ROOT / "seeds", seeds)
    rows = []
    for backend in ("onnx", "torch"):
        data_dir = tmp / f"coldstart-ingest-{backend}"
        shutil.rmtree(data_dir, ignore_errors=True)
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("RAG_CHROMA", "RAG_INDEX__CHROMA"))
        } | {"RAG_EMBED_BACKEND": backend}
        load0 = os.getloadavg()[0]
        sample = run_measured(_cli(["--data-dir", str(data_dir), "ingest", str(seeds)]), env)
        ok = sample["rc"] == 0 and "216 papers" in sample["stdout"]
        if not ok:
            print(f"coldstart: ingest ({backend}) failed: {sample['stderr'][-500:]}")
        rows.append(
            _row("rag ingest (cold, empty data dir)", backend, [sample], ok, (load0, os.getloadavg()[0]))
        )
    return rows


def bench_build(tmp: Path) -> list[dict]:
    from bench.run import run_measured
    from rag.embed import model_path

    rows = []
    for verify in (False, True):
        cache = tmp / f"coldstart-cache-{verify}"
        shutil.rmtree(cache, ignore_errors=True)
        code = (
            "from pathlib import Path\nfrom rag.onnx_minilm import onnx_path\n"
            f"onnx_path({model_path()!r}, Path({str(cache)!r}), verify={verify})\n"
        )
        load0 = os.getloadavg()[0]
        sample = run_measured([sys.executable, "-c", code], dict(os.environ))
        ok = sample["rc"] == 0 and any(cache.glob("minilm-*/model.onnx"))
        name = "ONNX build" + (" + check against torch" if verify else " (safetensors only)")
        rows.append(_row(name, "onnx", [sample], ok, (load0, os.getloadavg()[0])))
        shutil.rmtree(cache, ignore_errors=True)
    return rows


def bench_vectors(seed_settings) -> dict:
    import numpy as np

    from rag.embed import get_encoder
    from rag.index import PaperIndex
    from rag.minilm import MiniLMEmbedding

    index = PaperIndex(seed_settings)
    got = index.collection.get(include=["documents", "metadatas"])
    texts = [
        (m.get("title") + "\n" if m.get("title") else "") + d
        for d, m in zip(got["documents"], got["metadatas"], strict=True)
    ]
    batch_size = index.settings.embed_batch_size
    onnx = np.array(get_encoder(index.embed_path, batch_size).encode(texts))
    refs = {"torch (rag/minilm.py)": np.array(MiniLMEmbedding(index.embed_path).encode(texts))}
    try:
        from sentence_transformers import SentenceTransformer

        refs["sentence-transformers"] = SentenceTransformer(index.embed_path, device="cpu").encode(
            texts, normalize_embeddings=True, batch_size=batch_size
        )
    except ImportError:
        pass
    stored = np.array(index.collection.get(ids=got["ids"], include=["embeddings"])["embeddings"])
    refs["vectors in the index"] = stored
    out = {"texts": len(texts)}
    for name, ref in refs.items():
        out[name] = {
            "max_abs_diff": float(np.abs(onnx - ref).max()),
            "min_cosine": float((onnx * ref).sum(1).min()),
        }
    return out


def bench_coldstart(ctx) -> dict:
    """The `coldstart` section of bench.run (ctx: bench.run.Context)."""
    from bench.run import show

    seed = ctx.seed_settings()
    runs = 1 if ctx.quick else 3
    rows = bench_search(seed.data_dir, runs) + bench_ingest(ctx.tmp) + bench_build(ctx.tmp)
    show("cold start (fresh processes; seconds, MB)", rows)
    vectors = bench_vectors(seed)
    show(
        f"ONNX vectors vs references ({vectors['texts']} chunk texts of the seed index)",
        [{"reference": k} | v for k, v in vectors.items() if isinstance(v, dict)],
    )
    return {"rows": rows, "vectors": vectors}


def main(argv: list[str] | None = None) -> int:
    import argparse

    from bench.run import Context

    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 run per search instead of 3")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rag-coldstart-") as tmp:
        t = time.perf_counter()
        bench_coldstart(Context(Path(tmp), Path(tmp), args.quick))
        print(f"coldstart: {time.perf_counter() - t:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
