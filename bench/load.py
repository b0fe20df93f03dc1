"""Load test of the real Gradio app with many simultaneous users. Numbers and PASS/FAIL checks.

Run from the project root (it keeps both cores busy: ~6 min on a quiet 2-core machine, 20+ when busy):

    nice -n 5 python -m bench.load                       # 10 sessions x 10 questions, SmolLM2, burst on
    python -m bench.load --sessions 4 --questions 3      # a quick smoke run
    python -m bench.load --queue-size 8                  # a smaller Gradio queue (ui_queue_size)
    python -m bench.load --model qwen --max-tokens 200   # the real 1.5B model (much slower)
    python -m bench.load --url http://127.0.0.1:7860/ --server-pid PID   # an app that is already running

Without --url it builds an index of seeds/ in a temporary data dir (or uses --data-dir), creates
`rag.answer.Assistant` with the packaged model and short answers (--max-tokens), serves
`ui.app.build_app(assistant)` on 127.0.0.1 on a free port in this process, warms it up (embedding
model loaded, llama.cpp server started) and stops everything at the end.

What it does and measures:
  sessions  --sessions threads, each its own gradio_client.Client (= one browser session), start
            together and each ask --questions questions through the /ask endpoint, one after the
            other like a user: a topic question (a different topic per session), follow-ups that
            only make sense with the session's history ("Which of these have code?"), and a few
            questions answered from the paper table ("How many papers per year?").
            latency = submit -> final output; queue wait = submit -> first streamed update (polled
            every 50 ms; an answer that finished within one poll counts its whole latency).
  monitor   every 0.25 s: the Gradio queue length (GET /gradio_api/queue/status: events waiting,
            not the one being processed), the RSS of the app process (this process when in-process,
            so it includes the client threads) and of the llama.cpp server (a child of the app
            process whose command line runs llama_cpp.server); with --url, memory only with --server-pid.
  burst     after the sessions: one LLM question occupies the single LLM slot, then
            ui_queue_size + --burst-extra new sessions each submit a table question at once. Those
            the queue cannot hold must be turned away with a "queue is full" error; the others
            must complete.

Checks (exit code 1 if any fails):
  a. complete     every question returned, no exception, a non-empty answer that is not an error
  b. no leaks     each returned chat holds exactly this session's questions, in order; none of the
                  questions only another session asks; the sources panel is headed by this question
  c. bounded      queue length never above ui_queue_size; in the burst at least one job rejected, every
                  rejection says "queue is full", every accepted job completed
  d. memory flat  RSS growth from after the first 10 answered questions (models loaded, caches warm)
                  to the end, for the app and the LLM server, each at most --max-growth-mb (150 MB).
                  Why 150: what legitimately grows after warm-up is session state (100 turns of a few
                  kB each), allocator arenas of the worker threads and the mmapped model pages the
                  LLM server has not touched yet (SmolLM2's file is ~90 MB): tens of MB. 150 MB is
                  ~10% of the app's RSS and means >1.5 MB kept per question over 100: a leak.
                  SKIP when not measured (--url without --server-pid). Seen: the LLM server stays flat
                  (+5 MB); the app grew 200-350 MB in steps because glibc gave each Gradio worker
                  thread its own malloc arena that keeps freed memory; ui.app.limit_malloc_arenas()
                  (called by ui.app.main() and here) caps them at 2: +41 MB over 100 questions.

Results: a table on stdout and bench/results/load-<UTC time>.json (args, every question, every
sample, the burst, the checks). On a busy 2-core machine all times are inflated; the 1-minute load
average is stored.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import contextlib
import html
import json
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx

from eval.metrics import percentile
from rag.config import PROJECT_ROOT, Settings
from rag.llm import free_port

# First topics, one per session, each hitting real seed papers; the second topic is for "What about ...?".
TOPICS = [
    ("state space models", "transformers"),
    ("federated learning", "differential privacy"),
    ("ECG analysis", "EEG"),
    ("MRI reconstruction", "CT"),
    ("large language models in radiology", "radiology reports"),
    ("medical image segmentation", "topology"),
    ("differential privacy", "federated learning"),
    ("computational pathology", "histopathology"),
    ("diffusion models", "synthetic data"),
    ("chest X-rays", "explainable AI"),
    ("explainable AI", "protein function prediction"),
    ("time series", "ECG"),
]
TABLE_QUESTIONS = ["How many papers per year?", "How many papers does each listing have?"]
BURST_QUESTION = "How many papers per year?"  # answered from the table: no LLM
BLOCKER_QUESTION = "Which papers use state space models for ECG?"
QUEUE_FULL = "queue is full"
ASK_TIMEOUT_S = 1800.0


# --- helpers ---------------------------------------------------------------------------------


def rss_mb(pid: int | None) -> float | None:
    """VmRSS of a process in MB, None if there is no such process."""
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"^VmRSS:\s+(\d+)", status, re.M)
    return int(m.group(1)) / 1024 if m else None


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                children = [int(c) for c in (task / "children").read_text().split()]
                found += children
                todo += children
    return found


def llm_server_pid(app_pid: int | None) -> int | None:
    """The embedded llama.cpp server: a descendant of the app running `llama_cpp.server`."""
    if app_pid is None:
        return None
    for pid in descendants(app_pid):
        with contextlib.suppress(OSError):
            if b"llama_cpp.server" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    return None


def queue_length(url: str) -> int | None:
    try:
        return httpx.get(url.rstrip("/") + "/gradio_api/queue/status", timeout=5).json()["queue_size"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def text_of(message: dict) -> str:
    """A chat message's text, whether Gradio returns a string or a list of content parts."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def session_questions(i: int, n: int) -> list[str]:
    """Session i's questions: its own topic, follow-ups on its history, a few table questions."""
    topic, other = TOPICS[i % len(TOPICS)]
    if i >= len(TOPICS):  # more sessions than topics: keep the first question unique
        topic = f"{topic} (session {i + 1})"
    plan = [
        f"Which papers use {topic}?",
        "Which of these have code?",
        "Who wrote them?",
        TABLE_QUESTIONS[0],
        f"What about {other}?",
        "And which of those are from 2024?",
        "What methods do they use?",
        TABLE_QUESTIONS[1],
        "Which of them is the newest?",
        f"Summarise what the papers on {topic} found.",
    ]
    return [plan[k % len(plan)] for k in range(n)]


