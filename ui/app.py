"""The Gradio chat UI: ask questions about the papers, see the cited papers as cards, browse the
corpus, look at an overview, export the conversation.

Everything stays on this machine: the app binds to 127.0.0.1, never uses a share link and loads
no asset from the internet. `main()` builds the index if needed and serves the app; `build_app()`
makes the Blocks for a given `rag.answer.Assistant` (the tests use it directly).
"""

from __future__ import annotations

import contextlib
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path

import gradio as gr

from rag.answer import Answer, Assistant, Event
from rag.config import Settings
from rag.retrieve import Filters
from ui.data import SOURCE_GROUP, corpus_map, highlight_sources, paper_vectors, papers_per_year, papers_table
from ui.render import Turn, chat_messages, export_markdown, history, paper_card, sources_panel

EXAMPLES = [
    "Which papers use state space models?",
    "What did Tiezhi Wang work on?",
    "Which papers have code available?",
    "What is Nils Strodthoff's email address?",
]

PALETTE = ["#4e79a7", "#59a14f", "#b07aa1", "#9c755f", "#76b7b2", "#edc948", "#bab0ac", "#ff9da7"]
MAP_PALETTE = ["#9ecae1", "#a1d99b", "#d4b9da", "#d9c6a5", "#99d8c9", "#fdd49e", "#cccccc", "#fcc5c0"]  # pale, so sources stand out
SOURCE_COLOUR = "#d62728"

CSS = """
#sources .sources { max-height: 720px; overflow-y: auto; padding-right: 4px; }
#sources h4 { margin: 4px 0 8px; font-size: 0.95em; }
.card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; margin-bottom: 8px;
        background: var(--background-fill-primary); scroll-margin-top: 12px; }
.card.flash { animation: card-flash 2s ease-out; }
@keyframes card-flash { from { box-shadow: 0 0 0 3px var(--color-accent); } to { box-shadow: 0 0 0 0 transparent; } }
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
.examples button { font-size: 0.85em; }
#browse-table .cell-wrap, #browse-table .cell-wrap span { font-family: var(--font); }
"""

# Citation links jump to their card: opens folded earlier answers, scrolls, flashes the card.
# Handled here because the chat's Markdown renderer would open links in a new tab.
JS = """
() => {
  document.addEventListener("click", (event) => {
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


# --- helpers ---------------------------------------------------------------------------------


def make_filters(listings, year_from, year_to, categories, has_code) -> Filters:
    """The filter widgets' values as Filters; an unticked code box means "any"."""
    lo = int(year_from) if year_from not in (None, "", "any") else None
    hi = int(year_to) if year_to not in (None, "", "any") else None
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    return Filters(listings=list(listings or []), year_from=lo, year_to=hi,
                   categories=list(categories or []), has_code=True if has_code else None)


def apply_event(turn: Turn, event: Event) -> None:
    """Fold one streamed event into the turn being answered."""
    if event.kind == "status":
        turn.status = event.data
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
        endpoint = "embedded llama.cpp server on 127.0.0.1 (started on the first question)"
    else:
        endpoint = f"`{s.openai_base_url}`"
    state = assistant.index.state
    return "\n".join([
        "| setting | value |", "|---|---|",
        f"| model | `{assistant.llm.model_name}` |",
        f"| endpoint | {endpoint} |",
        f"| top-k (papers retrieved) | {s.top_k} |",
        f"| papers | {len(assistant.index.papers)} in {len(assistant.index.reports)} listings |",
        f"| index | generation `{state.get('generation', '?')}` in `{s.data_dir}` |",
        "", "Change these with `RAG_*` environment variables (see the README) and restart.",
    ])


def colour_map(owners: list[str], palette: list[str]) -> dict[str, str]:
    return {o: palette[i % len(palette)] for i, o in enumerate(owners)}


# --- the app ---------------------------------------------------------------------------------


