"""Warm start: the page is served at once, while the background loads what the first answer
would otherwise wait for, in two threads at once (the model loads in its own process, so
both cores work): the LLM (the embedded llama.cpp server is started, its model file joined
once, then its first pass over the system prompt, a one-token completion; llama.cpp keeps the
evaluated prefix, so the first real question reuses it as every later one does), and the
embedding model and BM25 (one search).

The UI shows `status()` while this runs. A question asked meanwhile waits for the search index
only (`wait_index`): a computed answer needs nothing more, and a generated one waits for the
server inside `LLM.endpoint()`, which never starts a second one.
"""

from __future__ import annotations

import threading
import time


class Warmup:
    def __init__(self, assistant, prime_prompt: str | None = None):
        self.assistant = assistant
        if prime_prompt is None:
            from rag import prompts

            prime_prompt = getattr(prompts, "SYSTEM_PROMPT", "")
        self.prime_prompt = prime_prompt
        self.error = ""
        self.seconds: dict[str, float] = {}
        self._done = threading.Event()
        self._index = threading.Event()
        self._thread: threading.Thread | None = None
        self._model: threading.Thread | None = None
        self._started = 0.0

    def start_model(self) -> Warmup:
        """Start loading the LLM now (its server is another process: it takes no time from
        this one); `start` then does the rest."""
        if self._model is None:
            self._started = time.monotonic()
            self._model = threading.Thread(target=self._load_llm, name="warm-up-llm", daemon=True)
            self._model.start()
        return self

    def start(self) -> Warmup:
        self.start_model()
        self._thread = threading.Thread(target=self._run, name="warm-up", daemon=True)
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def wait_index(self, timeout: float | None = None) -> bool:
        """Until the search index is loaded (or failed to)."""
        return self._index.wait(timeout)

    @property
    def step(self) -> str:
        if self.done:
            return "failed" if self.error else "ready"
        return "loading the model" if self._index.is_set() else "loading the search index and the model"

    def _timed(self, name: str, fn) -> bool:
        start = time.monotonic()
        try:
            fn()
            return True
        except Exception as exc:  # the app works without it: the question path retries and explains
            self.error = f"{type(exc).__name__}: {exc}"
            return False
        finally:
            self.seconds[name] = round(time.monotonic() - start, 2)

    def _run(self) -> None:
        try:
            self._timed("search", lambda: self.assistant.retriever.search("warm up", k=1))
        finally:
            self._index.set()
        assert self._model is not None
        self._model.join()
        self.seconds["total"] = round(time.monotonic() - self._started, 2)  # the parts overlap
        self._done.set()

    def _load_llm(self) -> None:
        llm = self.assistant.llm
        if self._timed("llm_start", llm.endpoint):
            messages = [
                {"role": "system", "content": self.prime_prompt},
                {"role": "user", "content": "Hello"},
            ]
            self._timed("llm_prime", lambda: llm.complete(messages, max_tokens=1))

    def status(self) -> str:
        """One line for the page: what is loading, or that everything is ready."""
        if not self.done:
            step = self.step.capitalize()
            return (
                f"**{step}…** The page works meanwhile; "
                "a question asked now is answered once what it needs has loaded."
            )
        if self.error:
            return f"**The model could not be loaded in advance** ({self.error}). Questions will try again."
        total = self.seconds.get("total", 0.0)
        return f"**Model ready** (loaded in {total:.0f} s). Answers start right away."
