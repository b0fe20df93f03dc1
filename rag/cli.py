"""The `rag` command line: ingest, papers, search (and, from later modules, ask/chat/ui/eval)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import json
import re
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from rag.config import Settings, get_settings

app = typer.Typer(
    help="Ask questions about researchers' papers, with citations you can check.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True, soft_wrap=True)  # never break a path inside an error message


class State:
    settings: Settings


state = State()


@app.callback()
def main(
    data_dir: Path | None = typer.Option(None, help="Where the index lives [env RAG_DATA_DIR]."),
    chroma_mode: str | None = typer.Option(
        None, help="persistent (embedded) or http (a `chroma run` server)."
    ),
    chroma_host: str | None = typer.Option(None),
    chroma_port: int | None = typer.Option(None),
) -> None:
    state.settings = get_settings(
        data_dir=data_dir, chroma_mode=chroma_mode, chroma_host=chroma_host, chroma_port=chroma_port
    )


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


# --- shared filter options ------------------------------------------------------------------

ListingOpt = typer.Option(None, "--listing", "-l", help="Listing file name or owner (repeatable).")
AuthorOpt = typer.Option(None, "--author", "-a", help="Author name, e.g. Strodthoff (repeatable).")
YearOpt = typer.Option(None, "--year", "-y", help="A year (2023) or a range (2021-2023, 2022-).")
CategoryOpt = typer.Option(None, "--category", "-c", help="arXiv-style category, e.g. CV (repeatable).")
CodeOpt = typer.Option(None, "--code/--no-code", help="Only papers with / without the Code badge.")


def build_filters(listing, author, year, category, code):
    from rag.retrieve import Filters

    year_from = year_to = None
    if year:
        m = re.fullmatch(r"\s*(\d{4})?\s*(-)?\s*(\d{4})?\s*", year)
        if not m or not (m.group(1) or m.group(3)):
            fail(f"--year {year!r}: expected YEAR, FROM-TO, FROM- or -TO")
        year_from = int(m.group(1)) if m.group(1) else None
        year_to = int(m.group(3)) if m.group(3) else (year_from if not m.group(2) else None)
    return Filters(
        listings=list(listing or []),
        authors=list(author or []),
        year_from=year_from,
        year_to=year_to,
        categories=list(category or []),
        has_code=code,
    )


def read_batch(batch: Path) -> list[str]:
    """The lines of a batch file, or of stdin for '-'."""
    try:
        return (sys.stdin if str(batch) == "-" else batch.open(encoding="utf-8")).read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{batch}: {exc}")


def load_index():
    from rag.index import IndexMissingError, PaperIndex

    try:
        return PaperIndex(state.settings)
    except IndexMissingError as exc:
        fail(str(exc))


# --- ingest ---------------------------------------------------------------------------------


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(None, help="Listing files or folders (default: the seeds)."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild from scratch."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show every skipped line."),
) -> None:
    """Parse the listings and bring the index up to date (incremental, atomic)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from rag.corpus import CorpusError
    from rag.index import IndexMissingError, IngestError
    from rag.index import ingest as run_ingest

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err, transient=True
    ) as bar:
        task = bar.add_task("parsing", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        try:
            summary = run_ingest(state.settings, paths or None, rebuild=rebuild, progress=progress)
        except (CorpusError, IngestError, IndexMissingError) as exc:
            fail(f"{exc}\nThe previous index (if any) is unchanged.")
        except KeyboardInterrupt:
            fail("interrupted; the previous index (if any) is unchanged.", 130)

    table = Table(title=f"Ingest: {summary.status} in {summary.seconds:.1f}s")
    for col in ("file", "status", "layout", "owner", "records", "skipped lines"):
        table.add_column(col)
    for f in summary.files:
        table.add_row(f.listing, f.status, f.layout, f.owner or "", str(f.records), str(f.skipped))
    console.print(table)
    console.print(
        f"{summary.papers} papers, {summary.chunks} chunks "
        f"({summary.embedded} embedded, {summary.reused} reused); generation {summary.generation}"
    )
    for f in summary.files:
        for warning in f.warnings:
            label = "[red]error:[/]" if f.status == "error" else "[yellow]warning:[/]"
            err.print(f"{label} {warning}")
        if verbose and f.skipped_lines:
            err.print(f"[bold]{f.listing}[/] skipped lines:")
            for line_no, reason, text in f.skipped_lines:
                err.print(f"  {line_no:>5} [{reason}] {text[:100]}")


# --- papers and search ----------------------------------------------------------------------


def paper_table(rows, title: str, score: bool = False) -> Table:
    table = Table(title=title, show_lines=False)
    if score:
        table.add_column("#", justify="right")
    for col in ("paper", "authors", "date", "cat", "code", "listing", "id"):
        table.add_column(col, overflow="fold")
    for i, row in enumerate(rows, start=1):
        p = row.paper if score else row
        authors = p.author_names(3)
        if not p.authors and p.n_authors:
            authors = f"({p.n_authors} authors)"
        cells = [
            p.label,
            authors,
            p.date or "",
            p.category or "",
            "✓" if p.has_code else "",
            p.owner or "",
            p.paper_id,
        ]
        table.add_row(*(([str(i)] if score else []) + cells))
    return table


@app.command()
def papers(
    listing: list[str] = ListingOpt,
    author: list[str] = AuthorOpt,
    year: str = YearOpt,
    category: list[str] = CategoryOpt,
    code: bool | None = CodeOpt,
    as_json: bool = typer.Option(False, "--json", help="A JSON array of papers."),
) -> None:
    """List the papers of the index, optionally filtered."""
    index = load_index()
    rows = build_filters(listing, author, year, category, code).apply(index.papers)
    if as_json:
        print(json.dumps([p.to_json() for p in rows], ensure_ascii=False, indent=1))
    else:
        console.print(paper_table(rows, f"{len(rows)} papers"))


@app.command()
def search(
    query: str | None = typer.Argument(None),
    k: int = typer.Option(10, "-k"),
    listing: list[str] = ListingOpt,
    author: list[str] = AuthorOpt,
    year: str = YearOpt,
    category: list[str] = CategoryOpt,
    code: bool | None = CodeOpt,
    mode: str = typer.Option("hybrid", help="hybrid, dense or bm25."),
    no_analysis: bool = typer.Option(
        False, "--no-analysis", help="Do not turn names/years in the query into filters."
    ),
    batch: Path | None = typer.Option(
        None, "--batch", help="A file with one query per line ('-' for stdin)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Hybrid (dense + BM25) search, one hit per paper."""
    from rag.index import IndexMissingError
    from rag.retrieve import Retriever

    if mode not in ("hybrid", "dense", "bm25"):
        fail(f"--mode {mode!r}: expected hybrid, dense or bm25")
    if batch is None and not (query and query.strip()):
        fail("give a QUERY or --batch FILE")
    filters = build_filters(listing, author, year, category, code)
    retriever = Retriever(load_index())
    if batch is not None:
        for line in read_batch(batch):
            hits = (
                retriever.search(line, k=k, filters=filters, analyse=not no_analysis, mode=mode).hits
                if line.strip()
                else []
            )
            print(json.dumps([h.to_json() for h in hits], ensure_ascii=False), flush=True)
        return
    try:
        result = retriever.search(query, k=k, filters=filters, analyse=not no_analysis, mode=mode)
    except IndexMissingError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps([h.to_json() for h in result.hits], ensure_ascii=False, indent=1))
        return
    title = f"{len(result.hits)} papers for {query!r} ({result.seconds * 1000:.0f} ms)"
    if not result.filters.is_empty():
        title += f"\nfilters: {result.filters.describe()}"
    if result.plan is not None:
        title += f"\nunderstood as: {result.plan.summary()}"
    console.print(paper_table(result.hits, title, score=True))


@app.command()
def plan(
    question: str = typer.Argument(..., help="A question, as you would ask it."),
    as_json: bool = typer.Option(False, "--json", help="The whole QueryPlan as JSON."),
) -> None:
    """How a question is understood: its intent, filters, topic and what was recognised."""
    from rag.retrieve import Retriever

    if not question.strip():
        fail("give a QUESTION")
    result = Retriever(load_index()).analyser.analyse(question)
    if as_json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=1))
        return
    console.print(f"understood as: {result.summary()}", markup=False, highlight=False)
    for note in result.notes:
        console.print(f"  {note}", markup=False, highlight=False)


