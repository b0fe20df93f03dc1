"""The optional LLM fallback of question understanding (rag/query/fallback.py).

The unit tests script the model's replies (a callable standing in for the LLM); what they
test is the trigger, the validation and the merge into the rules' plan, on the analyser of
the real seed listings. The end-to-end tests send the real JSON schema to a real llama.cpp
server: SmolLM2-135M (the test model) for the constrained reply's shape, and the packaged
Qwen2.5-Coder-1.5B (slow) for a plan it fills right.
"""

from __future__ import annotations

import json

import pytest

from rag import prompts
from rag.config import QuerySettings, Settings
from rag.query.analyse import QueryAnalyser
from rag.query.fallback import (
    FallbackError,
    Grounds,
    PlanFallback,
    fallback_reason,
    openai_plan_llm,
    parse_proposal,
    plan_fallback,
)
from rag.query.plan import Intent

# Not structural to the rules' eyes ("writeups" is no paper word), but a count: the fallback's case.
PUBS = "haverkamp: how many writeups in 2023"  # a paper word no lexicon holds


def reply(**fields) -> str:
    base = {
        "intent": "fact",
        "authors": [],
        "year_from": None,
        "year_to": None,
        "k": None,
        "field": None,
        "category": None,
        "has_code": None,
        "topic": "",
    }
    return json.dumps({**base, **fields})


class ScriptedLLM:
    """Stands in for the LLM: returns the scripted replies in turn, records what it was sent."""

    def __init__(self, *replies: str | Exception):
        self.replies = list(replies)
        self.sent: list[tuple[list[dict], dict]] = []

    def __call__(self, messages, schema):
        self.sent.append((messages, schema))
        answer = self.replies.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture(scope="module")
def corpus():
    from rag.corpus import PERSONAL_LAYOUTS, load_corpus
    from tests.conftest import SEEDS

    papers, reports = load_corpus([SEEDS])
    owners = {r.owner: r.layout in PERSONAL_LAYOUTS for r in reports if r.owner}
    return {
        "papers": papers,
        "person_owners": {o for o, person in owners.items() if person},
        "other_owners": {o for o, person in owners.items() if not person},
        "profiles": {r.owner: r.profile for r in reports if r.owner},
    }


@pytest.fixture(scope="module")
def base(corpus) -> QueryAnalyser:
    return QueryAnalyser(**corpus)


@pytest.fixture
def analyser(base):
    """The seed corpus's analyser with a fallback of its own per test (state shared, cheap)."""
    clone = QueryAnalyser.__new__(QueryAnalyser)
    clone.__dict__.update(base.__dict__)
    return clone


def with_llm(analyser, *replies, timeout_s=30.0) -> ScriptedLLM:
    llm = ScriptedLLM(*replies)
    analyser.fallback = PlanFallback(llm, timeout_s=timeout_s)
    return llm


def test_off_by_default():
    assert QuerySettings().llm_fallback is False
    assert plan_fallback(object(), QuerySettings()) is None  # type: ignore[arg-type]


def test_the_trigger_is_read_from_the_plan(base):
    assert fallback_reason(base.analyse(PUBS)) == "record filters but no table intent"
    assert "cue words" in (fallback_reason(base.analyse("how many thingies does this collection hold")) or "")
    for decided in ("how many papers has Harald Binder written?", "Binder's newest paper"):
        assert fallback_reason(base.analyse(decided)) is None  # a rule placed it
    assert fallback_reason(base.analyse("which papers use diffusion models?")) is None  # a plain topic
    assert fallback_reason(base.analyse("what is Nils Strodthoff's email address?")) is None  # unheld


def test_a_valid_reply_fills_the_plan(analyser):
    rules = analyser.analyse(PUBS)
    assert rules.intent is Intent.FACT and rules.topic == "writeups"
    llm = with_llm(analyser, reply(intent="count", authors=["Haverkamp"], year_from=2023, year_to=2023))
    plan = analyser.analyse(PUBS)
    assert plan.intent is Intent.COUNT and plan.topic == "" and plan.source == "llm"
    assert (
        plan.filters.authors == ["Wilhelm Haverkamp"]
        and plan.filters.year_from == plan.filters.year_to == 2023
    )
    assert any("the LLM filled the plan" in n for n in plan.notes)
    messages, schema = llm.sent[0]
    assert PUBS in messages[-1]["content"] and messages[0]["content"] == prompts.PLAN_FALLBACK_SYSTEM
    assert set(schema["properties"]["intent"]["enum"]) == {str(i) for i in Intent}
    assert "CV" in schema["properties"]["category"]["enum"] and None in schema["properties"]["field"]["enum"]
    assert analyser.fallback.calls[0].outcome == "filled"
    assert analyser.analyse(PUBS).intent is Intent.COUNT and len(llm.sent) == 1  # cached


