"""Embeddings from an OpenAI-compatible `/v1/embeddings` endpoint (vLLM, llama.cpp, OpenAI), for
corpora too large to embed on the local CPU. Chosen by RAG_EMBED_BASE_URL; see rag/embed.py."""

from __future__ import annotations

from typing import Any

import openai
from llama_index.core.base.embeddings.base import BaseEmbedding
from openai import OpenAI
from pydantic import PrivateAttr

from rag.config import LLMSettings
from rag.errors import EmbeddingUnavailable


class EndpointEmbedding(BaseEmbedding):
    """One request per batch of `embed_batch_size` texts."""

    base_url: str
    api_model: str
    timeout_s: float = LLMSettings().timeout_s  # rag.embed.get_embedder passes the settings' one
    _client: Any = PrivateAttr()

    def __init__(self, api_key: str, **kwargs: Any):
        super().__init__(model_name=kwargs.get("api_model", ""), **kwargs)
        self._client = OpenAI(base_url=self.base_url, api_key=api_key, timeout=self.timeout_s, max_retries=1)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        try:
            response = self._client.embeddings.create(model=self.api_model, input=texts)
        except openai.APIError as exc:
            raise EmbeddingUnavailable(
                f"the embeddings endpoint {self.base_url} failed ({type(exc).__name__}); "
                "check RAG_EMBED_BASE_URL and that the server is running"
            ) from exc
        vectors = [item.embedding for item in sorted(response.data, key=lambda d: d.index)]
        if len(vectors) != len(texts) or any(not v or not isinstance(v[0], float) for v in vectors):
            # e.g. a llama.cpp server without pooling answers with one vector per token
            raise EmbeddingUnavailable(
                f"the embeddings endpoint {self.base_url} did not return one vector per text; "
                "for llama.cpp set a pooling type (--kv_overrides llama.pooling_type=int:1)"
            )
        return vectors

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embeddings([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)