# --- answers -------------------------------------------------------------------------------


def make_assistant():
    from rag.answer import Assistant

    return Assistant(state.settings, index=load_index())


def print_sources(answer) -> None:
    if not answer.sources:
        return
    cited = {s.n for s in answer.citations}
    table = Table(title="Sources" + (" (nearest papers; none cited)" if answer.refused else ""))
    for col in ("n", "paper", "date", "listing", "cited"):
        table.add_column(col, overflow="fold")
    for s in answer.sources:
        table.add_row(
            str(s.n), s.paper.label, s.paper.date or "", s.paper.owner or "", "✓" if s.n in cited else ""
        )
    console.print(table)


def run_answer(assistant, question: str, history: list[dict], filters, as_json: bool):
    """Stream one answer to the terminal (or return it quietly for --json)."""
    answer = None
    streamed = False
    for event in assistant.stream(question, history, filters):
        if event.kind == "plan" and not as_json:
            err.print(f"[dim]understood as: {event.data.summary()}[/]", markup=True, highlight=False)
        elif event.kind == "token" and not as_json:
            console.print(event.data, end="", markup=False, highlight=False, soft_wrap=True)
            streamed = True
        elif event.kind == "error" and not as_json:
            err.print(f"\n[bold red]error:[/] {event.data}")
        elif event.kind == "done":
            answer = event.data
    if not as_json:
        if streamed:
            console.print()
        checks = answer.checks
        if checks.get("invalid_citations_removed"):
            err.print(
                f"[yellow]{checks['invalid_citations_removed']} citation(s) to sources that were not given "
                "were removed.[/]"
            )
        for flag in checks.get("unsupported", []):
            err.print(f"[yellow]weakly supported by [{flag['n']}]:[/] {flag['sentence'][:120]}")
        print_sources(answer)
    return answer


