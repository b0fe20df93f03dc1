"""The first answer in a fresh `rag ui`, with the embedded Qwen2.5-Coder-1.5B, in a real browser.

    python -m bench.fresh_ui [--data-dir DIR]     # default: the user's data dir (an index must exist)

For each first question (a factual one, which needs the model, and a topic list, which is
computed), a new `rag ui` process is started on a free port with no LLM endpoint set (so it
starts its own llama.cpp server in the background, ui/warm.py). As soon as the page answers,
headless Chromium opens it and submits the question. Printed per question: seconds from
process start to the page, and from submitting to the first answer text and to its last change
(3 s quiet), plus the 1-minute load average. Numbers, not a test; the same steps run with
SmolLM2 in tests/test_browser_research.py::test_first_answer_after_a_fresh_start, and both
drive the browser with tests/browser.py.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from rag.config import PROJECT_ROOT, get_settings
from rag.llm import free_port

QUESTIONS = {
    "fact": "What protocol does the JuliaConnectoR package use to communicate between R and Julia?",
    "topic list": "Which papers use state space models?",
}
BOX = "#question textarea, #question input"


def first_answer(data_dir: Path, question: str, log: Path) -> dict:
    """A fresh `rag ui`; the page's first question: seconds to page, first text, last change."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from tests.browser import answer_times, bot_messages, bot_text, chromium, wait_for

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "RAG_OPENAI_BASE_URL")}
    env.update(RAG_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    start = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "ui", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}/"
    driver = chromium()
    try:
        wait_for(lambda: urllib.request.urlopen(url, timeout=2).status == 200, 180, "the page")
        page_s = time.monotonic() - start
        driver.get(url)
        box = wait_for(lambda: driver.find_element(By.CSS_SELECTOR, BOX), 60, "the question box")
        before = bot_messages(driver)
        box.send_keys(question)
        submitted = time.monotonic()
        box.send_keys(Keys.ENTER)
        first, done = answer_times(driver, submitted, before)
        return {
            "page_s": round(page_s, 2),
            "first_text_s": round(first, 2),
            "done_s": round(done, 2),
            "answer": bot_text(driver)[:120],
        }
    finally:
        driver.quit()
        proc.terminate()
        proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fresh_ui", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    data_dir = args.data_dir or get_settings().data_dir
    log = Path(tempfile.mkdtemp(prefix="fresh-ui-")) / "ui.log"
    for kind, question in QUESTIONS.items():
        load = os.getloadavg()[0]
        row = first_answer(data_dir, question, log)
        print(f"{kind}: {row} (load {load:.1f} -> {os.getloadavg()[0]:.1f})", flush=True)
    print(f"ui log: {log}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
