"""The local MiniLM encoder computes what sentence-transformers computes for this model."""

from __future__ import annotations

import numpy as np

from rag.embed import count_tokens, model_path
from rag.minilm import MiniLMEmbedding


def test_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    path = model_path()
    texts = ["state space models for ECG", "", "Müller's über-long " + "abstract text " * 300,
             "Differential privacy for medical imaging.", "a"]
    ours = np.array(MiniLMEmbedding(path, embed_batch_size=2).get_text_embedding_batch(texts))
    reference = SentenceTransformer(path, device="cpu").encode(texts, normalize_embeddings=True)
    assert ours.shape == (5, 384)
    assert np.abs(ours - reference).max() < 1e-5
    assert count_tokens(texts[2], path) > 256  # the long text really was truncated to the window


def test_llama_index_interface():
    embed = MiniLMEmbedding(model_path())
    q = np.array(embed.get_query_embedding("sleep staging with EEG"))
    t = np.array(embed.get_text_embedding("Deep learning for sleep stage classification from EEG."))
    assert abs(np.linalg.norm(q) - 1) < 1e-5 and float(q @ t) > 0.5
