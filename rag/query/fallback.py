"""Optional LLM fallback for questions the rules could not place (issue #11, item 3).

When the rules recognise no intent but the question looks structural (see `fallback_reason`),
the configured LLM may fill a small part of the same `QueryPlan` through one chat completion
whose reply is constrained by a JSON schema (`plan_schema`; llama-cpp-python's server turns
`response_format={"type": "json_object", "schema": ...}` into a grammar). The reply is
validated (`parse_proposal`) and merged by `QueryAnalyser.fill_from_llm`; any failure, a
timeout or an invalid reply keeps the rules' plan, and the plan's notes say what happened.

Off by default (`settings.query.llm_fallback`): with the packaged Qwen2.5-Coder-1.5B on 2
cores a call takes about 4 s at best and often 30 s or more, for two more right plans in 180
(`python -m eval.plan_eval --split all --answers --llm-fallback` prints both). `PlanFallback`
records each call's latency for the evaluation.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from rag import prompts
from rag.query import lexicon as lx
from rag.query.plan import Intent, QueryPlan

if TYPE_CHECKING:
    from rag.config import QuerySettings
    from rag.llm import LLM

FIELDS = ("authors", "date", "category", "listing", "n_authors")
MAX_NAMES = 4  # names the model may give
MAX_K = 25  # the longest newest/oldest list a table answer shows

# Cue words of the table intents, from the lexicon's own lists (none added here). Stop words
# and paper words are left out: "which papers …" is how every topic list starts.
_CUE_WORDS = (
    (
        lx.NEWEST_CUES
        | lx.OLDEST_CUES
        | lx.COAUTHOR_CUES
        | lx.COMPARE_CUES
        | lx.COMPARATIVE_CUES
        | lx.DUPLICATE_CUES
        | lx.CATEGORY_CUES
        | lx.CORPUS_WORDS
        | frozenset(lx.FIELD_CUES)
        | frozenset(lx.PROFILE_STATS)
    )
    - lx.STOP_WORDS
    - lx.PAPER_WORDS
)
_CUE_PHRASES = lx.COUNT_PHRASES + lx.PER_YEAR_PHRASES + lx.PER_LISTING_PHRASES

# What the model answers through the callable: (chat messages, JSON schema) -> the reply text.
PlanLLM = Callable[[list[dict[str, str]], dict[str, Any]], str]
# A name as the model wrote it -> ("author" | "listing", the corpus's display form), or None.
NameResolver = Callable[[str], tuple[str, str] | None]


class FallbackError(Exception):
    """The LLM did not give a usable plan: unreachable, too slow, not JSON, or invalid."""


def fallback_reason(plan: QueryPlan) -> str | None:
    """Why the rules' plan should be offered to the LLM, or None.

    "The rules recognise no intent": the plan kept the analyser's default, a fact question
    (`Intent.FACT`: no cue decided anything), or it is a list inferred from nothing named
    (`open_intent`'s guess, confidence below 1). A topic list (a paper word asked for, "which
    papers use X") and a list of named filters with nothing else asked ("binder's papers from
    2024") are readings the rules made, and stay theirs; so do questions about what the
    records never hold (`unheld`, decided on purpose) and plans the LLM already filled.

    "The question looks structural": it carries what the table intents are made of, yet no
    table intent took it —
      - the rules recognised record filters in it (an author, a listing, a year, a category,
        the Code badge), or
      - it holds a cue word or phrase of a table intent (counting, newest/oldest, per year /
        per listing, co-authors, comparison, duplicates, a paper field or category, the
        collection itself, a profile statistic; the lexicon's own lists, stop and paper
        words left out).
    A guessed list always looks structural (it has no topic either). A fact question with
    none of these ("does federated learning need much data?") never goes to the LLM.
    """
    if plan.unheld is not None or plan.source != "rules":
        return None
    if plan.intent is Intent.LIST and plan.confidence < 1.0:
        return "a list only guessed"
    if plan.intent is not Intent.FACT:
        return None
    norms = [t.norm for t in lx.tokenize(plan.question)] + list(plan.corrections.values())
    text = f" {' '.join(norms)} "
    if not plan.filters.is_empty():
        return "record filters but no table intent"
    cues = sorted(set(norms) & _CUE_WORDS) + [p for p in _CUE_PHRASES if f" {p} " in text]
    if cues:
        return f"cue words ({', '.join(cues[:3])}) but no table intent"
    return None


def plan_schema(categories: list[str]) -> dict[str, Any]:
    """The JSON schema of the plan's part the LLM may fill; every key required, nulls allowed.

    Uses only what llama-cpp-python's grammar converter supports (enum, type lists, arrays with
    maxItems, strings with maxLength); it ignores minimum/maximum, so ranges are checked after."""
    return {
        "type": "object",
        "properties": {
            "intent": {"enum": [str(i) for i in Intent]},
            "authors": {"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": MAX_NAMES},
            "year_from": {"type": ["integer", "null"]},
            "year_to": {"type": ["integer", "null"]},
            "k": {"type": ["integer", "null"]},
            "field": {"enum": [None, *FIELDS]},
            "category": {"enum": [None, *sorted(categories)]},
            "has_code": {"type": ["boolean", "null"]},
            "topic": {"type": "string", "maxLength": 120},
        },
        "required": [
            "intent",
            "authors",
            "year_from",
            "year_to",
            "k",
            "field",
            "category",
            "has_code",
            "topic",
        ],
        "additionalProperties": False,
    }


@dataclass
class Proposal:
    """The model's reading, validated: corpus names, sane years, an intent of the enum."""

    intent: Intent
    authors: list[str] = dataclasses.field(default_factory=list)  # corpus display names
    listings: list[str] = dataclasses.field(default_factory=list)  # owners, where the model named a listing
    year_from: int | None = None
    year_to: int | None = None
    k: int | None = None
    field: str | None = None
    categories: list[str] = dataclasses.field(default_factory=list)
    has_code: bool | None = None
    topic: str = ""


