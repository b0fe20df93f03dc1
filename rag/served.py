"""The note a running `rag llm serve` leaves in the data dir, so that `rag ask`, `rag eval` and
the UI use that warm server instead of starting (and loading the model into) their own.

The note is `llm-server.json`: the server's URL, process id, model file and log. A process
reuses it only if that process is alive, serves the model file this process would load, and
answers a health check; otherwise the note is ignored (and left for its owner to remove).
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

NOTE_FILE = "llm-server.json"


@dataclass(frozen=True)
class ServedLLM:
    base_url: str
    pid: int
    model: str  # the model file's resolved path
    log: str  # its verbose log, which rag.llm.prompt_stats reads

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, owned by another user
            return True
        return True

    def healthy(self) -> bool:
        return answers(self.base_url)


def answers(base_url: str) -> bool:
    """Whether an OpenAI-compatible server at `base_url` lists its models (a health check)."""
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def announce(data_dir: Path, served: ServedLLM) -> Path:
    """Write the note atomically (a reader never sees half of it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / NOTE_FILE
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(served), indent=2))
    os.replace(tmp, path)
    return path


def withdraw(data_dir: Path, pid: int) -> None:
    """Remove the note if it is still the one server `pid` wrote."""
    found = read_note(data_dir)
    if found is not None and found.pid == pid:
        (data_dir / NOTE_FILE).unlink(missing_ok=True)


def read_note(data_dir: Path) -> ServedLLM | None:
    try:
        raw = json.loads((data_dir / NOTE_FILE).read_text())
        return ServedLLM(str(raw["base_url"]), int(raw["pid"]), str(raw["model"]), str(raw["log"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def find_served(data_dir: Path, model: Path) -> ServedLLM | None:
    """The running server announced in `data_dir` that serves `model`, if there is one."""
    found = read_note(data_dir)
    if found is None or found.model != str(model.resolve()) or not found.alive():
        return None
    return found if found.healthy() else None
