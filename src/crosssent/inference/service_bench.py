"""A bounded load test of ``crosssent serve`` on loopback: ``crosssent bench-service``.

The service runs as its own process (``crosssent serve``, the command users run), on
127.0.0.1 only; clients are threads of this process, each with a kept-alive connection,
sending ``POST /predict`` with one clip per request. For each number of concurrent clients it
reports requests/s, median and 99th-percentile latency, errors, and the server's resident
memory before and after. Every loop is bounded by a request count and a time limit.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

TEXTS = [
    "i really loved this film, the acting was great",
    "boring plot and awful dialogue, a waste of time",
    "it was fine i guess, nothing special",
    "the music was beautiful but the ending felt rushed",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mib(pid: int) -> float | None:
    """Resident memory of a process in MiB (Linux /proc), None elsewhere."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _wait_ready(url: str, server: subprocess.Popen, timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ValueError(f"crosssent serve exited with code {server.returncode} before it answered")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise ValueError(f"crosssent serve did not answer /health within {timeout_s:g} s")


def _level(url: str, clients: int, requests: int, time_limit_s: float) -> dict[str, Any]:
    """``requests`` requests over ``clients`` threads (stopping early at ``time_limit_s``)."""
    import httpx

    latencies: list[float] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    counter = iter(range(requests))
    deadline = time.monotonic() + time_limit_s

    def worker(_: int) -> None:
        with httpx.Client(timeout=60) as client:
            while time.monotonic() < deadline:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                body = {"clips": [{"id": str(index), "text": TEXTS[index % len(TEXTS)]}]}
                started = time.perf_counter()
                try:
                    code = str(client.post(f"{url}/predict", json=body).status_code)
                except httpx.HTTPError as err:
                    code = type(err).__name__
                took = time.perf_counter() - started
                with lock:
                    statuses[code] = statuses.get(code, 0) + 1
                    if code == "200":
                        latencies.append(took)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(worker, range(clients)))
    wall = time.perf_counter() - started
    done = sum(statuses.values())
    ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return {
        "clients": clients,
        "requests": done,
        "ok": statuses.get("200", 0),
        "errors": done - statuses.get("200", 0),
        "statuses": statuses,
        "requests_per_s": round(statuses.get("200", 0) / wall, 2),
        "wall_s": round(wall, 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
    }


def bench_service(
    model_dir: Path,
    *,
    clients: list[int],
    requests: int,
    time_limit_s: float = 120.0,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Start ``crosssent serve`` on 127.0.0.1, load it level by level, stop it; the report."""
    if not (model_dir / "config.json").is_file():
        raise ValueError(f"{model_dir}: not a CrossSent model folder (config.json is missing)")
    if any(c < 1 for c in clients) or requests < 1:
        raise ValueError("--clients and --requests must be at least 1")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "crosssent.cli",
        "serve",
        "--model",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(url, server, timeout_s=180)
        _level(url, 1, 10, time_limit_s)  # warm-up, not reported
        memory_before = _rss_mib(server.pid)
        levels = []
        for n in clients:
            progress(f"{n} client(s), {requests} requests ...")
            result = _level(url, n, requests, time_limit_s)
            result["server_rss_mib_after"] = _rss_mib(server.pid)
            levels.append(result)
            progress(
                f"  {result['requests_per_s']} requests/s, p50 {result['p50_ms']} ms, "
                f"p99 {result['p99_ms']} ms, {result['errors']} error(s)"
            )
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    return {
        "model": str(model_dir),
        "levels": levels,
        "server_rss_mib_before": memory_before,
        "requests_per_level": requests,
        "time_limit_s": time_limit_s,
        "machine": f"{platform.machine()} {os.cpu_count()} CPU, {platform.system()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def format_service_bench(report: dict[str, Any], *, command: str) -> str:
    lines = [
        "# Service load test",
        "",
        f"`{command}`",
        "",
        f"Model `{report['model']}`; {report['machine']}; {report['date']}. One clip per request, "
        f"{report['requests_per_level']} requests per level on 127.0.0.1; server memory before the "
        f"load {report['server_rss_mib_before']} MiB.",
        "",
        "| clients | requests/s | p50 ms | p99 ms | errors | server MiB after |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for level in report["levels"]:
        lines.append(
            f"| {level['clients']} | {level['requests_per_s']} | {level['p50_ms']} | {level['p99_ms']} "
            f"| {level['errors']} of {level['requests']} | {level['server_rss_mib_after']} |"
        )
    return "\n".join(lines) + "\n"
