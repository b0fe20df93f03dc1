"""Questions about the paper table, computed from the records instead of guessed by the model:
counts, papers per year, newest/oldest, what X published in YEAR, co-authors, the Code badge,
which listing holds a paper, and profile stats a listing states (h-index, citations)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from rag.corpus.names import author_key, fold, name_matches
from rag.retrieve import Filters, Retriever
from rag.types import Paper

_INTENT_WORDS = set("""which what who whom whose how many much number count list show give tell me all any the a an of in on
by from for to with and or are is was were did does do has have had papers paper publications publication articles
article works work published publish wrote written write authored author authors co-author co-authors coauthors
coauthor most frequent frequently often newest latest recent most-recent oldest earliest first last year years per
each between since before after during until code badge available released listing listings listed list their his her
its they he she there that this these those about ever total overall altogether corpus collaborate collaborates
collaborated collaborators collaborator together""".split())


@dataclass
class TableAnswer:
    text: str
    papers: list[Paper] = field(default_factory=list)  # cited as [1], [2], ... in this order
    kind: str = ""
    refused: bool = False  # the records do not hold what was asked; papers are the nearest


def _fmt(paper: Paper) -> str:
    return f"{paper.label} ({paper.date or 'undated'})"


def _listing(papers: list[Paper], header: str, limit: int = 15) -> TableAnswer:
    shown = papers[:limit]
    lines = [header] + [f"{i}. {_fmt(p)} [{i}]" for i, p in enumerate(shown, start=1)]
    if len(papers) > limit:
        lines.append(f"… and {len(papers) - limit} more (use `rag papers` with the same filters to see all).")
    return TableAnswer("\n".join(lines), shown)


def topic_words(question: str, filters: Filters) -> list[str]:
    """Content words left once intent words, names and years are removed."""
    names = {fold(t) for a in filters.authors for t in a.split()}
    words = re.findall(r"[a-z][a-z0-9-]+", fold(question))
    return [w for w in words if w not in _INTENT_WORDS and w not in names and not re.fullmatch(r"(19|20)\d\d", w)]


def answer_from_table(question: str, retriever: Retriever, filters: Filters, profiles: dict[str, dict]) -> TableAnswer | None:
    """A computed answer, or None when the question is not about the table."""
    q = question.lower()
    papers = retriever.allowed_papers(filters)
    topic = topic_words(question, filters)
    who = " and ".join(filters.authors)

    # Stats a profile page states about its owner (h-index, citations): only where stated.
    if m := re.search(r"h-?index|citations? (?:count|number)|how many citations|novelty|ai score", q):
        for owner, stats in profiles.items():
            if any(name_matches(a, owner) for a in filters.authors):
                key = {"h": "h-index", "c": "citations", "n": "novelty", "a": "ai score"}[m.group(0)[0]]
                key = "citations" if "citation" in m.group(0) else key
                if key in stats:
                    return TableAnswer(f"{owner}'s profile page states: {key} {stats[key]} "
                                       f"(and {stats.get('papers', '?')} papers listed).", [], "profile")
        return None  # not stated: the refusal logic explains that

    if re.search(r"co-?authors?|collaborat|work(?:s|ed)? (?:most )?(?:often )?with|wrote .* together|papers? .* together", q) and filters.authors:
        if len(filters.authors) >= 2:  # papers X and Y wrote together
            joint = [p for p in retriever.index.papers
                     if all(any(name_matches(a, x) for x in p.authors + p.owners) for a in filters.authors)]
            joint.sort(key=lambda p: p.date or "", reverse=True)
            if not joint:
                return TableAnswer(f"No listed paper names both {who} as authors.", [], "joint")
            return _listing(joint, f"{len(joint)} papers list both {who}:")
        target = filters.authors[0]
        own = [p for p in retriever.index.papers if any(name_matches(target, a) for a in p.authors)
               or any(name_matches(target, o) for o in p.owners)]
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
            return None
        top = counts.most_common(5)
        cite_papers: list[Paper] = []
        lines = [f"Most frequent co-authors of {target} among the visible author lists of {len(own)} papers:"]
        for key, n in top:
            refs = []
            for p in cited[key][:3]:
                if p not in cite_papers:
                    cite_papers.append(p)
                refs.append(f"[{cite_papers.index(p) + 1}]")
            lines.append(f"- {display[key]}: {n} papers {' '.join(refs)}")
        lines.append("(Lists cut by \"et al.\" may hide further co-authors.)")
        return TableAnswer("\n".join(lines), cite_papers, "coauthors")

    # A field of one named paper: its authors or its date, said plainly when the listing lacks it.
    if m := re.search(r"\bwho (?:are|were|is) the authors? of\b|\bwho wrote\b|\bwhen was\b.*\b(?:published|released|posted)\b", q):
        hits = retriever.search(question, k=1, analyse=False).hits
        if hits and hits[0].bm25_rank == 1 and hits[0].dense_rank == 1:
            p = hits[0].paper
            if m.group(0).startswith("when"):
                if p.date:
                    return TableAnswer(f"{p.label} is dated {p.date} in its listing [1].", [p], "date")
                return TableAnswer(f"The listing gives no date for {p.label}; the listings don't say when it was "
                                   "published.", [p], "date", refused=True)
            if p.authors:
                more = " et al." if p.authors_truncated else ""
                return TableAnswer(f"{p.label} is by {', '.join(p.authors)}{more} [1].", [p], "authors")
            count = f" only that it has {p.n_authors} authors" if p.n_authors else " no authors"
            return TableAnswer(f"The listing names no authors for {p.label}: it states{count}. "
                               "The listings don't say who they are.", [p], "authors", refused=True)

    if re.search(r"\bwhich listings?\b|\bin which list|\blisted (?:in|on)\b|\bwhose list", q):
        hits = retriever.search(question, k=1, analyse=False).hits
        if hits:
            p = hits[0].paper
            owners = ", ".join(p.owners) or "unknown owner"
            return TableAnswer(f"{p.label} is in {len(p.listings)} listing(s): {', '.join(p.listings)} ({owners}) [1].", [p], "listing")

    if re.search(r"\b(?:more than one|several|multiple|two|both) listings?\b|\bin (?:two|both|several) lists\b", q):
        shared = [p for p in retriever.index.papers if len(p.listings) > 1]
        if not shared:
            return TableAnswer("No paper appears in more than one listing.", [], "shared")
        lines = [f"{len(shared)} paper(s) appear in more than one listing:"]
        lines += [f"{i}. {p.label}: {', '.join(p.listings)} ({', '.join(p.owners)}) [{i}]" for i, p in enumerate(shared, start=1)]
        return TableAnswer("\n".join(lines), shared, "shared")

    if re.search(r"\b(?:each|every|per|all(?: the)?) (?:of the )?(?:\w+ )?listings?\b|\blistings? (?:contain|hold|have)\b", q) \
            and re.search(r"how many|number|count", q):
        lines = [f"Papers per listing ({len(retriever.index.papers)} distinct papers in all; a paper in two listings counts in both):"]
        for report in retriever.index.reports:
            n = sum(1 for p in retriever.index.papers if report["listing"] in p.listings)
            lines.append(f"- {report['listing']} ({report.get('owner') or 'no owner'}, {report['layout']} layout): {n}")
        return TableAnswer("\n".join(lines), [], "per-listing")

    if re.search(r"\b(?:per|each|by) year\b|\byear by year\b", q):
        by_year = Counter(p.year for p in papers)
        rows = [f"- {y if y else 'undated'}: {n}" for y, n in sorted(by_year.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))]
        scope = f" ({filters.describe()})" if not filters.is_empty() else ""
        return TableAnswer(f"Papers per year{scope}, {len(papers)} in all:\n" + "\n".join(rows), [], "per-year")

    if re.search(r"^how many\b|\bnumber of (?:papers|publications)\b|\bcount\b", q) and not topic:
        scope = filters.describe() or "the whole corpus"
        dated = sorted(papers, key=lambda p: p.date or "", reverse=True)
        return _listing(dated, f"{len(papers)} papers ({scope}). Newest first:", limit=10) if papers else \
            TableAnswer(f"0 papers ({scope}).", [], "count")

    if m := re.search(r"\b(newest|latest|most recent|oldest|earliest|first)\b", q):
        newest = m.group(1) not in ("oldest", "earliest", "first")
        pool = papers
        if topic:
            hits = retriever.search(question, k=8, filters=filters).hits
            pool = [h.paper for h in hits if (h.dense_sim or 0) >= 0.35]
            if not pool:
                return None
        dated = sorted((p for p in pool if p.date), key=lambda p: p.date, reverse=newest)
        if not dated:
            return None
        best = dated[0]
        word = "newest" if newest else "oldest"
        scope = f" on {' '.join(topic)}" if topic else (f" ({filters.describe()})" if not filters.is_empty() else "")
        return TableAnswer(f"The {word} paper{scope} is {best.label}, dated {best.date} [1].", [best], word)

    if not topic and not filters.is_empty() and (filters.authors or filters.has_code or filters.year_from or filters.listings):
        dated = sorted(papers, key=lambda p: p.date or "", reverse=True)
        if not dated:
            return TableAnswer(f"No listed paper matches ({filters.describe()}).", [], "list")
        return _listing(dated, f"{len(dated)} papers ({filters.describe()}), newest first:")
    return None
