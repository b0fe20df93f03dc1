"""The evaluation run: retrieval metrics for our hybrid search and two baselines (dense-only,
BM25-only), and, unless retrieval-only, answer metrics for our chain and a plain llama-index
`CitationQueryEngine` on the same model and embeddings. Writes JSON + Markdown reports to a
folder (`rag eval --out`, default ./eval/reports under the current directory) and compares with
the previous report there."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eval import metrics as m
from rag.answer import fallback_rewrite
from rag.config import PROJECT_ROOT, Settings
from rag.index import PaperIndex
from rag.retrieve import Mode, Retriever

QUESTIONS = PROJECT_ROOT / "eval" / "questions.jsonl"
REPORTS = Path("eval") / "reports"  # relative: under the current directory, never the package
KS = (5, 10, 20)
RETRIEVERS: dict[str, tuple[Mode, bool]] = {  # name -> (mode, query analysis)
    "hybrid+analysis (ours)": ("hybrid", True),
    "hybrid": ("hybrid", False),
    "dense only": ("dense", False),
    "bm25 only": ("bm25", False),
}


def load_questions(path: Path = QUESTIONS, only: str | None = None, limit: int | None = None) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_no}: not JSON ({exc.msg})") from exc
            for key in ("id", "type", "question", "gold"):
                if key not in row:
                    raise ValueError(f"{path}:{line_no}: missing field {key!r}")
            rows.append(row)
    if only:
        rows = [r for r in rows if r["type"] == only]
    if limit and limit < len(rows):
        # Round-robin over the types, so a short run still covers every kind of question.
        by_type: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            by_type[r["type"]].append(r)
        picked: list[dict] = []
        while len(picked) < limit:
            for group in by_type.values():
                if group and len(picked) < limit:
                    picked.append(group.pop(0))
        rows = sorted(picked, key=lambda r: r["id"])
    return rows


def check_gold_ids(questions: list[dict], paper_ids: set[str]) -> list[str]:
    """Gold ids that name no paper of the index (should be empty)."""
    return [f"{q['id']}: {pid}" for q in questions for pid in q["gold"] if pid not in paper_ids]


def standalone(q: dict) -> str:
    """Follow-ups are made standalone without a model for the retrieval evaluation."""
    history = [{"role": "user", "content": h} for h in q.get("history", [])]
    return fallback_rewrite(q["question"], history) if history else q["question"]


def evaluate_retrieval(
    retriever: Retriever, questions: list[dict], progress: Callable[[], None] | None = None
) -> dict:
    per_type: dict[str, dict[str, dict[str, list]]] = {}
    rows = []
    latencies: dict[str, list[float]] = defaultdict(list)
    for q in questions:
        if not q["gold"]:
            if progress:
                progress()
            continue
        row = {"id": q["id"], "type": q["type"]}
        for name, (mode, analyse) in RETRIEVERS.items():
            result = retriever.search(standalone(q), k=max(KS), mode=mode, analyse=analyse)
            latencies[name].append(result.seconds)
            ranked = [h.paper.paper_id for h in result.hits]
            scores = {f"recall@{k}": m.recall_at_k(ranked, q["gold"], k) for k in KS}
            scores["mrr"] = m.mrr(ranked, q["gold"])
            scores["ndcg@10"] = m.ndcg_at_k(ranked, q["gold"], 10)
            row[name] = scores
            for key, value in scores.items():
                for bucket in (q["type"], "all"):
                    per_type.setdefault(name, {}).setdefault(bucket, {}).setdefault(key, []).append(value)
        rows.append(row)
        if progress:
            progress()
    summary = {
        name: {
            bucket: {k: m.mean(v) for k, v in vals.items()} | {"n": len(vals["mrr"])}
            for bucket, vals in buckets.items()
        }
        for name, buckets in per_type.items()
    }
    lat = {
        name: {"p50_ms": _ms(m.percentile(v, 50)), "p95_ms": _ms(m.percentile(v, 95))}
        for name, v in latencies.items()
    }
    return {"summary": summary, "latency": lat, "questions": rows}


def evaluate_answers(assistant, questions: list[dict], progress: Callable[[], None] | None = None) -> dict:
    rows = []
    for q in questions:
        history = []
        for h in q.get("history", []):
            history += [{"role": "user", "content": h}, {"role": "assistant", "content": ""}]
        answer = assistant.ask(q["question"], history=history)
        cited = [c.paper.paper_id for c in answer.citations]
        unsupported = len(answer.checks.get("unsupported", []))
        n_cite_sentences = answer.answer.count("[")
        rows.append(
            {
                "id": q["id"],
                "type": q["type"],
                "refuse": q.get("refuse", False),
                "refused": answer.refused,
                "kind": answer.kind,
                "cited": cited,
                "gold": q["gold"],
                "citation_recall": m.citation_recall(cited, q["gold"]),
                "citation_precision": m.citation_precision(cited, q["gold"]),
                "fact_accuracy": m.fact_accuracy(answer.answer, q.get("facts", [])),
                "supported": None if not n_cite_sentences else max(0.0, 1 - unsupported / n_cite_sentences),
                "invalid_citations_removed": answer.checks.get("invalid_citations_removed", 0),
                "citations_moved": answer.checks.get("citations_moved", 0),
                "first_token_s": answer.timings.get("first_token_s"),
                "total_s": answer.timings.get("total_s"),
                "answer": answer.answer,
            }
        )
        if progress:
            progress()
    return {"summary": summarise_answers(rows), "questions": rows}


def summarise_answers(rows: list[dict]) -> dict:
    answerable = [r for r in rows if not r["refuse"]]
    unanswerable = [r for r in rows if r["refuse"]]
    return {
        "n": len(rows),
        "citation_recall": m.mean(r["citation_recall"] for r in answerable),
        "citation_precision": m.mean(r["citation_precision"] for r in answerable),
        "uncited_answers": sum(1 for r in answerable if not r["cited"] and not r["refused"])
        / max(1, len(answerable)),
        "fact_accuracy": m.mean(r["fact_accuracy"] for r in answerable),
        "refusal_accuracy": m.mean(float(r["refused"]) for r in unanswerable),
        "false_refusal_rate": m.mean(float(r["refused"]) for r in answerable),
        "supported": m.mean(r.get("supported") for r in answerable),
        "invalid_citations_removed": sum(r.get("invalid_citations_removed", 0) for r in rows),
        "citations_moved": sum(r.get("citations_moved", 0) for r in rows),
        "first_token_p50_s": m.percentile((r["first_token_s"] for r in rows), 50),
        "first_token_p95_s": m.percentile((r["first_token_s"] for r in rows), 95),
        "total_p50_s": m.percentile((r["total_s"] for r in rows), 50),
        "total_p95_s": m.percentile((r["total_s"] for r in rows), 95),
    }


def evaluate_citation_query_engine(
    index: PaperIndex, llm_endpoint, questions: list[dict], progress: Callable[[], None] | None = None
) -> dict:
    """Baseline: llama-index's CitationQueryEngine with default settings, same model and embeddings."""
    import re

    from llama_index.core import Settings as LlamaSettings
    from llama_index.core import VectorStoreIndex
    from llama_index.core.query_engine import CitationQueryEngine

    from rag.embed import get_embed_model
    from rag.llm import llama_index_llm

    LlamaSettings.embed_model = get_embed_model(index.embed_path, index.settings.embed_batch_size)
    LlamaSettings.llm = llama_index_llm(
        llm_endpoint.base_url, llm_endpoint.model, llm_endpoint.api_key, index.settings
    )
    engine = CitationQueryEngine.from_args(VectorStoreIndex.from_vector_store(index.store))
    rows = []
    for q in questions:
        start = time.perf_counter()
        try:
            response = engine.query(standalone(q))
            text = str(response)
            nodes = response.source_nodes
        except Exception as exc:  # a baseline failure is a data point, not a crash
            text, nodes = f"error: {exc}", []
        total = time.perf_counter() - start
        # Its prompt asks for [n]; small models often write "Source n" instead: count both.
        cited_n = {int(n) for n in re.findall(r"\[(\d+)\]|\bSource (\d+)\b", text) for n in n if n}
        cited_ids = (nodes[n - 1].node.metadata.get("paper_id") for n in cited_n if 1 <= n <= len(nodes))
        cited: list[str] = [pid for pid in dict.fromkeys(cited_ids) if pid]
        refused = bool(
            re.search(
                r"\b(not|no|cannot|don't|does not)\b.{0,40}\b(information|mention|provide|context)\b",
                text,
                re.I,
            )
        )
        rows.append(
            {
                "id": q["id"],
                "type": q["type"],
                "refuse": q.get("refuse", False),
                "refused": refused,
                "cited": cited,
                "gold": q["gold"],
                "citation_recall": m.citation_recall(cited, q["gold"]),
                "citation_precision": m.citation_precision(cited, q["gold"]),
                "fact_accuracy": m.fact_accuracy(text, q.get("facts", [])),
                "supported": None,
                "first_token_s": None,
                "total_s": total,
                "answer": text,
            }
        )
        if progress:
            progress()
    return {"summary": summarise_answers(rows), "questions": rows}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1000 * seconds


