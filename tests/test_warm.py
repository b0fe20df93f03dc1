"""The warm start (ui/warm.py): the LLM and the search index load side by side; a question
waits only for the index, and a slow model does not hold up what needs no model."""

from __future__ import annotations

import threading

from rag.answer import Assistant
from rag.index import PaperIndex
from tests.fakes import FakeLLM
from ui.warm import Warmup


class SlowStartLLM(FakeLLM):
    """A FakeLLM whose server start blocks until the test releases it."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def endpoint(self):
        self.release.wait(30)
        return super().endpoint()


def test_the_index_is_ready_while_the_model_still_loads(seed_index):
    llm = SlowStartLLM()
    llm.enqueue("")  # the priming completion
    assistant = Assistant(seed_index, index=PaperIndex(seed_index), llm=llm)
    warmup = Warmup(assistant).start_model()
    assert not warmup.wait_index(0.2) and "search index and the model" in warmup.status()
    warmup.start()
    assert warmup.wait_index(60) and not warmup.done
    assert warmup.step == "loading the model"
    answer = assistant.ask("How many papers are in each listing?")  # computed: no model needed
    assert answer.kind == "table" and not warmup.done
    llm.release.set()
    assert warmup.wait(30) and warmup.step == "ready" and "Model ready" in warmup.status()
    assert len(llm.calls) == 1 and llm.calls[0].max_tokens == 1  # primed once
    assert warmup.seconds["total"] >= max(warmup.seconds["search"], warmup.seconds["llm_start"])
