"""The answer chain: follow-up rewriting -> one `QueryPlan` -> a composer for its intent
(computed table answers, refusals, comparisons, or retrieval + generation) -> citation check.

The plan is computed once per question, here, and passed down; nothing after it re-reads
the question's text to decide what was asked.
"""

from __future__ import annotations

import re
import time
from collections.abc import Generator, Iterator

from rag import prompts
from rag.answer import compare, lists, refusal
from rag.answer.generate import Generated, fact_evidence, select_evidence, source_block, stream_answer
from rag.answer.members import Membership, membership
from rag.answer.records import Answer, AnswerKind, Event, EventKind, Source
from rag.answer.rewrite import is_followup, rewrite
from rag.answer.table import answer_from_table
from rag.config import AnswerSettings, Settings, get_settings
from rag.index import PaperIndex
from rag.llm import LLM, LLMUnavailable
from rag.query import lexicon as lx
from rag.query.fallback import plan_fallback
from rag.query.filters import Filters
from rag.query.plan import Intent, QueryPlan
from rag.retrieve import Retriever
from rag.types import SearchHit

# Limits and thresholds: settings.answer (rag/config.py), read as `self.cfg` below.
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def clean_question(question: str | None) -> str:
    question = _ANSI_RE.sub("", (question or "").replace("\x00", ""))
    return "".join(ch for ch in question if ch.isprintable() or ch in "\n\t").strip()


class Assistant:
    """The public API shared by the CLI and the UI: `ask()` for a whole answer, `stream()` for events."""

    def __init__(
        self,
        settings: Settings | None = None,
        index: PaperIndex | None = None,
        llm: LLM | None = None,
        generate: bool = True,
    ):
        self.settings = settings or get_settings()
        self.index = index or PaperIndex(self.settings)
        self.retriever = Retriever(self.index)
        self.analyser = self.retriever.analyser
        self.llm = llm or LLM(self.settings)
        # settings.query.llm_fallback (off by default): the LLM may fill a plan no rule placed.
        self.analyser.fallback = plan_fallback(self.llm, self.settings.query)
        self.generate = generate  # False: stop at the sources (evaluation of retrieval and plans)
        self.profiles = {r.owner: r.profile for r in self.index.reports if r.owner and r.profile}

    def ask(self, question: str, history: list[dict] | None = None, filters: Filters | None = None) -> Answer:
        answer = None
        for event in self.stream(question, history, filters):
            if event.kind == EventKind.DONE:
                answer = event.data
        assert answer is not None
        return answer

    def plan(self, question: str, filters: Filters | None = None) -> QueryPlan:
        """How a standalone question is understood (`rag plan`)."""
        return self.analyser.analyse(clean_question(question), filters)

    def close(self) -> None:
        self.llm.close()

    # --- the steps ------------------------------------------------------------------------

    def stream(
        self, question: str, history: list[dict] | None = None, filters: Filters | None = None
    ) -> Iterator[Event]:
        run = _Run(self, clean_question(question), history or [], filters)
        yield from run.events()


