"""The plan test set (eval/plan/): every split is found, well-formed, and names only papers the
seed corpus holds, so a gold answer can be right at all."""

from __future__ import annotations

from eval.plan_eval import SPLITS, load
from rag.index import PaperIndex


def _paper_ids(row: dict) -> set[str]:
    answer, plan = row.get("answer", {}), row.get("plan", {})
    ids = set(answer.get("ids", [])) | set(answer.get("ordered_ids", [])) | set(answer.get("relevant", []))
    return ids | ({plan["paper"]} if "paper" in plan else set())


def test_every_split_is_found_and_its_ids_are_unique():
    assert {"dev", "heldout"} <= set(SPLITS) and SPLITS[0] == "dev"
    for split in SPLITS:
        rows = load(split)
        assert len(rows) >= 60 and len({r["id"] for r in rows}) == len(rows), split
        plans = [r.get("plan", {}) for r in rows]
        assert all(r["question"].strip() for r in rows) and all("intent" in p or "unheld" in p for p in plans)


def test_gold_papers_exist_in_the_seed_corpus(seed_index):
    known = {p.paper_id for p in PaperIndex(seed_index).papers}
    for split in SPLITS:
        missing = {(r["id"], pid) for r in load(split) for pid in _paper_ids(r) if pid not in known}
        assert not missing, (split, sorted(missing)[:5])
