"""The Gradio chat UI: ask questions about the papers, see the cited papers as cards, take them
away as BibTeX, browse and export the corpus, look at a researcher's co-authors and a map of the
topics, export the conversation.

Everything stays on this machine: the app binds to 127.0.0.1, never uses a share link and loads
no asset from the internet (KaTeX and the plots ship with Gradio). `main()` builds the index if
needed, serves the page at once and loads the models in the background (ui/warm.py);
`build_app()` makes the Blocks for a given `rag.answer.Assistant` (the tests use it directly).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, TypedDict

import gradio as gr

from rag.answer import Answer, Assistant, Event
from rag.config import Settings
from rag.export import to_bibtex, to_csv
from rag.retrieve import Filters
from rag.types import Paper
from ui.chips import parse_chip_target, plan_chips, without, without_filter
from ui.data import (
    SOURCE_GROUP,
    browse_papers,
    coauthors,
    colour_by,
    corpus_map,
    paper_vectors,
    papers_per_year,
    papers_table,
    researchers,
    topic_summary,
    years_of,
)
from ui.mapsvg import map_svg
from ui.render import Turn, chat_messages, export_markdown, history, paper_card, sources_panel
from ui.warm import Warmup

EXAMPLES = [
    "Which papers use state space models?",
    "What did Tiezhi Wang work on?",
    "Which papers have code available?",
    "What is Nils Strodthoff's email address?",
]

PALETTE = ["#4e79a7", "#59a14f", "#b07aa1", "#9c755f", "#76b7b2", "#edc948", "#bab0ac", "#ff9da7"]
TOPIC_PALETTE = [
    "#6baed6",
    "#74c476",
    "#9e9ac8",
    "#fd8d3c",
    "#e7ba52",
    "#a55194",
    "#8c6d31",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
]
SOURCE_COLOUR = "#d62728"
TOP_COAUTHORS = 20  # bars in the co-author plot; the table beside it lists all
# The chat renders LaTeX with the KaTeX that ships with Gradio: $…$ inline, $$…$$ displayed.
LATEX: list[dict[str, str | bool]] = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "$", "right": "$", "display": False},
    {"left": "\\(", "right": "\\)", "display": False},
]

CSS = """
#sources .sources { max-height: 720px; overflow-y: auto; padding-right: 4px; }
#sources h4 { margin: 4px 0 8px; font-size: 0.95em; }
.card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px;
        margin-bottom: 8px; background: var(--background-fill-primary); scroll-margin-top: 12px; }
.card.flash { animation: card-flash 2s ease-out; }
@keyframes card-flash { from { box-shadow: 0 0 0 3px var(--color-accent); }
                        to { box-shadow: 0 0 0 0 transparent; } }
.card .title { font-weight: 600; line-height: 1.3; }
.card .title.untitled { font-style: italic; font-weight: 500; }
.card .num { color: var(--color-accent); }
.card .authors, .card .meta { font-size: 0.85em; color: var(--body-text-color-subdued); margin-top: 2px; }
.card .abstract { font-size: 0.85em; white-space: pre-line; margin-top: 6px; line-height: 1.4; }
.card mark { background: #fde68a; color: #1f2937; padding: 0 1px; }
.badge { display: inline-block; font-size: 0.72em; font-weight: 600; padding: 1px 7px; border-radius: 10px;
         margin-left: 4px; vertical-align: middle; }
.badge.code { background: #d1fae5; color: #065f46; }
.badge.cat { background: #e0e7ff; color: #3730a3; }
.sources .empty { color: var(--body-text-color-subdued); font-style: italic; }
details.earlier summary { cursor: pointer; margin: 8px 0; color: var(--body-text-color-subdued); }
a.cite { text-decoration: none; font-weight: 600; }
.filters-used { font-size: 0.8em; color: var(--body-text-color-subdued); }
.plan-chips { display: flex; flex-wrap: wrap; gap: 4px; margin: 0 0 6px; }
#chatbot .chip { display: inline-block; font-size: 0.78em; line-height: 1.5; padding: 0 8px;
                 border-radius: 10px; border: 1px solid transparent; background: #f3f4f6; color: #374151;
                 white-space: nowrap; }
#chatbot .chip.intent { background: #ede9fe; color: #5b21b6; font-weight: 600; }
#chatbot .chip.filter { background: #dbeafe; color: #1e40af; }
#chatbot .chip.filter.panel { border-color: #1e40af; border-style: dashed; }
#chatbot .chip.spelling, #chatbot .chip.expansion { background: #fef3c7; color: #92400e; }
#chatbot .chip.removed { background: transparent; border-color: #d1d5db; color: #6b7280; }
#chatbot .chip a.chip-x { text-decoration: none; font-weight: 700; color: inherit; margin-left: 2px; }
#chatbot .chip a.chip-x:hover { color: #b91c1c; }
.filters-used.records { font-style: italic; }
.examples button { font-size: 0.85em; }
#browse-table .cell-wrap, #browse-table .cell-wrap span { font-family: var(--font); }
#status p { margin: 0; font-size: 0.9em; }
#browse-count p, #coauthor-summary p { margin: 6px 0; }
#coauthor-table .cell-wrap { cursor: pointer; }
#coauthor-table .cell-wrap, #coauthor-table .cell-wrap span, #topics .cell-wrap, #topics .cell-wrap span,
#coauthor-table th, #topics th { font-family: var(--font); }
#corpus-map .map { width: 100%; height: auto; display: block; }
#corpus-map .map .bg { fill: var(--background-fill-primary); stroke: var(--border-color-primary); }
#corpus-map .topic-label { font: 600 13px var(--font); fill: var(--body-text-color); paint-order: stroke;
                           stroke: var(--background-fill-primary); stroke-width: 4px; stroke-linejoin: round;
                           pointer-events: none; }
#corpus-map .legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 0.85em; margin-top: 6px; }
#corpus-map .legend .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 50%;
                              margin-right: 5px; vertical-align: -1px; }