def clients(url: str, n: int):
    """n gradio_client sessions, made in parallel (each fetches the app's config)."""
    from gradio_client import Client

    with ThreadPoolExecutor(min(n, 8)) as pool:
        return list(pool.map(lambda _: Client(url, verbose=False), range(n)))


def submit_ask(client, question: str):
    return client.submit(question, [], "any", "any", [], False, api_name="/ask")


# --- the app ---------------------------------------------------------------------------------


def model_settings(model: str) -> dict:
    from rag.config import get_settings
    from rag.llm import QWEN_FILE, smollm_path

    if model == "smollm":
        return {"llm_model_path": smollm_path(), "llm_model": "smollm2"}
    joined = (
        get_settings().data_dir / "models" / QWEN_FILE
    )  # reuse the user's joined model, as bench.run does
    return {"llm_model_path": joined if joined.exists() else None, "llm_model": "qwen2.5-coder-1.5b-instruct"}


@contextlib.contextmanager
def served_app(args):
    """Index (temp or --data-dir), Assistant, warm-up, the app on 127.0.0.1; yields (url, settings)."""
    from rag.answer import Assistant
    from rag.index import ingest
    from ui.app import build_app, limit_malloc_arenas

    limit_malloc_arenas()  # as ui.app.main() does for a real deployment
    with contextlib.ExitStack() as stack:
        data_dir = args.data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rag-load-")))
        settings = Settings(
            data_dir=data_dir,
            openai_base_url=None,
            openai_api_key=None,
            max_tokens=args.max_tokens,
            **({"ui_queue_size": args.queue_size} if args.queue_size else {}),
            **model_settings(args.model),
        )
        t = time.perf_counter()
        ingest(settings)
        print(f"index ready in {data_dir} ({time.perf_counter() - t:.0f} s)", flush=True)
        assistant = Assistant(settings)
        stack.callback(assistant.close)
        t = time.perf_counter()
        assistant.retriever.search(
            "warm up", k=1
        )  # as ui.app.main(): models loaded before the first question
        assistant.llm.complete([{"role": "user", "content": "Say OK."}], max_tokens=4)  # starts llama.cpp
        print(f"warm-up (embedding model, llama.cpp server) {time.perf_counter() - t:.0f} s", flush=True)
        demo = build_app(assistant)
        port = free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        stack.callback(demo.close)
        yield f"http://127.0.0.1:{port}/", settings


