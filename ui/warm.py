"""Warm start: the page is served at once, while a background thread loads what the first
answer would otherwise wait for: the embedding model and BM25 (one search), the LLM (the
embedded llama.cpp server is started, its model file joined once) and the model's first pass
over the system prompt (a one-token completion; llama.cpp keeps the evaluated prefix, so the
first real question reuses it as every later one does).

The UI shows `status()` while this runs; a question asked meanwhile waits for it (with the
status in the chat) instead of starting a second server.
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
        self.step = "loading the search index"
        self.error = ""
        self.seconds: dict[str, float] = {}
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Warmup:
        self._thread = threading.Thread(target=self._run, name="warm-up", daemon=True)
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _timed(self, name: str, step: str, fn) -> bool:
        self.step = step
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
            self._timed(
                "search", "loading the search index", lambda: self.assistant.retriever.search("warm up", k=1)
            )
            llm = self.assistant.llm
            if self._timed("llm_start", "loading the model", llm.endpoint):
                messages = [
                    {"role": "system", "content": self.prime_prompt},
                    {"role": "user", "content": "Hello"},
                ]
                self._timed("llm_prime", "loading the model", lambda: llm.complete(messages, max_tokens=1))
        finally:
            self.step = "ready" if not self.error else "failed"
            self._done.set()

    def status(self) -> str:
        """One line for the page: what is loading, or that everything is ready."""
        if not self.done:
            step = self.step.capitalize()
            return (
                f"**{step}…** The page works meanwhile; a question asked now waits until the model is ready."
            )
        if self.error:
            return f"**The model could not be loaded in advance** ({self.error}). Questions will try again."
        total = sum(self.seconds.values())
        return f"**Model ready** (loaded in {total:.0f} s). Answers start right away."