.map-caption p { font-size: 0.9em; color: var(--body-text-color-subdued); margin: 0; }
"""

# Citation links jump to their card: opens folded earlier answers, scrolls, flashes the card.
# A plan chip's link (× or ↺) is turned into a re-ask through the hidden #chip-target/#chip-go.
# Handled here because the chat's Markdown renderer would open links in a new tab.
JS = """
() => {
  document.addEventListener("click", (event) => {
    const chip = event.target.closest ? event.target.closest('a[href^="#chip-"]') : null;
    if (chip) {  // a plan chip's × or ↺: ask again without it (or with it put back)
      event.preventDefault();
      event.stopPropagation();
      const box = document.querySelector("#chip-target textarea, #chip-target input");
      const go = document.getElementById("chip-go");
      if (!box || !go) return;
      box.value = chip.getAttribute("href").slice("#chip-".length);
      box.dispatchEvent(new Event("input", {bubbles: true}));
      setTimeout(() => go.click(), 50);
      return;
    }
    const link = event.target.closest ? event.target.closest('a[href^="#src-"]') : null;
    if (!link) return;
    const card = document.getElementById(link.getAttribute("href").slice(1));
    if (!card) return;
    event.preventDefault();
    event.stopPropagation();
    const folded = card.closest("details");
    if (folded) folded.open = true;
    card.scrollIntoView({behavior: "smooth", block: "nearest"});
    card.classList.remove("flash");
    void card.offsetWidth;
    card.classList.add("flash");
  }, true);
}
"""


class LLMQueue(TypedDict):
    """The queue settings of every event that may call the LLM. They share one concurrency
    group of `ui.concurrency` (3): the LLM server reads one request at a time and the others
    wait at the server (it is started not to cut a running stream), so a question computed
    from the records is not held up behind a generated answer. A question sent while the
    previous answer is still winding down (Stop pressed while the model reads its prompt, when
    no token comes to end it sooner) runs next instead of being dropped ("always_last")."""

    concurrency_limit: int
    concurrency_id: str
    trigger_mode: Literal["once", "multiple", "always_last"]


# --- helpers ---------------------------------------------------------------------------------


def until_stopped(chain: Iterator[Event], turn: Turn, poll_s: float = 0.2) -> Iterator[Event]:
    """The chain's events, produced in a worker thread so that Stop ends the answer at once,
    even while the model is still reading its prompt and no token comes to end it sooner; the
    worker then closes the chain at its next event, which closes the model's stream."""
    events: queue.Queue = queue.Queue()
    end = object()
    abandoned = threading.Event()  # the UI stopped reading (Stop, a new conversation, a closed tab)

    def work() -> None:
        try:
            for event in chain:
                events.put(event)
                if turn.kind == "stopped" or abandoned.is_set():
                    break
        except Exception as exc:  # handed to the UI thread, which shows it
            events.put(exc)
        finally:
            close = getattr(chain, "close", None)
            if close is not None:
                close()
            events.put(end)

    threading.Thread(target=work, name="answer", daemon=True).start()
    try:
        while True:
            try:
                item = events.get(timeout=poll_s)
            except queue.Empty:
                if turn.kind == "stopped":
                    return
                continue
            if item is end:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        abandoned.set()


