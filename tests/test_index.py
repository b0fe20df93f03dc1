"""Ingest into a real Chroma store with the real model: chunk sizes, incremental updates,
atomic generations, and the Chroma server mode."""

from __future__ import annotations

import gc
import json
import shutil

import pytest

from rag.config import Settings
from rag.corpus import CorpusError
from rag.embed import count_tokens
from rag.index import LiveIndex, PaperIndex, chroma_client, ingest, open_collection, read_state
from rag.retrieve import Retriever
from tests.conftest import SEED_FILES


@pytest.fixture()
def small_corpus(tmp_path):
    """Two seed listings copied to a folder the test may change."""
    folder = tmp_path / "listings"
    folder.mkdir()
    for f in SEED_FILES:
        if f.name.startswith(("000", "004")):
            shutil.copy(f, folder / f.name)
    return folder


def test_chunks_fit_the_model_window_and_carry_metadata(seed_index):
    index = PaperIndex(seed_index)
    got = open_collection(chroma_client(seed_index), index.state.collection).get(
        include=["documents", "metadatas"]
    )
    assert len(got["ids"]) == index.state.chunks >= len(index.papers) == 216
    for doc, meta in zip(got["documents"], got["metadatas"], strict=True):
        embed_text = (meta["title"] + "\n" if meta["title"] else "") + doc
        assert count_tokens(embed_text, index.embed_path) <= 256
        assert meta["paper_id"] in index.by_id and meta["label"] and "listings" in meta
    single = sum(1 for m in got["metadatas"] if m["n_chunks"] == 1)
    assert single > 0
    print(f"\nchunks: {len(got['ids'])} for {len(index.papers)} papers; {single} papers fit one chunk")


def test_incremental_ingest(tmp_path, small_corpus):
    settings = Settings(data_dir=tmp_path / "data")
    first = ingest(settings, [small_corpus])
    assert first.status == "built" and first.papers == 49 and first.embedded == first.chunks

    again = ingest(settings, [small_corpus])
    assert again.status == "unchanged" and again.embedded == 0
    assert again.generation == first.generation

    # Change one abstract, add a listing, then remove it again.
    path = small_corpus / SEED_FILES[0].name
    path.write_text(
        path.read_text().replace("Recessive dystrophic epidermolysis bullosa (RDEB)", "RDEB, a rare disease,")
    )
    changed = ingest(settings, [small_corpus])
    assert changed.status == "updated" and 1 <= changed.embedded <= 3
    assert changed.reused == changed.chunks - changed.embedded
    assert {f.listing: f.status for f in changed.files}[path.name] == "changed"
    assert not (settings.data_dir / "generations" / first.generation).exists()  # old generation dropped
    segment_dirs = [d for d in settings.chroma_dir.iterdir() if d.is_dir()]
    assert len(segment_dirs) == 1, segment_dirs  # and its vector files with it (Chroma leaves them)

    shutil.copy(next(f for f in SEED_FILES if f.name.startswith("001")), small_corpus)
    added = ingest(settings, [small_corpus])
    assert added.papers == 99 and added.embedded > 0
    (small_corpus / next(f for f in SEED_FILES if f.name.startswith("001")).name).unlink()
    removed = ingest(settings, [small_corpus])
    assert removed.papers == 49 and removed.embedded == 0
    assert "removed" in {f.status for f in removed.files}
    index = PaperIndex(settings)
    assert len(index.papers) == 49
    assert any("RDEB, a rare disease" in p.abstract for p in index.papers)


def test_failed_ingest_keeps_previous_index(tmp_path, small_corpus):
    settings = Settings(data_dir=tmp_path / "data")
    ingest(settings, [small_corpus])
    before = read_state(settings.data_dir)
    # A listing of the current index turns unreadable: refused, nothing changes.
    indexed = small_corpus / SEED_FILES[0].name
    original = indexed.read_bytes()
    indexed.write_bytes(b"\x00\x01binary\x00")
    with pytest.raises(CorpusError, match=f"{indexed.name}.*current index"):
        ingest(settings, [small_corpus])
    assert read_state(settings.data_dir) == before
    hits = Retriever(PaperIndex(settings)).search("synthetic data with variational autoencoders", k=3).hits
    assert hits and "synthetic" in hits[0].paper.abstract.lower()
    indexed.write_bytes(original)


