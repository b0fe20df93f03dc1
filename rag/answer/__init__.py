"""The answer chain and its parts; `Assistant` is the public entry point (CLI and UI).

chain.py dispatches a question's `QueryPlan` to a composer: table.py (computed from the
records), compare.py (per-side retrieval), generate.py (evidence + LLM), refusal.py;
citations.py checks what the model wrote, rewrite.py makes follow-ups standalone.
"""

from rag.answer.chain import Assistant, clean_question
from rag.answer.citations import (
    attribute_uncited,
    check_citations,
    content_words,
    reattribute,
    sentence_spans,
    split_sentences,
    support,
    unsupported_sentences,
)
from rag.answer.records import Answer, AnswerKind, Event, EventKind, Source
from rag.answer.rewrite import fallback_rewrite, is_followup, last_user_question

__all__ = [
    "Answer",
    "AnswerKind",
    "Assistant",
    "Event",
    "EventKind",
    "Source",
    "attribute_uncited",
    "check_citations",
    "clean_question",
    "content_words",
    "fallback_rewrite",
    "is_followup",
    "last_user_question",
    "reattribute",
    "sentence_spans",
    "split_sentences",
    "support",
    "unsupported_sentences",
]
