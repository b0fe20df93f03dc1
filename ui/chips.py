"""The query plan as chips above an answer: what was asked (intent), the filters in effect, the
spellings corrected and the topic words expanded. A filter, spelling or expansion chip can be
removed; the question is then asked again without it.

rag/ has no way to tell the analyser "not this inferred filter" (explicit filters only fill
what the question leaves empty), so the removal is done here: `without(assistant, drops)` is
the same assistant with an analyser that leaves the removed parts out of the plan (see
`EditedAnalyser`). Pure Python apart from that, no Gradio.
"""

from __future__ import annotations

import copy
import html
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote, unquote

from rag.answer import Assistant
from rag.query.analyse import QueryAnalyser
from rag.query.filters import Filters
from rag.query.lexicon import Token
from rag.query.plan import QueryPlan

CHIP_HREF = "#chip-"  # the chips' links: #chip-<turn>-<key>; the page's JS turns a click into a re-ask


@dataclass(frozen=True)
class Chip:
    """One part of a plan as shown: `key` names it for removal ("author:Harald Binder")."""

    key: str
    label: str
    kind: str  # intent | filter | side | topic | spelling | expansion
    origin: str = "question"  # "question" (inferred) or "panel" (the filters panel set it)

    @property
    def removable(self) -> bool:
        return self.kind in ("filter", "spelling", "expansion")


def filter_chips(filters: Filters, explicit: Filters | None = None) -> list[Chip]:
    """One chip per author, listing and category, one for the year range, one for code.
    A field the filters panel set is marked as coming from there."""
    explicit = explicit or Filters()

    def origin(panel_set: bool) -> str:
        return "panel" if panel_set else "question"

    chips = [
        Chip(f"author:{a}", f"author {a}", "filter", origin(bool(explicit.authors))) for a in filters.authors
    ]
    chips += [
        Chip(f"listing:{x}", f"listing {x}", "filter", origin(bool(explicit.listings)))
        for x in filters.listings
    ]
    if filters.year_from is not None or filters.year_to is not None:
        lo, hi = filters.year_from, filters.year_to
        label = f"year {lo}" if lo == hi else f"years {lo or '…'}–{hi or '…'}"
        panel = explicit.year_from is not None or explicit.year_to is not None
        chips.append(Chip(f"years:{lo or ''}-{hi or ''}", label, "filter", origin(panel)))
    chips += [
        Chip(f"category:{c}", f"category {c}", "filter", origin(bool(explicit.categories)))
        for c in filters.categories
    ]
    if filters.has_code is not None:
        label = "with code" if filters.has_code else "without code"
        chips.append(Chip(f"code:{filters.has_code}", label, "filter", origin(explicit.has_code is not None)))
    return chips


def plan_chips(plan: QueryPlan, explicit: Filters | None = None) -> list[Chip]:
    """The plan's chips, in reading order: intent, filters, sides, topic, spellings, expansions."""
    intent = str(plan.intent).replace("_", " ") + (f" {plan.k}" if plan.k else "")
    chips = [Chip("intent", intent, "intent")]
    chips += filter_chips(plan.filters, explicit)
    for side in plan.sides:
        described = side.filters.describe()
        chips.append(
            Chip(
                f"side:{side.label}",
                f"side {side.label}"
                + (f" ({described})" if described and side.label not in described else ""),
                "side",
            )
        )
    if plan.paper_label:
        chips.append(Chip("paper", f"paper “{plan.paper_label[:60]}”", "topic"))
    if plan.topic:
        chips.append(Chip("topic", f"topic “{plan.topic}”", "topic"))
    chips += [Chip(f"spelling:{t}", f"{t}→{c}", "spelling") for t, c in plan.corrections.items()]
    chips += [Chip(f"expansion:{t}", f"{t}→{c}", "expansion") for t, c in plan.expansions.items()]
    return chips


def chip_href(turn_no: int, key: str) -> str:
    return f"{CHIP_HREF}{turn_no}-{quote(key, safe=':')}"


