"""Unit tests of the chain's pure parts: follow-ups, citation check, support, refusal triggers."""

from __future__ import annotations

from rag import prompts
from rag.answer import (
    Source,
    attribute_uncited,
    check_citations,
    fallback_rewrite,
    is_followup,
    reattribute,
    sentence_spans,
    support,
    unsupported_sentences,
)
from rag.answer.refusal import unheld_reason
from rag.query.analyse import QueryAnalyser
from rag.types import Paper, SearchHit


def paper(pid: str, abstract: str, title: str = "A title") -> Paper:
    return Paper(
        pid,
        ["x.txt"],
        "Owner",
        title,
        title,
        ["Ann Author"],
        False,
        None,
        "2023-01-01",
        2023,
        "CV",
        False,
        abstract,
    )


HISTORY = [
    {"role": "user", "content": "Which papers use state space models?"},
    {"role": "assistant", "content": "…"},
]


def test_followup_detection():
    assert is_followup("and which of those are from 2023?", HISTORY)
    assert is_followup("what about EEG?", HISTORY)
    assert not is_followup("Which papers use diffusion models?", HISTORY)
    assert not is_followup("and which of those are from 2023?", [])


def test_fallback_rewrite():
    assert fallback_rewrite("what about EEG?", HISTORY) == "Which papers use EEG?"
    assert (
        fallback_rewrite("and which of those are from 2023?", HISTORY)
        == "Which papers use state space models; which of those are from 2023?"
    )
    assert fallback_rewrite("anything?", []) == "anything?"


def test_invalid_citations_removed_and_counted():
    text, cited, removed = check_citations("SSMs are used [2]. Also [7] and [1, 9]. Again [2][1].", 3)
    assert removed == 2
    assert cited == [2, 1]
    assert "[7]" not in text and "[9]" not in text and "[1]" in text
    assert check_citations("No citations at all.", 3) == ("No citations at all.", [], 0)
    assert check_citations("Only fake [4].", 3)[1:] == ([], 1)


def test_support_and_unsupported_flags():
    s1 = Source(1, paper("a", "We use structured state space models for ECG classification."), [])
    s2 = Source(2, paper("b", "Bowel sounds are segmented with recurrent networks."), [])
    assert support("State space models are used for ECG classification [1].", s1.paper.abstract) == 1.0
    assert support("State space models classify ECG [1].", s1.paper.abstract) == 0.75  # lexical: no stemming
    flagged = unsupported_sentences(
        "State space models are used for ECG classification [1]. "
        "Bowel sounds are analysed with transformers [1].",
        [s1, s2],
    )
    assert [f["n"] for f in flagged] == [1] and "Bowel" in flagged[0]["sentence"]


def test_post_hoc_attribution_only_when_uncited():
    s1 = Source(1, paper("a", "We use structured state space models for ECG classification."), [])
    s2 = Source(2, paper("b", "Bowel sounds are segmented with recurrent networks."), [])
    text, added = attribute_uncited(
        "Bowel sounds are segmented with recurrent networks. Nothing else matters here.", [s1, s2]
    )
    assert added == 1 and text.startswith("Bowel sounds are segmented with recurrent networks [2].")
    assert attribute_uncited("Already cited [1].", [s1]) == ("Already cited [1].", 0)
    titled = Source(
        3, paper("c", "Unrelated words entirely.", title="Diffusion-based Conditional ECG Generation"), []
    )
    text, added = attribute_uncited(
        "- Diffusion-based Conditional ECG Generation (Juan et al., 2023)", [s1, titled]
    )
    assert added == 1 and "[2]" in text  # names the second source's title


def not_in_records(question, hits):
    plan = QueryAnalyser([h.paper for h in hits]).analyse(question)
    return unheld_reason(plan, hits, 5)


def test_not_in_records():
    hits = [
        SearchHit(paper("a", "We trained on eight NVIDIA A100 GPUs."), 1.0),
        SearchHit(paper("b", "A plain abstract about vessel segmentation."), 0.5),
    ]
    assert not_in_records("What is Nils Strodthoff's email address?", hits) == "contact or personal details"
    assert not_in_records("Which GPUs did they use?", hits) is None  # an abstract states it
    assert not_in_records("Which GPUs did they use?", hits[1:]) == "the hardware used"
    assert not_in_records("Which papers use EEG?", hits) is None


def test_wrong_number_moves_to_the_source_that_says_it():
    s1 = Source(1, paper("a", "We use structured state space models for ECG classification."), [])
    s2 = Source(2, paper("b", "Bowel sounds are segmented with recurrent networks at 0.89 AUC."), [])
    answer = (
        "State space models classify ECG signals [1].\n"
        "- Bowel sounds are segmented with recurrent networks, reaching 0.89 AUC [1]."
    )
    text, moved, unsupported = reattribute(answer, [s1, s2])
    assert moved == [
        {
            "sentence": "- Bowel sounds are segmented with recurrent networks, reaching 0.89 AUC [1].",
            "from": [1],
            "to": 2,
        }
    ]
    assert text == (
        "State space models classify ECG signals [1].\n"
        "- Bowel sounds are segmented with recurrent networks, reaching 0.89 AUC [2]."
    )  # the layout (newline, list dash) is kept
    assert unsupported == []


def test_sentence_no_source_supports_is_marked_not_kept_silently():
    s1 = Source(1, paper("a", "We use structured state space models for ECG classification."), [])
    s2 = Source(2, paper("b", "Bowel sounds are segmented with recurrent networks."), [])
    answer = (
        "State space models are used for ECG [1]. Mammography screening relies on federated hospitals [2]."
    )
    text, moved, unsupported = reattribute(answer, [s1, s2])
    assert moved == []
    assert [u["n"] for u in unsupported] == [2]
    assert text.startswith("State space models are used for ECG [1].")
    assert text.endswith("federated hospitals [2]." + prompts.UNSUPPORTED_MARK)


def test_one_supporting_citation_keeps_the_sentence_as_written():
    s1 = Source(1, paper("a", "We use structured state space models for ECG classification."), [])
    s2 = Source(2, paper("b", "Bowel sounds are segmented with recurrent networks."), [])
    answer = "State space models are used for ECG classification [2][1]."
    assert reattribute(answer, [s1, s2]) == (answer, [], [])


def test_sentence_spans_cover_each_sentence_once():
    text = "One sentence here. Two [1].\n\n- three\nFour?"
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "One sentence here.",
        "Two [1].",
        "- three",
        "Four?",
    ]
