"""Shared fixtures. All state goes to temporary dirs; nothing touches the user's data dir."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from rag.config import PROJECT_ROOT, Settings
from rag.llm import free_port

SEEDS = PROJECT_ROOT / "seeds"
SEED_FILES = sorted(SEEDS.glob("*.txt"))


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Point every setting at a temp dir and drop endpoint env vars of the developer's shell."""
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path_factory.getbasetemp() / "default-data"))
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "RAG_OPENAI_BASE_URL", "RAG_CHROMA_MODE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory) -> Settings:
    """One real index of the five seed listings (real model, real Chroma), shared by the session."""
    from rag.index import ingest

    settings = Settings(data_dir=tmp_path_factory.mktemp("seed-index"))
    ingest(settings)
    return settings


@pytest.fixture(scope="session")
def retriever(seed_index):
    from rag.index import PaperIndex
    from rag.retrieve import Retriever

    return Retriever(PaperIndex(seed_index))


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real `chroma run` server on 127.0.0.1, stopped at the end of the session."""
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    exe = shutil.which("chroma")
    if not exe:
        pytest.fail("the `chroma` command (from chromadb) is not installed")
    proc = subprocess.Popen(
        [exe, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("chroma server did not start")
    yield port
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def smollm_server(tmp_path_factory):
    """A real llama.cpp server process with the packaged SmolLM2-135M model."""
    from rag.llm import LlamaServer, smollm_path

    server = LlamaServer(
        smollm_path(),
        "smollm2",
        n_ctx=4096,
        threads=2,
        log_path=tmp_path_factory.mktemp("llm") / "server.log",
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def assistant(seed_index, smollm_server):
    """The real chain on the seed index, generating with SmolLM2 through the OpenAI API."""
    from rag.answer import Assistant

    settings = seed_index.model_copy(
        update={"openai_base_url": smollm_server.base_url, "llm_model": "smollm2"}
    )
    return Assistant(settings)


# --- the app in a real headless Chromium (tests/test_browser*.py) ---------------------------


@pytest.fixture(scope="module")
def app_url(assistant):
    """The Gradio app of `assistant` on a free port (tests/test_ui.py has its own, with short
    answers)."""
    from ui.app import build_app

    demo = build_app(assistant)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    """Where the browser saves downloads."""
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    """A headless Chromium (selenium) that saves downloads to `downloads` without asking."""
    from tests.browser import chromium

    driver = chromium(downloads)
    yield driver
    driver.quit()