def make_filters(listings, year_from, year_to, categories, has_code) -> Filters:
    """The filter widgets' values as Filters; an unticked code box means "any"."""
    lo = int(year_from) if year_from not in (None, "", "any") else None
    hi = int(year_to) if year_to not in (None, "", "any") else None
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    return Filters(
        listings=list(listings or []),
        year_from=lo,
        year_to=hi,
        categories=list(categories or []),
        has_code=True if has_code else None,
    )


def apply_event(turn: Turn, event: Event) -> None:
    """Fold one streamed event into the turn being answered."""
    if event.kind == "status":
        turn.status = event.data
    elif event.kind == "plan":
        turn.plan = event.data
    elif event.kind == "sources":
        turn.sources = list(event.data)
    elif event.kind == "token":
        turn.answer += event.data
    elif event.kind == "error":
        turn.error = event.data
    elif event.kind == "done":
        answer: Answer = event.data
        turn.answer = answer.answer
        turn.sources = list(answer.sources) or turn.sources
        turn.citations = list(answer.citations)
        turn.standalone = answer.standalone_question
        turn.kind = answer.kind
        turn.filters = answer.filters
        turn.finished = True


def settings_markdown(assistant: Assistant) -> str:
    s = assistant.settings
    if assistant.llm.embedded:
        endpoint = "embedded llama.cpp server on 127.0.0.1 (started when the app starts)"
    else:
        endpoint = f"`{s.openai_base_url}`"
    state = assistant.index.state
    return "\n".join(
        [
            "| setting | value |",
            "|---|---|",
            f"| model | `{assistant.llm.model_name}` |",
            f"| endpoint | {endpoint} |",
            f"| top-k (papers retrieved) | {s.top_k} |",
            f"| papers | {len(assistant.index.papers)} in {len(assistant.index.reports)} listings |",
            f"| index | generation `{state.generation}` in `{s.data_dir}` |",
            "",
            "Change these with `RAG_*` environment variables (see the README) and restart.",
        ]
    )


def colour_map(owners: list[str], palette: list[str]) -> dict[str, str]:
    return {o: palette[i % len(palette)] for i, o in enumerate(owners)}


