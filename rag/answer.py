"""The answer chain: follow-up rewriting -> query analysis -> table answers or hybrid retrieval
-> evidence sentences -> streamed generation with numbered sources -> citation check.

Refusal is decided here, not by the model: weak retrieval, or a question about something the
records do not hold, gets a plain "the listings don't cover it" with the nearest papers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag import prompts
from rag.catalog import TableAnswer, answer_from_table, topic_words
from rag.config import Settings, get_settings
from rag.index import PaperIndex
from rag.llm import LLM, LLMUnavailable
from rag.retrieve import Filters, Retriever
from rag.types import Paper, SearchHit

MAX_QUESTION_CHARS = 2000
PROMPT_PAPERS = 5  # papers given to the model
EVIDENCE_SENTENCES = 2  # per paper
# "Which papers ...?" wants breadth: more papers, one sentence each (about the same prompt length).
LIST_PAPERS, LIST_EVIDENCE = 8, 1
_LIST_QUESTION_RE = re.compile(r"^\s*(which|what|list|name|show)\b.{0,30}\b(papers|works|studies|articles|publications)\b|"
                               r"\ball (?:the )?papers\b", re.IGNORECASE)
MIN_DENSE_SIM = 0.30  # below this best-chunk similarity, refuse
UNKNOWN_WORD_SIM = 0.60  # a topic half made of words the corpus never uses needs this similarity
SUPPORT_THRESHOLD = 0.25  # share of a sentence's content words found in the cited abstract

_FOLLOWUP_RE = re.compile(
    r"^(and|but|also|so|what about|how about|same|only|just)\b|\b(those|these|them|they|their|it|its|that one|the same|"
    r"above|previous|earlier ones?)\b", re.IGNORECASE)
_FOLLOWUP_WORDS = {"which", "what", "about", "how", "ones", "one", "papers", "paper", "those", "these", "only", "from", "are"}
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])|\n+")
_CITATION_RE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_WORD_RE = re.compile(r"[a-z0-9][a-z0-9-]+")
_STOP = set("""the a an and or of in on for to with by from is are was were be been this that these those it its as at
which who what how why when where we our their they them paper papers study work uses use used using based also can
such than then into via more most other over under between both each all any some not no only new propose proposed
present presents show shows shown results approach method methods model models""".split())

# Text that tries to steer the model. Abstracts are data: such sentences never become evidence,
# and a question made of them gets the assistant's scope instead of an answer.
_INJECTION_RE = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instructions?|prompts?|rules|above|previous)\b|"
    r"\bsystem prompt\b|^\s*(system|assistant|user)\s*:|\byou are now\b|\bnew instructions?\b|<\|im_start\|>|\[INST\]",
    re.IGNORECASE | re.MULTILINE)
_FAKE_CITATION_RE = re.compile(r"\[\d+(?:\s*[,;]\s*\d+)*\]")

# What the records never hold, or hold only where a listing states it.
_NOT_IN_RECORDS = [
    (re.compile(r"\b(e-?mail|phone|telephone|mobile number|home address|office|salary|birthday|date of birth|age|"
                r"twitter|linkedin|orcid|married|nationality)\b", re.IGNORECASE), "contact or personal details", None),
    (re.compile(r"\bh-?index\b|\bcitations? (?:count|number)\b|\bhow many citations\b", re.IGNORECASE), "citation metrics for that researcher", None),
    (re.compile(r"\b(gpus?|tpus?|hardware|compute budget|training time|graphics card)\b", re.IGNORECASE), "the hardware used",
     re.compile(r"\b(gpus?|tpus?|hardware|nvidia|a100|v100|compute)\b", re.IGNORECASE)),
    (re.compile(r"\b(conference|journal|venue|workshop|accepted (?:at|to|by)|published (?:at|in) (?:which|what))\b", re.IGNORECASE),
     "where papers were published", re.compile(r"\b(conference|journal|workshop|proceedings|accepted at)\b", re.IGNORECASE)),
    (re.compile(r"\b(funding|funded|grant amount|budget|cost(?:s)? of the project)\b", re.IGNORECASE), "funding details",
     re.compile(r"\b(fund(?:ed|ing)|grant)\b", re.IGNORECASE)),
]


@dataclass
class Event:
    """One step of a streamed answer: "status", "sources", "token", "done" or "error"."""

    kind: str
    data: Any = None


@dataclass
class Source:
    n: int
    paper: Paper
    evidence: list[str]
    score: float = 0.0

    def to_json(self) -> dict:
        return {"n": self.n, **self.paper.to_json(), "evidence": self.evidence}


@dataclass
class Answer:
    question: str
    answer: str
    refused: bool
    citations: list[Source]
    sources: list[Source]
    model: str
    timings: dict[str, float | None]
    standalone_question: str = ""
    kind: str = "rag"  # "rag", "table", "refusal", "error"
    filters: str = ""
    checks: dict[str, Any] = field(default_factory=dict)
    cut_off: bool = False

    def to_json(self) -> dict:
        return {
            "question": self.question, "answer": self.answer, "refused": self.refused,
            "citations": [s.to_json() for s in self.citations], "sources": [s.to_json() for s in self.sources],
            "model": self.model, "timings": self.timings, "standalone_question": self.standalone_question,
            "kind": self.kind, "filters": self.filters, "checks": self.checks, "cut_off": self.cut_off,
        }


# --- pure helpers (unit-tested) ------------------------------------------------------------


def content_words(text: str) -> set[str]:
    from rag.corpus.names import fold

    return {w.rstrip("s") if len(w) > 4 else w for w in _WORD_RE.findall(fold(text)) if w not in _STOP}


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_RE.split(text) if s and s.strip()]


def is_followup(question: str, history: list[dict]) -> bool:
    return bool(history) and bool(_FOLLOWUP_RE.search(question.strip()))


def last_user_question(history: list[dict]) -> str | None:
    for turn in reversed(history):
        if turn.get("role") == "user":
            return turn.get("standalone") or turn["content"]
    return None


def fallback_rewrite(question: str, history: list[dict]) -> str:
    """Without a model: the previous question with the new constraint appended."""
    prev = last_user_question(history)
    if not prev:
        return question
    q = re.sub(r"^(and|but|also|so)\s+", "", question.strip(), flags=re.IGNORECASE)
    if m := re.match(r"^(?:what|how) about\s+(.+?)\??$", q, re.IGNORECASE):
        topic = m.group(1)
        # "Which papers use state space models?" + "what about EEG?" -> "Which papers use EEG?"
        swapped = re.sub(r"\b(use|uses|using|about|on|for|with|study|apply)\s+(.+?)\??$", rf"\1 {topic}?", prev, count=1)
        return swapped if swapped != prev else f"{prev.rstrip('?')} — {topic}?"
    return f"{prev.rstrip('?')}; {q}"


def check_citations(answer: str, n_sources: int) -> tuple[str, list[int], int]:
    """Drop citation numbers that name no source. Returns (clean text, cited n in order, removed count)."""
    removed = 0
    cited: list[int] = []

    def fix(match: re.Match) -> str:
        nonlocal removed
        kept = []
        for part in re.split(r"\s*[,;]\s*", match.group(1)):
            n = int(part)
            if 1 <= n <= n_sources:
                kept.append(n)
                if n not in cited:
                    cited.append(n)
            else:
                removed += 1
        return "".join(f"[{n}]" for n in kept)

    clean = _CITATION_RE.sub(fix, answer)
    clean = re.sub(r"[ \t]+([.,;:])", r"\1", clean)
    return clean.strip(), cited, removed


def support(sentence: str, source_text: str) -> float:
    """Share of the sentence's content words (citations removed) that occur in the source."""
    words = content_words(_CITATION_RE.sub("", sentence))
    if not words:
        return 1.0
    return len(words & content_words(source_text)) / len(words)


