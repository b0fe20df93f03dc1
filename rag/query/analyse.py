"""`QueryAnalyser.analyse(question) -> QueryPlan`, in three steps that combine:
entities (what the question names), then intent (from cue words), then topic (what is left).

No step matches a whole sentence: an intent is a handful of cue words, and any cue combines
with any entities, so "binder's three newest", "the 3 most recent papers by Harald Binder"
and "latest 3 from binder" reach the same plan.
"""

from __future__ import annotations

import copy
import re
from datetime import date

from rapidfuzz.distance import OSA

from rag.config import QuerySettings
from rag.corpus.names import name_matches
from rag.query import lexicon as lx
from rag.query.entities import CorpusEntities, Entities
from rag.query.expand import Expander, mine_acronyms, word_frequency
from rag.query.fallback import (
    FallbackError,
    Grounds,
    PlanFallback,
    Proposal,
    fallback_reason,
    parse_proposal,
    plan_schema,
)
from rag.query.filters import Filters
from rag.query.lexicon import Token
from rag.query.plan import Intent, QueryPlan, Side, Unheld
from rag.types import Paper


class QueryAnalyser:
    """Understands questions against one corpus; build once per index."""

    def __init__(
        self,
        papers: list[Paper],
        person_owners: set[str] | None = None,
        other_owners: set[str] | None = None,
        vocabulary: set[str] | None = None,
        profiles: dict[str, dict] | None = None,
        settings: QuerySettings | None = None,
        fallback: PlanFallback | None = None,
    ):
        self.settings = settings or QuerySettings()  # the numbers of every step: settings.query
        cfg = self.settings
        self.entities = CorpusEntities(
            papers, person_owners or set(), other_owners or set(), vocabulary, settings=cfg
        )
        self.vocabulary = self.entities.vocabulary
        self.expander = Expander(
            self.vocabulary,
            mine_acronyms(papers, cfg.acronym_context_chars),
            word_frequency(papers),
            settings=cfg,
        )
        self.profiles = profiles or {}
        self._cues = sorted(w for w in lx.CUE_VOCABULARY | lx.STOP_WORDS if len(w) >= cfg.cue_typo_min_length)
        self.calls = 0  # how many questions were analysed (tests check: once per question)
        # The LLM that may fill what the rules cannot place (rag/query/fallback.py); None: rules only.
        self.fallback = fallback
        self.fallback_schema = plan_schema(list(self.entities.categories.values()))

    def analyse(self, question: str, explicit: Filters | None = None, today: date | None = None) -> QueryPlan:
        """The plan of one question; `self.fallback`, when set, may fill what no rule placed."""
        self.calls += 1
        tokens, corrections = self.correct(lx.tokenize(question))
        found = self.entities.find(tokens, today, question)
        cues = Cues(tokens, found, question)
        plan = QueryPlan(question=question, intent=Intent.FACT, corrections=corrections)
        plan.filters = self.filters_from(found)
        if explicit is not None:
            plan.filters = explicit.merged(plan.filters)
        plan.facets = list(dict.fromkeys(cues.facets()))  # a phrase said twice is one facet
        plan.conjuncts = cues.conjuncts()
        plan.topic = " ".join(plan.facets)
        papers = found.values("paper")
        if papers:
            plan.paper_id = str(papers[0])
            plan.paper_label = next(p.label for p in self.entities.papers if p.paper_id == plan.paper_id)
        self.decide_intent(plan, cues, found)
        plan.wants_number = cues.wants_number()
        notes: list[str] = []
        if self.fallback is not None and (reason := fallback_reason(plan)):
            plan, note = self.fill_from_llm(plan, found, self.fallback, reason, today)
            notes.append(note)
        topics = [plan.topic] + [side.topic for side in plan.sides]
        plan.expansions = {k: v for t in topics if t for k, v in self.expander.expand(t).items()}
        plan.notes = describe(found, corrections) + notes
        return plan

    # --- step 0: cue words typed with one slip ----------------------------------------------

    def correct(self, tokens: list[Token]) -> tuple[list[Token], dict[str, str]]:
        """Chat shorthand ("hw many", lx.TEXT_SPEAK) read as its word, and cue words typed with a
        slip ("hwo many", "newst", "papres") corrected when the word is
        not a corpus word: optimal-string-alignment distance, so a swap of two letters costs one
        (lengths and distance: settings.query.cue_typo_*)."""
        shortest, distance = self.settings.cue_typo_min_length, self.settings.cue_typo_max_distance
        fixed, corrections = [], {}
        for i, tok in enumerate(tokens):
            word = tok.norm
            after = tokens[i + 1].norm if i + 1 < len(tokens) else ""
            if read := lx.TEXT_SPEAK.get(word) or lx.TEXT_SPEAK_BEFORE.get((word, after)):
                corrections[tok.text] = read
                tok = Token(tok.text, read, tok.start, tok.end)
            elif (
                len(word) >= shortest
                and word.isalpha()
                and word not in self.vocabulary
                and word not in lx.KNOWN_WORDS
                and word not in self.entities.surnames
            ):
                near = [
                    c
                    for c in self._cues
                    if abs(len(c) - len(word)) <= 1 and OSA.distance(c, word) <= distance
                ]
                near = [c for c in near if len(word) > shortest or c[0] == word[0]]
                if len(near) == 1 or (near and near[0][0] == word[0]):
                    corrections[tok.text] = near[0]
                    tok = Token(tok.text, near[0], tok.start, tok.end)
            fixed.append(tok)
        return fixed, corrections

    # --- step 1: entities -> filters --------------------------------------------------------

    @staticmethod
    def filters_from(found: Entities) -> Filters:
        filters = Filters(
            authors=[str(v) for v in found.values("author")],
            listings=[str(v) for v in found.values("listing")],
            categories=[str(v) for v in found.values("category")],
        )
        for lo, hi in found.values("year"):
            filters.year_from = (
                lo
                if filters.year_from is None or (lo is not None and lo < filters.year_from)
                else filters.year_from
            )
            filters.year_to = (
                hi
                if filters.year_to is None or (hi is not None and hi > filters.year_to)
                else filters.year_to
            )
        if code := found.values("code"):
            filters.has_code = bool(code[0])
        return filters

    # --- step 2: intent ---------------------------------------------------------------------

    def decide_intent(self, plan: QueryPlan, cues: Cues, found: Entities) -> None:
        people = found.values("author") + found.values("listing")
        plan.k = next(iter(found.values("number")), None)
        unheld = cues.unheld(has_person=bool(found.of("author")))
        stat = cues.profile_stat()
        if (cues.compares() and (len(people) >= 2 or len(plan.facets) >= 2)) or (
            (cues.ranks() or cues.opposes() or (cues.asks_how() and plan.topic and not cues.with_people()))
            and len(people) >= 2
        ):
            plan.intent = Intent.COMPARE
            plan.sides = self.sides(plan, found.values("author"), found.values("listing"))
            plan.filters = _shared_filters(plan.filters)
        elif stat and (found.of("author") or found.of("listing")):
            self.profile_plan(plan, stat)
        elif unheld:
            self.unheld_plan(plan, unheld, cues, found)
        elif cues.shared():
            plan.intent = Intent.SHARED
        elif cues.per_listing():
            plan.intent = Intent.PER_LISTING
        elif cues.per_year():
            plan.intent = Intent.PER_YEAR
        elif plan.paper_id and (field := cues.field()):
            plan.intent, plan.field = Intent.FIELD, field
        elif len(found.values("author")) >= 2 and (cues.with_people() or cues.joins_people()):
            plan.intent = Intent.JOINT
        elif order := cues.order():
            plan.intent = order
        elif cues.counts() and cues.counts_papers():
            plan.intent = Intent.COUNT
        elif cues.with_people() and found.of("author") and not cues.asks_for_papers():
            plan.intent = Intent.COAUTHORS
        else:
            self.open_intent(plan, cues, found)
        _tidy(plan)

    def profile_plan(self, plan: QueryPlan, stat: str) -> None:
        """A profile statistic of a person: theirs is their own listing; unstated means unheld."""
        people = plan.filters.authors + [x for x in plan.filters.listings if x in self.entities.person_owners]
        plan.intent, plan.stat = Intent.PROFILE, stat
        plan.filters = Filters(authors=people)
        stated = any(
            stat in self.profiles.get(owner, {})
            for owner in self.entities.person_owners
            for who in people
            if who == owner or name_matches(who, owner)
        )
        if not stated:
            plan.unheld = Unheld(f"the {stat} of {' and '.join(people) or 'that researcher'}", [])

    def unheld_plan(self, plan: QueryPlan, unheld: Unheld, cues: Cues, found: Entities) -> None:
        """What the records lack, about its subject: a person's details make a profile question,
        a named paper's (its venue, its funding) a field question; else the open intent."""
        plan.unheld = unheld
        if unheld.what == lx.PERSONAL_DETAILS and (found.of("author") or found.of("listing")):
            plan.intent = Intent.PROFILE
        elif plan.paper_id:
            plan.intent = Intent.FIELD
        else:
            self.open_intent(plan, cues, found)

    @staticmethod
    def open_intent(plan: QueryPlan, cues: Cues, found: Entities) -> None:
        """No table cue: a topic makes it a topic list or a fact question; none, a list."""
        if plan.topic:
            plan.intent = Intent.TOPIC_LIST if cues.asks_for_papers() or cues.about_only() else Intent.FACT
            return
        named = (
            found.of("author")
            or found.of("listing")
            or found.of("year")
            or found.of("code")
            or found.of("category")
        )
        plan.intent = Intent.LIST
        plan.confidence = 1.0 if named or cues.asks_for_papers() else 0.4

    def sides(self, plan: QueryPlan, authors: list, listings: list) -> list[Side]:
        """One side per person or listing named; else one per facet of the topic."""
        topic = plan.topic
        sides = [Side(str(v), Filters(authors=[str(v)]), topic) for v in authors]
        sides += [Side(str(v), Filters(listings=[str(v)]), topic) for v in listings]
        if len(sides) >= 2:
            return sides
        return [
            Side(
                f,
                Filters(authors=sides[0].filters.authors, listings=sides[0].filters.listings)
                if sides
                else Filters(),
                f,
            )
            for f in plan.facets
        ]

    # --- the optional LLM fallback (rag/query/fallback.py) --------------------------------

    def resolve_name(self, name: str) -> tuple[str, str] | None:
        """A name as the LLM wrote it -> ("author" | "listing", display), by the recognisers that
        read questions; None unless one person or listing covers every word of it."""
        tokens = lx.tokenize(name)
        if not tokens:
            return None
        found = self.entities.find(tokens, None, name)
        named = [s for s in found.spans if s.kind in ("author", "listing")]
        if len(named) != 1:
            return None
        covers = all(named[0].covers(i) or tok.norm in lx.STOP_WORDS for i, tok in enumerate(tokens))
        return (named[0].kind, str(named[0].value)) if covers else None

    def fill_from_llm(
        self, plan: QueryPlan, found: Entities, fallback: PlanFallback, reason: str, today: date | None
    ) -> tuple[QueryPlan, str]:
        """The plan as the LLM fills it, validated and merged, and a note saying so; on any
        failure the rules' plan and a note saying why it stands."""
        grounds = Grounds(
            words=frozenset(t.norm for t in lx.tokenize(plan.question)),
            names=frozenset(str(v) for v in found.values("author") + found.values("listing")),
            years=frozenset(y for span in found.values("year") for y in span if y is not None),
            categories=frozenset(str(v).upper() for v in found.values("category")),
            has_code=plan.filters.has_code,
            number=next(iter(found.values("number")), None),
        )
        call = None
        try:
            text, call = fallback.ask(plan.question, self.fallback_schema)
            proposal = parse_proposal(text, grounds, self.resolve_name, self.entities.categories, today)
            filled = self.merged_plan(plan, proposal, found)
        except FallbackError as exc:
            if call is not None:
                call.outcome = f"rejected: {exc}"
            return plan, f"LLM fallback ({reason}): kept the rules' plan, {exc}"
        if filled is None:
            if call is not None:
                call.outcome = "agreed"
            return plan, f"LLM fallback ({reason}): the LLM read it as the rules did"
        if call is not None:
            call.outcome = "filled"
        return filled, f"LLM fallback ({reason}): the LLM filled the plan ({filled.summary()})"

    def merged_plan(self, plan: QueryPlan, proposal: Proposal, found: Entities) -> QueryPlan | None:
        """The rules' plan with the LLM's reading merged in, or None when nothing changes.

        The LLM decides the intent; the filters the rules recognised stand and the LLM's only
        fill the fields left empty (the year range counts as one: "since 2022" keeps no end);
        the topic keeps only words the LLM kept (it may drop a rule topic word, "pubs", never
        add one). An intent that lacks what its answer needs (a field without a named paper,
        joint papers of fewer than two people, a comparison of fewer than two sides, a profile
        statistic, a topic list without a topic) is refused."""
        new = copy.deepcopy(plan)
        new.intent = proposal.intent
        years = plan.filters.year_from is None and plan.filters.year_to is None  # a range is one filter
        new.filters = plan.filters.merged(
            Filters(
                authors=proposal.authors,
                listings=proposal.listings,
                year_from=proposal.year_from if years else None,
                year_to=proposal.year_to if years else None,
                categories=proposal.categories,
                has_code=proposal.has_code,
            )
        )
        kept = {t.norm for t in lx.tokenize(proposal.topic)}
        new.facets = [f for f in (_only(facet, kept) for facet in plan.facets) if f]
        new.conjuncts = [
            g for g in ([f for f in (_only(x, kept) for x in group) if f] for group in plan.conjuncts) if g
        ]
        new.topic = " ".join(new.facets)
        intent = new.intent
        if intent is Intent.PROFILE:
            raise FallbackError("a profile intent needs a statistic the rules did not find")
        if intent is Intent.FIELD and not (plan.paper_id and proposal.field):
            raise FallbackError("a field intent needs a paper the rules recognised, and a field")
        if intent is Intent.JOINT and len(new.filters.authors) < 2:
            raise FallbackError("joint papers need two named people")
        if intent is Intent.COAUTHORS and not new.filters.authors:
            raise FallbackError("co-authors need a named person")
        if intent is Intent.TOPIC_LIST and not new.topic:
            raise FallbackError("a topic list needs a topic")
        if intent is Intent.FIELD:
            new.field = proposal.field
        if intent in (Intent.NEWEST, Intent.OLDEST):
            new.k = proposal.k or next(iter(found.values("number")), None)
        if intent is Intent.COMPARE:
            new.sides = self.sides(new, new.filters.authors, new.filters.listings)
            if len(new.sides) < 2:
                raise FallbackError("a comparison needs two sides")
            new.filters = _shared_filters(new.filters)
        _tidy(new)
        if (new.intent, new.filters, new.topic, new.k, new.field) == (
            plan.intent,
            plan.filters,
            plan.topic,
            plan.k,
            plan.field,
        ):
            return None
        new.source = "llm"
        new.confidence = min(plan.confidence, 0.8)
        return new


