"""The project's exceptions, in one module that imports nothing of the project.

Each keeps the built-in base it always had (`ValueError` or `RuntimeError`), so callers that
catch those still work, and all share `RagError` for a caller that wants any of them. They are
re-exported from where they used to live (`rag.corpus`, `rag.index`, `rag.llm`, `rag.embed`).
Every message is meant for the user: it names the file, folder or endpoint and what to do, and
never contains an API key.
"""

from __future__ import annotations


class RagError(Exception):
    """Any error of this project that the CLI and the UI show as a message, not a traceback."""


class CorpusError(RagError, ValueError):
    """A listing file that cannot be read; the message names the file."""


class IndexMissingError(RagError, RuntimeError):
    """No usable index in the data dir (none yet, or a missing or corrupt part of it)."""


class IngestError(RagError, RuntimeError):
    """Ingest could not produce a new generation; the previous one is untouched."""


class IngestBusy(IngestError):
    """Another ingest holds the data dir's lock (raised when asked not to wait for it)."""


class EmbeddingUnavailable(RagError, RuntimeError):
    """The embeddings endpoint failed; the message names it and never contains the key."""


class LLMUnavailable(RagError, RuntimeError):
    """The endpoint cannot be reached or the embedded server cannot start. The message says
    which endpoint and what to do; it never contains the API key."""


__all__ = [
    "CorpusError",
    "EmbeddingUnavailable",
    "IndexMissingError",
    "IngestBusy",
    "IngestError",
    "LLMUnavailable",
    "RagError",
]
