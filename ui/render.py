"""Pure rendering for the chat UI: source cards, clickable citations, the sources panel and the
Markdown export. No Gradio here, so every function is easy to test on its own."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from rag.answer import Source
from rag.answer.citations import CITATION_RE, cited_numbers
from rag.query.filters import Filters
from rag.query.plan import QueryPlan
from rag.types import Paper
from ui.chips import Chip, chips_html, plan_chips
from ui.mathtext import plain_math

MAX_AUTHORS_SHOWN = 8


@dataclass
class Turn:
    """One question and its answer, as the UI keeps it in the session state."""

    question: str
    answer: str = ""
    status: str = ""
    sources: list[Source] = field(default_factory=list)
    citations: list[Source] = field(default_factory=list)
    standalone: str = ""
    kind: str = (
        "rag"  # as Answer.kind, or "stopped"; "error" and "stopped" turns are not sent back as history
    )
    filters: str = ""
    error: str = ""
    finished: bool = False
    plan: QueryPlan | None = None  # the QueryPlan of the question (EventKind.PLAN), for the plan chips
    explicit: Filters | None = None  # what the filters panel set when it was asked
    drops: list[str] = field(default_factory=list)  # keys of the chips the reader removed
    removed: list[Chip] = field(default_factory=list)  # those chips, shown struck through

    @property
    def editable(self) -> bool:
        """Its chips can be removed: a finished answer (the app allows it on the latest only)."""
        return self.finished and self.kind not in ("stopped", "error") and self.plan is not None


def anchor(turn_no: int, n: int) -> str:
    """Card ids carry the turn number, so citations of earlier answers keep pointing at their
    own papers after a new answer replaces the visible sources."""
    return f"src-{turn_no}-{n}"


def link_citations(text: str, turn_no: int, sources: list[Source]) -> str:
    """`[n]` -> a link to card n of this turn, titled with the paper; a group `[1, 2]` -> one
    `[n]` link per number. Numbers that name no source stay plain text (a group with none
    that does stays as written)."""

    def one(n: int) -> str:
        if not 1 <= n <= len(sources):
            return f"[{n}]"
        title = html.escape(plain_math(sources[n - 1].paper.label), quote=True)
        return f'<a class="cite" href="#{anchor(turn_no, n)}" title="{title}">[{n}]</a>'

    def link(match: re.Match) -> str:
        numbers = cited_numbers(match.group(0))
        if not any(1 <= n <= len(sources) for n in numbers):
            return match.group(0)
        return "".join(one(n) for n in numbers)

    return CITATION_RE.sub(link, text)


def highlight(abstract: str, evidence: list[str]) -> str:
    """The abstract as HTML with each evidence sentence wrapped in <mark>; LaTeX fragments as
    plain text (ui/mathtext.py)."""
    spans = []
    for sentence in evidence:
        start = abstract.find(sentence)
        if sentence and start >= 0:
            spans.append((start, start + len(sentence)))
    out, pos = [], 0
    for start, end in sorted(spans):
        if start < pos:  # overlapping evidence: already marked
            continue
        out.append(html.escape(plain_math(abstract[pos:start])))
        out.append(f"<mark>{html.escape(plain_math(abstract[start:end]))}</mark>")
        pos = end
    out.append(html.escape(plain_math(abstract[pos:])))
    return "".join(out)


def authors_text(paper: Paper) -> str:
    if not paper.authors:
        return f"{paper.n_authors} authors (names not listed)" if paper.n_authors else "authors not listed"
    return paper.author_names(MAX_AUTHORS_SHOWN)


def paper_card(
    paper: Paper, evidence: list[str] | None = None, n: int | None = None, card_id: str | None = None
) -> str:
    """One paper as an HTML card: number, title, authors, date, category, listing, Code badge,
    abstract with the evidence highlighted."""
    e = html.escape
    badges = []
    if paper.category:
        badges.append(f'<span class="badge cat">{e(paper.category)}</span>')
    if paper.has_code:
        badges.append('<span class="badge code">Code</span>')
    number = f'<span class="num">[{n}]</span> ' if n is not None else ""
    title_class = "title" if paper.title else "title untitled"
    meta = " · ".join([e(paper.date or "undated"), "listing: " + e(paper.owner or ", ".join(paper.listings))])
    id_attr = f' id="{card_id}"' if card_id else ""
    return (
        f'<div class="card"{id_attr} data-paper-id="{e(paper.paper_id)}">'
        f'<div class="{title_class}">{number}{e(plain_math(paper.label))} {"".join(badges)}</div>'
        f'<div class="authors">{e(authors_text(paper))}</div>'
        f'<div class="meta">{meta}</div>'
        f'<div class="abstract">{highlight(paper.abstract, evidence or [])}</div></div>'
    )


def turn_sources(turn: Turn, turn_no: int) -> str:
    cards = "".join(paper_card(s.paper, s.evidence, s.n, anchor(turn_no, s.n)) for s in turn.sources)
    return cards or '<p class="empty">No sources for this answer.</p>'


def sources_panel(turns: list[Turn]) -> str:
    """Cards of the newest answer on top; those of earlier answers folded underneath."""
    if not turns:
        return (
            '<div class="sources"><p class="empty">'
            "Ask a question: the papers behind the answer appear here.</p></div>"
        )
    last_no = len(turns)
    parts = [
        f'<div class="sources"><section class="turn latest" data-turn="{last_no}">'
        f"<h4>Sources for: {html.escape(turns[-1].question[:120]) or '(empty question)'}</h4>"
        f"{turn_sources(turns[-1], last_no)}</section>"
    ]
    earlier = [(i, t) for i, t in enumerate(turns[:-1], start=1) if t.sources]
    if earlier:
        parts.append(
            f'<details class="earlier"><summary>Sources of earlier answers ({len(earlier)})</summary>'
        )
        for i, t in reversed(earlier):
            parts.append(
                f'<section class="turn" data-turn="{i}"><h4>Q{i}: {html.escape(t.question[:120])}</h4>'
                f"{turn_sources(t, i)}</section>"
            )
        parts.append("</details>")
    parts.append("</div>")
    return "".join(parts)


def records_note(turn: Turn) -> str:
    """Under a computed answer: that it was counted from the records, and over which papers."""
    plan = turn.plan
    scope = (plan.filters.describe() if plan else turn.filters) or "all papers"
    if plan and plan.sides:
        scope += "; " + "; ".join(f"{s.label}: {s.filters.describe() or 'all papers'}" for s in plan.sides)
    return f"computed from the records (no language model) · filter: {scope}"


def answer_markdown(turn: Turn, turn_no: int, editable: bool = False) -> str:
    """What the chat shows for a turn's answer: the plan's chips, then the text with linked
    citations (or the status), then the filters it used."""
    parts = []
    if turn.plan is not None:
        chips = plan_chips(turn.plan, turn.explicit)
        parts.append(chips_html(chips, turn_no, editable and turn.editable, turn.removed))
    if turn.answer:
        parts.append(link_citations(turn.answer, turn_no, turn.sources))
    elif turn.status and not turn.finished:
        parts.append(f"*{html.escape(turn.status)}…*")
    if turn.kind == "stopped":
        parts.append("*(stopped)*")
    if turn.error and turn.error not in turn.answer:
        parts.append(f"**Error:** {html.escape(turn.error)}")
    if turn.finished and turn.kind == "table":
        parts.append(f'<span class="filters-used records">{html.escape(records_note(turn))}</span>')
    elif turn.finished and turn.filters:
        parts.append(f'<span class="filters-used">filters: {html.escape(turn.filters)}</span>')
    return "\n\n".join(parts)


def chat_messages(turns: list[Turn]) -> list[dict]:
    """The chat's messages; only the latest answer's chips can be removed (removing one asks
    that question again, which would make the answers after an earlier one stale)."""
    messages = []
    for i, turn in enumerate(turns, start=1):
        messages.append({"role": "user", "content": turn.question or "(empty question)"})
        messages.append({"role": "assistant", "content": answer_markdown(turn, i, editable=i == len(turns))})
    return messages


def history(turns: list[Turn]) -> list[dict]:
    """The conversation as rag.answer.Assistant.stream() takes it; failed turns are left out."""
    out = []
    for turn in turns:
        if turn.kind in ("error", "stopped") or not turn.finished:
            continue
        out.append({"role": "user", "content": turn.question, "standalone": turn.standalone or turn.question})
        out.append({"role": "assistant", "content": turn.answer})
    return out


def reference(source: Source) -> str:
    p = source.paper
    return (
        f"[{source.n}] {p.label}. {authors_text(p)}. {p.date or 'undated'}"
        f"{', ' + p.category if p.category else ''}. Listing: {p.owner or ', '.join(p.listings)}. "
        f"paper_id {p.paper_id}"
    )


def export_markdown(turns: list[Turn], model: str = "") -> str:
    """The conversation as Markdown: each question, its answer, and the papers it cites."""
    lines = ["# Conversation with the paper assistant", ""]
    if model:
        lines += [f"Model: {model}", ""]
    if not turns:
        lines.append("(no questions asked yet)")
    for i, turn in enumerate(turns, start=1):
        lines += [
            f"## Q{i}: {turn.question or '(empty question)'}",
            "",
            turn.answer or turn.error or "(no answer)",
            "",
        ]
        if turn.citations:
            lines += ["References:", ""] + [f"- {reference(s)}" for s in turn.citations] + [""]
    return "\n".join(lines).rstrip() + "\n"
