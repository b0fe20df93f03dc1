"""The index's own files, as typed records, read and written here only:

    state.json                       `IndexState`: the active generation and what it was built from
    generations/<gen>/reports.json   `ListingRecord`s: what parsing each listing file found
    .ingest.lock                     held by the one ingest that may change the data dir
    generations/<gen>/readers.lock   held (shared) by every process that has the generation loaded

The JSON layout is the one earlier versions wrote, so existing indexes load unchanged. A file
that cannot be read or does not have that layout raises `IndexMissingError` naming the file and
the fix (`rag ingest --rebuild`).

Locks: ingests take `.ingest.lock` one at a time; a second one waits for it (or, asked not to,
raises `IngestBusy`). A loaded generation holds a shared lock on its `readers.lock` for as long
as its `PaperIndex` lives, and an ingest removes an old generation only when it can take that
lock exclusively, so an app that is serving keeps answering from the generation it has loaded;
the next ingest removes it once it is no longer in use. All of these are `flock` locks: the
kernel drops them when their holder exits, however it exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rag.errors import IndexMissingError, IngestBusy

STATE_FILE = "state.json"
REPORTS_FILE = "reports.json"
INGEST_LOCK = ".ingest.lock"
READERS_LOCK = "readers.lock"
FORMAT_VERSION = 1


class _Record(BaseModel):
    """A typed record that also answers `record["key"]` and `record.get("key")`, the way the
    raw dicts it replaces did, so code written against those keeps working. New code uses the
    attributes."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in type(self).model_fields else default

    def __contains__(self, key: object) -> bool:
        return key in type(self).model_fields

    def keys(self) -> list[str]:
        return list(type(self).model_fields)


class IndexConfig(_Record):
    """What the vectors depend on: an index built with another config is rebuilt, not reused."""

    format: int = FORMAT_VERSION
    embed_model: str  # what made the vectors (`rag.embed.embedder_name`); vectors of two never mix
    chunk_tokens: int
    chunk_overlap: int
    chroma_mode: str
    chroma_address: str = ""  # host:port of the Chroma server in http mode


class FileStats(_Record):
    records: int
    skipped: int


class IndexState(_Record):
    """`state.json`: the active generation. Replaced atomically by each ingest that changes it."""

    generation: str
    collection: str  # the generation's Chroma collection
    config: IndexConfig
    files: dict[str, str]  # listing path -> sha256 of its bytes
    file_stats: dict[str, FileStats] = Field(default_factory=dict)
    papers: int
    chunks: int
    built_at: str = ""  # ISO time, UTC

    def stats(self, path: str) -> FileStats:
        return self.file_stats.get(path, FileStats(records=0, skipped=0))

    def to_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        # The layout earlier versions wrote: [records, skipped] per file.
        data["file_stats"] = {p: [s.records, s.skipped] for p, s in self.file_stats.items()}
        return data

    @classmethod
    def from_json(cls, data: Any) -> IndexState:
        if isinstance(data, dict) and isinstance(data.get("file_stats"), dict):
            data = dict(data)
            data["file_stats"] = {
                p: {"records": s[0], "skipped": s[1]} if isinstance(s, list | tuple) and len(s) == 2 else s
                for p, s in data["file_stats"].items()
            }
        return cls.model_validate(data)


class ListingRecord(_Record):
    """What the index keeps of one parsed listing file (`reports.json`, one per file)."""

    listing: str  # the file name
    path: str
    layout: str  # "profile", "three-line", "group", "daily", "generic"
    owner: str | None = None
    profile: dict[str, str] = Field(default_factory=dict)  # header stats a profile page states
    records: int = 0
    skipped: int = 0
    warnings: list[str] = Field(default_factory=list)


# --- state.json --------------------------------------------------------------------------


def read_state(data_dir: Path) -> IndexState | None:
    """The active generation, or None when the data dir has no index yet."""
    path = data_dir / STATE_FILE
    if not path.exists():
        return None
    try:
        return IndexState.from_json(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:  # ValidationError and JSONDecodeError are ValueErrors
        raise IndexMissingError(
            f"{path} is unreadable ({_reason(exc)}); rebuild with `rag ingest --rebuild`"
        ) from exc


def write_state(data_dir: Path, state: IndexState) -> None:
    """Switch to `state` atomically: readers see the old file or the new one, never a mix."""
    tmp = data_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2))
    os.replace(tmp, data_dir / STATE_FILE)


def current_generation(data_dir: Path) -> str | None:
    """The generation state.json names now (None without an index or with an unreadable one)."""
    try:
        state = read_state(data_dir)
    except IndexMissingError:
        return None
    return state.generation if state else None


# --- reports.json ------------------------------------------------------------------------


def write_reports(gen_dir: Path, records: list[ListingRecord]) -> None:
    text = json.dumps([r.model_dump(mode="json") for r in records], ensure_ascii=False, indent=1)
    (gen_dir / REPORTS_FILE).write_text(text)


def read_reports(gen_dir: Path) -> list[ListingRecord]:
    path = gen_dir / REPORTS_FILE
    try:
        rows = json.loads(path.read_text())
        if not isinstance(rows, list):
            raise ValueError("expected a list of listings")
        return [ListingRecord.model_validate(r) for r in rows]
    except (OSError, ValueError) as exc:
        raise IndexMissingError(
            f"{path} is missing or corrupt ({_reason(exc)}); rebuild with `rag ingest --rebuild`"
        ) from exc


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(map(str, first['loc'])) or 'top level'}: {first['msg']}"
    return str(exc)


# --- locks -------------------------------------------------------------------------------


def _holder(handle: IO[str]) -> str:
    """Who holds a lock file, as its holder wrote it ("pid 1234"), for messages."""
    with contextlib.suppress(OSError, ValueError):
        handle.seek(0)
        pid = handle.read().strip()
        if pid.isdigit():
            return f" (pid {pid})"
    return ""


@contextlib.contextmanager
def ingest_lock(
    data_dir: Path, wait: bool = True, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the data dir's ingest lock. When another ingest holds it: with `wait`, call
    `on_wait` with a message and block until it is free; else raise `IngestBusy`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / INGEST_LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            busy = f"another ingest is running on {data_dir}{_holder(handle)}"
            if not wait:
                raise IngestBusy(f"{busy}; try again when it has finished") from None
            if on_wait:
                on_wait(f"{busy}; waiting for it to finish (Ctrl-C stops waiting)")
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)


def hold_generation(gen_dir: Path) -> IO[str] | None:
    """Take a shared lock on a generation for as long as the returned handle stays open (a
    `PaperIndex` keeps it; garbage collection or `close()` releases it). None when the
    generation's folder is gone."""
    try:
        handle = open(gen_dir / READERS_LOCK, "a")  # noqa: SIM115 - held past this function on purpose
    except FileNotFoundError:
        return None
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


def generation_unused(gen_dir: Path) -> contextlib.AbstractContextManager[bool]:
    """A context that is True while no process has the generation loaded, and keeps it so
    (new readers wait) until the context ends; False when one has."""

    @contextlib.contextmanager
    def check() -> Iterator[bool]:
        if not gen_dir.is_dir():  # only an ingest removes generations, and this is the ingest
            yield True
            return
        with open(gen_dir / READERS_LOCK, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True

    return check()