# --- monitoring ------------------------------------------------------------------------------


class Monitor(threading.Thread):
    """Samples the queue length and the RSS of the app and the LLM server until stopped."""

    def __init__(self, url: str, app_pid: int | None, interval: float = 0.25):
        super().__init__(daemon=True)
        self.url, self.app_pid, self.interval = url, app_pid, interval
        self.samples: list[dict] = []
        self.t0 = time.perf_counter()
        self._halt = threading.Event()

    def sample(self) -> dict:
        llm_pid = llm_server_pid(self.app_pid)
        return {
            "t": round(time.perf_counter() - self.t0, 2),
            "queue": queue_length(self.url),
            "app_mb": rss_mb(self.app_pid),
            "llm_mb": rss_mb(llm_pid),
            "load_1m": os.getloadavg()[0],
        }

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append(self.sample())
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def queue_max(self, since: float = 0.0) -> int | None:
        return max(
            (s["queue"] for s in self.samples if s["t"] >= since and s["queue"] is not None), default=None
        )

    def memory_at(self, t: float) -> dict:
        """The first sample at or after time t (the last one if none)."""
        later = [s for s in self.samples if s["t"] >= t] or self.samples[-1:]
        return later[0] if later else {}


# --- sessions --------------------------------------------------------------------------------


def ask_and_time(client, question: str, t0: float) -> dict:
    """One question: latency, queue wait, the final (question, chat, sources) or the exception."""
    start = time.perf_counter()
    job = submit_ask(client, question)
    first = None
    deadline = start + ASK_TIMEOUT_S
    while not job.done() and time.perf_counter() < deadline:
        if first is None and job.outputs():
            first = time.perf_counter()
        time.sleep(0.05)
    row = {"question": question, "submitted_t": round(start - t0, 2)}
    try:
        _, chat, sources = job.result(timeout=1)
    except Exception as exc:  # recorded and counted by check (a)
        return row | {"error": f"{type(exc).__name__}: {exc}"}
    end = time.perf_counter()
    return row | {
        "latency_s": round(end - start, 3),
        "queue_s": round((first or end) - start, 3),
        "finished_t": round(end - t0, 2),
        "chat": chat,
        "sources": sources,
    }


def run_session(i: int, client, questions: list[str], barrier: threading.Barrier, t0: float) -> list[dict]:
    barrier.wait()
    rows = []
    for k, question in enumerate(questions):
        row = ask_and_time(client, question, t0)
        rows.append({"session": i, "n": k + 1, **row})
        took = (
            f"{row['latency_s']:.1f} s (queue {row['queue_s']:.1f} s)" if "latency_s" in row else row["error"]
        )
        print(
            f"  {time.perf_counter() - t0:6.0f} s  session {i + 1:2d} question {k + 1:2d}: {took}", flush=True
        )
    return rows