@dataclass(frozen=True)
class Grounds:
    """What the rules recognised in the question: a value the model gives must be one of these
    or be written in the question itself (`words`: its folded tokens)."""

    words: frozenset[str]
    names: frozenset[str] = frozenset()  # authors and listings, display form
    years: frozenset[int] = frozenset()
    categories: frozenset[str] = frozenset()  # upper case
    has_code: bool | None = None
    number: int | None = None


def parse_proposal(
    text: str, grounds: Grounds, resolve: NameResolver, categories: dict[str, str], today: date | None = None
) -> Proposal:
    """The model's reply -> a `Proposal`, or FallbackError naming the first thing wrong.

    One wrong value rejects the whole reply (a model that invents a person, a year or an
    intent has misread the question): the intent must be in the enum; field and category come
    from their closed sets (the category as the corpus spells it), years lie between 1900 and
    next year with from <= to, k in 1..25. Nothing may be invented: a name must resolve, by
    the analyser's own recognisers, to a corpus author or listing that the rules recognised or
    that shares a word with the question; a year, a category, k and the Code badge must be
    what the rules recognised or be written in the question ("2023", "CV", "3", "code")."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise FallbackError(f"the reply is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise FallbackError("the reply is not a JSON object")
    try:
        intent = Intent(str(data.get("intent")))
    except ValueError:
        raise FallbackError(f"unknown intent {data.get('intent')!r}") from None
    proposal = Proposal(intent)
    names = data.get("authors") or []
    if not isinstance(names, list) or len(names) > MAX_NAMES:
        raise FallbackError("authors is not a short list")
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise FallbackError(f"author {name!r} is not a name")
        resolved = resolve(name)
        if resolved is None:
            raise FallbackError(f"{name!r} is no corpus author")
        kind, display = resolved
        if display not in grounds.names and not {t.norm for t in lx.tokenize(name)} & grounds.words:
            raise FallbackError(f"{name!r} is not named in the question")
        bucket = proposal.authors if kind == "author" else proposal.listings
        if display not in bucket:
            bucket.append(display)
    last_year = (today or date.today()).year + 1
    for key in ("year_from", "year_to"):
        value = data.get(key)
        if value is not None:
            if not _is_int(value) or not 1900 <= value <= last_year:
                raise FallbackError(f"{key} {value!r} is no year")
            if value not in grounds.years and str(value) not in grounds.words:
                raise FallbackError(f"{key} {value} is not in the question")
        setattr(proposal, key, value)
    if (
        proposal.year_from is not None
        and proposal.year_to is not None
        and proposal.year_from > proposal.year_to
    ):
        raise FallbackError(f"year_from {proposal.year_from} is after year_to {proposal.year_to}")
    k = data.get("k")
    if k is not None:
        if not _is_int(k) or not 1 <= k <= MAX_K:
            raise FallbackError(f"k {k!r} is out of range")
        written = {lx.NUMBER_WORDS.get(w) or (int(w) if w.isdigit() else None) for w in grounds.words}
        if k != grounds.number and k not in written:
            raise FallbackError(f"k {k} is not in the question")
    proposal.k = k
    if (fld := data.get("field")) is not None and fld not in FIELDS:
        raise FallbackError(f"unknown field {fld!r}")
    proposal.field = fld
    if (category := data.get("category")) is not None:
        if not isinstance(category, str) or category.upper() not in categories:
            raise FallbackError(f"unknown category {category!r}")
        written_codes = {w.split(".")[-1].upper() for w in grounds.words}
        if category.upper() not in grounds.categories | written_codes:
            raise FallbackError(f"category {category} is not in the question")
        proposal.categories = [categories[category.upper()]]
    code = data.get("has_code")
    if code is not None:
        if not isinstance(code, bool):
            raise FallbackError(f"has_code {code!r} is not a boolean")
        if code != grounds.has_code and not grounds.words & lx.CODE_WORDS:
            raise FallbackError("the question says nothing of code")
    proposal.has_code = code
    topic = data.get("topic") or ""
    if not isinstance(topic, str):
        raise FallbackError("topic is not a string")
    proposal.topic = topic
    return proposal


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class FallbackCall:
    """One question sent to the LLM: how long it took and what became of the reply."""

    question: str
    seconds: float
    outcome: str = ""  # "filled", "agreed", or why the rules' plan was kept
    reply: str = ""  # the model's text


class PlanFallback:
    """Asks an LLM for the plan of a question the rules could not place.

    `complete` is the model (`openai_plan_llm` for the configured endpoint; tests pass a
    scripted callable). A reply that arrives after `timeout_s` is discarded even if the
    callable ignored the timeout. Replies, and failures, are cached per question (an answer
    analyses its question once, but `rag plan` and the evaluation may ask again; a question
    that timed out is not made to wait twice)."""

    def __init__(self, complete: PlanLLM, timeout_s: float = 30.0, cache_size: int = 256):
        self.complete = complete
        self.timeout_s = timeout_s
        self.cache_size = cache_size
        self.calls: list[FallbackCall] = []
        self._cache: dict[str, str | FallbackError] = {}

    def ask(self, question: str, schema: dict[str, Any]) -> tuple[str, FallbackCall | None]:
        """The reply text for `question`, and the call made for it (None when cached)."""
        key = question
        if key in self._cache:
            cached = self._cache[key]
            if isinstance(cached, FallbackError):
                raise cached
            return cached, None
        messages = [
            {"role": "system", "content": prompts.PLAN_FALLBACK_SYSTEM},
            {
                "role": "user",
                "content": prompts.PLAN_FALLBACK_USER.format(question=question),
            },
        ]
        start = time.monotonic()
        call = FallbackCall(question, 0.0)
        self.calls.append(call)
        if len(self._cache) >= self.cache_size:
            self._cache.pop(next(iter(self._cache)))
        try:
            text = self.complete(messages, schema)
        except Exception as exc:  # any failure of the model keeps the rules' plan
            call.seconds = time.monotonic() - start
            call.outcome = f"failed: {type(exc).__name__}"
            error = FallbackError(f"the LLM failed ({type(exc).__name__}: {str(exc)[:120]})")
            self._cache[key] = error
            raise error from exc
        call.seconds, call.reply = time.monotonic() - start, text
        if call.seconds > self.timeout_s:
            call.outcome = "timed out"
            error = FallbackError(f"the LLM took {call.seconds:.1f}s, more than {self.timeout_s:.0f}s")
            self._cache[key] = error
            raise error
        self._cache[key] = text
        return text, call

    def latency(self) -> dict[str, float | int]:
        """calls, p50_s and max_s of the calls made so far."""
        seconds = sorted(c.seconds for c in self.calls)
        if not seconds:
            return {"calls": 0, "p50_s": 0.0, "max_s": 0.0}
        return {"calls": len(seconds), "p50_s": seconds[len(seconds) // 2], "max_s": seconds[-1]}


def openai_plan_llm(llm: LLM, settings: QuerySettings) -> PlanLLM:
    """The configured endpoint (the embedded llama.cpp server unless OPENAI_BASE_URL is set) as a
    `PlanLLM`: one non-streamed chat completion, temperature 0, the reply constrained by the
    schema through llama-cpp-python's `response_format={"type": "json_object", "schema": ...}`,
    with the fallback's own timeout (the answer's `llm.timeout_s` is far longer)."""

    def complete(messages: list[dict[str, str]], schema: dict[str, Any]) -> str:
        client = llm.client()  # starts the embedded server if it is not running
        reply = client.chat.completions.create(
            model=llm.model_name,
            messages=messages,
            response_format={"type": "json_object", "schema": schema},
            temperature=0.0,
            max_tokens=settings.llm_fallback_max_tokens,
            timeout=settings.llm_fallback_timeout_s,
        )
        return reply.choices[0].message.content or ""

    return complete


def plan_fallback(llm: LLM, settings: QuerySettings) -> PlanFallback | None:
    """The fallback the settings ask for: None unless `query.llm_fallback` is on."""
    if not settings.llm_fallback:
        return None
    return PlanFallback(openai_plan_llm(llm, settings), settings.llm_fallback_timeout_s)