def previous_report(
    before: str, question_ids: list[str], retrieval_only: bool, reports: Path = REPORTS
) -> dict | None:
    """The newest earlier report on the same questions (and, for answers, with answers)."""
    for path in sorted((p for p in reports.glob("*.json") if p.stem < before), reverse=True):
        try:
            report = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if report.get("question_ids") == question_ids and (retrieval_only or report.get("answers")):
            return report
    return None


def compare(current: dict, previous: dict | None, tolerance: float = 0.02) -> list[str]:
    """Lines naming each headline number that moved, with REGRESSION where it got worse."""
    if not previous:
        return ["(no previous report)"]
    lines = []
    ours = "hybrid+analysis (ours)"
    for key in ("recall@5", "recall@10", "recall@20", "mrr", "ndcg@10"):
        now = current["retrieval"]["summary"].get(ours, {}).get("all", {}).get(key)
        then = previous.get("retrieval", {}).get("summary", {}).get(ours, {}).get("all", {}).get(key)
        if now is not None and then is not None and abs(now - then) > 1e-9:
            flag = " **REGRESSION**" if now < then - tolerance else ""
            lines.append(f"retrieval {key}: {then:.3f} → {now:.3f}{flag}")
    for key in ("citation_recall", "citation_precision", "fact_accuracy", "refusal_accuracy"):
        now = (current.get("answers") or {}).get("ours", {}).get("summary", {}).get(key)
        then = (previous.get("answers") or {}).get("ours", {}).get("summary", {}).get(key)
        if now is not None and then is not None and abs(now - then) > 1e-9:
            flag = " **REGRESSION**" if now < then - tolerance else ""
            lines.append(f"answers {key}: {then:.3f} → {now:.3f}{flag}")
    for key in ("false_refusal_rate",):
        now = (current.get("answers") or {}).get("ours", {}).get("summary", {}).get(key)
        then = (previous.get("answers") or {}).get("ours", {}).get("summary", {}).get(key)
        if now is not None and then is not None and abs(now - then) > 1e-9:
            flag = " **REGRESSION**" if now > then + tolerance else ""
            lines.append(f"answers {key}: {then:.3f} → {now:.3f}{flag}")
    return lines or ["no change in the headline numbers"]