def test_mixed_folder_ingests_what_is_usable(tmp_path, small_corpus):
    settings = Settings(data_dir=tmp_path / "data")
    (small_corpus / "broken.bin").write_bytes(b"\x00\x01binary\x00")
    (small_corpus / "empty.txt").write_bytes(b"")
    shutil.copy(small_corpus / SEED_FILES[0].name, small_corpus / "copy-of-binder.txt")
    summary = ingest(settings, [small_corpus])
    status = {f.listing: (f.status, " ".join(f.warnings)) for f in summary.files}
    assert summary.papers == 49
    assert status["broken.bin"][0] == "error" and "binary" in status["broken.bin"][1]
    assert status["empty.txt"][0] == "error" and "empty file" in status["empty.txt"][1]
    assert status["copy-of-binder.txt"][0] == "duplicate"
    with pytest.raises(CorpusError, match="no usable listing"):
        ingest(
            Settings(data_dir=tmp_path / "other"), [small_corpus / "broken.bin", small_corpus / "empty.txt"]
        )


def test_interrupted_ingest_leaves_no_half_written_generation(tmp_path, small_corpus):
    settings = Settings(data_dir=tmp_path / "data")
    ingest(settings, [small_corpus])
    before = read_state(settings.data_dir)
    shutil.copy(next(f for f in SEED_FILES if f.name.startswith("001")), small_corpus)

    def interrupt(stage, done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest(settings, [small_corpus], progress=interrupt)
    assert read_state(settings.data_dir) == before
    assert before is not None
    assert [p.name for p in (settings.data_dir / "generations").iterdir()] == [before.generation]
    names = {c.name for c in chroma_client(settings).list_collections()}
    assert names == {before.collection}
    assert len(PaperIndex(settings).papers) == 49


def test_ingest_while_serving_keeps_answering_then_switches(tmp_path, small_corpus):
    """An app serving from a LiveIndex while an ingest replaces the generation: requests that
    hold the old one keep answering from it (it stays on disk while loaded), the next get()
    serves the new one, and a later ingest removes the old one once nothing holds it."""
    settings = Settings(data_dir=tmp_path / "data")
    ingest(settings, [small_corpus])
    live = LiveIndex(settings, Retriever)
    old = live.get()
    old_generation = old.index.generation
    query = "synthetic data with variational autoencoders"
    assert old.search(query, k=3).hits

    shutil.copy(next(f for f in SEED_FILES if f.name.startswith("001")), small_corpus)
    updated = ingest(settings, [small_corpus])
    assert updated.status == "updated" and updated.papers == 99
    generations = settings.data_dir / "generations"
    assert (generations / old_generation / "papers.json").exists()  # in use: kept
    hits = old.search(query, k=3).hits  # dense (its Chroma collection) and BM25 still answer
    assert hits and "synthetic" in hits[0].paper.abstract.lower()
    assert not old.index.is_current() and len(old.index.papers) == 49

    new = live.get()
    assert new is not old and new.index.generation == updated.generation and len(new.index.papers) == 99
    assert live.get() is new and new.index.is_current()  # loaded once per generation
    assert new.search(query, k=3).hits

    del old, hits
    gc.collect()  # the last holder of the old generation is gone
    again = ingest(settings, [small_corpus])
    assert again.status == "unchanged"
    assert sorted(p.name for p in generations.iterdir()) == [updated.generation]
    assert {c.name for c in chroma_client(settings).list_collections()} == {new.index.state.collection}


def test_missing_paths_are_reported(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        ingest(Settings(data_dir=tmp_path / "d"), [tmp_path / "nope"])


def test_chroma_server_mode(tmp_path, small_corpus, chroma_server):
    settings = Settings(data_dir=tmp_path / "data", chroma_mode="http", chroma_port=chroma_server)
    summary = ingest(settings, [small_corpus])
    assert summary.papers == 49
    assert not (settings.data_dir / "chroma").exists()  # vectors live on the server
    result = Retriever(PaperIndex(settings)).search("activity tracker data with deep Boltzmann machines", k=3)
    assert result.hits[0].paper.title == "Modeling Activity Tracker Data Using Deep Boltzmann Machines"
    state = json.loads((settings.data_dir / "state.json").read_text())
    assert state["config"]["chroma_mode"] == "http"
