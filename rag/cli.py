"""The `rag` command line: ingest, papers, search (and, from later modules, ask/chat/ui/eval)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

import typer
from rich.console import Console
from rich.table import Table

from rag.config import IndexSettings, RetrievalSettings, Settings, UISettings, get_settings

if TYPE_CHECKING:
    from rag.index import IngestSummary, PaperIndex
    from rag.query.filters import Filters

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
    data_dir: Path | None = typer.Option(None, help="Where the index lives (env RAG_DATA_DIR)."),
    chroma_mode: str | None = typer.Option(
        None,
        help="persistent (embedded) or http (a `chroma run` server) "
        f"(env RAG_CHROMA_MODE, default {IndexSettings().chroma_mode}).",
    ),
    chroma_host: str | None = typer.Option(
        None, help=f"Chroma server host (env RAG_CHROMA_HOST, default {IndexSettings().chroma_host})."
    ),
    chroma_port: int | None = typer.Option(
        None, help=f"Chroma server port (env RAG_CHROMA_PORT, default {IndexSettings().chroma_port})."
    ),
) -> None:
    state.settings = get_settings(
        data_dir=data_dir, chroma_mode=chroma_mode, chroma_host=chroma_host, chroma_port=chroma_port
    )


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


# --- shared filter options ------------------------------------------------------------------

ListingOpt = typer.Option(None, "--listing", "-l", help="Listing file name or owner (repeatable).")
AuthorOpt = typer.Option(None, "--author", "-a", help="Author name, e.g. Strodthoff (repeatable).")
YearOpt = typer.Option(None, "--year", "-y", help="A year (2023) or a range (2021-2023, 2022-).")
CategoryOpt = typer.Option(None, "--category", "-c", help="arXiv-style category, e.g. CV (repeatable).")
CodeOpt = typer.Option(None, "--code/--no-code", help="Only papers with / without the Code badge.")
NoBuildOpt = typer.Option(
    False, "--no-build", help="Without an index, stop with a message instead of building it from the seeds."
)


def build_filters(listing, author, year, category, code) -> Filters:
    from rag.retrieve import Filters

    year_from = year_to = None
    if year:
        m = re.fullmatch(r"\s*(\d{4})?\s*(-)?\s*(\d{4})?\s*", year)
        if m is None or not (m.group(1) or m.group(3)):
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


def load_index(build: bool = True) -> PaperIndex:
    """The index, built first (from the seeds, with the progress bar) when there is none yet,
    unless --no-build."""
    from rag.errors import IndexMissingError
    from rag.index import PaperIndex

    try:
        if build:
            build_if_missing()
        return PaperIndex(state.settings)
    except IndexMissingError as exc:
        fail(str(exc) + (" (or drop --no-build)" if not build and "rag ingest`" in str(exc) else ""))


def build_if_missing() -> None:
    """Build the index from the seeds, with the progress bar, when the data dir has none."""
    from rag.index import ensure_index

    def run(
        progress: Callable[[str, int, int], None], on_wait: Callable[[str], None]
    ) -> IngestSummary | None:
        return ensure_index(state.settings, progress=progress, on_build=err.print, on_wait=on_wait)

    summary = with_progress(run)
    if summary is not None and summary.status == "unchanged":  # another ingest built it meanwhile
        err.print(f"using the index another ingest has just built (generation {summary.generation})")
    elif summary is not None:
        err.print(
            f"built the index: {summary.papers} papers, {summary.chunks} chunks in {summary.seconds:.1f}s "
            f"(generation {summary.generation})"
        )


# --- ingest ---------------------------------------------------------------------------------


def with_progress(
    run: Callable[[Callable[[str, int, int], None], Callable[[str], None]], IngestSummary | None],
) -> IngestSummary | None:
    """Run an ingest with the progress bar on stderr; errors end the command with a message."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from rag.errors import CorpusError, IndexMissingError, IngestError

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err, transient=True
    ) as bar:
        task = bar.add_task("parsing", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        def on_wait(message: str) -> None:
            err.print(f"[yellow]{message}[/]")
            bar.update(task, description="waiting for the other ingest")

        try:
            return run(progress, on_wait)
        except (CorpusError, IngestError, IndexMissingError) as exc:
            fail(f"{exc}\nThe previous index (if any) is unchanged.")
        except KeyboardInterrupt:
            fail("interrupted; the previous index (if any) is unchanged.", 130)


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(None, help="Listing files or folders (default: the seeds)."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild from scratch."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show every skipped line."),
    no_wait: bool = typer.Option(
        False, "--no-wait", help="If another ingest is running on the data dir, stop instead of waiting."
    ),
) -> None:
    """Parse the listings and bring the index up to date (incremental, atomic)."""
    from rag.index import ingest as run_ingest

    summary = with_progress(
        lambda progress, on_wait: run_ingest(
            state.settings,
            paths or None,
            rebuild=rebuild,
            progress=progress,
            wait=not no_wait,
            on_wait=on_wait,
        )
    )
    assert summary is not None

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