def unsupported_sentences(answer: str, sources: list[Source]) -> list[dict]:
    flagged = []
    for sentence in split_sentences(answer):
        for m in _CITATION_RE.finditer(sentence):
            for n in (int(x) for x in re.split(r"\s*[,;]\s*", m.group(1))):
                if 1 <= n <= len(sources):
                    s = sources[n - 1]
                    score = support(sentence, f"{s.paper.label} {' '.join(s.paper.authors)} {s.paper.abstract}")
                    if score < SUPPORT_THRESHOLD:
                        flagged.append({"sentence": sentence, "n": n, "support": round(score, 2)})
    return flagged


def attribute_uncited(answer: str, sources: list[Source], threshold: float = 0.5) -> tuple[str, int]:
    """Post-hoc attribution for an answer the model left uncited: a sentence gets [n] when one
    source clearly supports it. Returns (text, citations added)."""
    if _CITATION_RE.search(answer):
        return answer, 0
    added = 0
    out = []
    for sentence in split_sentences(answer):
        # A sentence naming a source's title belongs to it; else the clearly best-supported one.
        named = [i for i, s in enumerate(sources) if s.paper.title and len(s.paper.title) > 15
                 and s.paper.title.lower() in sentence.lower()]
        scores = [support(sentence, f"{s.paper.label} {' '.join(s.paper.authors)} {s.paper.owner} {s.paper.abstract}")
                  for s in sources]
        best = named[0] if len(named) == 1 else (int(np.argmax(scores)) if scores else -1)
        if best >= 0 and (named or scores[best] >= threshold) and len(content_words(sentence)) >= 3:
            sentence = re.sub(r"([.!?]?)$", rf" [{best + 1}]\1", sentence, count=1)
            added += 1
        out.append(sentence)
    return " ".join(out), added


