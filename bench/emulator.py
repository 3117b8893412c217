"""Benchmark of the offline emulator: one 100,000-request batch, created, ended and downloaded.

    python bench/emulator.py [--requests 100000] [--rows-per-request 10]

The emulator runs as a separate process (``python -m claude_batch.emulator``), as it does in CI,
so its peak memory is measured on its own (``resource.getrusage(RUSAGE_CHILDREN)`` after it
exits). The client side posts a pre-serialized body and streams the results with the stdlib
``http.client`` so that the figures are the emulator's, not the SDK's.

Prints one line per step and, as its last line, a JSON object with every figure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python_udfs"))

from claude_batch import prompts  # noqa: E402

API_KEY = "sk-ant-bench"
WORDS = (
    "love great broke terrible fine shipping arrived quickly box price support refund screen "
    "battery works perfectly awful customer service slow fast cheap quality excellent worst"
).split()


def _spec() -> prompts.PromptSpec:
    return prompts.PromptSpec(
        model="claude-sonnet-5-5",
        instructions="Classify the sentiment of each customer review of our online shop.",
        labels=(
            prompts.Label("positive", "the customer is happy or praises the product"),
            prompts.Label("negative", "the customer complains or reports a problem"),
            prompts.Label("neutral", "neither clearly positive nor negative"),
        ),
        examples=(
            prompts.Example("Arrived quickly and works great", ("positive",)),
            prompts.Example("Broke after two days", ("negative",)),
        ),
    )


def build_body(n_requests: int, rows_per_request: int) -> bytes:
    """The body the pipeline would send, built with its own encoder (prompts.RequestEncoder)."""
    encoder = prompts.RequestEncoder(_spec(), cache=True)
    parts = []
    row = 0
    for i in range(n_requests):
        items = []
        for local in range(1, rows_per_request + 1):
            words = [WORDS[(row * 7 + k * 3) % len(WORDS)] for k in range(8)]
            items.append((local, f"review {row}: " + " ".join(words)))
            row += 1
        parts.append(encoder.encode(f"req-{i}", items))
    return b'{"requests":[' + b",".join(parts) + b"]}"


def _call(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    if body is not None:
        headers["content-type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--rows-per-request", type=int, default=10, help="10: 1M rows in all")
    parser.add_argument(
        "--worker-processes", type=int, default=None,
        help="emulator helper processes (default: the emulator's own choice)",
    )
    args = parser.parse_args()

    figures: dict[str, float | int] = {"requests": args.requests, "rows": args.requests * args.rows_per_request}
    with tempfile.TemporaryDirectory(prefix="emulator-bench-") as state:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "python_udfs") + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.Popen(
            [sys.executable, "-m", "claude_batch.emulator", "--port", "0", "--state-dir", state,
             "--processing-seconds", "0",
             *([] if args.worker_processes is None else ["--worker-processes", str(args.worker_processes)])],
            stdout=subprocess.PIPE, text=True, env=env,
        )
        try:
            line = proc.stdout.readline()
            port = int(line.rsplit(":", 1)[1])

            t0 = time.perf_counter()
            body = build_body(args.requests, args.rows_per_request)
            figures["build_body_seconds"] = round(time.perf_counter() - t0, 2)
            figures["body_mb"] = round(len(body) / 1e6, 1)
            print(f"built a {figures['body_mb']} MB body in {figures['build_body_seconds']} s (client side)")

            t0 = time.perf_counter()
            status, data = _call(port, "POST", "/v1/messages/batches", body)
            figures["create_seconds"] = round(time.perf_counter() - t0, 2)
            del body
            if status != 200:
                raise SystemExit(f"create failed: {status} {data[:500]!r}")
            batch_id = json.loads(data)["id"]
            print(f"create: {figures['create_seconds']} s")

            t0 = time.perf_counter()
            while True:
                status, data = _call(port, "GET", f"/v1/messages/batches/{batch_id}")
                batch = json.loads(data)
                if batch["processing_status"] == "ended":
                    break
                time.sleep(0.2)
            figures["until_ended_seconds"] = round(time.perf_counter() - t0, 2)
            print(f"until ended: {figures['until_ended_seconds']} s; counts {batch['request_counts']}")

            t0 = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            conn.request("GET", f"/v1/messages/batches/{batch_id}/results", headers={"x-api-key": API_KEY})
            response = conn.getresponse()
            lines = size = 0
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                size += len(chunk)
                lines += chunk.count(b"\n")
            conn.close()
            figures["results_seconds"] = round(time.perf_counter() - t0, 2)
            figures["results_mb"] = round(size / 1e6, 1)
            figures["result_lines"] = lines
            print(f"results: {lines} lines, {figures['results_mb']} MB in {figures['results_seconds']} s")
            stats = json.loads(_call(port, "GET", "/_emulator/stats")[1])
            figures["emulator_server_peak_rss_mb"] = stats["peak_rss_mb"]
            figures["helper_processes_used"] = stats["batches_computed_in_helper_processes"] > 0
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    children = usage.ru_maxrss
    # CPU seconds the emulator used in all (start-up included): compare with the wall-clock
    # figures to see how much of them was waiting for a CPU on a shared machine.
    figures["emulator_cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 2)
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Largest emulator process (server or helper), measured by the kernel after they exited.
    figures["emulator_peak_rss_mb"] = round(children / 1024, 1)  # Linux reports KiB
    figures["bench_client_peak_rss_mb"] = round(self_rss / 1024, 1)
    figures["emulator_total_seconds"] = round(
        figures["create_seconds"] + figures["until_ended_seconds"] + figures["results_seconds"], 2
    )
    print(f"peak RSS: emulator {figures['emulator_peak_rss_mb']} MB, bench client {figures['bench_client_peak_rss_mb']} MB")
    if figures["result_lines"] != args.requests:
        print(f"ERROR: expected {args.requests} result lines", file=sys.stderr)
        print(json.dumps(figures))
        return 1
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