# The columns of a paper table: (header, minimum width, drop order: lower goes first when the
# terminal is narrow, None for never). "paper" and "authors" share what the others leave.
_PAPER_COLUMNS: list[tuple[str, int, int | None]] = [
    ("#", 2, None),
    ("paper", 24, None),
    ("authors", 14, 4),
    ("date", 10, 3),
    ("listing", 8, 2),
    ("cat", 3, 1),
    ("code", 4, 0),
    ("id", 12, 0),
]
_MIN_TITLE = 30  # columns are dropped until titles get this much width, or 40% of a wide terminal


def _table_overhead(n_columns: int) -> int:
    """Characters a rich Table with the default box spends on n columns: a border per column
    plus one, and one space of padding on each side of every cell."""
    return 3 * n_columns + 1


def paper_table(rows, title: str, score: bool = False, width: int | None = None) -> Table:
    """The papers as a table that fits `width` (the terminal's): the Code badge, the id, the
    category, the listing and the date are dropped in that order while titles would get less
    than 30 characters (40% of a wide terminal); authors shrink to the first name + "et al." and
    the listing to its first 20 characters, so a title is never squeezed into a few letters."""
    width = width or console.width
    min_title = max(_MIN_TITLE, int(width * 0.4))
    papers = [row.paper if score else row for row in rows]

    def authors_of(p, n: int) -> str:
        return f"({p.n_authors} authors)" if not p.authors and p.n_authors else p.author_names(n)

    cells: dict[str, list[str]] = {
        "#": [str(i) for i in range(1, len(papers) + 1)],
        "paper": [p.label for p in papers],
        "authors": [authors_of(p, 3) for p in papers],
        "date": [p.date or "" for p in papers],
        "listing": [p.owner or "" for p in papers],
        "cat": [p.category or "" for p in papers],
        "code": ["✓" if p.has_code else "" for p in papers],
        "id": [p.paper_id for p in papers],
    }

    def natural(name: str) -> int:
        return max([len(name), *(len(c) for c in cells[name])])

    columns = [c for c in _PAPER_COLUMNS if score or c[0] != "#"]
    fixed_width = {name: min(natural(name), 20 if name == "listing" else natural(name)) for name in cells}

    def title_room(cols: list[tuple[str, int, int | None]], authors_width: int = 24) -> int:
        others = sum(fixed_width[n] for n, _, _ in cols if n not in ("paper", "authors"))
        authors = min(natural("authors"), authors_width) if any(n == "authors" for n, _, _ in cols) else 0
        return width - _table_overhead(len(cols)) - others - authors

    droppable = sorted((c for c in columns if c[2] is not None), key=lambda c: c[2] or 0)
    while droppable and title_room(columns) < min_title:
        columns.remove(droppable.pop(0))
    names = [n for n, _, _ in columns]
    authors_width = 40 if title_room(columns, 40) >= min_title else 24
    if authors_width < 40:
        cells["authors"] = [authors_of(p, 1) for p in papers]  # "First Author et al."

    table = Table(title=title, show_lines=False)
    for name in names:
        if name == "#":
            table.add_column(name, justify="right", no_wrap=True)
        elif name == "paper":
            table.add_column(name, overflow="fold", min_width=min(_MIN_TITLE, natural(name)))
        elif name == "authors":
            table.add_column(name, overflow="fold", max_width=authors_width)
        elif name == "listing":
            table.add_column(name, no_wrap=True, overflow="ellipsis", max_width=fixed_width["listing"])
        else:
            table.add_column(name, no_wrap=True)
    for i in range(len(papers)):
        table.add_row(*(cells[name][i] for name in names))
    return table


