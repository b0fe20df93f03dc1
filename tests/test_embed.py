"""The local MiniLM encoder computes what sentence-transformers computes for this model; an
OpenAI-compatible embeddings endpoint (a real llama.cpp server) can stand in for it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from rag.embed import count_tokens, model_path
from rag.minilm import MiniLMEmbedding


def test_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    path = model_path()
    texts = [
        "state space models for ECG",
        "",
        "Müller's über-long " + "abstract text " * 300,
        "Differential privacy for medical imaging.",
        "a",
    ]
    ours = np.array(MiniLMEmbedding(path, embed_batch_size=2).get_text_embedding_batch(texts))
    reference = SentenceTransformer(path, device="cpu").encode(texts, normalize_embeddings=True)
    assert ours.shape == (5, 384)
    assert np.abs(ours - reference).max() < 1e-5
    assert count_tokens(texts[2], path) > 256  # the long text really was truncated to the window


def test_llama_index_interface():
    embed = MiniLMEmbedding(model_path())
    q = np.array(embed.get_query_embedding("sleep staging with EEG"))
    t = np.array(embed.get_text_embedding("Deep learning for sleep stage classification from EEG."))
    assert abs(np.linalg.norm(q) - 1) < 1e-5 and float(q @ t) > 0.5


@pytest.fixture(scope="module")
def embeddings_server(tmp_path_factory):
    """llama.cpp serving /v1/embeddings with SmolLM2 (mean pooling): a real OpenAI-compatible endpoint."""
    from rag.llm import LlamaServer, smollm_path

    server = LlamaServer(
        smollm_path(),
        "smol-embed",
        n_ctx=512,
        threads=1,
        log_path=tmp_path_factory.mktemp("emb") / "server.log",
        extra_args=["--embedding", "True", "--kv_overrides", "llama.pooling_type=int:1"],
    ).start()
    yield server
    server.stop()


def test_index_and_search_through_an_embeddings_endpoint(embeddings_server, tmp_path):
    from rag.config import Settings
    from rag.index import IndexMissingError, PaperIndex, chroma_client, ingest, open_collection
    from rag.retrieve import Retriever
    from tests.conftest import SEED_FILES

    listing = tmp_path / "seeds"
    listing.mkdir()
    shutil.copy(SEED_FILES[0], listing)
    remote = Settings(
        data_dir=tmp_path / "data",
        seeds=[listing],
        embed_base_url=embeddings_server.base_url,
        embed_api_model="smol-embed",
        embed_batch_size=8,
    )
    built = ingest(remote)
    assert built.papers >= 10 and built.embedded == built.chunks
    index = PaperIndex(remote)
    assert index.state.config.embed_model == f"endpoint:smol-embed@{embeddings_server.base_url}"
    vectors = open_collection(chroma_client(remote), index.state.collection).get(
        limit=2, include=["embeddings"]
    )["embeddings"]
    assert len(vectors[0]) == 576  # SmolLM2's width, not MiniLM's 384: the endpoint made them
    hits = Retriever(index).search("synthetic data", k=5, analyse=False).hits
    assert hits and any(h.dense_rank for h in hits)

    # The local model may not query, nor reuse, vectors another model made.
    local = remote.model_copy(update={"embed_base_url": None})
    with pytest.raises(IndexMissingError, match="embedded with endpoint:smol-embed"):
        Retriever(PaperIndex(local)).search("synthetic data", analyse=False)
    rebuilt = ingest(local)
    assert rebuilt.status == "updated" and rebuilt.embedded == rebuilt.chunks and rebuilt.reused == 0
    assert Retriever(PaperIndex(local)).search("synthetic data", k=5, analyse=False).hits


def test_unreachable_embeddings_endpoint_fails_ingest_cleanly(tmp_path):
    from rag.config import Settings
    from rag.index import IngestError, ingest, read_state
    from rag.llm import free_port
    from tests.conftest import SEED_FILES

    listing = tmp_path / "seeds"
    listing.mkdir()
    shutil.copy(SEED_FILES[0], listing)
    settings = Settings(
        data_dir=tmp_path / "data", seeds=[listing], embed_base_url=f"http://127.0.0.1:{free_port()}/v1"
    )
    with pytest.raises(IngestError, match="embeddings endpoint http://127.0.0.1:.*failed"):
        ingest(settings)
    assert read_state(settings.data_dir) is None and not list((tmp_path / "data" / "generations").glob("*"))