def judge(row: dict, own: list[str], foreign: set[str]) -> dict:
    """Check (a) and (b) for one answered question; drops the bulky chat and sources."""
    chat, sources = row.pop("chat", None), row.pop("sources", None)
    if "error" in row:
        return row | {"complete": False, "leak": None}
    answer = text_of(chat[-1]).strip() if chat and chat[-1]["role"] == "assistant" else ""
    users = [text_of(m).strip() for m in chat if m["role"] == "user"]
    heading = f"Sources for: {html.escape(row['question'][:120])}</h4>"
    problems = []
    if users != own[: row["n"]]:
        problems.append(f"chat questions {users!r} != this session's {own[: row['n']]!r}")
    if leaked := sorted(set(users) & foreign):
        problems.append(f"other sessions' questions in the chat: {leaked!r}")
    if heading not in (sources or ""):
        problems.append("sources panel not headed by this question")
    error = "**Error:**" in answer
    return row | {
        "answer_chars": len(answer),
        "answer_error": answer[:200] if error else None,
        "complete": bool(answer) and not error,
        "leak": "; ".join(problems) or None,
    }


def run_sessions(url: str, n_sessions: int, n_questions: int) -> tuple[list[dict], float]:
    plans = [session_questions(i, n_questions) for i in range(n_sessions)]
    sessions = clients(url, n_sessions)
    barrier = threading.Barrier(n_sessions)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(n_sessions) as pool:
        futures = [pool.submit(run_session, i, c, plans[i], barrier, t0) for i, c in enumerate(sessions)]
        rows = [row for f in futures for row in f.result()]
    wall = time.perf_counter() - t0
    for c in sessions:
        c.close()
    judged = []
    for row in rows:
        i = row["session"]
        foreign = {q for j, plan in enumerate(plans) if j != i for q in plan} - set(plans[i])
        judged.append(judge(row, plans[i], foreign))
    return judged, wall


# --- burst -----------------------------------------------------------------------------------


def burst_job(client) -> dict:
    start = time.perf_counter()
    try:
        submit_ask(client, BURST_QUESTION).result(timeout=ASK_TIMEOUT_S)
        return {"outcome": "completed", "latency_s": round(time.perf_counter() - start, 3)}
    except Exception as exc:
        full = QUEUE_FULL in str(exc).lower()
        return {"outcome": "rejected" if full else "error", "message": f"{type(exc).__name__}: {exc}"}


def run_burst(url: str, queue_size: int, extra: int, monitor: Monitor) -> dict:
    n = queue_size + extra
    burst_clients = clients(url, n)
    blocker_client = clients(url, 1)[0]
    blocker = submit_ask(blocker_client, BLOCKER_QUESTION)
    deadline = time.perf_counter() + ASK_TIMEOUT_S
    while not blocker.outputs() and not blocker.done() and time.perf_counter() < deadline:
        time.sleep(0.05)  # wait until the blocker holds the LLM slot
    since = time.perf_counter() - monitor.t0
    t = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        jobs = list(pool.map(burst_job, burst_clients))
    wall = time.perf_counter() - t
    with contextlib.suppress(Exception):
        blocker.result(timeout=ASK_TIMEOUT_S)
    for c in burst_clients + [blocker_client]:
        c.close()
    count = {k: sum(j["outcome"] == k for j in jobs) for k in ("completed", "rejected", "error")}
    return {
        "jobs": n,
        **count,
        "wall_s": round(wall, 1),
        "queue_max": monitor.queue_max(since),
        "messages": sorted({j["message"] for j in jobs if "message" in j}),
        "latency_max_s": max((j["latency_s"] for j in jobs if "latency_s" in j), default=None),
    }


# --- report ----------------------------------------------------------------------------------