@app.command()
def papers(
    listing: list[str] = ListingOpt,
    author: list[str] = AuthorOpt,
    year: str = YearOpt,
    category: list[str] = CategoryOpt,
    code: bool | None = CodeOpt,
    as_json: bool = typer.Option(False, "--json", help="A JSON array of papers (= --format json)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, bibtex, csv or json."),
    no_build: bool = NoBuildOpt,
) -> None:
    """List the papers of the index, optionally filtered, as a table or for export."""
    from rag.export import FORMATS, export

    if fmt not in ("table", *FORMATS):
        fail(f"--format {fmt!r}: expected table, {', '.join(FORMATS)}")
    index = load_index(build=not no_build)
    rows = build_filters(listing, author, year, category, code).apply(index.papers)
    if as_json or fmt != "table":
        sys.stdout.write(export(rows, "json" if as_json else fmt))
    else:
        console.print(paper_table(rows, f"{len(rows)} papers"))


@app.command()
def search(
    query: str | None = typer.Argument(None),
    k: int | None = typer.Option(
        None, "-k", min=1, help=f"Papers to return (env RAG_TOP_K, default {RetrievalSettings().top_k})."
    ),
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
    no_build: bool = NoBuildOpt,
) -> None:
    """Hybrid (dense + BM25) search, one hit per paper."""
    from rag.errors import IndexMissingError
    from rag.retrieve import Mode, Retriever

    if mode not in ("hybrid", "dense", "bm25"):
        fail(f"--mode {mode!r}: expected hybrid, dense or bm25")
    search_mode = cast(Mode, mode)
    top_k = k or state.settings.top_k
    if batch is None and not (query and query.strip()):
        fail("give a QUERY or --batch FILE")
    filters = build_filters(listing, author, year, category, code)
    retriever = Retriever(load_index(build=not no_build))
    if batch is not None:
        for line in read_batch(batch):
            hits = (
                retriever.search(
                    line, k=top_k, filters=filters, analyse=not no_analysis, mode=search_mode
                ).hits
                if line.strip()
                else []
            )
            print(json.dumps([h.to_json() for h in hits], ensure_ascii=False), flush=True)
        return
    assert query is not None
    try:
        result = retriever.search(query, k=top_k, filters=filters, analyse=not no_analysis, mode=search_mode)
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
    no_build: bool = NoBuildOpt,
) -> None:
    """How a question is understood: its intent, filters, topic and what was recognised."""
    from rag.retrieve import Retriever

    if not question.strip():
        fail("give a QUESTION")
    result = Retriever(load_index(build=not no_build)).analyser.analyse(question)
    if as_json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=1))
        return
    console.print(f"understood as: {result.summary()}", markup=False, highlight=False)
    for note in result.notes:
        console.print(f"  {note}", markup=False, highlight=False)


# --- answers -------------------------------------------------------------------------------


def make_assistant(build: bool = True) -> Any:
    from rag.answer import Assistant

    return Assistant(state.settings, index=load_index(build=build))


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