def not_in_records(question: str, hits: list[SearchHit]) -> str | None:
    """What the question asks for that the records do not hold, or None."""
    text = " ".join(h.paper.abstract for h in hits[:PROMPT_PAPERS])
    for asks, what, evidence in _NOT_IN_RECORDS:
        if asks.search(question) and (evidence is None or not evidence.search(text)):
            return what
    return None


# --- the assistant -------------------------------------------------------------------------


class Assistant:
    """The public API shared by the CLI and the UI: `ask()` for a whole answer, `stream()` for events."""

    def __init__(self, settings: Settings | None = None, index: PaperIndex | None = None, llm: LLM | None = None):
        self.settings = settings or get_settings()
        self.index = index or PaperIndex(self.settings)
        self.retriever = Retriever(self.index)
        self.llm = llm or LLM(self.settings)
        self.profiles = {r["owner"]: r.get("profile", {}) for r in self.index.reports if r.get("owner") and r.get("profile")}

    def ask(self, question: str, history: list[dict] | None = None, filters: Filters | None = None) -> Answer:
        answer = None
        for event in self.stream(question, history, filters):
            if event.kind == "done":
                answer = event.data
        assert answer is not None
        return answer

    def close(self) -> None:
        self.llm.close()

    # The steps, in order.

    def rewrite(self, question: str, history: list[dict]) -> str:
        if not is_followup(question, history):
            return question
        turns = [f"{t['role']}: {(t.get('standalone') or t['content'])[:300]}" for t in history[-4:]]
        try:
            text = self.llm.complete([{"role": "user", "content": prompts.REWRITE_PROMPT.format(
                history="\n".join(turns), question=question)}], max_tokens=60, temperature=0.0)
        except LLMUnavailable:
            return fallback_rewrite(question, history)
        text = text.strip().splitlines()[0].strip().strip('"') if text.strip() else ""
        if not text or len(text) > 300 or len(text) < 8:
            return fallback_rewrite(question, history)
        # A rewrite must keep what the follow-up adds ("EEG", "2023") and something of the
        # earlier question; otherwise the plain fallback is safer.
        prev = last_user_question(history) or ""
        added = content_words(re.sub(_FOLLOWUP_RE, " ", question)) - _FOLLOWUP_WORDS
        if not added <= content_words(text) or not (content_words(prev) & content_words(text)):
            return fallback_rewrite(question, history)
        return text

    def evidence(self, question: str, hits: list[SearchHit], per_paper_n: int = EVIDENCE_SENTENCES) -> list[Source]:
        """The sentences of each paper most similar to the question (in their original order)."""
        per_paper = [[s for s in split_sentences(h.paper.abstract) if not _INJECTION_RE.search(s)]
                     or ["(no usable sentence)"] for h in hits]
        flat = [s for sents in per_paper for s in sents]
        if not flat:
            return []
        model = self.retriever.embed_model
        q = np.asarray(model.get_query_embedding(question))
        vecs = np.asarray(model.get_text_embedding_batch(flat))
        sims = vecs @ q
        q_words = content_words(question)
        sources, offset = [], 0
        for n, (hit, sents) in enumerate(zip(hits, per_paper), start=1):
            scores = [sims[offset + i] + 0.1 * len(q_words & content_words(s)) for i, s in enumerate(sents)]
            offset += len(sents)
            best = sorted(np.argsort(scores)[::-1][:per_paper_n])
            sources.append(Source(n, hit.paper, [sents[i] for i in best], hit.score))
        return sources

    def _source_block(self, sources: list[Source]) -> str:
        blocks = []
        for s in sources:
            p = s.paper
            who = p.author_names(1) or (f"{p.n_authors} authors" if p.n_authors else "authors not listed")
            blocks.append(prompts.SOURCE_TEMPLATE.format(
                n=s.n, label=p.label, who=who, year=f", {p.year}" if p.year else "", owner=p.owner or "unknown",
                evidence=_FAKE_CITATION_RE.sub("", " ".join(s.evidence))))  # only our numbers in the prompt
        return "\n\n".join(blocks)

    def stream(self, question: str, history: list[dict] | None = None, filters: Filters | None = None) -> Iterator[Event]:
        start = time.perf_counter()
        history = history or []
        question = re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]", "", (question or "").replace("\x00", ""))  # ANSI escapes
        question = "".join(ch for ch in question if ch.isprintable() or ch in "\n\t").strip()
        timings: dict[str, float | None] = {"retrieval_s": None, "first_token_s": None, "total_s": None}
        model = self.llm.model_name

        def finish(answer: Answer) -> Event:
            answer.timings["total_s"] = round(time.perf_counter() - start, 3)
            return Event("done", answer)

        if not question or not re.search(r"\w", question):
            yield finish(Answer(question, prompts.EMPTY_QUESTION, False, [], [], model, timings, kind="error"))
            return
        if len(question) > MAX_QUESTION_CHARS:
            yield finish(Answer(question[:200], prompts.QUESTION_TOO_LONG.format(n=len(question), limit=MAX_QUESTION_CHARS),
                                False, [], [], model, timings, kind="error"))
            return

        if _INJECTION_RE.search(question):
            yield finish(Answer(question, prompts.OUT_OF_SCOPE, True, [], [], model, timings, kind="refusal",
                                checks={"reason": "instructions in the question"}))
            return

        try:
            yield Event("status", "understanding the question")
            standalone = self.rewrite(question, history)
        except LLMUnavailable as exc:
            yield Event("error", str(exc))
            yield finish(Answer(question, str(exc), False, [], [], model, timings, question, kind="error"))
            return
        # The question is analysed once; the search below takes the resolved filters as they are.
        effective, _, _ = self.retriever.resolve_filters(standalone, filters)

        # 1. Questions about the table are computed, not generated.
        table = answer_from_table(standalone, self.retriever, effective, self.profiles)
        if table is not None:
            timings["retrieval_s"] = round(time.perf_counter() - start, 3)
            sources = [Source(i, p, []) for i, p in enumerate(table.papers, start=1)]
            yield Event("sources", sources)
            timings["first_token_s"] = round(time.perf_counter() - start, 3)
            yield Event("token", table.text)
            _, cited, _ = check_citations(table.text, len(sources))
            if table.refused:
                yield finish(Answer(question, table.text, True, [], sources, "table", timings, standalone,
                                    kind="refusal", filters=effective.describe(), checks={"reason": table.kind}))
                return
            yield finish(Answer(question, table.text, False, [sources[n - 1] for n in cited], sources, "table", timings,
                                standalone, kind="table", filters=effective.describe()))
            return

        # 2. Retrieval.
        yield Event("status", "searching the papers")
        listing_question = bool(_LIST_QUESTION_RE.search(standalone))
        n_papers, n_sentences = (LIST_PAPERS, LIST_EVIDENCE) if listing_question else (PROMPT_PAPERS, EVIDENCE_SENTENCES)
        result = self.retriever.search(standalone, k=max(n_papers, self.settings.top_k), filters=effective, analyse=False)
        timings["retrieval_s"] = round(time.perf_counter() - start, 3)
        hits = result.hits[:n_papers]
        if not hits:
            text = prompts.NO_PAPERS_MATCH_FILTERS.format(filters=result.filters.describe() or "none")
            yield finish(Answer(question, text, True, [], [], model, timings, standalone, kind="refusal",
                                filters=result.filters.describe()))
            return
        sources = self.evidence(standalone, hits, n_sentences)

        # 3. Refusal, decided by the app.
        missing = not_in_records(standalone, hits)
        best_sim = max(h.dense_sim or 0.0 for h in hits)
        topic = topic_words(standalone, result.filters)
        unknown = self.retriever.analyser.unknown_words(topic)
        # Half the topic unknown to the corpus ("quantum cryptography") is a sign it is not
        # covered; a single paraphrased word ("fundus" for "fundoscopies") is not.
        weak = best_sim < MIN_DENSE_SIM or (len(unknown) >= max(1, len(topic)) / 2 and best_sim < UNKNOWN_WORD_SIM)
        if missing or weak:
            text = prompts.REFUSAL_NOT_IN_RECORDS.format(what=missing) if missing else prompts.REFUSAL_NO_EVIDENCE
            yield Event("sources", sources)
            timings["first_token_s"] = round(time.perf_counter() - start, 3)
            yield Event("token", text)
            yield finish(Answer(question, text, True, [], sources, model, timings, standalone, kind="refusal",
                                filters=result.filters.describe(),
                                checks={"best_similarity": round(best_sim, 3), "unknown_words": unknown,
                                        "reason": missing or "weak retrieval"}))
            return

        # 4. Generation, streamed.
        yield Event("sources", sources)
        messages = [{"role": "system", "content": prompts.SYSTEM_PROMPT},
                    {"role": "user", "content": prompts.ANSWER_PROMPT.format(sources=self._source_block(sources), question=standalone)}]
        raw, cut_off, error = [], False, None
        try:
            for delta in self.llm.stream(messages):
                if timings["first_token_s"] is None:
                    timings["first_token_s"] = round(time.perf_counter() - start, 3)
                raw.append(delta)
                yield Event("token", delta)
        except LLMUnavailable as exc:
            error = str(exc)
            cut_off = bool(raw)
            yield Event("error", error)
        text = "".join(raw)

        # 5. Citation check.
        clean, cited, removed = check_citations(text, len(sources))
        clean, added = attribute_uncited(clean, sources)
        if added:
            _, cited, _ = check_citations(clean, len(sources))
        flagged = unsupported_sentences(clean, sources)
        if error and not raw:
            clean = error
        elif cut_off:
            clean += prompts.CUT_OFF_NOTICE.format(reason=error)
        answer = Answer(question, clean, False, [sources[n - 1] for n in cited], sources, model, timings, standalone,
                        kind="error" if error and not raw else "rag", filters=result.filters.describe(), cut_off=cut_off,
                        checks={"invalid_citations_removed": removed, "citations_added": added, "unsupported": flagged,
                                "best_similarity": round(best_sim, 3)})
        yield finish(answer)