def chip_link(turn_no: int, key: str, sign: str, title: str) -> str:
    return f' <a class="chip-x" href="{chip_href(turn_no, key)}" title="{title}">{sign}</a>'


def parse_chip_target(target: str) -> tuple[int, str] | None:
    """(turn number, chip key) from what a chip's link carries: "3-author:Harald%20Binder"."""
    target = (target or "").strip().removeprefix(CHIP_HREF)
    number, _, key = target.partition("-")
    if not number.isdigit() or not key:
        return None
    return int(number), unquote(key)


def chips_html(chips: list[Chip], turn_no: int, editable: bool, removed: list[Chip] | None = None) -> str:
    """The chips as one line of HTML. With `editable`, removable chips carry an × (remove and
    re-ask) and removed ones are shown struck through with a ↺ (put back and re-ask)."""
    e = html.escape
    parts = []
    for chip in chips:
        title = "from the filters panel" if chip.origin == "panel" else "read from the question"
        x = ""
        if editable and chip.removable:
            x = chip_link(turn_no, chip.key, "×", "remove and ask again")
        parts.append(
            f'<span class="chip {chip.kind} {chip.origin}" title="{e(title)}">{e(chip.label)}{x}</span>'
        )
    for chip in removed or []:
        back = ""
        if editable:
            back = chip_link(turn_no, chip.key, "↺", "put back and ask again")
        parts.append(
            f'<span class="chip removed {chip.kind}" title="removed"><s>{e(chip.label)}</s>{back}</span>'
        )
    return f'<div class="plan-chips">{"".join(parts)}</div>'


# --- asking again without a chip ------------------------------------------------------------------


def without_filter(filters: Filters, key: str) -> Filters:
    """`filters` with the filter a chip key names taken out (unchanged for any other key)."""
    kind, _, value = key.partition(":")
    out = copy.deepcopy(filters)
    if kind == "author":
        out.authors = [a for a in out.authors if a != value]
    elif kind == "listing":
        out.listings = [x for x in out.listings if x != value]
    elif kind == "category":
        out.categories = [c for c in out.categories if c != value]
    elif kind == "years":
        out.year_from = out.year_to = None
    elif kind == "code":
        out.has_code = None
    return out


class EditedAnalyser(QueryAnalyser):
    """The analyser of an index, sharing all its corpus state, that leaves out of each plan
    what the reader removed: inferred filters (after the explicit ones are merged in), typed
    words it must not correct (before the intent is decided from them) and expansions."""

    def __init__(self, base: QueryAnalyser, drops: list[str]):
        self.__dict__.update(base.__dict__)  # no super().__init__(): the corpus state is base's
        self.drops = list(drops)
        self.keep_typed = {k.partition(":")[2] for k in drops if k.startswith("spelling:")}

    def correct(self, tokens: list[Token]) -> tuple[list[Token], dict[str, str]]:
        fixed, corrections = super().correct(tokens)
        kept = [
            typed if typed.text in self.keep_typed else new for typed, new in zip(tokens, fixed, strict=True)
        ]
        return kept, {t: c for t, c in corrections.items() if t not in self.keep_typed}

    def analyse(self, question: str, explicit: Filters | None = None, today: date | None = None) -> QueryPlan:
        plan = super().analyse(question, explicit, today)
        for key in self.drops:
            kind, _, value = key.partition(":")
            if kind == "expansion":
                plan.expansions.pop(value, None)
            elif kind != "spelling":
                plan.filters = without_filter(plan.filters, key)
        if self.drops:
            plan.notes.append("left out on request: " + ", ".join(self.drops))
        return plan


def without(assistant: Assistant, drops: list[str]) -> Assistant:
    """`assistant` for one question whose plan leaves out the chips in `drops`; the index,
    models and LLM are shared (a shallow copy with its own analyser, so other sessions asking
    at the same time are not affected)."""
    if not drops:
        return assistant
    edited = copy.copy(assistant)
    edited.analyser = EditedAnalyser(assistant.analyser, drops)
    return edited