@pytest.mark.parametrize(
    "text, why",
    [
        ("count, by Binder", "not JSON"),
        ('["count"]', "not a JSON object"),
        (reply(intent="summarise"), "unknown intent"),
        (reply(intent="count", authors=["Jane Doe"]), "no corpus author"),
        (reply(intent="count", authors=["Harald Binder"]), "not named in the question"),  # a real author
        (reply(intent="count", year_from=2019), "2019 is not in the question"),  # invented
        (reply(intent="count", category="CV"), "category CV is not in the question"),
        (reply(intent="count", has_code=False), "nothing of code"),
        (reply(intent="newest", k=3), "k 3 is not in the question"),
        (reply(intent="newest", k=500), "out of range"),
        (reply(intent="list", category="ASTRO-PH"), "unknown category"),
        (reply(intent="field", field="authors"), "needs a paper"),  # no paper named
        (reply(intent="joint", authors=["Haverkamp"]), "two named people"),
        (reply(intent="profile"), "statistic"),
    ],
)
def test_an_invalid_reply_keeps_the_rules_plan(analyser, text, why):
    rules = analyser.analyse(PUBS)
    with_llm(analyser, text)
    plan = analyser.analyse(PUBS)
    assert (plan.intent, plan.filters, plan.topic, plan.source) == (
        rules.intent,
        rules.filters,
        "writeups",
        "rules",
    )
    assert any("kept the rules' plan" in n and why in n for n in plan.notes), plan.notes
    assert analyser.fallback.calls[0].outcome.startswith("rejected")


def test_a_failure_or_a_slow_reply_keeps_the_rules_plan(analyser):
    with_llm(analyser, TimeoutError("Request timed out."))
    plan = analyser.analyse(PUBS)
    assert plan.intent is Intent.FACT and any("the LLM failed (TimeoutError" in n for n in plan.notes)
    assert analyser.analyse(PUBS).intent is Intent.FACT  # the failure is not retried at once
    assert len(analyser.fallback.calls) == 1
    with_llm(analyser, reply(intent="count"), timeout_s=0.0)  # arrives after the deadline
    plan = analyser.analyse(PUBS)
    assert plan.intent is Intent.FACT and analyser.fallback.calls[0].outcome == "timed out"


def test_questions_the_rules_place_never_reach_the_llm(analyser):
    llm = with_llm(analyser)  # no reply scripted: a call would fail the test
    for question in ("how many papers has Harald Binder written?", "which papers use diffusion models?"):
        assert analyser.analyse(question).source == "rules"
    assert llm.sent == []


def test_the_llm_may_drop_topic_words_never_add_them(analyser):
    with_llm(analyser, reply(intent="count", topic="writeups quantum gravity"))
    plan = analyser.analyse(PUBS)
    assert plan.intent is Intent.COUNT and plan.topic == "writeups"  # "quantum gravity" was not asked


def test_an_agreeing_reply_changes_nothing(analyser):
    with_llm(analyser, reply(intent="fact", topic="writeups"))
    plan = analyser.analyse(PUBS)
    assert plan.source == "rules" and any("read it as the rules did" in n for n in plan.notes)


def test_a_comparison_gets_its_sides(analyser):
    question = "is strodthoff's explainability research any good next to the TUM group's?"  # no rule compares
    assert analyser.analyse(question).intent is Intent.FACT
    with_llm(analyser, reply(intent="compare", authors=["Strodthoff"], topic="explainability research"))
    plan = analyser.analyse(question)
    assert plan.intent is Intent.COMPARE and len(plan.sides) == 2
    assert {s.topic for s in plan.sides} == {"explainability"}  # "research" is no topic word of the rules
    assert not plan.filters.authors and not plan.filters.listings  # people and listings are the sides


def test_a_misspelt_name_of_a_recognised_person_is_accepted(analyser):
    question = "strodthoff: how many writeups since 2022"
    with_llm(analyser, reply(intent="count", authors=["Strothoff"], year_from=2022))
    plan = analyser.analyse(question)
    assert plan.intent is Intent.COUNT and plan.filters.authors == ["Nils Strodthoff"] and plan.topic == ""
    assert plan.filters.year_from == 2022