def build_app(assistant: Assistant) -> gr.Blocks:
    papers = assistant.index.papers
    by_id = {p.paper_id: p for p in papers}
    owners = sorted({r["owner"] for r in assistant.index.reports if r.get("owner")})
    categories = sorted({p.category for p in papers if p.category})
    years = [p.year for p in papers if p.year]
    base_map = corpus_map(papers, paper_vectors(assistant.index, assistant.retriever.embed_model))
    listing_names = sorted({p.owner or "unknown" for p in papers})

    def ask(question, turns, listings, year_from, year_to, cats, has_code):
        """Stream one answer: the sources panel first, then the tokens, then the checked answer."""
        turns = list(turns or [])
        turn = Turn(question=(question or "").strip())
        turns.append(turn)
        yield "", chat_messages(turns), sources_panel(turns), turns
        try:
            filters = make_filters(listings, year_from, year_to, cats, has_code)
            for event in assistant.stream(question or "", history(turns[:-1]), filters):
                if turn.kind == "stopped":  # the Stop button marked this shared turn
                    return
                apply_event(turn, event)
                panel = sources_panel(turns) if event.kind in ("sources", "done") else gr.skip()
                yield gr.skip(), chat_messages(turns), panel, turns
        except Exception as exc:  # never lose the conversation or the app over one answer
            turn.error = f"{type(exc).__name__}: {exc}"
            turn.kind = "error"
        if turn.kind == "stopped":
            return
        turn.finished = True
        yield gr.skip(), chat_messages(turns), sources_panel(turns), turns

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
        return [], sources_panel([]), [], ""

    def update_map(turns):
        ids = {s.paper.paper_id for s in turns[-1].sources} if turns else set()
        return highlight_sources(base_map, ids)

    def browse(query):
        return papers_table(papers, query or "")

    def select_paper(evt: gr.SelectData):
        row = evt.row_value or []
        paper = by_id.get(row[-1]) if row else None
        return paper_card(paper) if paper else ""

    def export(turns):
        path = Path(tempfile.mkdtemp(prefix="paper-rag-export-")) / f"conversation-{time.strftime('%Y%m%d-%H%M%S')}.md"
        path.write_text(export_markdown(list(turns or []), assistant.llm.model_name), encoding="utf-8")
        return str(path)

    with warnings.catch_warnings():
        # Gradio 6 prefers css/js in launch(); passing them here keeps them with the app,
        # whoever launches it (main() or the tests).
        warnings.simplefilter("ignore", UserWarning)
        demo = gr.Blocks(title="Paper assistant", css=CSS, js=JS, analytics_enabled=False)

    with demo:
        turns_state = gr.State([])
        gr.Markdown("## Paper assistant\nAnswers come only from the indexed listings; every claim cites a paper card.")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row():
                    with gr.Column(scale=3):
                        chatbot = gr.Chatbot(label="Conversation", elem_id="chatbot", height=480,
                                             feedback_options=None, buttons=["copy"],
                                             placeholder="Ask about the papers in the listings.")
                        with gr.Row():
                            question = gr.Textbox(show_label=False, placeholder="Ask a question about the papers…",
                                                  elem_id="question", scale=6, lines=1, max_lines=1, autofocus=True)
                            send = gr.Button("Ask", variant="primary", elem_id="send", scale=1, min_width=80)
                            stop_button = gr.Button("Stop", variant="stop", elem_id="stop", scale=1, min_width=80)
                        with gr.Row(elem_classes="examples"):
                            example_buttons = [gr.Button(q, size="sm") for q in EXAMPLES]
                        new_chat = gr.Button("New conversation", size="sm", variant="secondary")
                    with gr.Column(scale=2):
                        with gr.Accordion("Filters", open=True):
                            listing = gr.Dropdown(owners, multiselect=True, label="Listing", elem_id="f-listing")
                            with gr.Row():
                                year_choices = ["any"] + [str(y) for y in sorted(set(years))]
                                year_from = gr.Dropdown(year_choices, value="any", label="From year", elem_id="f-year-from")
                                year_to = gr.Dropdown(year_choices, value="any", label="To year", elem_id="f-year-to")
                            category = gr.Dropdown(categories, multiselect=True, label="Category", elem_id="f-category")
                            has_code = gr.Checkbox(label="Only papers with code", elem_id="f-code")
                        sources = gr.HTML(sources_panel([]), elem_id="sources")

            with gr.Tab("Browse", id="browse"):
                search = gr.Textbox(label="Search", placeholder="words in title, authors, abstract, listing…",
                                    elem_id="browse-search")
                table = gr.Dataframe(papers_table(papers), interactive=False, wrap=True, max_height=520,
                                     elem_id="browse-table", column_widths=["40%", "18%", "9%", "8%", "6%", "12%", "7%"])
                card = gr.HTML('<p class="empty">Select a row to see the paper.</p>', elem_id="browse-card")

            with gr.Tab("Overview", id="overview"):
                gr.BarPlot(papers_per_year(papers), x="year", y="papers", color="listing", title="Papers per year and listing",
                           sort="x", color_map=colour_map(listing_names, PALETTE), height=320)
                map_colours = colour_map(listing_names, MAP_PALETTE) | {SOURCE_GROUP: SOURCE_COLOUR}
                corpus_plot = gr.ScatterPlot(
                    base_map, x="x", y="y", color="group", color_map=map_colours, tooltip=["title", "listing", "year"],
                    title="Corpus map (PCA of abstract embeddings); red: sources of the last answer",
                    x_title="PC 1", y_title="PC 2", height=480, elem_id="corpus-map")

            with gr.Tab("Settings", id="settings"):
                gr.Markdown(settings_markdown(assistant))
                export_button = gr.Button("Export conversation as Markdown", elem_id="export")
                export_file = gr.File(label="Markdown export", elem_id="export-file", interactive=False, height=90)

        ask_inputs = [question, turns_state, listing, year_from, year_to, category, has_code]
        ask_outputs = [question, chatbot, sources, turns_state]
        llm = dict(concurrency_limit=1, concurrency_id="llm")  # the LLM server answers one request at a time
        asks = [
            send.click(ask, ask_inputs, ask_outputs, api_name="ask", **llm),
            question.submit(ask, ask_inputs, ask_outputs, api_visibility="private", **llm),
        ]
        for button, text in zip(example_buttons, EXAMPLES):
            asks.append(button.click(lambda t=text: t, None, question, queue=False, api_visibility="private")
                        .then(ask, ask_inputs, ask_outputs, api_visibility="private", **llm))
        for event in asks:
            event.then(update_map, turns_state, corpus_plot, api_visibility="private")
        # Render once more after the stop: an update the answer sent just before the cancel may
        # arrive after stop()'s own and hide the "(stopped)" mark.
        stop_button.click(stop, turns_state, [chatbot, sources, turns_state], cancels=asks, api_name="stop").then(
            render, turns_state, [chatbot, sources], api_visibility="private")
        chatbot.clear(new_conversation, None, [chatbot, sources, turns_state, question], cancels=asks, api_visibility="private")
        new_chat.click(new_conversation, None, [chatbot, sources, turns_state, question], cancels=asks, api_name="new_conversation")
        search.change(browse, search, table, api_name="browse")
        table.select(select_paper, None, card, api_name="select_paper")
        export_button.click(export, turns_state, export_file, api_name="export")

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
        print(f"WARNING: serving on {host} without authentication; anyone who can reach it can use it.", flush=True)
        return None
    raise SystemExit(f"Refusing to bind to {host} without authentication: set RAG_UI_AUTH=user:password "
                     "(or RAG_UI_ALLOW_UNAUTHENTICATED=true to accept the risk).")


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
    """Build the index if there is none, then serve the app until Ctrl-C."""
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
    assistant.retriever.search("warm up", k=1)  # load the embedding model and BM25 now, not on the first question
    port = port or settings.ui_port
    # SIGTERM (e.g. `kill`) would skip the finally below and orphan the embedded LLM server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        demo = build_app(assistant)
        print(f"Paper assistant on http://{host}:{port}  (Ctrl-C stops it)", flush=True)
        demo.launch(server_name=host, server_port=port, share=False, inbrowser=False, quiet=True, auth=auth)
    finally:
        assistant.close()


if __name__ == "__main__":
    main()