class _Run:
    """One question on its way through the chain, with its timings."""

    def __init__(self, assistant: Assistant, question: str, history: list[dict], filters: Filters | None):
        self.a = assistant
        self.question = question
        self.history = history
        self.explicit = filters
        self.start = time.perf_counter()
        self.timings: dict[str, float | None] = {"retrieval_s": None, "first_token_s": None, "total_s": None}
        self.standalone = question
        self.plan: QueryPlan | None = None

    @property
    def cfg(self) -> AnswerSettings:
        return self.a.settings.answer

    def clock(self) -> float:
        return round(time.perf_counter() - self.start, 3)

    def answer(
        self,
        text: str,
        kind: str,
        sources: list[Source] | None = None,
        cited: list[int] | None = None,
        refused: bool = False,
        model: str | None = None,
        **extra,
    ) -> Event:
        sources = sources or []
        self.timings["total_s"] = self.clock()
        plan = self.plan
        answer = Answer(
            self.question,
            text,
            refused,
            [sources[n - 1] for n in (cited or [])],
            sources,
            model or self.a.llm.model_name,
            self.timings,
            self.standalone,
            kind=kind,
            filters=plan.filters.describe() if plan else "",
            plan=plan.to_json() if plan else None,
            **extra,
        )
        return Event(EventKind.DONE, answer)

    def events(self) -> Iterator[Event]:
        q = self.question
        if not q or not re.search(r"\w", q):
            yield self.answer(prompts.EMPTY_QUESTION, AnswerKind.ERROR)
            return
        if len(q) > self.cfg.max_question_chars:
            self.question = q[:200]
            yield self.answer(
                prompts.QUESTION_TOO_LONG.format(n=len(q), limit=self.cfg.max_question_chars),
                AnswerKind.ERROR,
            )
            return
        if refusal.INJECTION_RE.search(q):
            yield self.answer(
                prompts.OUT_OF_SCOPE,
                AnswerKind.REFUSAL,
                refused=True,
                checks={"reason": "instructions in the question"},
            )
            return
        yield Event(EventKind.STATUS, "understanding the question")
        try:
            self.standalone = rewrite(self.a.llm, q, self.history, self.cfg)
        except LLMUnavailable as exc:
            yield Event(EventKind.ERROR, str(exc))
            yield self.answer(str(exc), AnswerKind.ERROR)
            return
        self.plan = self.a.analyser.analyse(self.standalone, self.explicit)  # the one analysis
        self.plan.is_followup = is_followup(q, self.history)
        yield Event(EventKind.PLAN, self.plan)
        yield from self.compose(self.plan)

    def compose(self, plan: QueryPlan) -> Iterator[Event]:
        if plan.computed:
            yield from self.from_table(plan)
        else:
            yield from self.from_abstracts(plan)

    def from_table(self, plan: QueryPlan) -> Iterator[Event]:
        table = answer_from_table(plan, self.a.retriever, self.a.profiles)
        self.timings["retrieval_s"] = self.clock()
        sources = [Source(i, p, []) for i, p in enumerate(table.papers, start=1)]
        yield Event(EventKind.SOURCES, sources)
        self.timings["first_token_s"] = self.clock()
        yield Event(EventKind.TOKEN, table.text)
        checks = {"reason": table.kind, **table.checks} if table.refused else dict(table.checks)
        kind = AnswerKind.REFUSAL if table.refused else AnswerKind.TABLE
        cited = [] if table.refused else list(range(1, len(sources) + 1))
        yield self.answer(table.text, kind, sources, cited, table.refused, model="table", checks=checks)

    def from_abstracts(self, plan: QueryPlan) -> Iterator[Event]:
        if plan.intent is Intent.COMPARE and plan.sides:
            yield from self.comparison(plan)
            return
        yield Event(EventKind.STATUS, "searching the papers")
        found = membership(plan, self.a.retriever) if plan.topic else None
        listing = plan.intent is Intent.TOPIC_LIST and found is not None and not found.members
        if found is not None and (found.near_miss() or listing) and plan.unheld is None and not plan.paper_id:
            yield from self.near_miss(found)
            return
        if plan.intent is Intent.TOPIC_LIST and found is not None and found.members:
            yield from self.topic_list(plan, found.members[: self.cfg.list_sources])
            return
        yield from self.fact(plan)

    def topic_list(self, plan: QueryPlan, members: list[SearchHit]) -> Iterator[Event]:
        """The whole list at once, computed; then at most three sentences of synthesis."""
        self.timings["retrieval_s"] = self.clock()
        sources = select_evidence(
            self.a.retriever.embed_model,
            self.standalone,
            members,
            self.cfg.list_evidence,
            lexical_bonus=self.cfg.lexical_bonus,
        )
        text = lists.topic_list_text(plan, sources)
        yield Event(EventKind.SOURCES, sources)
        self.timings["first_token_s"] = self.clock()
        yield Event(EventKind.TOKEN, text)
        shown = sources[: self.cfg.list_papers]
        prompt = lists.synthesis_prompt(self.standalone, shown)
        yield from self.listed_then_model(text, sources, prompt, shown, {"members": len(members)})

    def near_miss(self, found: Membership) -> Iterator[Event]:
        """No paper covers every facet (or a listed topic): say so, and show the nearest per facet."""
        self.timings["retrieval_s"] = self.clock()
        nearest = found.nearest(self.cfg.nearest_per_facet)
        hits = list({h.paper.paper_id: h for group in nearest.values() for h in group}.values())
        sources = select_evidence(
            self.a.retriever.embed_model, self.standalone, hits, 1, lexical_bonus=self.cfg.lexical_bonus
        )
        text = refusal.near_miss_text(nearest, sources)
        yield Event(EventKind.SOURCES, sources)
        self.timings["first_token_s"] = self.clock()
        yield Event(EventKind.TOKEN, text)
        yield self.answer(text, AnswerKind.REFUSAL, sources, refused=True, checks={"reason": "near miss"})

    def fact(self, plan: QueryPlan) -> Iterator[Event]:
        """The best paper's sentences and the runners-up's, within the prompt budget (fact_evidence)."""
        cfg = self.cfg
        result = self.a.retriever.search(
            self.standalone, k=max(cfg.prompt_papers, self.a.settings.top_k), plan=plan
        )
        hits = result.hits[: cfg.prompt_papers]
        self.timings["retrieval_s"] = self.clock()
        if not hits:
            text = prompts.NO_PAPERS_MATCH_FILTERS.format(filters=result.filters.describe() or "none")
            yield self.answer(text, AnswerKind.REFUSAL, refused=True)
            return
        number = cfg.number_bonus if plan.wants_number else 0.0
        sources = fact_evidence(self.a.retriever.embed_model, self.standalone, hits, cfg, number)
        missing = refusal.unheld_reason(plan, hits, cfg.prompt_papers)
        best_sim = max(h.dense_sim or 0.0 for h in hits)
        expanded = {w for typed in plan.expansions for w in lx.words(typed)}  # the corpus has a term for them
        topic_words = [w for w in plan.topic.split() if not (lx.words(w) and lx.words(w) <= expanded)]
        unknown = self.a.analyser.expander.unknown(topic_words, cfg.typo_score)
        if missing or refusal.weak_retrieval(best_sim, topic_words, unknown, cfg):
            text = refusal.refusal_text(missing)
            yield Event(EventKind.SOURCES, sources)
            self.timings["first_token_s"] = self.clock()
            yield Event(EventKind.TOKEN, text)
            reason = missing or "weak retrieval"
            checks = {"best_similarity": round(best_sim, 3), "unknown_words": unknown, "reason": reason}
            yield self.answer(text, AnswerKind.REFUSAL, sources, refused=True, checks=checks)
            return
        yield Event(EventKind.SOURCES, sources)
        prompt = prompts.ANSWER_PROMPT.format(sources=source_block(sources), question=self.standalone)
        yield from self.generation(prompt, sources, {"best_similarity": round(best_sim, 3)})

    def comparison(self, plan: QueryPlan) -> Iterator[Event]:
        yield Event(EventKind.STATUS, "searching each side")
        groups = compare.side_sources(plan, self.a.retriever, self.standalone)
        self.timings["retrieval_s"] = self.clock()
        sources, shown = compare.number_for_prompt(groups, self.cfg.compare_papers_per_side)
        yield Event(EventKind.SOURCES, sources)
        if not sources:
            text = prompts.COMPARE_NOTHING.format(labels=" or ".join(label for label, _ in groups))
            yield Event(EventKind.TOKEN, text)
            yield self.answer(text, AnswerKind.REFUSAL, refused=True, checks={"reason": "no side has papers"})
            return
        empty = [label for label, group in groups if not group]
        text = compare.side_lists_text(plan, groups)
        self.timings["first_token_s"] = self.clock()
        yield Event(EventKind.TOKEN, text)
        shown_sources = [s for _, group in shown for s in group]
        prompt = compare.compare_prompt(self.standalone, shown)
        yield from self.listed_then_model(text, sources, prompt, shown_sources, {"empty_sides": empty})

    def listed_then_model(
        self, text: str, sources: list[Source], prompt: str, shown: list[Source], checks: dict[str, object]
    ) -> Iterator[Event]:
        """After a computed list (already streamed, citing every source): the model's words on
        the `shown` sources; if the model fails, the list stands and says so."""
        if not self.a.generate:
            yield self.answer(text, AnswerKind.SOURCES, sources, lists.cited(sources), checks=checks)
            return
        yield Event(EventKind.TOKEN, "\n\n")
        result = yield from self.generated(prompt, shown)
        if result.error:
            notice = prompts.SYNTHESIS_UNAVAILABLE.format(reason=result.error)
            yield Event(EventKind.TOKEN, notice)
            full, checks["llm_error"] = text + "\n\n" + notice, result.error
        else:
            full = f"{text}\n\n{result.text}".strip()
        cited = sorted(set(lists.cited(sources)) | set(result.cited))
        yield self.answer(full, AnswerKind.RAG, sources, cited, checks={**result.checks, **checks})

    def generated(self, user_prompt: str, sources: list[Source]) -> Generator[Event, None, Generated]:
        """Stream the model's tokens; return its checked text."""
        result: Generated | None = None
        for item in stream_answer(self.a.llm, user_prompt, sources, self.timings, self.clock, self.cfg):
            if isinstance(item, Generated):
                result = item
            else:
                yield item
        assert result is not None
        return result

    def generation(self, user_prompt: str, sources: list[Source], checks: dict) -> Iterator[Event]:
        if not self.a.generate:
            yield self.answer("", AnswerKind.SOURCES, sources, checks=checks)
            return
        result = yield from self.generated(user_prompt, sources)
        kind = AnswerKind.ERROR if result.error else AnswerKind.RAG
        yield self.answer(
            result.text,
            kind,
            sources,
            result.cited,
            cut_off=result.cut_off,
            checks={**result.checks, **checks},
        )
