"""Follow-ups made standalone: "and which of those are from 2026?" after a question becomes
one question, by the LLM when it keeps what both turns said, else by a plain rule."""

from __future__ import annotations

import re

from rag import prompts
from rag.answer.citations import content_words
from rag.config import AnswerSettings
from rag.llm import LLM, LLMUnavailable
from rag.query import lexicon as lx

_DEFAULTS = AnswerSettings()


def is_followup(question: str, history: list[dict]) -> bool:
    """A question that leans on the previous turn: opens with "and"/"what about", or points back."""
    if not history:
        return False
    norms = [t.norm for t in lx.tokenize(question)]
    if not norms:
        return False
    opens = norms[0] in lx.FOLLOWUP_OPENERS or norms[:2] in (["what", "about"], ["how", "about"])
    return opens or bool(set(norms) & lx.FOLLOWUP_REFERENCES)


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
        swapped = re.sub(
            r"\b(use|uses|using|about|on|for|with|study|apply)\s+(.+?)\??$", rf"\1 {topic}?", prev, count=1
        )
        return swapped if swapped != prev else f"{prev.rstrip('?')} — {topic}?"
    return f"{prev.rstrip('?')}; {q}"


def _added_words(question: str) -> set[str]:
    """What a follow-up adds ("EEG", "2023"), without its pointing words."""
    return {
        w
        for w in content_words(question)
        if w not in lx.FOLLOWUP_OPENERS | lx.FOLLOWUP_REFERENCES
        and w not in lx.LIST_CUES
        and w not in lx.PAPER_WORDS
    }


def rewrite(llm: LLM, question: str, history: list[dict], cfg: AnswerSettings = _DEFAULTS) -> str:
    """The standalone form of a follow-up; other questions are returned as they are."""
    if not is_followup(question, history):
        return question
    turns = [
        f"{t['role']}: {(t.get('standalone') or t['content'])[: cfg.max_rewrite_chars]}"
        for t in history[-cfg.history_turns :]
    ]
    try:
        text = llm.complete(
            [
                {
                    "role": "user",
                    "content": prompts.REWRITE_PROMPT.format(history="\n".join(turns), question=question),
                }
            ],
            max_tokens=cfg.rewrite_max_tokens,
            temperature=0.0,
        )
    except LLMUnavailable:
        return fallback_rewrite(question, history)
    text = text.strip().splitlines()[0].strip().strip('"') if text.strip() else ""
    if not text or len(text) > cfg.max_rewrite_chars or len(text) < 8:
        return fallback_rewrite(question, history)
    # A rewrite must keep what the follow-up adds and something of the earlier question;
    # otherwise the plain fallback is safer.
    prev = last_user_question(history) or ""
    if not _added_words(question) <= content_words(text) or not (content_words(prev) & content_words(text)):
        return fallback_rewrite(question, history)
    return text
