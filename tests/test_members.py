"""Topic membership decides complete lists and near-miss refusals (no model involved)."""

from __future__ import annotations

import re

import pytest

from rag.answer import Assistant
from rag.answer.members import facet_covered, facet_variants, membership
from rag.index import PaperIndex


@pytest.fixture(scope="module")
def offline(seed_index):
    """The chain with generation switched off: what the app decides before any model runs."""
    return Assistant(seed_index, index=PaperIndex(seed_index), generate=False)


def test_a_topic_list_is_every_member_listed_and_cited(offline):
    answer = offline.ask("any work on photoplethysmography?")
    members = membership(offline.analyser.analyse("any work on photoplethysmography?"), offline.retriever)
    assert len(members.members) >= 5
    lines = [line for line in answer.answer.splitlines() if re.match(r"\d+\. ", line)]
    assert len(lines) == len(answer.sources) == min(len(members.members), 25)
    assert all(line.endswith(f"[{i}]") for i, line in enumerate(lines, start=1))
    ids = {s.paper.paper_id for s in answer.sources}
    assert ids == {h.paper.paper_id for h in members.members[:25]}
    assert all(
        "ppg" in (s.paper.abstract + (s.paper.title or "")).lower()
        or "photopleth" in (s.paper.abstract + (s.paper.title or "")).lower()
        for s in answer.sources
    )


def test_parts_no_paper_combines_are_refused_with_the_nearest_for_each(offline):
    answer = offline.ask("which papers use federated learning for mammography?")
    assert answer.refused and answer.checks["reason"] == "near miss"
    assert "“federated learning”" in answer.answer and "“mammography”" in answer.answer
    assert answer.sources and all(f"[{s.n}]" in answer.answer for s in answer.sources)


def test_alternatives_inside_one_part_are_not_a_combination(offline):
    """'state space models (SSMs such as S4, or Mamba)' is one part: any of them will do."""
    plan = offline.analyser.analyse("papers using state space models (SSMs such as S4, or Mamba)?")
    assert len(plan.conjuncts) == 1 and len(plan.facets) >= 2
    answer = offline.ask(plan.question)
    assert not answer.refused and len(answer.sources) >= 3


def test_a_topic_no_paper_has_is_refused(offline):
    answer = offline.ask("papers about quantum cryptography")
    assert answer.refused


def test_a_fact_gives_the_best_paper_five_sentences(offline):
    answer = offline.ask("How many ECG records does PTB-XL contain?")
    assert not answer.refused
    assert len(answer.sources[0].evidence) == min(5, len(answer.sources[0].evidence)) >= 3
    assert all(len(s.evidence) <= 2 for s in answer.sources[1:])


def test_a_corrected_spelling_replaces_its_typo_and_does_not_match_alone():
    variants = facet_variants("federated lerning", {"lerning": "learning"})
    assert {"federated", "learning"} in variants and {"federated", "lerning"} in variants
    assert not facet_covered(variants, 0.66, {"deep", "learning", "chest"})  # "learning" alone
    assert facet_covered(variants, 0.66, {"federated", "learning", "chest"})


def test_synonym_alternatives_each_cover_the_phrase():
    variants = facet_variants("heart signals", {"heart signals": "ECG, electrocardiogram"})
    assert facet_covered(variants, 0.66, {"ecg", "classification"})
    assert facet_covered(variants, 0.66, {"electrocardiogram"})
    assert not facet_covered(variants, 0.66, {"eeg", "signal"})


def test_a_hyphenated_facet_matches_the_unhyphenated_text():
    variants = facet_variants("state-space models", {})
    assert facet_covered(variants, 0.66, {"state", "space", "ecg"})


@pytest.mark.parametrize(
    "question",
    [
        "anything on bowel sounds + machine learning??",
        "bowel sounds w/ machine learning",
        "papers combining bowel sounds and transformers from wearables",
    ],
)
def test_every_listed_member_holds_each_part(offline, question):
    plan = offline.analyser.analyse(question)
    assert len(plan.conjuncts) >= 2, plan.conjuncts
    members = membership(plan, offline.retriever).members
    assert members and all("bowel" in h.paper.abstract.lower() for h in members)
