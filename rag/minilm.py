"""all-MiniLM-L6-v2 as a plain torch module: tokenizer.json + model.safetensors, no
`transformers`/`sentence-transformers` import (those cost ~6 s of start-up on this machine).

It computes what sentence-transformers computes for this model (BERT encoder, mean pooling
over the attention mask, L2 normalisation, 256-wordpiece truncation); tests/test_embed.py
checks the vectors against sentence-transformers itself. Exposed to llama-index through a
`BaseEmbedding` subclass, so the rest of the code uses the ordinary llama-index interface.

Ingest and search run the same model through onnxruntime (rag/onnx_minilm.py, no torch
import); this encoder is the reference the ONNX model is checked against when it is built,
and the fallback (RAG_EMBED_BACKEND=torch, or when the ONNX model cannot be had).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, ClassVar

import torch
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr
from torch import nn

from rag.config import EmbedSettings


class _Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, intermediate: int, eps: float):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=eps)
        self.ffn_in = nn.Linear(hidden, intermediate)
        self.ffn_out = nn.Linear(intermediate, hidden)
        self.ffn_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, h = x.shape
        d = h // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, d).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        context = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = self.attn_norm(x + self.attn_out(context.transpose(1, 2).reshape(b, n, h)))
        return self.ffn_norm(x + self.ffn_out(nn.functional.gelu(self.ffn_in(x))))


class MiniLM(nn.Module):
    """BERT encoder with the config of the packaged model."""

    def __init__(self, config: dict):
        super().__init__()
        h, eps = config["hidden_size"], config["layer_norm_eps"]
        self.word = nn.Embedding(config["vocab_size"], h)
        self.position = nn.Embedding(config["max_position_embeddings"], h)
        self.token_type = nn.Embedding(config["type_vocab_size"], h)
        self.norm = nn.LayerNorm(h, eps=eps)
        self.layers = nn.ModuleList(
            _Layer(h, config["num_attention_heads"], config["intermediate_size"], eps)
            for _ in range(config["num_hidden_layers"])
        )

    def forward(self, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.norm(self.word(ids) + self.position(positions) + self.token_type(torch.zeros_like(ids)))
        mask = torch.zeros(attention.shape, dtype=x.dtype).masked_fill(attention == 0, -math.inf)[
            :, None, None, :
        ]
        for layer in self.layers:
            x = layer(x, mask)
        summed = (x * attention.unsqueeze(-1)).sum(1)  # mean pooling over real tokens
        return nn.functional.normalize(summed / attention.sum(1, keepdim=True), dim=-1)


_NAMES = {
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attn_out": "attention.output.dense",
    "attn_norm": "attention.output.LayerNorm",
    "ffn_in": "intermediate.dense",
    "ffn_out": "output.dense",
    "ffn_norm": "output.LayerNorm",
}


def load_minilm(path: str) -> MiniLM:
    from safetensors.torch import load_file

    with open(os.path.join(path, "config.json")) as handle:
        model = MiniLM(json.load(handle))
    weights = load_file(os.path.join(path, "model.safetensors"))
    state = {
        "word.weight": weights["embeddings.word_embeddings.weight"],
        "position.weight": weights["embeddings.position_embeddings.weight"],
        "token_type.weight": weights["embeddings.token_type_embeddings.weight"],
        "norm.weight": weights["embeddings.LayerNorm.weight"],
        "norm.bias": weights["embeddings.LayerNorm.bias"],
    }
    for i in range(len(model.layers)):
        for ours, theirs in _NAMES.items():
            for kind in ("weight", "bias"):
                state[f"layers.{i}.{ours}.{kind}"] = weights[f"encoder.layer.{i}.{theirs}.{kind}"]
    model.load_state_dict(state)
    return model.eval()


class MiniLMEmbedding(BaseEmbedding):
    """llama-index embedding backed by `MiniLM`; texts are batched by length to limit padding."""

    uses_torch: ClassVar[bool] = True  # rag.embed.set_threads sets torch's threads for it
    model_path: str
    max_length: int = 256
    _model: Any = PrivateAttr()
    _tokenizer: Any = PrivateAttr()

    def __init__(self, model_path: str, embed_batch_size: int = EmbedSettings().batch_size, **kwargs: Any):
        super().__init__(  # type: ignore[call-arg]  # model_path is a field declared above
            model_path=model_path, embed_batch_size=embed_batch_size, model_name="all-MiniLM-L6-v2", **kwargs
        )
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(os.path.join(model_path, "tokenizer.json"))
        self._tokenizer.enable_truncation(self.max_length)
        self._tokenizer.no_padding()
        self._model = load_minilm(model_path)

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> list[list[float]]:
        encodings = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self.embed_batch_size):
            batch = order[start : start + self.embed_batch_size]
            width = max(len(encodings[i].ids) for i in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                n = len(encodings[i].ids)
                ids[row, :n] = torch.tensor(encodings[i].ids)
                attention[row, :n] = 1
            for i, vector in zip(batch, self._model(ids, attention).tolist(), strict=True):
                out[i] = vector
        return out

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.encode([query])[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.encode([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)