def _tidy(plan: QueryPlan) -> None:
    """What an intent keeps: k only for newest/oldest, a paper for a field or fact question, a
    topic only where the answer reads one."""
    if plan.intent not in (Intent.NEWEST, Intent.OLDEST):
        plan.k = None
    if plan.intent is not Intent.FIELD:
        plan.paper_id = plan.paper_id if plan.intent is Intent.FACT else None
        plan.paper_label = plan.paper_label if plan.paper_id else None
    if plan.intent.from_table and plan.intent not in (Intent.NEWEST, Intent.OLDEST, Intent.COUNT):
        plan.topic, plan.facets, plan.conjuncts = "", [], []


def _shared_filters(filters: Filters) -> Filters:
    """A comparison's filters: what every side shares (people and listings make the sides)."""
    return Filters(
        year_from=filters.year_from,
        year_to=filters.year_to,
        has_code=filters.has_code,
        categories=filters.categories,
    )


def _only(phrase: str, kept: set[str]) -> str:
    """The words of `phrase` whose folded form is in `kept`."""
    return " ".join(t.text for t in lx.tokenize(phrase) if t.norm in kept)


class Cues:
    """The question's words once entities are removed, and the cue tests over them."""

    def __init__(self, tokens: list[Token], found: Entities, question: str = ""):
        self.tokens = tokens
        self.question = question
        self.free = [t for i, t in enumerate(tokens) if not found.covered(i)]
        self.kinds = {i: s.kind for s in found.spans for i in range(s.start, s.end)}
        self.spans = found.spans
        # Topic words: everything but filters; a paper's model name stays ("DataSHIELD used for").
        self.topical = [t for i, t in enumerate(tokens) if self.kinds.get(i) in (None, "paper")]
        self.norms = [t.norm for t in self.free]
        self.text = " " + " ".join(t.norm.replace("-", " ") for t in tokens) + " "  # "year-by-year"
        self.all = {t.norm for t in tokens}
        self.words = set(self.norms)

    def has(self, phrases) -> bool:
        return any(f" {p} " in self.text for p in phrases)

    def compares(self) -> bool:
        return bool(self.words & lx.COMPARE_CUES)

    def after_how(self) -> set[str]:
        """The words right after each "how" ("" when it ends the question)."""
        norms = [t.norm for t in self.tokens]
        return {b for a, b in zip(norms, norms[1:] + [""], strict=True) if a == "how"}

    def wants_number(self) -> bool:
        return bool(self.after_how() & lx.QUANTITY_HOW or self.all & lx.QUANTITY_NOUNS)

    def asks_how(self) -> bool:
        """ "How do X and Y approach privacy?": a manner, not a number ("how many")."""
        return bool(self.after_how() - lx.QUANTITY_HOW)

    def opposes(self) -> bool:
        return bool(self.words & lx.SIDES_CUES)

    def ranks(self) -> bool:
        """ "who has more papers", "did X or Y write more": a comparative to rank people by."""
        return bool(self.words & lx.COMPARATIVE_CUES) and bool(self.all & {"who", "which", "whom", "or"})

    def shared(self) -> bool:
        """ "listed twice", "duplicates", or a multiplicity with a listing word ("on two pages");
        an "author list" is not a listing."""
        if self.all & lx.DUPLICATE_CUES:
            return True
        many = bool(self.all & lx.MULTIPLE_CUES) or self.has(("more than one",))
        norms = [t.norm for t in self.tokens]
        listing_nouns = [
            i
            for i, w in enumerate(norms)
            if w in lx.LISTING_NOUNS and norms[i - 1 : i] not in (["author"], ["authors"])
        ]
        return many and bool(listing_nouns)

    def per_listing(self) -> bool:
        return self.has(lx.PER_LISTING_PHRASES) and (
            self.counts() or "papers" in self.all or "paper" in self.all
        )

    def per_year(self) -> bool:
        return self.has(lx.PER_YEAR_PHRASES)

    def counts(self) -> bool:
        return self.has(lx.COUNT_PHRASES)

    def counts_papers(self) -> bool:
        """ "How many papers …", "how many has binder", "how many from 2024", not "how many images
        were used" (a number inside an abstract)."""
        norms = [t.norm for t in self.tokens]
        for cue in ("many", "number", "count", "much"):
            if cue in norms:
                rest = [
                    i
                    for i in range(norms.index(cue) + 1, len(norms))
                    if norms[i] not in {"of", "the", "a", "an", "different", "distinct", "total", "in"}
                ]
                break
        else:
            return True
        if not rest:
            return True
        i = rest[0]
        word = lx.singular(norms[i])
        if self.kinds.get(i) in ("author", "listing", "year", "code", "category"):
            return True
        return i not in self.kinds and (
            word in {lx.singular(w) for w in lx.PAPER_WORDS}
            or word in lx.STOP_WORDS
            or word in lx.CORPUS_WORDS
            or word in lx.CODE_WORDS
        )

    def order(self) -> Intent | None:
        for i, word in enumerate(self.norms):
            nxt = self.norms[i + 1] if i + 1 < len(self.norms) else ""
            if word in lx.OLDEST_CUES and nxt not in {"author", "authors", "name"}:
                return Intent.OLDEST
            if word in lx.NEWEST_CUES and (
                word != "recent" or {"most", "three"} & self.words or nxt in lx.PAPER_WORDS
            ):
                return Intent.NEWEST
        return None

    def field(self) -> str | None:
        if self.counts() and self.words & {"author", "authors", "people", "names"}:
            return "n_authors"
        for word in self.norms:
            if field := lx.FIELD_CUES.get(word):
                return field
        if any(f" {w} " in self.text for w in ("who", "whom")) and self.words & lx.WORK_VERBS:
            return "authors"
        for phrase, field in lx.FIELD_PHRASES.items():
            if f" {phrase} " in self.text:
                return field
        return None

    def with_people(self) -> bool:
        return bool(self.words & (lx.COAUTHOR_CUES | lx.WITH_CUES))

    def asks_for_papers(self) -> bool:
        """A paper word is what is asked for: "which papers", "what of binder's work", "papers on X",
        not "what sampling rate did X's work find"."""
        if self.all & {"who", "whom"}:
            return False
        norms = [t.norm for t in self.tokens]
        if norms[:1] and norms[0] in lx.PAPER_WORDS | {"any", "anything", "all"}:
            return True
        for i, word in enumerate(norms):
            if word in lx.LIST_CUES:
                ahead = [
                    w
                    for j, w in enumerate(norms[i + 1 :], start=i + 1)
                    if w not in lx.STOP_WORDS
                    and self.kinds.get(j) in (None, "paper")
                    and w not in lx.NUMBER_WORDS
                    and w not in lx.NEWEST_CUES | lx.OLDEST_CUES
                ][:2]
                if set(ahead) & lx.PAPER_WORDS or self._topic_then_paper_word(norms, i + 1):
                    return True
        return False

    def _topic_then_paper_word(self, norms: list[str], i: int) -> bool:
        """ "which diffusion model papers": topic words running straight into a paper noun (a
        verb between them, "what rate did X's work find", ends the run; "works" may be the verb)."""
        j = i
        while j < len(norms) and j - i < 4 and self.kinds.get(j) is None and _is_topic_word(norms[j]):
            j += 1
        return j > i and j < len(norms) and norms[j] in lx.PAPER_WORDS - lx.VERB_LIKE_PAPER_WORDS

    def joins_people(self) -> bool:
        """Two names joined by "and" ("Strodthoff and Haverkamp"): papers by both."""
        names = sorted((s.start, s.end) for s in self.spans if s.kind == "author")
        return any(
            " ".join(t.norm for t in self.tokens[a[1] : b[0]]) in ("and", "&", "+")
            for a, b in zip(names, names[1:], strict=False)
        )

    def about_only(self) -> bool:
        """ "anything on bowel sounds?", "papers about EEG": a topic with no question word."""
        return self.norms[:1] == ["anything"] or not (
            self.all & {"what", "how", "why", "which", "who", "when", "does", "do", "is", "are", "can"}
        )

    def profile_stat(self) -> str | None:
        if " h index " in self.text:
            return "h-index"
        if " ai score " in self.text:
            return "ai score"
        return next(
            (lx.PROFILE_STATS[w] for w in self.norms if w in lx.PROFILE_STATS and w not in {"h", "score"}),
            None,
        )

    def unheld(self, has_person: bool) -> Unheld | None:
        for phrase, (what, evidence) in lx.UNHELD_PHRASES.items():
            if f" {phrase} " in self.text:
                return Unheld(what, (evidence or "").split())
        for word in self.norms:
            if word in lx.UNHELD:
                what, evidence = lx.UNHELD[word]
                if word in lx.UNHELD_NEEDS_PERSON and not has_person:
                    continue
                return Unheld(what, (evidence or "").split())
        if self.profile_stat() in ("h-index", "citations"):
            return Unheld("citation metrics for that researcher" if has_person else "citation counts", [])
        return None

    def conjuncts(self) -> list[list[str]]:
        """The facets grouped into the parts a paper must all cover: facets separated only by
        lx.ALTERNATIVE_JOINERS are alternatives or elaborations of one part ("state space models
        such as S4, or Mamba"); any other word between them starts a new part ("for", "from",
        "applied to"). A bracket holds alternatives of the part it interrupts:
        "photoplethysmography (PPG) signals" is "photoplethysmography signals" or "PPG"."""
        main, inserts = self.unbracketed()
        groups: list[list[str]] = [[]]
        run: list[str] = []
        pending: list[str] = []  # bracketed alternatives of the run being read
        joined = False  # a non-alternative word since the last facet
        for i, tok in enumerate(main + [Token("", "", 0, 0)]):  # a sentinel closes the last run
            if run and self.listed_apart(main[i - 1], tok):  # "speech, speaker verification"
                groups[-1].append(" ".join(run))
                run = []
            if _is_topic_word(tok.norm):
                if joined and not run and groups[-1]:
                    groups.append([])
                joined = False
                run.append(tok.text)
            else:
                if run:
                    groups[-1].append(" ".join(run))
                    run = []
                joined = joined or (bool(tok.norm) and tok.norm not in lx.ALTERNATIVE_JOINERS)
            pending += inserts.get(i, [])
            if pending and not run:
                groups[-1] += pending
                pending = []
        return [g for g in groups if g]

    def facets(self) -> list[str]:
        """Runs of topic words, split where a joiner or a stop word stands between them; a
        bracket's runs come after the phrase it interrupts."""
        main, inserts = self.unbracketed()
        return _topic_runs(main, self.listed_apart) + [f for i in sorted(inserts) for f in inserts[i]]

    def listed_apart(self, before: Token, tok: Token) -> bool:
        """A comma, semicolon or spaced dash (outside brackets) between two words: items of a
        list, alternatives of one part like "or"."""
        if not tok.text:
            return False
        gap = _BRACKETED_RE.sub(" ", self.question[before.end : tok.start])
        return bool(_LIST_SEPARATOR_RE.search(gap))

    def unbracketed(self) -> tuple[list[Token], dict[int, list[str]]]:
        """The topical words outside brackets, and the runs of topic words of each bracket that
        lists alternatives, keyed by the position (in the first list) of the word it follows; a
        bracket that only qualifies ("offline (model-based) optimisation") is left out."""
        main: list[Token] = []
        inserts: dict[int, list[str]] = {}
        inner: list[Token] = []
        for tok in self.topical + [Token("", "", len(self.question), len(self.question))]:
            before = self.question[: tok.start]
            if tok.text and sum(before.count(c) for c in "([") > sum(before.count(c) for c in ")]"):
                inner.append(tok)
                continue
            if inner and _lists_alternatives(inner):
                inserts.setdefault(max(len(main) - 1, 0), []).extend(_topic_runs(inner, self.listed_apart))
            inner = []
            if tok.text:
                main.append(tok)
        return main, inserts


