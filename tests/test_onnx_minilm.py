"""MiniLM through onnxruntime (rag/onnx_minilm.py): the same vectors as sentence-transformers and
the torch encoder, a cached model built atomically, and a search path that imports no torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from rag.config import PROJECT_ROOT
from rag.embed import count_tokens, get_encoder, model_path
from rag.onnx_minilm import OnnxMiniLM, load_encoder, model_fingerprint, onnx_path

TEXTS = [
    "state space models for ECG",
    "",
    "Müller's über-long " + "abstract text " * 300,
    "Differential privacy for medical imaging.",
    "a",
    "Title of a paper\nAn abstract that goes on for a while, about sleep staging from EEG and ECG signals.",
]


@pytest.fixture(scope="module")
def encoder():
    return get_encoder(model_path(), 32)


def test_default_encoder_is_onnx(encoder):
    assert isinstance(encoder, OnnxMiniLM)
    assert encoder.onnx_file.exists() and (encoder.onnx_file.parent / "weights.bin").exists()


def test_matches_sentence_transformers_and_torch(encoder):
    from sentence_transformers import SentenceTransformer

    from rag.minilm import MiniLMEmbedding

    path = model_path()
    # Batches of 2 mix lengths, so padding and the attention mask are exercised too.
    ours = np.array(OnnxMiniLM(path, embed_batch_size=2, onnx_file=encoder.onnx_file).encode(TEXTS))
    reference = SentenceTransformer(path, device="cpu").encode(TEXTS, normalize_embeddings=True)
    torch_vectors = np.array(MiniLMEmbedding(path, embed_batch_size=2).encode(TEXTS))
    assert ours.shape == (len(TEXTS), 384)
    assert np.abs(ours - reference).max() < 1e-5
    assert np.abs(ours - torch_vectors).max() < 1e-5
    assert count_tokens(TEXTS[2], path) > 256  # the long text really was truncated to the window
    # One text alone and in a padded batch: the same vector.
    alone = np.array(encoder.get_query_embedding(TEXTS[0]))
    assert np.abs(alone - ours[0]).max() < 1e-6 and abs(np.linalg.norm(alone) - 1) < 1e-5


def test_llama_index_wrapper(encoder):
    from llama_index.core.base.embeddings.base import BaseEmbedding

    wrapped = encoder.as_llama_index()
    assert isinstance(wrapped, BaseEmbedding)
    q = np.array(wrapped.get_query_embedding("sleep staging with EEG"))
    t = np.array(wrapped.get_text_embedding("Deep learning for sleep stage classification from EEG."))
    assert float(q @ t) > 0.5
    assert np.allclose(wrapped.get_text_embedding_batch(TEXTS[:3]), encoder.encode(TEXTS[:3]))


def test_threads_switch_keeps_vectors(encoder):
    from rag.embed import embed_threads

    one = np.array(encoder.encode(TEXTS))
    with embed_threads(encoder, 2):
        assert encoder.threads == 2
        two = np.array(encoder.encode(TEXTS))
    assert encoder.threads == 1
    assert np.abs(one - two).max() < 1e-6


def test_cache_is_built_once_atomically_and_rebuilt_when_damaged(tmp_path):
    path = model_path()
    built = onnx_path(path, tmp_path, verify=False)
    assert built.parent.name == f"minilm-{model_fingerprint(path)}-v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == [built.parent.name]  # no temp folder left
    mtime = built.stat().st_mtime_ns
    assert onnx_path(path, tmp_path) == built and built.stat().st_mtime_ns == mtime  # reused, not rebuilt

    built.write_bytes(b"not a model")  # damaged on disk: removed and built again
    encoder = load_encoder(path, 8, directory=tmp_path)
    assert encoder.onnx_file == built and built.stat().st_size > 1000
    assert len(encoder.get_query_embedding("ecg")) == 384


def test_torch_backend_on_request(monkeypatch):
    from rag.embed import embed_backend
    from rag.minilm import MiniLMEmbedding

    monkeypatch.setenv("RAG_EMBED_BACKEND", "torch")
    assert embed_backend() == "torch"
    get_encoder.cache_clear()
    try:
        assert isinstance(get_encoder(model_path(), 16), MiniLMEmbedding)
    finally:
        get_encoder.cache_clear()
    monkeypatch.setenv("RAG_EMBED_BACKEND", "tensorflow")
    with pytest.raises(ValueError, match="expected onnx or torch"):
        embed_backend()


def test_search_imports_no_torch_nor_llama_index(seed_index):
    """`rag search` in a fresh process: real hits, and neither torch nor llama-index loaded."""
    code = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'torch', 'llama_index', 'transformers', 'sentence_transformers'})), file=sys.stderr))\n"
        "from rag.cli import app\n"
        "sys.argv = ['rag', 'search', 'state space models for ECG', '--json']\n"
        "app()\n"
    )
    env = os.environ | {"RAG_DATA_DIR": str(seed_index.data_dir)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert any("State Space" in (h["title"] or "") for h in hits[:5])
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []


def test_model_is_built_without_torch_or_onnx(tmp_path):
    """The build needs no torch and no `onnx` package: only numpy and the packaged files."""
    code = (
        "import sys\n"
        "sys.modules['torch'] = None; sys.modules['onnx'] = None\n"  # importing them would fail
        "from rag.onnx_minilm import onnx_path\n"
        f"p = onnx_path({model_path()!r}, __import__('pathlib').Path({str(tmp_path)!r}))\n"
        "print(p)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert os.path.exists(proc.stdout.strip())
    shutil.rmtree(tmp_path, ignore_errors=True)
