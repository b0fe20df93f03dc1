"""A scripted stand-in for `rag.llm.LLM`, for unit tests of the chain's steps (like simonw/llm's
`MockModel.enqueue`): queue each response before the question, then read what the chain sent.

    fake = FakeLLM()
    fake.enqueue(["State space models [1]", " are used [7]."])  # one response, streamed in two deltas
    answer = Assistant(settings, index, llm=fake).ask("Which papers use state space models?")
    fake.calls[0].user  # the prompt the chain built

It has the part of `LLM` the chain and the UI use: `stream(messages, max_tokens, temperature)`,
`complete(...)`, `model_name`, `embedded`, `endpoint()` and `close()`. A call with nothing queued
fails the test, so a test that queues nothing also checks that the model is never asked.
The real llama.cpp process is for the end-to-end tests (tests/test_answer.py)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from rag.llm import Endpoint, LLMUnavailable


@dataclass
class Call:
    messages: list[dict]
    max_tokens: int | None
    temperature: float | None

    @property
    def system(self) -> str:
        return "\n".join(m["content"] for m in self.messages if m["role"] == "system")

    @property
    def user(self) -> str:
        return "\n".join(m["content"] for m in self.messages if m["role"] == "user")


@dataclass
class _Response:
    chunks: list[str]
    error: LLMUnavailable | None  # raised after the chunks, as a server that dies mid-answer


class UnexpectedLLMCall(AssertionError):
    pass


class FakeLLM:
    """Answers from a queue; records every call in `calls`."""

    embedded = False
    last_prompt_stats: dict = {}  # noqa: RUF012 - never mutated; the real LLM reads its server log

    def __init__(self, model_name: str = "fake-llm"):
        self.model_name = model_name
        self.calls: list[Call] = []
        self.closed = False
        self._queue: deque[_Response] = deque()

    def enqueue(self, chunks: list[str] | str, error: LLMUnavailable | str | None = None) -> FakeLLM:
        """One response: its text deltas (a str is one delta), then optionally a failure."""
        if isinstance(error, str):
            error = LLMUnavailable(error)
        self._queue.append(_Response([chunks] if isinstance(chunks, str) else list(chunks), error))
        return self

    def fail(self, message: str = "cannot reach the LLM endpoint fake://: stopped") -> FakeLLM:
        """One response that fails before its first token."""
        return self.enqueue([], error=message)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def stream(
        self, messages: list[dict], max_tokens: int | None = None, temperature: float | None = None
    ) -> Iterator[str]:
        self.calls.append(Call([dict(m) for m in messages], max_tokens, temperature))
        if not self._queue:
            raise UnexpectedLLMCall(
                f"the LLM was asked (call {len(self.calls)}) with nothing queued:\n"
                + self.calls[-1].user[:500]
            )
        response = self._queue.popleft()
        yield from response.chunks
        if response.error is not None:
            raise response.error

    def complete(
        self, messages: list[dict], max_tokens: int | None = None, temperature: float | None = None
    ) -> str:
        return "".join(self.stream(messages, max_tokens, temperature))

    def endpoint(self) -> Endpoint:
        return Endpoint("fake://", "not-needed", self.model_name, self.embedded)

    def close(self) -> None:
        self.closed = True