def memory(monitor: Monitor, rows: list[dict], end: dict) -> dict:
    """RSS before the run, after the first 10 answered questions, and at the end."""
    finished = sorted(r["finished_t"] for r in rows if "finished_t" in r)
    after = monitor.memory_at(finished[min(10, len(finished)) - 1]) if finished else {}
    start = monitor.samples[0] if monitor.samples else {}
    out = {}
    for who in ("app", "llm"):
        a, b = after.get(f"{who}_mb"), end.get(f"{who}_mb")
        out[who] = {
            "start_mb": start.get(f"{who}_mb"),
            "after_10_mb": a,
            "end_mb": b,
            "growth_mb": None if a is None or b is None else round(b - a, 1),
        }
    return out


def checks(
    rows: list[dict], queue_size: int, queue_max: int | None, burst: dict | None, mem: dict, max_growth: float
) -> dict:
    incomplete = [r for r in rows if not r["complete"]]
    leaks = [r for r in rows if r.get("leak")]
    result = {
        "a_complete": {
            "pass": not incomplete,
            "detail": f"{len(rows) - len(incomplete)}/{len(rows)} answered; "
            f"{sum('error' in r for r in rows)} exceptions, "
            f"{sum(bool(r.get('answer_error')) for r in rows)} error answers, "
            f"{sum(r.get('answer_chars') == 0 for r in rows)} empty",
        },
        "b_no_leaks": {
            "pass": not leaks and not any("error" in r for r in rows),
            "detail": f"{len(leaks)} of {len(rows)} chats wrong"
            + (f"; first: {leaks[0]['leak']}" if leaks else ""),
        },
    }
    bounded = queue_max is not None and queue_max <= queue_size
    detail = f"max queue seen {queue_max} (limit {queue_size})"
    if burst is not None:
        bounded = (
            bounded
            and burst["rejected"] > 0
            and burst["error"] == 0
            and (burst["queue_max"] or 0) <= queue_size
        )
        detail += (
            f"; burst of {burst['jobs']}: {burst['completed']} completed, {burst['rejected']} rejected, "
            f"{burst['error']} other errors; messages {burst['messages']}"
        )
    result["c_queue_bounded"] = {"pass": bounded, "detail": detail}
    growth = {who: mem[who]["growth_mb"] for who in mem}
    measured = [g for g in growth.values() if g is not None]
    result["d_memory_flat"] = {
        "pass": all(g <= max_growth for g in measured) if measured else None,  # None: not measured
        "detail": f"growth after the first 10 answers: app {growth['app']} MB, "
        f"LLM server {growth['llm']} MB (bound {max_growth:.0f} MB each)",
    }
    return result


def summary(
    args, rows: list[dict], wall: float, queue_size: int, queue_max, burst, mem: dict
) -> list[tuple[str, str]]:
    def f(v, unit=""):
        return "–" if v is None else (f"{v:.1f}{unit}" if isinstance(v, float) else f"{v}{unit}")

    lat = [r.get("latency_s") for r in rows]
    wait = [r.get("queue_s") for r in rows]
    lines = [
        ("sessions x questions", f"{args.sessions} x {args.questions} = {len(rows)}"),
        ("model, max tokens", f"{args.model}, {args.max_tokens}" if not args.url else "(external app)"),
        ("wall time", f(wall, " s")),
        ("questions/min", f(60 * sum(r["complete"] for r in rows) / wall if wall else None)),
        ("latency p50 / p95 / max", " / ".join(f(percentile(lat, q), " s") for q in (50, 95, 100))),
        ("queue wait p50 / p95 / max", " / ".join(f(percentile(wait, q), " s") for q in (50, 95, 100))),
        ("queue length max (limit)", f"{f(queue_max)} ({queue_size})"),
    ]
    for who, name in (("app", "app RSS"), ("llm", "LLM server RSS")):
        m = mem[who]
        lines.append(
            (
                f"{name} start / after 10 / end",
                " / ".join(f(m[k], " MB") for k in ("start_mb", "after_10_mb", "end_mb"))
                + f"  (growth {f(m['growth_mb'], ' MB')})",
            )
        )
    if burst:
        lines.append(
            (
                "burst: jobs / completed / rejected / errors",
                f"{burst['jobs']} / {burst['completed']} / {burst['rejected']} / {burst['error']}"
                f"  (queue max {f(burst['queue_max'])}, {f(burst['wall_s'], ' s')})",
            )
        )
    return lines