@app.command()
def ask(
    question: str | None = typer.Argument(None),
    listing: list[str] = ListingOpt,
    author: list[str] = AuthorOpt,
    year: str = YearOpt,
    category: list[str] = CategoryOpt,
    code: bool | None = CodeOpt,
    batch: Path | None = typer.Option(None, "--batch", help="One question per line ('-' for stdin)."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON (README: answer JSON)."),
) -> None:
    """Answer a question with citations to the papers (streams, then a sources table)."""
    from rag.index import IndexMissingError
    from rag.llm import LLMUnavailable

    if batch is None and question is None:
        fail("give a QUESTION or --batch FILE")
    filters = build_filters(listing, author, year, category, code)
    assistant = make_assistant()
    try:
        if batch is not None:
            for line in read_batch(batch):
                answer = run_answer(assistant, line, [], filters, True)
                print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)
            return
        answer = run_answer(assistant, question, [], filters, as_json)
        if as_json:
            print(json.dumps(answer.to_json(), ensure_ascii=False, indent=1))
        if answer.kind == "error":
            raise typer.Exit(1)
    except (LLMUnavailable, IndexMissingError) as exc:
        fail(str(exc))
    finally:
        assistant.close()


@app.command()
def chat(
    listing: list[str] = ListingOpt,
    author: list[str] = AuthorOpt,
    year: str = YearOpt,
    category: list[str] = CategoryOpt,
    code: bool | None = CodeOpt,
) -> None:
    """A conversation in the terminal; follow-ups use the history. Empty line or Ctrl-D ends it."""
    filters = build_filters(listing, author, year, category, code)
    assistant = make_assistant()
    history: list[dict] = []
    console.print(
        "[dim]Ask about the papers. Follow-ups like 'and which of those are from 2023?' work. "
        "An empty line ends the chat.[/]"
    )
    try:
        while True:
            try:
                question = console.input("[bold cyan]you>[/] ")
            except (EOFError, KeyboardInterrupt):
                break
            if not question.strip():
                break
            answer = run_answer(assistant, question, history, filters, False)
            history += [
                {"role": "user", "content": question, "standalone": answer.standalone_question},
                {"role": "assistant", "content": answer.answer},
            ]
    finally:
        assistant.close()


@app.command()
def ui(
    host: str | None = typer.Option(None, help="Bind address [env RAG_UI_HOST; default 127.0.0.1]."),
    port: int | None = typer.Option(None, help="Port [env RAG_UI_PORT; default 7860]."),
) -> None:
    """Start the chat UI: builds the index if missing, starts the local LLM if no endpoint is set."""
    from ui.app import main as ui_main

    ui_main(state.settings, host=host, port=port)


@app.command("eval")
def eval_cmd(
    questions: Path | None = typer.Option(None, "--questions", help="A questions JSONL file."),
    only: str | None = typer.Option(None, "--only", help="Only questions of this type (topic, person, ...)."),
    retrieval_only: bool = typer.Option(False, "--retrieval-only", help="Skip answers (fast; no LLM)."),
    limit: int | None = typer.Option(None, "--limit", help="The first N questions."),
    no_baselines: bool = typer.Option(False, "--no-baselines", help="Skip the CitationQueryEngine baseline."),
) -> None:
    """Score retrieval and answers on the fixed question set; writes eval/reports/."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from eval.run import QUESTIONS, markdown, run_eval
    from rag.index import IndexMissingError
    from rag.llm import LLMUnavailable

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err, transient=True
    ) as bar:

        def progress(stage: str, total: int):
            task = bar.add_task(stage, total=total)
            return lambda: bar.advance(task)

        try:
            report = run_eval(
                state.settings,
                questions or QUESTIONS,
                only,
                retrieval_only,
                limit,
                not no_baselines,
                progress,
            )
        except (ValueError, OSError, IndexMissingError, LLMUnavailable) as exc:
            fail(str(exc))
    print(markdown(report))
    err.print("report: " + ", ".join(report.get("paths", [])))


llm_app = typer.Typer(help="The local LLM server.", no_args_is_help=True)
app.add_typer(llm_app, name="llm")


@llm_app.command("serve")
def llm_serve(
    port: int = typer.Option(8080),
    small: bool = typer.Option(False, "--small", help="Use SmolLM2-135M (fast, weak)."),
) -> None:
    """Run the embedded llama.cpp OpenAI-compatible server on 127.0.0.1 until Ctrl-C."""
    import time

    from rag.llm import LlamaServer, LLMUnavailable, qwen_path, smollm_path

    s = state.settings
    try:
        model = smollm_path() if small else (s.llm_model_path or qwen_path(s.data_dir / "models"))
        server = LlamaServer(model, s.llm_model, s.llm_context, s.llm_threads, port=port).start()
    except LLMUnavailable as exc:
        fail(str(exc))
    console.print(
        f"serving {model.name} as {s.llm_model!r} at {server.base_url} — "
        f"use OPENAI_BASE_URL={server.base_url}; Ctrl-C stops it"
    )
    try:
        while server.alive():
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    app()
