"""The `rag` command where a user meets it: settings reaching options, building a missing
index, two ingests at once, where `rag eval` writes, and tables in an 80-column terminal."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli import app
from tests.conftest import SEED_FILES

runner = CliRunner()


def rag(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


@pytest.fixture()
def small_seeds(tmp_path):
    """Two seed listings as the seeds of a fresh data dir (49 papers: quick to embed)."""
    folder = tmp_path / "seeds"
    folder.mkdir()
    for f in SEED_FILES:
        if f.name.startswith(("000", "004")):
            shutil.copy(f, folder / f.name)
    return folder


def test_rag_top_k_reaches_search(seed_index):
    data = str(seed_index.data_dir)
    three = rag("--data-dir", data, "search", "state space models for ECG", "--json", env={"RAG_TOP_K": "3"})
    assert three.exit_code == 0, three.stderr
    assert len(json.loads(three.stdout)) == 3
    five = rag("--data-dir", data, "search", "ECG", "-k", "5", "--json", env={"RAG_TOP_K": "3"})
    assert len(json.loads(five.stdout)) == 5  # the option wins over the setting
    default = rag("--data-dir", data, "search", "ECG", "--json")
    assert len(json.loads(default.stdout)) == 10


def test_commands_without_an_index_build_it_unless_no_build(tmp_path, small_seeds):
    data = str(tmp_path / "data")
    env = {"RAG_SEEDS": json.dumps([str(small_seeds)])}
    refused = rag("--data-dir", data, "search", "synthetic data", "--no-build", env=env)
    assert refused.exit_code == 1 and "rag ingest" in refused.stderr and "--no-build" in refused.stderr
    assert not (tmp_path / "data" / "state.json").exists()

    built = rag("--data-dir", data, "search", "synthetic data", "--json", env=env)
    assert built.exit_code == 0, built.stderr
    assert f"no index in {data} yet: building it from {small_seeds}" in built.stderr
    assert "built the index: 49 papers" in built.stderr
    assert json.loads(built.stdout)  # stdout holds only the JSON
    again = rag("--data-dir", data, "papers", "--json", env=env)
    assert again.exit_code == 0 and "building" not in again.stderr and len(json.loads(again.stdout)) == 49


HOLD_LOCK = """
import sys, time
from pathlib import Path
from rag.state import ingest_lock
with ingest_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_ingest_lock(data_dir: Path, seconds: float) -> subprocess.Popen:
    """Another process in the middle of an ingest (it holds the lock for `seconds`)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(data_dir), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_two_ingests_at_once_the_second_waits_or_says_so(tmp_path, small_seeds):
    data = tmp_path / "data"
    holder = hold_ingest_lock(data, 60)
    try:
        busy = rag("--data-dir", str(data), "ingest", str(small_seeds), "--no-wait")
        assert busy.exit_code == 1
        assert f"another ingest is running on {data} (pid {holder.pid})" in busy.stderr
        assert "unchanged" in busy.stderr and not (data / "state.json").exists()
    finally:
        holder.kill()
        holder.wait(10)

    holder = hold_ingest_lock(data, 3)
    try:
        start = time.monotonic()
        waited = rag("--data-dir", str(data), "ingest", str(small_seeds))
        assert waited.exit_code == 0, waited.stderr
        assert "waiting for it to finish" in waited.stderr and time.monotonic() - start >= 2
        assert "49 papers" in waited.stdout
    finally:
        holder.kill()
        holder.wait(10)


def test_eval_writes_under_the_current_directory_or_out(seed_index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = str(seed_index.data_dir)
    default = rag("--data-dir", data, "eval", "--retrieval-only", "--limit", "3")
    assert default.exit_code == 0, default.stderr
    written = sorted((tmp_path / "eval" / "reports").iterdir())
    assert [p.suffix for p in written] == [".json", ".md"]
    assert all(str(p) in default.stderr for p in written)  # and says where

    out = tmp_path / "elsewhere"
    chosen = rag("--data-dir", data, "eval", "--retrieval-only", "--limit", "3", "--out", str(out))
    assert chosen.exit_code == 0 and len(list(out.glob("*-retrieval.json"))) == 1
    assert str(out) in chosen.stderr


def test_search_table_fits_an_80_column_terminal(seed_index):
    env = {**os.environ, "COLUMNS": "80", "RAG_DATA_DIR": str(seed_index.data_dir)}
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "search", "state space models for ECG"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "paper" in line and "┃" in line)
    cells = {c.strip(): len(c) for c in header.strip("┃").split("┃")}
    assert cells["paper"] >= 30, header  # not 9 characters a line
    assert "Towards quantitative precision for" in out.stdout  # a title's words stay together


def test_paper_table_keeps_the_title_column_wide_at_any_width(retriever):
    from io import StringIO

    from rich.console import Console

    from rag.cli import paper_table

    hits = retriever.search("state space models for ECG", k=10).hits
    for width in (60, 80, 100, 140, 200):
        buffer = StringIO()
        Console(file=buffer, width=width).print(paper_table(hits, "t", score=True, width=width))
        lines = buffer.getvalue().splitlines()
        assert max(len(line) for line in lines) <= width
        header = next(line for line in lines if "paper" in line and "┃" in line)
        columns = {c.strip(): len(c) for c in header.strip("┃").split("┃")}
        assert columns["paper"] >= 30 and {"#", "paper"} <= set(columns)
        if width >= 140:
            assert {"authors", "date", "listing"} <= set(columns)
        if width >= 200:
            assert {"cat", "code", "id"} <= set(columns)
