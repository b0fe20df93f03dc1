"""Faults: the LLM dies mid-answer, the endpoint hangs, the vector store is missing or corrupt."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading

import pytest

from rag.answer import Assistant
from rag.config import Settings
from rag.index import IndexMissingError, PaperIndex, ingest
from rag.llm import smollm_path
from rag.retrieve import Retriever
from tests.conftest import SEED_FILES


def test_llm_dies_mid_answer_then_restarts(seed_index):
    settings = seed_index.model_copy(
        update={"llm_model_path": smollm_path(), "llm_model": "smollm2", "max_tokens": 1500}
    )
    assistant = Assistant(settings)
    try:
        answer = None
        # A factual question: the model writes from the first token (a topic list is computed first).
        question = "How do structured state space models perform on ECG data? Describe every detail."
        for event in assistant.stream(question):
            if event.kind == "token" and assistant.llm._server is not None and assistant.llm._server.alive():
                assistant.llm._server.process.kill()
            if event.kind == "done":
                answer = event.data
        assert answer.cut_off and "[The answer was cut off:" in answer.answer
        assert "restarts on the next question" in answer.answer or "lost" in answer.answer
        again = assistant.ask("Which papers study photoplethysmography?")
        assert again.kind == "rag" and assistant.llm._server.alive()
    finally:
        assistant.close()


@pytest.fixture()
def hanging_endpoint():
    """A TCP server on 127.0.0.1 that accepts requests and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def test_slow_endpoint_times_out_with_a_message(seed_index, hanging_endpoint):
    settings = seed_index.model_copy(update={"openai_base_url": hanging_endpoint, "llm_timeout_s": 2.0})
    answer = Assistant(settings).ask("How do structured state space models perform on ECG data?")
    assert answer.kind == "error"
    assert f"the LLM endpoint {hanging_endpoint} did not answer within 2s" in answer.answer
    assert answer.timings["total_s"] < 30


@pytest.fixture()
def own_index(tmp_path):
    folder = tmp_path / "listings"
    folder.mkdir()
    shutil.copy(SEED_FILES[0], folder)
    settings = Settings(data_dir=tmp_path / "data", seeds=[folder])
    ingest(settings)
    return settings


def fresh_process_view():
    """Chroma caches one client per path in a process; a user's next command starts anew."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def test_missing_store_says_rebuild(own_index):
    shutil.rmtree(own_index.chroma_dir)
    fresh_process_view()
    with pytest.raises(IndexMissingError, match="rag ingest --rebuild"):
        Retriever(PaperIndex(own_index)).search("synthetic data")
    assert ingest(own_index, rebuild=True).papers == 18
    assert Retriever(PaperIndex(own_index)).search("synthetic data").hits


def test_corrupt_store_says_rebuild_and_rebuild_fixes_it(own_index):
    (own_index.chroma_dir / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    fresh_process_view()
    env = {**os.environ, "RAG_DATA_DIR": str(own_index.data_dir)}
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "search", "synthetic data"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1 and "rag ingest --rebuild" in out.stderr and "Traceback" not in out.stderr
    with pytest.raises(IndexMissingError, match="rag ingest --rebuild"):
        Retriever(PaperIndex(own_index)).search("synthetic data")
    summary = ingest(own_index, rebuild=True)
    assert summary.papers == 18
    assert Retriever(PaperIndex(own_index)).search("synthetic data").hits
    assert list(own_index.data_dir.glob("chroma.unreadable-*"))  # kept aside, not deleted


def test_corrupt_state_file_says_rebuild(own_index):
    (own_index.data_dir / "state.json").write_text("{not json")
    with pytest.raises(IndexMissingError, match="rag ingest --rebuild"):
        PaperIndex(own_index)
