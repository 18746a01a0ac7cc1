"""wrk, the desk benchmark's closed-loop load generator, and what one run of it measured.

The benchmark's Python client (httpx) costs about 1.1 ms of CPU a request: on a
2-core machine that caps the bare view near 400 req/s, far below what gunicorn
answers, and would inflate every figure given as a share of it. wrk, written in C,
costs a few microseconds a request. Each run uses `desk.lua` beside this file, which
posts forms with a fresh student number each, counts answers by status, and can stop
after a number of answers (a board that grows by a fixed number of students).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("desk.lua")
#: How long one request may take before wrk counts it as a timeout: its default, 2 s,
#: is near what a desk page with 200 waiting takes under 20 connections on a slow tree.
TIMEOUT_SECONDS = 10


@dataclass
class Run:
    answered: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]
    #: Answers with another status than expected, socket errors and timeouts, and a
    #: run stopped by its time limit before its count of answers: a run with any of
    #: these is reported as failed, never as a figure.
    problems: dict[str, int]
    last_number: int


def command_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(
            "The desk benchmark needs wrk: `apt-get install wrk` on Debian "
            "(`make bench` installs it when run as root)."
        )
    return path


def run(
    url: str,
    *,
    expect: int,
    headers: dict[str, str],
    threads: int,
    connections: int,
    seconds: int,
    limit: int = 0,
    forms: list[str] | None = None,
    first_number: int = 0,
) -> Run:
    """wrk against `url` for `seconds`, or with a `limit` until that many answers have
    come (then `seconds` is only a cap). Each of `connections` sends its next request
    when the last is answered. With `forms`, POSTs them in turn."""
    if limit and limit < threads:
        raise ValueError("a limit needs at least one answer per thread")
    command = [
        command_path(),
        *("-t", str(threads), "-c", str(connections), "-d", f"{seconds}s"),
        *("--timeout", f"{TIMEOUT_SECONDS}s", "-s", str(SCRIPT)),
        *(part for name, value in headers.items() for part in ("-H", f"{name}: {value}")),
        url,
    ]
    env = os.environ | {
        "BENCH_THREADS": str(threads),
        "BENCH_LIMIT": str(limit),
        "BENCH_FORMS": "\n".join(forms or []),
        "BENCH_FIRST_NUMBER": str(first_number),
    }
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines: list[str] = []
    stopped = 0
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if line.strip() == "stopped":
            stopped += 1
            if stopped == threads:
                # wrk runs for its duration even when every thread has stopped; an
                # interrupt ends it now, with its summary.
                threading.Thread(target=_interrupt, args=(process,), daemon=True).start()
    process.wait()
    result = next((line for line in lines if line.startswith("result ")), None)
    if process.returncode != 0 or result is None:
        raise RuntimeError(f"wrk failed (exit {process.returncode}):\n{''.join(lines[-20:])}")
    return _figures(json.loads(result.removeprefix("result ")), expect, limit, stopped, threads)


def _interrupt(process: subprocess.Popen) -> None:
    """Until wrk ends: it ignores an interrupt while it is still starting its threads."""
    while process.poll() is None:
        process.send_signal(signal.SIGINT)
        time.sleep(1)


def _figures(data: dict, expect: int, limit: int, stopped: int, threads: int) -> Run:
    per_thread = list(data["threads"].values())
    statuses: Counter[str] = Counter()
    for thread in per_thread:
        statuses.update({status: round(count) for status, count in thread["statuses"].items()})
    answered = sum(statuses.values())
    if limit:
        seconds = max(t["finished"] for t in per_thread) - min(t["started"] for t in per_thread)
    else:
        seconds = data["duration_us"] / 1e6
    problems = {f"HTTP {s}": n for s, n in sorted(statuses.items()) if int(s) != expect}
    problems |= {
        f"socket {kind}": round(count)
        for kind, count in data["errors"].items()
        if kind != "status" and count
    }
    if limit and stopped < threads:
        problems["time limit before the count of answers"] = 1
    return Run(
        answered=answered,
        seconds=seconds,
        rps=answered / seconds if seconds > 0 else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        statuses=dict(statuses),
        problems=problems,
        last_number=round(max(t["last_number"] for t in per_thread)),
    )
