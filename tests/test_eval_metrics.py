"""Every metric on small hand-made cases, including the edge cases."""

from __future__ import annotations

import math

import pytest

from eval import metrics as m
from eval.run import compare, load_questions


def test_recall_mrr_ndcg():
    ranked = ["a", "x", "b", "y"]
    assert m.recall_at_k(ranked, ["a", "b"], 1) == 0.5
    assert m.recall_at_k(ranked, ["a", "b"], 3) == 1.0
    assert m.mrr(ranked, ["b"]) == pytest.approx(1 / 3)
    assert m.mrr(ranked, ["z"]) == 0.0
    ideal = 1 + 1 / math.log2(3)
    assert m.ndcg_at_k(ranked, ["a", "b"], 10) == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    assert m.ndcg_at_k(["a", "b"], ["a", "b"], 10) == pytest.approx(1.0)


def test_no_gold_gives_none():
    assert (
        m.recall_at_k(["a"], [], 5) is None
        and m.mrr(["a"], []) is None
        and m.ndcg_at_k(["a"], [], 10) is None
    )
    assert m.citation_recall(["a"], []) is None and m.citation_precision(["a"], []) is None


def test_duplicates_count_once():
    assert m.recall_at_k(["a", "a", "a", "b"], ["a", "b"], 2) == 1.0  # duplicates do not use up k
    assert m.citation_precision(["a", "a", "x"], ["a"]) == 0.5
    assert m.citation_recall(["a", "a"], ["a", "b"]) == 0.5


def test_nothing_cited():
    assert m.citation_precision([], ["a"]) is None
    assert m.citation_recall([], ["a", "b"]) == 0.0


def test_fact_accuracy_normalises_numbers_and_case():
    assert m.fact_accuracy("A dataset of 193311 radiographs and S4 models", ["193,311", "s4"]) == 1.0
    assert m.fact_accuracy("nothing here", ["SSSD", "S4"]) == 0.0
    assert m.fact_accuracy("whatever", []) is None


def test_mean_and_percentile():
    assert m.mean([1.0, None, 3.0]) == 2.0 and m.mean([None]) is None
    assert (
        m.percentile([1, 2, 3, 4], 50) == 2
        and m.percentile([1, 2, 3, 4], 95) == 4
        and m.percentile([], 50) is None
    )


def test_comparison_flags_regressions():
    def rep(r10):
        return {
            "retrieval": {"summary": {"hybrid+analysis (ours)": {"all": {"recall@10": r10}}}},
            "answers": None,
        }

    assert any("REGRESSION" in line for line in compare(rep(0.80), rep(0.90)))
    assert not any("REGRESSION" in line for line in compare(rep(0.91), rep(0.90)))
    assert compare(rep(0.9), None) == ["(no previous report)"]


def test_question_file_errors_name_the_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "type": "topic", "question": "x", "gold": []}\n{broken\n')
    with pytest.raises(ValueError, match=r"q.jsonl:2"):
        load_questions(path)


def test_stratified_limit_covers_types():
    rows = load_questions(limit=9)
    assert len(rows) == 9 and len({r["type"] for r in rows}) == 9
