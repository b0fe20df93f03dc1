"""The chain end to end against real llama.cpp server processes through the OpenAI API."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rag import prompts
from rag.answer import Assistant
from rag.llm import LLM, LLMUnavailable, free_port, smollm_path


def test_answer_with_valid_citations(assistant):
    answer = assistant.ask("Which papers use structured state space models for ECG?")
    assert not answer.refused and answer.kind == "rag"
    assert answer.sources and answer.answer.strip()
    source_ns = {s.n for s in answer.sources}
    assert {c.n for c in answer.citations} <= source_ns
    assert any("State Space" in s.paper.label for s in answer.sources[:3])
    assert all(s.evidence and all(e in s.paper.abstract for e in s.evidence) for s in answer.sources)
    data = answer.to_json()
    assert list(data)[:7] == ["question", "answer", "refused", "citations", "sources", "model", "timings"]
    assert {"retrieval_s", "first_token_s", "total_s", "prefill_s"} <= set(data["timings"])
    assert set(data["timings"]) <= {
        *("retrieval_s", "first_token_s", "total_s", "prefill_s"),
        *("prompt_tokens", "cached_tokens", "prompt_eval_tokens"),
    }
    for source, c in zip(answer.citations + answer.sources, data["citations"] + data["sources"], strict=True):
        record = source.paper.to_json()  # "n", then the paper's JSON fields in order, then extras
        assert list(c)[: len(record) + 1] == ["n", *record] and c["n"] == source.n
        assert {k: c[k] for k in record} == record
    assert (
        data["timings"]["total_s"] >= data["timings"]["first_token_s"] >= data["timings"]["retrieval_s"] > 0
    )


def test_streaming_sends_sources_before_tokens(assistant):
    kinds = [e.kind for e in assistant.stream("Which papers study photoplethysmography?")]
    assert kinds.index("sources") < kinds.index("token") and kinds[-1] == "done"


def test_app_refuses_what_records_do_not_hold(assistant):
    for question in (
        "What is Nils Strodthoff's email address?",
        "Which papers are about quantum cryptography?",
    ):
        answer = assistant.ask(question)
        assert answer.refused and answer.citations == [] and answer.sources, question
        assert "don't" in answer.answer


def test_followup_uses_history(assistant):
    history = [
        {"role": "user", "content": "Which papers use state space models?"},
        {"role": "assistant", "content": "…"},
    ]
    answer = assistant.ask("and which of those are from 2023?", history=history)
    assert "2023" in answer.standalone_question
    assert answer.sources and all(s.paper.year == 2023 for s in answer.sources)


def test_bad_questions_get_messages(assistant):
    assert assistant.ask("").kind == "error"
    assert assistant.ask("?!?").kind == "error"
    long = assistant.ask("x" * 100_000)
    assert long.kind == "error" and "characters" in long.answer


def test_unreachable_endpoint_is_a_clear_message(seed_index):
    settings = seed_index.model_copy(
        update={"openai_base_url": f"http://127.0.0.1:{free_port()}/v1", "openai_api_key": "sk-secret-123"}
    )
    assistant = Assistant(settings)
    answer = assistant.ask("How do structured state space models perform on ECG data?")
    assert answer.kind == "error"
    assert "cannot reach the LLM endpoint http://127.0.0.1:" in answer.answer
    assert "sk-secret-123" not in json.dumps(answer.to_json())
    listed = assistant.ask("Which papers use state space models?")  # computed: the list stands
    assert listed.citations and "cannot reach the LLM endpoint" in listed.answer
    assert listed.answer.index("[1]") < listed.answer.index("cannot reach")


def test_embedded_server_starts_restarts_and_stops(seed_index):
    settings = seed_index.model_copy(update={"llm_model_path": smollm_path(), "llm_model": "smollm2"})
    llm = LLM(settings)
    assert llm.embedded
    assert llm.complete([{"role": "user", "content": "Say hi."}], max_tokens=5)
    first = llm._server
    first.process.kill()
    first.process.wait()
    assert llm.complete([{"role": "user", "content": "Say hi."}], max_tokens=5)  # restarted
    assert llm._server is not first and llm._server.alive()
    llm.close()
    assert not llm._server.alive()


def test_missing_model_file_is_reported(seed_index, tmp_path):
    llm = LLM(seed_index.model_copy(update={"llm_model_path": tmp_path / "none.gguf"}))
    with pytest.raises(LLMUnavailable, match="none.gguf"):
        llm.complete([{"role": "user", "content": "hi"}])


def test_cli_ask_batch_json(seed_index, smollm_server):
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(seed_index.data_dir),
        "OPENAI_BASE_URL": smollm_server.base_url,
        "RAG_LLM_MODEL": "smollm2",
    }
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "ask", "--batch", "-", "--json"],
        env=env,
        timeout=600,
        input="How many papers does Harald Binder have?\nWhat is Nils Strodthoff's phone number?\n",
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    first, second = (json.loads(line) for line in out.stdout.splitlines())
    assert first["answer"].startswith("18 papers") and not first["refused"]
    assert second["refused"] and second["citations"] == []


@pytest.mark.slow
def test_qwen_1_5b_answers_with_citations(seed_index, tmp_path):
    """The default model, embedded: joined from its PyPI parts, served, answering with citations."""
    settings = seed_index.model_copy(update={"data_dir": seed_index.data_dir})
    assistant = Assistant(settings)
    try:
        answer = assistant.ask("Which papers use diffusion models to generate ECG signals?")
        assert assistant.llm._server.alive() and assistant.llm.embedded
        assert not answer.refused and answer.citations
        assert any("ECG" in c.paper.label for c in answer.citations)
        print(f"\nqwen answer timings: {answer.timings}")
    finally:
        assistant.close()


def test_embedded_server_reports_prompt_tokens_and_its_prefix_cache(seed_index):
    """The second question with the same system prompt reuses its tokens from the server's cache."""
    settings = seed_index.model_copy(update={"llm_model_path": smollm_path(), "llm_model": "smollm2"})
    llm = LLM(settings)
    system = {"role": "system", "content": prompts.SYSTEM_PROMPT}
    try:
        stats = []
        for question in ("Which papers use ECG?", "Which papers use EEG signals?"):
            list(llm.stream([system, {"role": "user", "content": question}], max_tokens=3))
            stats.append(dict(llm.last_prompt_stats))
    finally:
        llm.close()
    first, second = stats
    assert first["prompt_tokens"] > 20
    for s in stats:
        assert s["prompt_tokens"] == s["cached_tokens"] + s["prompt_eval_tokens"]
    assert second["cached_tokens"] >= 20, second  # the system prompt came from the cache
    assert second["prompt_eval_tokens"] < first["prompt_tokens"]