def show(lines: list[tuple[str, str]], result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="load test", title_justify="left")
    table.add_column("measure")
    table.add_column("value")
    for k, v in lines:
        table.add_row(k, v)
    checks_table = Table(title="checks", title_justify="left")
    for c in ("check", "result", "detail"):
        checks_table.add_column(c, overflow="fold")
    for name, c in result.items():
        checks_table.add_row(name, {True: "PASS", False: "FAIL", None: "SKIP"}[c["pass"]], c["detail"])
    console = Console(width=160)
    console.print(table)
    console.print(checks_table)


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description="Many users against the Gradio app (see the module docstring).",
    )
    parser.add_argument("--sessions", type=int, default=10, help="simultaneous browser sessions")
    parser.add_argument("--questions", type=int, default=10, help="questions per session")
    parser.add_argument("--url", help="an app already running (default: serve one in this process)")
    parser.add_argument("--server-pid", type=int, help="with --url: the app's pid, to sample its memory")
    parser.add_argument("--data-dir", type=Path, help="index here (built or updated) instead of a temp dir")
    parser.add_argument("--model", choices=("smollm", "qwen"), default="smollm")
    parser.add_argument("--max-tokens", type=int, default=120)
    parser.add_argument(
        "--queue-size", type=int, help="Gradio queue max_size (ui_queue_size); default: the setting"
    )
    parser.add_argument(
        "--burst", action=argparse.BooleanOptionalAction, default=True, help="the queue-full burst"
    )
    parser.add_argument("--burst-extra", type=int, default=8, help="burst jobs beyond the queue size")
    parser.add_argument("--max-growth-mb", type=float, default=150.0, help="memory check bound, per process")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results")
    args = parser.parse_args(argv)

    run = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    load = [os.getloadavg()[0]]
    with contextlib.ExitStack() as stack:
        if args.url:
            url, app_pid = args.url, args.server_pid
            queue_size = args.queue_size or Settings().ui_queue_size
        else:
            url, settings = stack.enter_context(served_app(args))
            app_pid, queue_size = os.getpid(), settings.ui_queue_size
        monitor = Monitor(url, app_pid)
        monitor.start()
        stack.callback(monitor.stop)
        time.sleep(0.5)  # a first sample before any question
        print(f"{args.sessions} sessions x {args.questions} questions against {url} ...", flush=True)
        rows, wall = run_sessions(url, args.sessions, args.questions)
        time.sleep(1)
        end = monitor.sample()
        queue_max = monitor.queue_max()
        mem = memory(monitor, rows, end)
        burst = None
        if args.burst:
            print(
                f"burst: {queue_size + args.burst_extra} jobs at once, queue size {queue_size} ...",
                flush=True,
            )
            burst = run_burst(url, queue_size, args.burst_extra, monitor)
        load.append(os.getloadavg()[0])

    result = checks(rows, queue_size, queue_max, burst, mem, args.max_growth_mb)
    lines = summary(args, rows, wall, queue_size, queue_max, burst, mem)
    show(lines, result)
    args.out.mkdir(parents=True, exist_ok=True)
    out_file = args.out / f"load-{run}.json"
    out_file.write_text(
        json.dumps(
            {
                "run": run,
                "args": vars(args),
                "url_given": bool(args.url),
                "queue_size": queue_size,
                "cpus": os.cpu_count(),
                "load_avg_1m": load,
                "wall_s": round(wall, 1),
                "summary": dict(lines),
                "checks": result,
                "memory": mem,
                "burst": burst,
                "questions": rows,
                "samples": monitor.samples,
            },
            indent=1,
            default=str,
        )
    )
    print(f"results: {out_file}")
    return 1 if any(c["pass"] is False for c in result.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