def run_answer(assistant, question: str, history: list[dict], filters, as_json: bool) -> Any:
    """Stream one answer to the terminal (or return it quietly for --json)."""
    answer: Any = None
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
    assert answer is not None, "the answer stream ended without its done event"
    if not as_json:
        if streamed:
            console.print()
        checks = answer.checks
        if checks.get("invalid_citations_removed"):
            err.print(
                f"[yellow]{checks['invalid_citations_removed']} citation(s) to sources that were not given "
                "were removed.[/]"
            )
        for move in checks.get("moved", []):
            err.print(
                f"[yellow]citation moved to [{move['to']}], the source that says it:[/] "
                f"{move['sentence'][:120]}"
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
    no_build: bool = NoBuildOpt,
) -> None:
    """Answer a question with citations to the papers (streams, then a sources table)."""
    from rag.errors import IndexMissingError, LLMUnavailable

    if batch is None and question is None:
        fail("give a QUESTION or --batch FILE")
    filters = build_filters(listing, author, year, category, code)
    assistant = make_assistant(build=not no_build)
    try:
        if batch is not None:
            for line in read_batch(batch):
                answer = run_answer(assistant, line, [], filters, True)
                print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)
            return
        assert question is not None
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
    no_build: bool = NoBuildOpt,
) -> None:
    """A conversation in the terminal; follow-ups use the history. Empty line or Ctrl-D ends it."""
    filters = build_filters(listing, author, year, category, code)
    assistant = make_assistant(build=not no_build)
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
    host: str | None = typer.Option(
        None, help=f"Bind address (env RAG_UI_HOST, default {UISettings().host})."
    ),
    port: int | None = typer.Option(None, help=f"Port (env RAG_UI_PORT, default {UISettings().port})."),
) -> None:
    """Start the chat UI: builds the index if missing, starts the local LLM if no endpoint is set."""
    from ui.app import main as ui_main

    build_if_missing()  # with the progress bar, and waiting for an ingest that is running
    ui_main(state.settings, host=host, port=port)


@app.command("eval")
def eval_cmd(
    questions: Path | None = typer.Option(None, "--questions", help="A questions JSONL file."),
    only: str | None = typer.Option(None, "--only", help="Only questions of this type (topic, person, ...)."),
    retrieval_only: bool = typer.Option(False, "--retrieval-only", help="Skip answers (fast; no LLM)."),
    limit: int | None = typer.Option(None, "--limit", help="The first N questions."),
    no_baselines: bool = typer.Option(False, "--no-baselines", help="Skip the CitationQueryEngine baseline."),
    out: Path = typer.Option(
        Path("eval") / "reports",
        "--out",
        help="Folder for the reports (JSON + Markdown), relative to the current directory; "
        "the previous report there is compared with.",
    ),
    no_build: bool = NoBuildOpt,
) -> None:
    """Score retrieval and answers on the fixed question set; writes reports to --out."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from eval.run import QUESTIONS, markdown, run_eval
    from rag.errors import IndexMissingError, LLMUnavailable

    if not no_build:
        build_if_missing()

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
                out_dir=out.resolve(),
            )
        except (ValueError, OSError, IndexMissingError, LLMUnavailable) as exc:
            fail(str(exc))
    print(markdown(report))
    err.print("reports written to " + " and ".join(report.get("paths", [])))


llm_app = typer.Typer(help="The local LLM server.", no_args_is_help=True)
app.add_typer(llm_app, name="llm")


@llm_app.command("serve")
def llm_serve(
    port: int = typer.Option(8080),
    small: bool = typer.Option(False, "--small", help="Use SmolLM2-135M (fast, weak)."),
) -> None:
    """Run the embedded llama.cpp OpenAI-compatible server on 127.0.0.1 until Ctrl-C.

    While it runs, `rag ask`, `rag eval` and `rag ui` on the same data dir use it (warm, with
    its prefix cache) instead of starting their own."""
    import signal
    import time

    from rag.llm import LlamaServer, LLMUnavailable, qwen_path, smollm_path
    from rag.served import ServedLLM, announce, withdraw

    s = state.settings
    try:
        model = smollm_path() if small else (s.llm_model_path or qwen_path(s.data_dir / "models"))
        log = s.data_dir / f"llama-server-{port}.log"
        s.data_dir.mkdir(parents=True, exist_ok=True)
        server = LlamaServer(model, s.llm_model, s.llm_context, s.llm_threads, port=port, log_path=log)
        server.start(s.llm.start_timeout_s)
    except LLMUnavailable as exc:
        fail(str(exc))
    assert server.process is not None
    note = ServedLLM(server.base_url, server.process.pid, str(Path(model).resolve()), str(log))
    announce(s.data_dir, note)
    console.print(
        f"serving {model.name} as {s.llm_model!r} at {server.base_url} — `rag ask`/`rag ui` with "
        f"this data dir use it, or set OPENAI_BASE_URL={server.base_url}; Ctrl-C stops it"
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` cleans up like Ctrl-C
    try:
        while server.alive():
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        withdraw(s.data_dir, note.pid)
        server.stop()


if __name__ == "__main__":
    app()