class ExportFiles:
    """Files the download buttons serve, named by their content, so the same set of papers is
    written once (Gradio copies each into its own cache when it serves it)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="paper-rag-export-"))

    def write(self, stem: str, suffix: str, text: str) -> str:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
        path = self.dir / f"{stem}-{digest}.{suffix}"
        if not path.exists():
            path.write_text(text, encoding="utf-8")
        return str(path)


def cited_papers(turn: Turn) -> list[Paper]:
    seen, papers = set(), []
    for source in turn.citations:
        if source.paper.paper_id not in seen:
            seen.add(source.paper.paper_id)
            papers.append(source.paper)
    return papers


# --- the app ---------------------------------------------------------------------------------


def build_app(assistant: Assistant, warmup: Warmup | None = None) -> gr.Blocks:
    """The Blocks for `assistant`. With a `warmup` (main() starts one), the page shows what is
    still loading, and a question asked before it is done waits for it."""
    from rag.corpus import PERSONAL_LAYOUTS
    from rag.corpus.names import author_key, fold

    papers = assistant.index.papers
    by_id = {p.paper_id: p for p in papers}
    paper_table = assistant.retriever.table
    reports = assistant.index.reports
    owners = sorted({r.owner for r in reports if r.owner})
    person_owners = sorted({r.owner for r in reports if r.owner and r.layout in PERSONAL_LAYOUTS})
    categories = sorted({p.category for p in papers if p.category})
    years = [p.year for p in papers if p.year]
    year_choices = ["any"] + [str(y) for y in sorted(set(years))]
    spelling: dict[str, str] = {}
    for p in papers:
        for a in p.authors:
            spelling.setdefault(author_key(a), a)
    author_choices = sorted(set(spelling.values()) | set(person_owners), key=fold)
    people = researchers(papers, person_owners)
    vectors = paper_vectors(assistant.index, lambda: assistant.retriever.embed_model)
    base_map = corpus_map(papers, vectors)
    listing_names = sorted({p.owner or "unknown" for p in papers})
    topic_names = list(topic_summary(base_map).iloc[:, 0]) if len(base_map) else []
    map_colours = {
        "topic": colour_map(topic_names, TOPIC_PALETTE) | {SOURCE_GROUP: SOURCE_COLOUR},
        "listing": colour_map(listing_names, PALETTE) | {SOURCE_GROUP: SOURCE_COLOUR},
    }
    exports = ExportFiles()

    def stream_turn(turns: list[Turn]) -> Iterator[tuple[Any, Any]]:
        """Answer the last of `turns` (its own filters and removed chips): the chat and the
        sources panel (or gr.skip()) after each event."""
        turn = turns[-1]
        try:
            asking = without(assistant, turn.drops)
            chain = asking.stream(turn.question, history(turns[:-1]), turn.explicit)
            for event in until_stopped(chain, turn):
                if turn.kind == "stopped":  # the Stop button marked this shared turn
                    return
                apply_event(turn, event)
                panel = sources_panel(turns) if event.kind in ("sources", "done") else gr.skip()
                yield chat_messages(turns), panel
        except Exception as exc:  # never lose the conversation or the app over one answer
            turn.error = f"{type(exc).__name__}: {exc}"
            turn.kind = "error"
        if turn.kind == "stopped":
            return
        turn.finished = True
        yield chat_messages(turns), sources_panel(turns)

    def ask(question, turns, listings, year_from, year_to, cats, has_code):
        """Stream one answer: the sources panel first, then the tokens, then the checked answer."""
        turns = list(turns or [])
        turn = Turn(question=(question or "").strip())
        turn.explicit = make_filters(listings, year_from, year_to, cats, has_code)
        turns.append(turn)
        yield "", chat_messages(turns), sources_panel(turns), turns
        if warmup is not None and not warmup.wait_index(0):  # the first question of a fresh start
            turn.status = "Loading the search index (once, at start-up)"
            yield gr.skip(), chat_messages(turns), gr.skip(), turns
            while not warmup.wait_index(0.5):
                if turn.kind == "stopped":
                    return
            turn.status = ""
        for chat, panel in stream_turn(turns):
            yield gr.skip(), chat, panel, turns

    def reask(target, turns):
        """A chip of the latest answer was clicked (its link's "<turn>-<key>"): ask that question
        again without the chip (or with a removed one put back). A filter the panel had set is
        cleared there; one read from the question is left out of the plan. Yields the chat, the
        sources, the turns and the panel's listing, years, category and code box."""
        turns = list(turns or [])
        parsed = parse_chip_target(target)
        if not turns or parsed is None or parsed[0] != len(turns) or not turns[-1].editable:
            yield (gr.skip(),) * 8
            return
        old, key = turns[-1], parsed[1]
        chip = (
            next((c for c in plan_chips(old.plan, old.explicit) if c.key == key), None) if old.plan else None
        )
        explicit = old.explicit or Filters()
        drops, removed = list(old.drops), list(old.removed)
        if key in drops:  # put back
            drops.remove(key)
            removed = [c for c in removed if c.key != key]
        elif chip is None or not chip.removable:
            yield (gr.skip(),) * 8
            return
        elif chip.origin == "panel":
            explicit = without_filter(explicit, key)
        else:
            drops.append(key)
            removed.append(chip)
        turn = Turn(question=old.question, explicit=explicit, drops=drops, removed=removed)
        turns[-1] = turn
        panel_values = (
            explicit.listings,
            str(explicit.year_from) if explicit.year_from is not None else "any",
            str(explicit.year_to) if explicit.year_to is not None else "any",
            explicit.categories,
            bool(explicit.has_code),
        )
        yield chat_messages(turns), sources_panel(turns), turns, *panel_values
        for chat, panel in stream_turn(turns):
            yield chat, panel, turns, *(gr.skip(),) * 5

    def stop(turns):
        """Mark the running answer as stopped; `cancels=` ends its generator."""
        turns = list(turns or [])
        if turns and not turns[-1].finished:
            turns[-1].finished = True
            turns[-1].kind = "stopped"
        return chat_messages(turns), sources_panel(turns), turns

    def render(turns):
        return chat_messages(turns or []), sources_panel(turns or [])

    def new_conversation():
        return [], sources_panel([]), [], "", gr.DownloadButton(value=None, visible=False)

    def draw_map(turns, colour):
        ids = {s.paper.paper_id for s in turns[-1].sources} if turns else set()
        colour = colour if colour in map_colours else "topic"
        return map_svg(colour_by(base_map, colour), map_colours[colour], ids, SOURCE_COLOUR, SOURCE_GROUP)

    def cited_bibtex(turns):
        """The download of the last answer's cited papers as BibTeX (hidden when it cites none)."""
        turn = turns[-1] if turns else None
        cited = cited_papers(turn) if turn is not None and turn.finished else []
        if not cited:
            return gr.DownloadButton(value=None, visible=False)
        path = exports.write(f"cited-q{len(turns)}", "bib", to_bibtex(cited))
        label = f"BibTeX of the {len(cited)} cited paper{'s' if len(cited) != 1 else ''}"
        return gr.DownloadButton(label=label, value=path, visible=True)

    def after_answer(turns, colour):
        return draw_map(turns, colour), cited_bibtex(turns)

    def browse_files(query, authors, listings, year_from, year_to, cats, has_code):
        """The Browse rows for the filters and search words, their count line, and the BibTeX
        and CSV files of those papers (None when there are none)."""
        filters = make_filters(listings, year_from, year_to, cats, has_code)
        authors = [a for a in (authors or []) if a and a.strip()]
        shown = browse_papers(paper_table, filters, authors, query or "")
        parts = [
            "by " + " and ".join(authors) if authors else "",
            filters.describe(),
            f"containing “{query.strip()}”" if query and query.strip() else "",
        ]
        described = "; ".join(part for part in parts if part)
        count = f"**{len(shown)}** of {len(papers)} papers" + (f" — {described}" if described else "")
        if not shown:
            return papers_table([]), count, None, None, 0
        bib = exports.write("papers", "bib", to_bibtex(shown))
        csv = exports.write("papers", "csv", to_csv(shown))
        return papers_table(shown), count, bib, csv, len(shown)

    def browse(query, authors, listings, year_from, year_to, cats, has_code):
        rows, count, bib, csv, n = browse_files(query, authors, listings, year_from, year_to, cats, has_code)
        return (
            rows,
            count,
            gr.DownloadButton(label=f"BibTeX ({n} papers)", value=bib, interactive=bool(n)),
            gr.DownloadButton(label=f"CSV ({n} papers)", value=csv, interactive=bool(n)),
        )

    def select_paper(evt: gr.SelectData):
        row = evt.row_value or []
        paper = by_id.get(row[-1]) if row else None
        return paper_card(paper) if paper else ""

    def coauthor_view(name):
        """A researcher's papers (named among the visible authors, or in their own personal
        listing: the app's author filter), co-authors by shared papers, and papers per year."""
        name = (name or "").strip()
        theirs = paper_table.allowed(Filters(authors=[name])) if name else []
        co = coauthors(theirs, name) if name else coauthors([], "")
        if not name:
            summary = "Choose a researcher."
        elif not theirs:
            summary = f"No paper names **{name}**."
        else:
            span = [p.year for p in theirs if p.year]
            partial = sum(1 for p in theirs if p.authors_truncated or not p.authors)
            summary = (
                f"**{name}**: {len(theirs)} papers"
                + (f" ({min(span)}–{max(span)})" if span else "")
                + f", {len(co)} co-authors named."
                + (
                    f" {partial} of the {len(theirs)} listings show the authors only in part (“et al.”), "
                    "so the counts are of the names shown."
                    if partial
                    else ""
                )
                + " Click a co-author to see your shared papers in Browse."
            )
        return summary, co.head(TOP_COAUTHORS), co, years_of(theirs)

    def shared_papers(name, coauthor):
        """Browse set to the papers of both (every other Browse filter cleared)."""
        if not name or not coauthor:
            return (gr.skip(),) * 8
        return gr.Tabs(selected="browse"), "", [name, coauthor], [], "any", "any", [], False

    def coauthor_clicked(name, evt: gr.SelectData):
        row = evt.row_value or []
        return shared_papers(name, row[0] if row else None)

    def coauthor_bars_selected(name, evt: gr.SelectData):
        """A brush over the bars gives the co-authors under it; the first one is shown."""
        value = evt.value if isinstance(evt.value, list) else [evt.value]
        picked = next((v for v in value if isinstance(v, str) and v), None)
        return shared_papers(name, picked)

    def poll_status():
        assert warmup is not None
        return gr.Markdown(warmup.status()), gr.Timer(active=not warmup.done)

    def export(turns):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(tempfile.mkdtemp(prefix="paper-rag-export-")) / f"conversation-{stamp}.md"
        path.write_text(export_markdown(list(turns or []), assistant.llm.model_name), encoding="utf-8")
        return str(path)

    first_person = people[0] if people else None
    first_summary, first_bars, first_coauthors, first_years = coauthor_view(first_person)
    all_rows, all_count, all_bib, all_csv, n_all = browse_files("", [], [], "any", "any", [], False)

    with warnings.catch_warnings():
        # Gradio 6 prefers css/js in launch(); passing them here keeps them with the app,
        # whoever launches it (main() or the tests).
        warnings.simplefilter("ignore", UserWarning)
        demo = gr.Blocks(title="Paper assistant", css=CSS, js=JS, analytics_enabled=False)

    with demo:
        turns_state = gr.State([])
        gr.Markdown(
            "## Paper assistant\nAnswers come only from the indexed listings; every claim cites a paper card."
        )
        status = gr.Markdown(warmup.status() if warmup else "", elem_id="status", visible=warmup is not None)
        timer = gr.Timer(1.0, active=warmup is not None and not warmup.done)
        with gr.Tabs() as tabs:
            with gr.Tab("Chat", id="chat"), gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(
                        label="Conversation",
                        elem_id="chatbot",
                        height=480,
                        feedback_options=None,
                        buttons=["copy"],
                        latex_delimiters=LATEX,
                        placeholder="Ask about the papers in the listings.",
                    )
                    with gr.Row():
                        question = gr.Textbox(
                            show_label=False,
                            placeholder="Ask a question about the papers…",
                            elem_id="question",
                            scale=6,
                            lines=1,
                            max_lines=1,
                            autofocus=True,
                        )
                        send = gr.Button("Ask", variant="primary", elem_id="send", scale=1, min_width=80)
                        stop_button = gr.Button("Stop", variant="stop", elem_id="stop", scale=1, min_width=80)
                    # A click on a chip's × or ↺ (the page's JS) writes its target here and
                    # presses the hidden button: the question is asked again without it.
                    chip_target = gr.Textbox(visible="hidden", elem_id="chip-target")
                    chip_go = gr.Button(visible="hidden", elem_id="chip-go")
                    with gr.Row(elem_classes="examples"):
                        example_buttons = [gr.Button(q, size="sm") for q in EXAMPLES]
                    with gr.Row():
                        new_chat = gr.Button("New conversation", size="sm", variant="secondary")
                        cited_button = gr.DownloadButton(
                            "BibTeX of the cited papers",
                            visible=False,
                            size="sm",
                            variant="secondary",
                            elem_id="cited-bibtex",
                        )
                with gr.Column(scale=2):
                    with gr.Accordion("Filters", open=True):
                        listing = gr.Dropdown(owners, multiselect=True, label="Listing", elem_id="f-listing")
                        with gr.Row():
                            year_from = gr.Dropdown(
                                year_choices, value="any", label="From year", elem_id="f-year-from"
                            )
                            year_to = gr.Dropdown(
                                year_choices, value="any", label="To year", elem_id="f-year-to"
                            )
                        category = gr.Dropdown(
                            categories, multiselect=True, label="Category", elem_id="f-category"
                        )
                        has_code = gr.Checkbox(label="Only papers with code", elem_id="f-code")
                    sources = gr.HTML(sources_panel([]), elem_id="sources")

            with gr.Tab("Browse", id="browse"):
                with gr.Row():
                    search = gr.Textbox(
                        label="Search",
                        placeholder="words in title, authors, abstract, listing…",
                        elem_id="browse-search",
                        scale=3,
                    )
                    b_authors = gr.Dropdown(
                        author_choices,
                        multiselect=True,
                        allow_custom_value=True,
                        label="Authors (papers by all of them)",
                        elem_id="b-authors",
                        scale=3,
                    )
                    b_listing = gr.Dropdown(
                        owners, multiselect=True, label="Listing", elem_id="b-listing", scale=2
                    )
                with gr.Row():
                    b_year_from = gr.Dropdown(
                        year_choices, value="any", label="From year", elem_id="b-year-from"
                    )
                    b_year_to = gr.Dropdown(year_choices, value="any", label="To year", elem_id="b-year-to")
                    b_category = gr.Dropdown(
                        categories, multiselect=True, label="Category", elem_id="b-category"
                    )
                    b_code = gr.Checkbox(label="Only papers with code", elem_id="b-code")
                with gr.Row(equal_height=True):
                    browse_count = gr.Markdown(all_count, elem_id="browse-count")
                    browse_bib, browse_csv = (
                        gr.DownloadButton(
                            f"{name} ({n_all} papers)",
                            value=value,
                            size="sm",
                            elem_id=elem_id,
                            scale=0,
                            min_width=width,
                        )
                        for name, value, elem_id, width in (
                            ("BibTeX", all_bib, "browse-bibtex", 170),
                            ("CSV", all_csv, "browse-csv", 150),
                        )
                    )
                table = gr.Dataframe(
                    all_rows,
                    interactive=False,
                    wrap=True,
                    max_height=520,
                    elem_id="browse-table",
                    column_widths=["40%", "18%", "9%", "8%", "6%", "12%", "7%"],
                )
                card = gr.HTML('<p class="empty">Select a row to see the paper.</p>', elem_id="browse-card")

            with gr.Tab("Overview", id="overview"):
                gr.BarPlot(
                    papers_per_year(papers),
                    x="year",
                    y="papers",
                    color="listing",
                    title="Papers per year and listing",
                    sort="x",
                    color_map=colour_map(listing_names, PALETTE),
                    height=320,
                )
                gr.Markdown("### A researcher and their co-authors")
                researcher = gr.Dropdown(
                    people,
                    value=first_person,
                    allow_custom_value=True,
                    label="Researcher",
                    elem_id="researcher",
                )
                coauthor_summary = gr.Markdown(first_summary, elem_id="coauthor-summary")
                with gr.Row():
                    with gr.Column(scale=3):
                        coauthor_plot = gr.BarPlot(
                            first_bars,
                            x="co-author",
                            y="papers",
                            sort="-y",
                            title=f"Co-authors by shared papers (top {TOP_COAUTHORS})",
                            x_label_angle=-40,
                            y_lim=[0, None],  # bars from zero; an update with y_lim would keep the old bars
                            height=380,
                            elem_id="coauthor-plot",
                        )
                    with gr.Column(scale=2):
                        coauthor_table = gr.Dataframe(
                            first_coauthors,
                            interactive=False,
                            max_height=380,
                            label="All co-authors (click one: your shared papers in Browse)",
                            elem_id="coauthor-table",
                        )
                researcher_years = gr.BarPlot(
                    first_years,
                    x="year",
                    y="papers",
                    sort="x",
                    title="Their papers per year",
                    y_lim=[0, None],
                    height=260,
                    elem_id="researcher-years",
                )
                gr.Markdown("### Corpus map")
                map_colour = gr.Radio(
                    ["topic", "listing"], value="topic", label="Colour by", elem_id="map-colour"
                )
                gr.Markdown(
                    "Papers with similar abstracts lie close together (PCA of the abstract embeddings); "
                    "each region is named by its most distinctive words. Hover a dot for its title; "
                    "red: the sources of the last answer.",
                    elem_classes="map-caption",
                )
                corpus_plot = gr.HTML(draw_map([], "topic"), elem_id="corpus-map")
                gr.Dataframe(topic_summary(base_map), interactive=False, elem_id="topics", label="Topics")

            with gr.Tab("Settings", id="settings"):
                gr.Markdown(settings_markdown(assistant))
                export_button = gr.Button("Export conversation as Markdown", elem_id="export")
                export_file = gr.File(
                    label="Markdown export", elem_id="export-file", interactive=False, height=90
                )

        ask_inputs = [question, turns_state, listing, year_from, year_to, category, has_code]
        ask_outputs = [question, chatbot, sources, turns_state]
        llm: LLMQueue = {
            "concurrency_limit": assistant.settings.ui.concurrency,
            "concurrency_id": "llm",
            "trigger_mode": "always_last",
        }
        asks = [
            send.click(ask, ask_inputs, ask_outputs, api_name="ask", **llm),
            question.submit(ask, ask_inputs, ask_outputs, api_visibility="private", **llm),
        ]
        for button, text in zip(example_buttons, EXAMPLES, strict=True):
            asks.append(
                button.click(lambda t=text: t, None, question, queue=False, api_visibility="private").then(
                    ask, ask_inputs, ask_outputs, api_visibility="private", **llm
                )
            )
        panel = [listing, year_from, year_to, category, has_code]
        asks.append(
            chip_go.click(
                reask,
                [chip_target, turns_state],
                [chatbot, sources, turns_state, *panel],
                api_name="reask",
                **llm,
            )
        )
        for event in asks:
            event.then(
                after_answer, [turns_state, map_colour], [corpus_plot, cited_button], api_visibility="private"
            )
        # gradio types `cancels` as a list of dicts; its Dependency is an untyped dict subclass.
        cancels: list[dict[str, Any]] = list(asks)
        # Render once more after the stop: an update the answer sent just before the cancel may
        # arrive after stop()'s own and hide the "(stopped)" mark.
        stop_button.click(
            stop, turns_state, [chatbot, sources, turns_state], cancels=cancels, api_name="stop"
        ).then(render, turns_state, [chatbot, sources], api_visibility="private")
        cleared = [chatbot, sources, turns_state, question, cited_button]
        chatbot.clear(new_conversation, None, cleared, cancels=cancels, api_visibility="private")
        new_chat.click(new_conversation, None, cleared, cancels=cancels, api_name="new_conversation")
        demo.load(cited_bibtex, turns_state, cited_button, api_name="cited_bibtex")

        browse_inputs: list[gr.Textbox | gr.Dropdown | gr.Checkbox] = [
            search,
            b_authors,
            b_listing,
            b_year_from,
            b_year_to,
            b_category,
            b_code,
        ]
        gr.on(
            [w.change for w in browse_inputs],
            browse,
            browse_inputs,
            [table, browse_count, browse_bib, browse_csv],
            api_name="browse",
            trigger_mode="always_last",
        )
        table.select(select_paper, None, card, api_name="select_paper")
        researcher.change(
            coauthor_view,
            researcher,
            [coauthor_summary, coauthor_plot, coauthor_table, researcher_years],
            api_name="coauthors",
        )
        to_browse = [tabs, *browse_inputs]
        coauthor_table.select(coauthor_clicked, researcher, to_browse, api_visibility="private")
        coauthor_plot.select(coauthor_bars_selected, researcher, to_browse, api_visibility="private")
        map_colour.change(draw_map, [turns_state, map_colour], corpus_plot, api_visibility="private")
        export_button.click(export, turns_state, export_file, api_name="export")
        if warmup is not None:
            for trigger in (timer.tick, demo.load):
                trigger(poll_status, None, [status, timer], api_visibility="private", show_progress="hidden")

    # A bounded queue: past it, Gradio turns new questions away ("queue is full") instead of
    # letting waits and memory grow without limit.
    demo.queue(default_concurrency_limit=1, max_size=assistant.settings.ui_queue_size)
    return demo


def check_binding(host: str, settings: Settings) -> tuple[str, str] | None:
    """Loopback needs nothing; any other address needs RAG_UI_AUTH=user:password, or the explicit
    RAG_UI_ALLOW_UNAUTHENTICATED=true, which is warned about."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return None
    if settings.ui_auth is not None:
        user, _, password = settings.ui_auth.get_secret_value().partition(":")
        if not user or not password:
            raise SystemExit("RAG_UI_AUTH must look like user:password")
        return (user, password)
    if settings.ui_allow_unauthenticated:
        print(
            f"WARNING: serving on {host} without authentication; anyone who can reach it can use it.",
            flush=True,
        )
        return None
    raise SystemExit(
        f"Refusing to bind to {host} without authentication: set RAG_UI_AUTH=user:password "
        "(or RAG_UI_ALLOW_UNAUTHENTICATED=true to accept the risk)."
    )


def limit_malloc_arenas(n: int = 2) -> None:
    """Cap glibc's malloc arenas (as MALLOC_ARENA_MAX=2 would). By default each of Gradio's
    worker threads gets its own arena that keeps what it freed: the app grew 200-350 MB over
    100 questions from 10 sessions, and stayed flat with the cap (bench/load.py)."""
    import ctypes
    import ctypes.util

    m_arena_max = -8  # from glibc's malloc.h
    with contextlib.suppress(OSError, AttributeError, TypeError):  # not glibc: nothing to do
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt(m_arena_max, n)


def main(settings: Settings | None = None, host: str | None = None, port: int | None = None) -> None:
    """Build the index if there is none, then serve the app until Ctrl-C; the models load in
    the background while the page is already up (ui/warm.py)."""
    limit_malloc_arenas()
    from rag.config import get_settings
    from rag.index import ingest, read_state

    settings = settings or get_settings()
    host = host or settings.ui_host
    auth = check_binding(host, settings)
    if read_state(settings.data_dir) is None:
        print(f"No index in {settings.data_dir}: building it from {', '.join(map(str, settings.seeds))} …")
        ingest(settings)
    assistant = Assistant(settings)
    port = port or settings.ui_port
    # SIGTERM (e.g. `kill`) would skip the finally below and orphan the embedded LLM server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        # The LLM server process starts loading first, while the page is built (reading the
        # vectors for the map takes ~2 s); the search index loads once the page is served.
        warmup = Warmup(assistant).start_model()
        demo = build_app(assistant, warmup)
        warmup.start()
        print(f"Paper assistant on http://{host}:{port}  (Ctrl-C stops it)", flush=True)
        demo.launch(server_name=host, server_port=port, share=False, inbrowser=False, quiet=True, auth=auth)
    finally:
        assistant.close()


if __name__ == "__main__":
    main()
