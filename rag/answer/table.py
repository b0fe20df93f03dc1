"""Answers computed from the records, one small handler per table intent of the plan. Each
handler cites what it lists and returns the computed facts (`checks`) beside the text."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from rag import prompts
from rag.answer.members import membership
from rag.config import AnswerSettings
from rag.corpus.names import author_key, name_matches
from rag.query.filters import Filters
from rag.query.plan import Intent, QueryPlan
from rag.retrieve import Retriever
from rag.types import Paper


@dataclass
class TableAnswer:
    text: str
    papers: list[Paper] = dataclasses.field(default_factory=list)  # cited as [1], [2], … in this order
    kind: str = ""
    refused: bool = False  # the records do not hold what was asked; papers are the nearest
    checks: dict = dataclasses.field(default_factory=dict)  # the computed facts: ids, number, by_year, …


def answer_from_table(plan: QueryPlan, retriever: Retriever, profiles: dict[str, dict]) -> TableAnswer:
    """The computed answer to a plan whose intent is a table intent."""
    handler = HANDLERS[plan.intent]
    return handler(Context(plan, retriever, profiles))


@dataclass
class Context:
    plan: QueryPlan
    retriever: Retriever
    profiles: dict[str, dict]

    @property
    def cfg(self) -> AnswerSettings:
        """Limits of computed answers: list_limit, count_limit, top_coauthors, compare_shown."""
        return self.retriever.settings.answer

    @property
    def filters(self) -> Filters:
        return self.plan.filters

    def papers(self) -> list[Paper]:
        """The papers the filters allow, and, when the plan has a topic, that are about it."""
        if self.plan.topic:
            return topic_members(self.plan, self.retriever)
        return self.retriever.allowed_papers(self.filters)

    def scope(self) -> str:
        parts = [self.filters.describe()] + (
            [prompts.TOPIC_SCOPE.format(topic=self.plan.topic)] if self.plan.topic else []
        )
        return ", ".join(p for p in parts if p)


def topic_members(plan: QueryPlan, retriever: Retriever) -> list[Paper]:
    return [h.paper for h in membership(plan, retriever).members]


def newest_first(papers: list[Paper]) -> list[Paper]:
    return sorted(papers, key=lambda p: p.date or "", reverse=True)


def numbered(papers: list[Paper], header: str, limit: int) -> TableAnswer:
    shown = papers[:limit]
    lines = [header] + [
        prompts.TABLE_ITEM.format(i=i, label=p.label, date=p.date or "undated")
        for i, p in enumerate(shown, start=1)
    ]
    if len(papers) > limit:
        lines.append(prompts.TABLE_MORE.format(n=len(papers) - limit))
    return TableAnswer(
        "\n".join(lines), shown, checks={"ids": [p.paper_id for p in papers], "number": len(papers)}
    )


# --- one handler per intent -------------------------------------------------------------------


def _filtered(ctx: Context, kind: str, header: str, none: str, limit: int) -> TableAnswer:
    """The papers of the plan, newest first, under a header; `none` when there are none."""
    papers = newest_first(ctx.papers())
    scope = ctx.scope() or prompts.TABLE_SCOPE_ALL
    if not papers:
        return TableAnswer(none.format(scope=scope), kind=kind, checks={"ids": [], "number": 0})
    answer = numbered(papers, header.format(n=len(papers), scope=scope), limit)
    answer.kind = kind
    return answer


def count(ctx: Context) -> TableAnswer:
    return _filtered(ctx, "count", prompts.COUNT_HEADER, prompts.COUNT_NONE, ctx.cfg.count_limit)


def listing(ctx: Context) -> TableAnswer:
    return _filtered(ctx, "list", prompts.LIST_HEADER, prompts.LIST_NONE, ctx.cfg.list_limit)


def ordered(ctx: Context) -> TableAnswer:
    newest = ctx.plan.intent is Intent.NEWEST
    word = "newest" if newest else "oldest"
    dated = sorted((p for p in ctx.papers() if p.date), key=lambda p: p.date or "", reverse=newest)
    scope = f" ({ctx.scope()})" if ctx.scope() else ""
    k = ctx.plan.k or 1
    if not dated:
        return TableAnswer(
            prompts.ORDER_NONE.format(scope=scope, word=word), kind=word, refused=True, checks={"ids": []}
        )
    top = dated[:k]
    checks = {"ids": [p.paper_id for p in top]}
    if k == 1:
        best = top[0]
        text = prompts.ORDER_ONE.format(word=word, scope=scope, label=best.label, date=best.date)
        return TableAnswer(text, top, word, checks=checks)
    answer = numbered(top, prompts.ORDER_MANY.format(k=len(top), word=word, scope=scope), k)
    answer.kind, answer.checks = word, checks
    return answer


def per_year(ctx: Context) -> TableAnswer:
    papers = ctx.papers()
    by_year = Counter(p.year for p in papers)
    rows = [
        prompts.PER_YEAR_ROW.format(year=y or "undated", n=n)
        for y, n in sorted(by_year.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
    ]
    scope = f" ({ctx.scope()})" if ctx.scope() else ""
    text = "\n".join([prompts.PER_YEAR_HEADER.format(scope=scope, n=len(papers)), *rows])
    return TableAnswer(
        text,
        [],
        "per-year",
        checks={"by_year": {str(y or "undated"): n for y, n in by_year.items()}, "number": len(papers)},
    )


def per_listing(ctx: Context) -> TableAnswer:
    papers = ctx.papers()
    scope = f" ({ctx.scope()})" if ctx.scope() else ""
    lines = [prompts.PER_LISTING_HEADER.format(scope=scope, n=len(papers))]
    by_listing = {}
    for report in ctx.retriever.index.reports:
        n = sum(1 for p in papers if report.listing in p.listings)
        owner = report.owner or "no owner"
        lines.append(
            prompts.PER_LISTING_ROW.format(listing=report.listing, owner=owner, layout=report.layout, n=n)
        )
        if n:
            by_listing[owner] = n
    return TableAnswer("\n".join(lines), [], "per-listing", checks={"by_listing": by_listing})


def coauthors(ctx: Context) -> TableAnswer:
    target = ctx.filters.authors[0]
    own = ctx.retriever.allowed_papers(dataclasses.replace(ctx.filters, authors=[target]))
    counts: Counter[str] = Counter()
    display: dict[str, str] = {}
    cited: dict[str, list[Paper]] = {}
    for p in own:
        for a in p.authors:
            if name_matches(target, a):
                continue
            key = author_key(a)
            counts[key] += 1
            display.setdefault(key, a)
            cited.setdefault(key, []).append(p)
    if not counts:
        return TableAnswer(prompts.COAUTHORS_NONE.format(who=target), [], "coauthors", refused=True)
    cite: list[Paper] = []
    lines = [prompts.COAUTHORS_HEADER.format(who=target, n=len(own))]
    for key, n in counts.most_common(ctx.cfg.top_coauthors):
        refs = []
        for p in cited[key][:3]:
            if p not in cite:
                cite.append(p)
            refs.append(f"[{cite.index(p) + 1}]")
        lines.append(prompts.COAUTHORS_ROW.format(name=display[key], n=n, refs=" ".join(refs)))
    lines.append(prompts.COAUTHORS_NOTE)
    top = [display[key] for key, _ in counts.most_common(ctx.cfg.top_coauthors)]
    return TableAnswer("\n".join(lines), cite, "coauthors", checks={"top": top})


def joint(ctx: Context) -> TableAnswer:
    """Papers by every named person (each by the author rule), within the other filters."""
    people = ctx.filters.authors
    sets = [
        {p.paper_id for p in ctx.retriever.allowed_papers(dataclasses.replace(ctx.filters, authors=[who]))}
        for who in people
    ]
    both = set.intersection(*sets) if sets else set()
    papers = newest_first([p for p in ctx.retriever.index.papers if p.paper_id in both])
    who = " and ".join(people)
    if not papers:
        return TableAnswer(prompts.JOINT_NONE.format(who=who), [], "joint", checks={"ids": [], "number": 0})
    answer = numbered(papers, prompts.JOINT_HEADER.format(n=len(papers), who=who), ctx.cfg.list_limit)
    answer.kind = "joint"
    return answer


def shared(ctx: Context) -> TableAnswer:
    papers = [p for p in ctx.retriever.allowed_papers(ctx.filters) if len(p.listings) > 1]
    if not papers:
        return TableAnswer(prompts.SHARED_NONE, [], "shared", checks={"ids": [], "number": 0})
    lines = [prompts.SHARED_HEADER.format(n=len(papers))]
    lines += [
        prompts.TABLE_ITEM_LISTINGS.format(
            i=i, label=p.label, listings=", ".join(p.listings), owners=", ".join(p.owners)
        )
        for i, p in enumerate(papers, start=1)
    ]
    return TableAnswer(
        "\n".join(lines),
        papers,
        "shared",
        checks={"ids": [p.paper_id for p in papers], "number": len(papers)},
    )


def field(ctx: Context) -> TableAnswer:
    paper = ctx.retriever.index.by_id[ctx.plan.paper_id or ""]
    render = FIELD_RENDERERS[ctx.plan.field or "authors"]
    text, refused = render(paper)
    return TableAnswer(
        text, [paper], f"field-{ctx.plan.field}", refused=refused, checks={"ids": [paper.paper_id]}
    )


def _authors(p: Paper) -> tuple[str, bool]:
    if p.authors:
        more = " et al." if p.authors_truncated else ""
        return prompts.FIELD_AUTHORS.format(label=p.label, authors=", ".join(p.authors), more=more), False
    count_ = f" only that it has {p.n_authors} authors" if p.n_authors else " no authors"
    return prompts.FIELD_NO_AUTHORS.format(label=p.label, count=count_), True


def _date(p: Paper) -> tuple[str, bool]:
    if p.date:
        return prompts.FIELD_DATE.format(label=p.label, date=p.date), False
    return prompts.FIELD_NO_DATE.format(label=p.label), True


def _category(p: Paper) -> tuple[str, bool]:
    if p.category:
        return prompts.FIELD_CATEGORY.format(label=p.label, category=p.category), False
    return prompts.FIELD_NO_CATEGORY.format(label=p.label), True


def _listing(p: Paper) -> tuple[str, bool]:
    owners = ", ".join(p.owners) or "unknown owner"
    return prompts.FIELD_LISTING.format(
        label=p.label, n=len(p.listings), listings=", ".join(p.listings), owners=owners
    ), False


def _n_authors(p: Paper) -> tuple[str, bool]:
    if p.n_authors or (p.authors and not p.authors_truncated):
        n = p.n_authors or len(p.authors)
        visible = f" ({', '.join(p.authors)})" if p.authors and not p.authors_truncated else ""
        return prompts.FIELD_N_AUTHORS.format(label=p.label, n=n, visible=visible), False
    return prompts.FIELD_NO_N_AUTHORS.format(label=p.label, n=len(p.authors)), True


FIELD_RENDERERS: dict[str, Callable[[Paper], tuple[str, bool]]] = {
    "authors": _authors,
    "date": _date,
    "category": _category,
    "listing": _listing,
    "n_authors": _n_authors,
}


def profile(ctx: Context) -> TableAnswer:
    """A statistic a profile page states; the chain refuses before this when none states it."""
    for owner, stats in ctx.profiles.items():
        if any(name_matches(a, owner) for a in ctx.filters.authors) and ctx.plan.stat in stats:
            text = prompts.PROFILE_STAT.format(
                owner=owner, stat=ctx.plan.stat, value=stats[ctx.plan.stat], papers=stats.get("papers", "?")
            )
            return TableAnswer(text, [], "profile", checks={"value": stats[ctx.plan.stat]})
    return TableAnswer(
        prompts.REFUSAL_NOT_IN_RECORDS.format(what=f"the {ctx.plan.stat}"), [], "profile", refused=True
    )


def compare_counts(ctx: Context) -> TableAnswer:
    """A comparison with no topic ("who has more papers, X or Y?"): each side's papers counted,
    its newest few cited."""
    sides = [
        (side.label, newest_first(ctx.retriever.allowed_papers(side.filters.merged(ctx.filters))))
        for side in ctx.plan.sides
    ]
    scope = ctx.filters.describe() or prompts.TABLE_SCOPE_ALL
    lines = [prompts.COMPARE_COUNTS_HEADER.format(scope=scope)]
    cited: list[Paper] = []
    for label, papers in sides:
        shown = papers[: ctx.cfg.compare_shown]
        refs = "".join(f"[{len(cited) + i}]" for i in range(1, len(shown) + 1))
        cited += shown
        lines.append(prompts.COMPARE_COUNTS_SIDE.format(label=label, n=len(papers), refs=refs).rstrip())
    most = max(len(papers) for _, papers in sides)
    leaders = [label for label, papers in sides if len(papers) == most]
    lines.append(
        prompts.COMPARE_COUNTS_TIE.format(labels=" and ".join(leaders))
        if len(leaders) > 1
        else prompts.COMPARE_COUNTS_MORE.format(label=leaders[0])
    )
    counts = {label: len(papers) for label, papers in sides}
    return TableAnswer("\n".join(lines), cited, kind="compare_counts", checks={"by_side": counts})


HANDLERS: dict[Intent, Callable[[Context], TableAnswer]] = {
    Intent.COMPARE: compare_counts,
    Intent.COUNT: count,
    Intent.LIST: listing,
    Intent.NEWEST: ordered,
    Intent.OLDEST: ordered,
    Intent.PER_YEAR: per_year,
    Intent.PER_LISTING: per_listing,
    Intent.COAUTHORS: coauthors,
    Intent.JOINT: joint,
    Intent.SHARED: shared,
    Intent.FIELD: field,
    Intent.PROFILE: profile,
}