def _f(v) -> str:
    return "–" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def markdown(report: dict) -> str:
    out = [
        f"# Evaluation {report['run']}",
        "",
        f"{report['n_questions']} questions ({report['questions_file']}); "
        f"model: {report.get('model') or 'retrieval only'}",
        "",
        "## Retrieval (recall@k, MRR, nDCG@10)",
        "",
    ]
    summary = report["retrieval"]["summary"]
    types = sorted({t for s in summary.values() for t in s})
    out.append("| retriever | type | n | R@5 | R@10 | R@20 | MRR | nDCG@10 |")
    out.append("|---|---|---|---|---|---|---|---|")
    for name, buckets in summary.items():
        for t in ["all"] + [t for t in types if t != "all"]:
            if t in buckets:
                b = buckets[t]
                out.append(
                    f"| {name} | {t} | {b['n']} | {_f(b['recall@5'])} | {_f(b['recall@10'])} "
                    f"| {_f(b['recall@20'])} "
                    f"| {_f(b['mrr'])} | {_f(b['ndcg@10'])} |"
                )
    out += [
        "",
        "Search latency: "
        + ", ".join(
            f"{k} p50 {v['p50_ms']:.0f} ms / p95 {v['p95_ms']:.0f} ms"
            for k, v in report["retrieval"]["latency"].items()
        ),
        "",
    ]
    if report.get("answers"):
        out += [
            "## Answers",
            "",
            "| system | cit. recall | cit. precision | uncited | facts | refusal acc. | false refusals "
            "| supported | first token p50/p95 s | total p50/p95 s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, res in report["answers"].items():
            s = res["summary"]
            out.append(
                f"| {name} | {_f(s['citation_recall'])} | {_f(s['citation_precision'])} "
                f"| {_f(s['uncited_answers'])} "
                f"| {_f(s['fact_accuracy'])} | {_f(s['refusal_accuracy'])} | {_f(s['false_refusal_rate'])} "
                f"| {_f(s['supported'])} | {_f(s['first_token_p50_s'])}/{_f(s['first_token_p95_s'])} "
                f"| {_f(s['total_p50_s'])}/{_f(s['total_p95_s'])} |"
            )
        out.append("")
    out += ["## Compared with the previous report", ""] + [f"- {line}" for line in report["comparison"]]
    return "\n".join(out) + "\n"


def run_eval(
    settings: Settings,
    questions_file: Path = QUESTIONS,
    only: str | None = None,
    retrieval_only: bool = False,
    limit: int | None = None,
    baselines: bool = True,
    progress: Callable[[str, int], Callable[[], None]] | None = None,
    write: bool = True,
    out_dir: Path | None = None,
) -> dict:
    """Run the evaluation; with `write`, save the report as JSON + Markdown in `out_dir`
    (default ./eval/reports) and list the files in report["paths"]."""
    reports = Path(out_dir) if out_dir is not None else REPORTS.resolve()
    index = PaperIndex(settings)
    questions = load_questions(questions_file, only, limit)
    missing = check_gold_ids(questions, set(index.by_id))
    if missing:
        raise ValueError("gold ids not in the index: " + ", ".join(missing[:10]))
    retriever = Retriever(index)
    run = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    tick = progress("retrieval", len(questions)) if progress else None
    report: dict[str, Any] = {
        "run": run,
        "questions_file": str(questions_file),
        "n_questions": len(questions),
        "only": only,
        "question_ids": [q["id"] for q in questions],
        "retrieval": evaluate_retrieval(retriever, questions, tick),
        "answers": None,
        "model": None,
    }
    if not retrieval_only:
        from rag.answer import Assistant

        assistant = Assistant(settings, index=index)
        try:
            tick = progress("answers", len(questions)) if progress else None
            report["answers"] = {"ours": evaluate_answers(assistant, questions, tick)}
            report["model"] = assistant.llm.model_name
            if baselines:
                tick = progress("CitationQueryEngine baseline", len(questions)) if progress else None
                report["answers"]["llama-index CitationQueryEngine"] = evaluate_citation_query_engine(
                    index, assistant.llm.endpoint(), questions, tick
                )
        finally:
            assistant.close()
    report["comparison"] = compare(
        report, previous_report(run, report["question_ids"], retrieval_only, reports)
    )
    if write:
        reports.mkdir(parents=True, exist_ok=True)
        suffix = "-retrieval" if retrieval_only else ""
        paths = [reports / f"{run}{suffix}.json", reports / f"{run}{suffix}.md"]
        paths[0].write_text(json.dumps(report, indent=1, ensure_ascii=False))
        paths[1].write_text(markdown(report))
        report["paths"] = [str(p) for p in paths]
    return report
