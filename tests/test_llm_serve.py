"""`rag llm serve`: a warm server that `rag ask` on the same data dir uses instead of its own."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.config import Settings
from rag.llm import LLM, free_port, smollm_path
from rag.prompts import SYSTEM_PROMPT
from rag.served import NOTE_FILE, read_note


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "RAG_DATA_DIR": str(data_dir), "RAG_LLM_MODEL_PATH": str(smollm_path())}


@pytest.fixture()
def served(seed_index, tmp_path):
    """A `rag llm serve` process (SmolLM2) over a copy of the seed index; its data dir."""
    data_dir = tmp_path / "data"
    shutil.copytree(
        seed_index.data_dir, data_dir, ignore=shutil.ignore_patterns("llama-server*.log", NOTE_FILE)
    )
    port = free_port()
    cmd = [sys.executable, "-m", "rag.cli", "llm", "serve", "--small", "--port", str(port)]
    proc = subprocess.Popen(
        cmd, env=_env(data_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 120
    while read_note(data_dir) is None and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert read_note(data_dir) is not None, proc.stdout.read() if proc.poll() is not None else "no note"
    yield data_dir, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_ask_uses_the_running_server(served):
    data_dir, _ = served
    note = read_note(data_dir)
    assert note is not None
    log = Path(note.log)
    before = log.stat().st_size
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "ask", "How do state space models handle ECG signals?", "--json"],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["kind"] == "rag"
    assert log.stat().st_size > before  # the request reached the served server's log
    assert not list(data_dir.glob("llama-server.log"))  # no embedded server of its own was started
    assert answer["timings"]["prompt_tokens"] > 0  # read from the served server's log


def test_served_prefix_cache_keeps_the_system_prompt(served):
    data_dir, _ = served
    llm = LLM(Settings(data_dir=data_dir, llm_model_path=smollm_path()))
    try:
        for question in ("Name one imaging modality.", "Name one kind of biosignal."):
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]
            assert llm.complete(messages, max_tokens=8)
        assert llm._server is None  # nothing was started: the served one answered
        assert llm.endpoint().base_url == read_note(data_dir).base_url
        assert llm.last_prompt_stats["cached_tokens"] >= 40  # the system prompt, read once
    finally:
        llm.close()


def test_stopped_server_withdraws_its_note(served):
    data_dir, proc = served
    note = read_note(data_dir)
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    assert not (data_dir / NOTE_FILE).exists()
    with pytest.raises(ProcessLookupError):
        os.kill(note.pid, 0)  # the llama.cpp child is gone too
    llm = LLM(Settings(data_dir=data_dir, llm_model_path=smollm_path()))
    try:
        assert llm.endpoint().base_url != note.base_url and llm._server is not None
    finally:
        llm.close()


def test_a_stale_note_is_ignored(seed_index, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    note = {
        "base_url": "http://127.0.0.1:9/v1",
        "pid": int(dead.stdout),
        "model": str(smollm_path()),
        "log": "x",
    }
    (data_dir / NOTE_FILE).write_text(json.dumps(note))
    llm = LLM(Settings(data_dir=data_dir, llm_model_path=smollm_path()))
    try:
        assert llm.endpoint().base_url != note["base_url"]
    finally:
        llm.close()


def test_simultaneous_requests_both_finish(served):
    """llama.cpp's server ends a running stream when another request arrives, unless started
    with `--interrupt_requests False` (rag.llm.LlamaServer): then the second waits its turn."""
    import threading

    from openai import OpenAI

    data_dir, _ = served
    client = OpenAI(base_url=read_note(data_dir).base_url, api_key="not-needed", max_retries=0)
    finished: dict[int, str | None] = {}

    def ask(i: int) -> None:
        stream = client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": f"Count from {i} to {i + 60}, one number per line."}],
            max_tokens=60,
            temperature=0.0,
            stream=True,
        )
        reason = None
        for event in stream:
            if event.choices and event.choices[0].finish_reason:
                reason = event.choices[0].finish_reason
        finished[i] = reason

    threads = [threading.Thread(target=ask, args=(i,)) for i in (1, 100)]
    threads[0].start()
    time.sleep(0.3)  # the first is streaming when the second arrives
    threads[1].start()
    for t in threads:
        t.join(120)
    assert len(finished) == 2 and set(finished.values()) <= {"length", "stop"}  # None: cut short