def test_the_rules_year_range_stands_whole(analyser):
    with_llm(analyser, reply(intent="count", year_from=2022, year_to=2022))
    plan = analyser.analyse("strodthoff: how many writeups since 2022")
    assert plan.intent is Intent.COUNT and (plan.filters.year_from, plan.filters.year_to) == (2022, None)


def test_values_written_in_the_question_are_accepted_as_the_corpus_spells_them(base):
    grounds = Grounds(words=frozenset({"three", "newest", "cv", "github", "2024", "2025"}))
    got = parse_proposal(
        reply(intent="newest", k=3, category="cv", has_code=True, year_from=2024, year_to=2024),
        grounds,
        base.resolve_name,
        base.entities.categories,
    )
    assert (got.intent, got.k, got.categories, got.has_code, got.year_from) == (
        Intent.NEWEST,
        3,
        ["CV"],
        True,
        2024,
    )
    with pytest.raises(FallbackError, match="after year_to"):
        parse_proposal(
            reply(year_from=2025, year_to=2024), grounds, base.resolve_name, base.entities.categories
        )
    with pytest.raises(FallbackError, match="unknown field"):
        parse_proposal(reply(field="venue"), grounds, base.resolve_name, base.entities.categories)


def _llm(settings):
    from rag.llm import LLM

    return LLM(settings)


def test_end_to_end_the_schema_constrains_a_real_llama_cpp_reply(base, tmp_path, smollm_server):
    """SmolLM2-135M is too small to read questions well; what it shows is that the server takes
    the schema and its reply has exactly the schema's shape, which the analyser then judges."""
    settings = Settings(
        data_dir=tmp_path,
        openai_base_url=smollm_server.base_url,
        llm_model="smollm2",
        query={"llm_fallback_timeout_s": 300},  # a shared 2-core machine may be busy
    )
    analyser = QueryAnalyser.__new__(QueryAnalyser)
    analyser.__dict__.update(base.__dict__)
    llm = _llm(settings)
    analyser.fallback = PlanFallback(openai_plan_llm(llm, settings.query), timeout_s=300)
    plan = analyser.analyse(PUBS)
    (call,) = analyser.fallback.calls
    assert not call.outcome.startswith(("failed", "timed out")), call.outcome
    data = json.loads(call.reply)
    assert set(data) == set(analyser.fallback_schema["required"])
    assert data["intent"] in {str(i) for i in Intent}
    assert plan.source in ("rules", "llm") and plan.notes[-1].startswith("LLM fallback")
    print(f"\nsmollm2 plan fallback: {call.seconds:.2f}s, {call.outcome}: {call.reply}")


@pytest.mark.slow
def test_end_to_end_qwen_fills_a_count(base, seed_index):
    """The default model, embedded: a count the rules miss ("writeups" is no paper word)."""
    analyser = QueryAnalyser.__new__(QueryAnalyser)
    analyser.__dict__.update(base.__dict__)
    query = seed_index.query.model_copy(update={"llm_fallback_timeout_s": 300})
    settings = seed_index.model_copy(update={"query": query})  # the seed index's model cache
    llm = _llm(settings)
    try:
        llm.client()  # the server's start is not the call's latency
        analyser.fallback = PlanFallback(openai_plan_llm(llm, settings.query), timeout_s=300)
        plan = analyser.analyse("strodthoff: how many writeups since 2022")
        (call,) = analyser.fallback.calls
        print(f"\nqwen plan fallback: {call.seconds:.2f}s, {call.outcome}: {call.reply}")
        assert plan.intent is Intent.COUNT and plan.source == "llm" and not plan.topic
        assert plan.filters.authors == ["Nils Strodthoff"]
        assert (plan.filters.year_from, plan.filters.year_to) == (2022, None)
    finally:
        llm.close()


def test_the_assistant_takes_the_fallback_from_its_settings(seed_index):
    """`RAG_QUERY__LLM_FALLBACK=true` (or settings.query.llm_fallback) gives the Assistant's
    analyser a fallback on the Assistant's own LLM; by default it has none. No model is started."""
    from rag.answer.chain import Assistant

    off = Assistant(seed_index, generate=False)
    on_settings = seed_index.model_copy(
        update={"query": seed_index.query.model_copy(update={"llm_fallback": True})}
    )
    on = Assistant(on_settings, generate=False)
    try:
        assert off.analyser.fallback is None
        assert isinstance(on.analyser.fallback, PlanFallback)
        assert on.analyser.fallback.timeout_s == on_settings.query.llm_fallback_timeout_s
    finally:
        off.close()
        on.close()
