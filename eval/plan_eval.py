"""The plan test set: is each question understood right (its `QueryPlan`), and is the answer
right (the papers listed or counted, the number, the field; for questions answered from
abstracts, the gold papers among the sources)?

    python -m eval.plan_eval [--split dev|heldout|heldout2|heldout3|all] [--answers] [--llm-fallback] [-v]

`--llm-fallback` lets the configured LLM (the embedded llama.cpp server with the packaged
Qwen2.5-Coder-1.5B unless OPENAI_BASE_URL is set) fill the plans no rule places
(rag/query/fallback.py) and prints how often it was asked and how long it took.

Questions live in eval/plan/{dev,heldout,heldout2}.jsonl; the format is eval/plan/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from rag.corpus.names import fold, name_matches
from rag.query import lexicon as lx
from rag.query.plan import Intent, QueryPlan

PLAN_DIR = Path(__file__).resolve().parent / "plan"
SPLITS = sorted(p.stem for p in PLAN_DIR.glob("*.jsonl"))  # dev first: "dev" < "heldout*"


def load(split: str) -> list[dict]:
    path = PLAN_DIR / f"{split}.jsonl"
    rows = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{line_no}: not JSON ({exc.msg})") from exc
    return rows


def _names_match(got: list[str], want: list[str]) -> bool:
    return len(got) == len(want) and all(
        any(name_matches(g, w) or name_matches(w, g) for g in got) for w in want
    )


def _topic_has(topic: str, words: list[str]) -> bool:
    have = {lx.singular(t.norm) for t in lx.tokenize(topic)} | {t.norm for t in lx.tokenize(topic)}
    folded = fold(topic)
    return all(lx.singular(fold(w)) in have or fold(w) in folded for w in words)


def plan_errors(plan: QueryPlan, want: dict) -> list[str]:
    """What in the plan differs from the expected keys (only the keys given are checked)."""
    errors = []
    f = plan.filters
    side_authors = [a for s in plan.sides for a in s.filters.authors]
    side_listings = [x for s in plan.sides for x in s.filters.listings]
    if "intent" in want and str(plan.intent) != want["intent"]:
        errors.append(f"intent {plan.intent} != {want['intent']}")
    if "authors" in want and not _names_match(f.authors or side_authors, want["authors"]):
        errors.append(f"authors {f.authors or side_authors} != {want['authors']}")
    if "listings" in want and set(f.listings or side_listings) != set(want["listings"]):
        errors.append(f"listings {f.listings or side_listings} != {want['listings']}")
    for key in ("year_from", "year_to", "has_code"):
        if key in want and getattr(f, key) != want[key]:
            errors.append(f"{key} {getattr(f, key)} != {want[key]}")
    if "categories" in want and [c.upper() for c in f.categories] != [c.upper() for c in want["categories"]]:
        errors.append(f"categories {f.categories} != {want['categories']}")
    if "k" in want and (plan.k or 1) != want["k"]:
        errors.append(f"k {plan.k} != {want['k']}")
    if "field" in want and plan.field != want["field"]:
        errors.append(f"field {plan.field} != {want['field']}")
    if "paper" in want and plan.paper_id != want["paper"]:
        errors.append(f"paper {plan.paper_id} != {want['paper']}")
    if "topic" in want and not _topic_has(plan.topic or " ".join(s.topic for s in plan.sides), want["topic"]):
        errors.append(f"topic {plan.topic!r} lacks {want['topic']}")
    if want.get("no_topic") and plan.topic:
        errors.append(f"topic {plan.topic!r} should be empty")
    if "unheld" in want and bool(plan.unheld) != want["unheld"]:
        errors.append(f"unheld {plan.unheld} != {want['unheld']}")
    if "sides" in want:
        errors += _side_errors(plan, want["sides"])
    return errors


def _side_errors(plan: QueryPlan, sides: list[dict]) -> list[str]:
    errors = []
    if len(plan.sides) < len(sides):
        return [f"{len(plan.sides)} sides != {len(sides)}"]
    for want in sides:
        ok = any(
            (not want.get("authors") or _names_match(s.filters.authors, want["authors"]))
            and (not want.get("listings") or set(s.filters.listings) == set(want["listings"]))
            and (not want.get("topic") or _topic_has(s.topic, want["topic"]))
            for s in plan.sides
        )
        if not ok:
            errors.append(f"no side like {want}")
    return errors


def answer_errors(answer, want: dict) -> list[str]:
    """What in an `Answer` differs from the expected answer keys."""
    errors = []
    listed = [s.paper.paper_id for s in answer.sources]
    cited = [s.paper.paper_id for s in answer.citations] or listed
    text = answer.answer
    if answer.kind == "sources":  # generation off: what the answer step was given
        text = " ".join(f"{s.paper.label} {' '.join(s.evidence)}" for s in answer.sources)
    if want.get("refuse") and not answer.refused:
        errors.append("answered instead of refusing")
    if not want.get("refuse") and answer.refused:
        errors.append("refused")
    if "ids" in want and set(answer.checks.get("ids", cited)) != set(want["ids"]):
        got = set(answer.checks.get("ids", cited))
        errors.append(f"ids: {len(got - set(want['ids']))} extra, {len(set(want['ids']) - got)} missing")
    if "ordered_ids" in want and cited[: len(want["ordered_ids"])] != want["ordered_ids"]:
        errors.append(f"order {cited[:5]} != {want['ordered_ids']}")
    if "number" in want and answer.checks.get("number") != want["number"]:
        errors.append(f"number {answer.checks.get('number')} != {want['number']}")
    for key in ("by_year", "by_listing"):
        if key in want and answer.checks.get(key) != {str(k): v for k, v in want[key].items()}:
            errors.append(f"{key} {answer.checks.get(key)} != {want[key]}")
    if "top" in want and [fold(n) for n in answer.checks.get("top", [])][: len(want["top"])] != [
        fold(n) for n in want["top"]
    ]:
        errors.append(f"top {answer.checks.get('top')} != {want['top']}")
    if "value" in want and fold(str(want["value"])) not in fold(text):
        errors.append(f"value {want['value']!r} not in the answer")
    if "relevant" in want:
        missing = set(want["relevant"]) - set(listed)
        if missing:
            errors.append(f"relevant: {len(missing)} of {len(want['relevant'])} not among the sources")
    return errors


def run(split: str, answers: bool, verbose: bool, llm_fallback: bool = False) -> dict:
    from rag.answer import Assistant
    from rag.config import get_settings
    from rag.query.fallback import PlanFallback, openai_plan_llm

    settings = get_settings()
    assistant = Assistant(settings, generate=False)
    fallback = None
    if llm_fallback:
        fallback = PlanFallback(
            openai_plan_llm(assistant.llm, settings.query), settings.query.llm_fallback_timeout_s
        )
        assistant.analyser.fallback = fallback  # the chain's analyser: answers read the same plans
        started = time.monotonic()
        assistant.llm.client()  # start the embedded server now: its loading is not a call's latency
        print(f"  LLM {assistant.llm.model_name} ready in {time.monotonic() - started:.1f}s")
    rows = load(split)
    per_intent: dict[str, Counter] = defaultdict(Counter)
    failures = []
    for row in rows:
        plan = assistant.analyser.analyse(row["question"])
        errors = plan_errors(plan, row.get("plan", {}))
        a_errors = answer_errors(assistant.ask(row["question"]), row.get("answer", {})) if answers else []
        intent = row.get("plan", {}).get("intent", "unheld")
        per_intent[intent]["n"] += 1
        per_intent[intent]["plan"] += not errors
        per_intent[intent]["answer"] += not a_errors
        if errors or a_errors:
            failures.append((row["id"], row["question"], plan.summary(), errors + a_errors))
    n = len(rows)
    plan_ok = sum(c["plan"] for c in per_intent.values())
    answer_ok = sum(c["answer"] for c in per_intent.values())
    print(
        f"{split}: {n} questions · plan right {plan_ok}/{n} ({plan_ok / n:.0%})"
        + (f" · answer right {answer_ok}/{n} ({answer_ok / n:.0%})" if answers else "")
    )
    for intent, c in sorted(per_intent.items()):
        print(
            f"  {intent:12s} {c['plan']:3d}/{c['n']:<3d}"
            + (f"  answer {c['answer']:3d}/{c['n']}" if answers else "")
        )
    result: dict = {"split": split, "n": n, "plan_right": plan_ok, "answer_right": answer_ok}
    if fallback is not None:
        latency = fallback.latency()
        outcomes = Counter(c.outcome.split(":")[0] for c in fallback.calls)
        print(
            f"  LLM fallback: {latency['calls']} questions asked · "
            + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
            + f" · p50 {latency['p50_s']:.2f}s, max {latency['max_s']:.2f}s per call"
        )
        if verbose:
            for call in fallback.calls:
                print(f"    {call.seconds:5.2f}s {call.outcome:.90s} · {call.question}")
                print(f"      {call.reply:.240s}")
        result["fallback"] = {**latency, "outcomes": dict(outcomes)}
        assistant.close()
    if verbose:
        for qid, question, summary, errors in failures:
            print(f"\n{qid} {question}\n   understood as: {summary}\n   " + "\n   ".join(errors))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=[*SPLITS, "all"], default="dev")
    parser.add_argument(
        "--answers", action="store_true", help="also check the answers (table answers and sources)"
    )
    parser.add_argument(
        "--llm-fallback",
        action="store_true",
        help="let the configured LLM fill the plans no rule places (rag/query/fallback.py)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    for split in SPLITS if args.split == "all" else [args.split]:
        run(split, args.answers, args.verbose, args.llm_fallback)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Intent", "plan_errors", "answer_errors", "run"]
