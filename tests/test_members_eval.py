"""eval/members_eval.py: topic-list membership scored against gold papers, no LLM."""

from __future__ import annotations

import json

from eval.members_eval import run, score, selected


def test_score_counts_listed_gold_papers():
    assert score(["a", "b", "c", "d"], {"a", "b", "x", "y"}) == (0.5, 0.5)
    assert score([], {"a"}) == (0.0, 0.0)
    assert score(["a"], set()) == (0.0, 1.0)


def test_follow_ups_refusals_and_other_types_are_skipped(tmp_path):
    path = tmp_path / "q.jsonl"
    rows = [
        {"id": "t1", "type": "topic", "question": "q", "gold": [], "refuse": False, "history": []},
        {"id": "t2", "type": "topic", "question": "q", "gold": [], "refuse": True, "history": []},
        {"id": "t3", "type": "typo", "question": "q", "gold": [], "history": [{"role": "user"}]},
        {"id": "f1", "type": "fact", "question": "q", "gold": []},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert [r["id"] for r in selected(path, {"topic", "typo"})] == ["t1"]


def test_a_topic_list_over_the_seed_index_finds_its_gold_papers(seed_index, tmp_path):
    """Gold written from the records (every abstract naming state space models or Mamba), not
    from the answer; the computed list must recall most of them."""
    from rag.index import PaperIndex

    papers = PaperIndex(seed_index).papers
    gold = [p.paper_id for p in papers if any(w in p.abstract.lower() for w in ("state space", "mamba"))]
    assert len(gold) >= 5
    path = tmp_path / "q.jsonl"
    row = {"id": "s1", "type": "topic", "question": "Which papers use state space models?", "gold": gold}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    result = run(path, {"topic"}, seed_index)
    assert result["questions"] == 1
    assert result["recall"] >= 0.6, result
    assert result["precision"] >= 0.6, result
