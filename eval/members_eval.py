"""Topic-list membership without the LLM: for each topic or typo question of an answer question
set, which papers does the computed answer list (its sources; a table answer's citations), and
how many of them are the gold papers?

    python -m eval.members_eval [--questions eval/questions.jsonl] [--types topic,typo] [-v]

Precision is the share of listed papers that are gold, recall the share of gold papers listed,
each averaged over questions. Follow-ups (they need history) and refusals are skipped. This is
what the membership thresholds (settings.answer.member_sim, facet_word_share) are tuned by, on
eval/questions.jsonl only; eval/heldout.jsonl is the split nobody tuned to.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from rag.answer import Assistant
from rag.answer.records import Answer, AnswerKind
from rag.config import Settings, get_settings

DEFAULT_QUESTIONS = Path(__file__).resolve().parent / "questions.jsonl"


def listed_papers(answer: Answer) -> list[str]:
    """The paper ids an answer puts forward: a table answer's citations, otherwise its sources."""
    if answer.kind == AnswerKind.TABLE:
        return [c.paper.paper_id for c in answer.citations]
    return [s.paper.paper_id for s in answer.sources]


def score(listed: list[str], gold: set[str]) -> tuple[float, float]:
    """(precision, recall) of one question's listed papers against its gold set."""
    hits = len(set(listed) & gold)
    precision = hits / len(set(listed)) if listed else 0.0
    recall = hits / len(gold) if gold else 1.0
    return precision, recall


def selected(path: Path, types: set[str]) -> list[dict]:
    rows = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"{path}:{line_no}: not JSON ({exc.msg})") from exc
        if row.get("type") in types and not row.get("refuse") and not row.get("history"):
            rows.append(row)
    return rows


def run(path: Path, types: set[str], settings: Settings | None = None, verbose: bool = False) -> dict:
    """Mean precision and recall over the selected questions of `path`, printed and returned."""
    assistant = Assistant(settings or get_settings(), generate=False)
    precisions, recalls = [], []
    try:
        for row in selected(path, types):
            answer = assistant.ask(row["question"])
            listed = listed_papers(answer)
            precision, recall = score(listed, set(row["gold"]))
            precisions.append(precision)
            recalls.append(recall)
            if verbose:
                print(
                    f"{row['id']} {row['type']:6} {answer.kind:8} listed={len(listed):2} "
                    f"gold={len(row['gold']):2} P={precision:.2f} R={recall:.2f} {row['question'][:70]}"
                )
    finally:
        assistant.close()
    result = {
        "questions": len(precisions),
        "precision": round(statistics.mean(precisions), 3) if precisions else 0.0,
        "recall": round(statistics.mean(recalls), 3) if recalls else 0.0,
    }
    print(
        f"{path.name}: {result['questions']} questions, precision {result['precision']:.3f}, "
        f"recall {result['recall']:.3f}"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--types", default="topic,typo", help="comma-separated question types")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    run(args.questions, set(args.types.split(",")), verbose=args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
