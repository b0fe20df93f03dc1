"""Security: no traffic beyond the configured endpoints; API keys stay out of outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from rag.config import Settings

# Runs the whole pipeline in a fresh interpreter whose audit hook records every outgoing
# connection and name lookup (Python's own sockets: httpx, urllib, chromadb's telemetry...).
PROBE = textwrap.dedent("""
    import json, sys
    seen = []
    def hook(event, args):
        if event == "socket.connect":
            seen.append(("connect", str(args[1])))
        elif event == "socket.getaddrinfo":
            seen.append(("lookup", str(args[0])))
    sys.addaudithook(hook)
    from pathlib import Path
    from rag.config import Settings
    from rag.index import ingest
    from rag.answer import Assistant
    settings = Settings(data_dir=Path(sys.argv[1]), seeds=[Path(sys.argv[2])], openai_base_url=sys.argv[3],
                        llm_model="smollm2", openai_api_key="sk-probe-secret")
    ingest(settings)
    assistant = Assistant(settings)
    answers = [assistant.ask(q).to_json() for q in ("Which papers use state space models?",
               "How many papers does Harald Binder have?", "What is Harald Binder's email?")]
    print(json.dumps({"seen": seen, "answers": answers}))
""")


def test_no_network_beyond_the_configured_endpoint(tmp_path, smollm_server):
    from tests.conftest import SEED_FILES

    folder = tmp_path / "seeds"
    folder.mkdir()
    (folder / SEED_FILES[1].name).write_bytes(SEED_FILES[1].read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RAG_"))}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "data"), str(folder), smollm_server.base_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    hosts = {entry[1] for entry in result["seen"]}
    assert hosts, "the probe saw no connection at all (the LLM call should be one)"
    assert all(h.startswith(("('127.0.0.1'", "127.0.0.1")) or h in ("localhost",) for h in hosts), hosts
    assert any(str(smollm_server.port) in h for h in hosts)
    text = json.dumps(result["answers"])
    assert "sk-probe-secret" not in text and "sk-probe-secret" not in out.stderr


def test_api_key_is_secret_in_settings_and_errors(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-secret")
    settings = Settings()
    assert "sk-env-secret" not in repr(settings) and "sk-env-secret" not in str(settings.model_dump())
    assert settings.openai_api_key.get_secret_value() == "sk-env-secret"


def test_ui_refuses_other_addresses_without_auth():
    import pytest

    from ui.app import check_binding

    assert check_binding("127.0.0.1", Settings()) is None
    with pytest.raises(SystemExit, match="RAG_UI_AUTH"):
        check_binding("0.0.0.0", Settings())
    assert check_binding("0.0.0.0", Settings(ui_auth="ann:pw")) == ("ann", "pw")
    assert check_binding("0.0.0.0", Settings(ui_allow_unauthenticated=True)) is None