_BRACKETED_RE = re.compile(r"[(\[][^)\]]*[)\]]")
_LIST_SEPARATOR_RE = re.compile(r"[,;]|\s[-–—]\s")


def _lists_alternatives(tokens: list[Token]) -> bool:
    """A bracket of other names: a short form or model name ("(PPG)", "(S4)", "(DINO, DINOv2)")
    or examples ("(such as S4, or Mamba)"), not a lower-case qualifier ("(model-based)")."""
    named = any(t.text[1:] != t.text[1:].lower() or any(c.isdigit() for c in t.text) for t in tokens)
    return named or any(t.norm in lx.ALTERNATIVE_JOINERS for t in tokens)


def _topic_runs(tokens: list[Token], apart) -> list[str]:
    """Runs of topic words; `apart(before, tok)` says a list separator stands between two."""
    runs: list[list[str]] = [[]]
    for i, tok in enumerate(tokens):
        if runs[-1] and i and apart(tokens[i - 1], tok):
            runs.append([])
        if _is_topic_word(tok.norm):
            runs[-1].append(tok.text)
        elif runs[-1]:
            runs.append([])
    return [" ".join(r) for r in runs if r]


def _is_topic_word(word: str) -> bool:
    if len(word) < 2 and not word.isdigit():
        return False
    return not (
        word in lx.STOP_WORDS
        or word in lx.PAPER_WORDS
        or word in lx.CORPUS_WORDS
        or word in lx.CUE_VOCABULARY
        or word in lx.GENERIC_TOPIC_WORDS
        or word in lx.TOPIC_VERBS
        or word in lx.NUMBER_WORDS
        or word in lx.FIELD_CUES
        or word in lx.CODE_WORDS
        or word in lx.COMPARE_CUES
        or word in lx.WITH_CUES
    )


def _shown(value: object) -> str:
    if isinstance(value, tuple):  # a year range
        lo, hi = value
        return str(lo) if lo == hi else f"{lo or '…'}–{hi or '…'}"
    return str(value)


def describe(found: Entities, corrections: dict[str, str]) -> list[str]:
    notes = [f"{s.kind}: {_shown(s.value)}" for s in found.spans if s.kind != "number"]
    notes += [f"read “{typed}” as “{fixed}”" for typed, fixed in corrections.items()]
    return notes
