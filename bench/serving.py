"""``POST /v1/predict`` on a local server: latency against engine time, and throughput with
16 concurrent clients with and without micro-batching.

Starts the local stack twice on 127.0.0.1 (a free port; nothing else is contacted), once with
micro-batching (``SKINSCAN_BATCH_MAX_SIZE=16``) and once one image at a time
(``SKINSCAN_BATCH_MAX_SIZE=1``), sends guest requests (nothing stored) in bounded loops, and
stops each server.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2
from _common import REPO, ham_paths, machine, model_path, timeit

from skinscan_engine.engine import Engine, EngineConfig

SERVER = (
    "import uvicorn; from skinscan.local_stack import create_app; "
    "uvicorn.run(create_app(preload_model={preload}), host='127.0.0.1', port={port}, "
    "log_level='warning')"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The local stack in a child process, on 127.0.0.1 only."""

    def __init__(
        self, model: Path, batch_size: int = 16, wait_ms: float = 5.0, preload: bool = False
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = tempfile.mkdtemp(prefix="skinscan-bench-serve-")
        env = {
            **os.environ,
            "SKINSCAN_MODEL_PATH": str(model),
            "SKINSCAN_DATA_DIR": self.data,
            "SKINSCAN_JWT_SECRET": "bench-secret-0123456789abcdef0123456789abcdef",
            "SKINSCAN_BATCH_MAX_SIZE": str(batch_size),
            "SKINSCAN_BATCH_MAX_WAIT_MS": str(wait_ms),
            "SKINSCAN_HOST": "127.0.0.1",
            "SKINSCAN_PORT": str(self.port),
            "SKINSCAN_LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER.format(port=self.port, preload=preload)],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx2.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx2.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def post(client: httpx2.Client, url: str, data: bytes) -> float:
    start = time.perf_counter()
    r = client.post(f"{url}/v1/predict", files={"image": ("x.jpg", data, "image/jpeg")})
    r.raise_for_status()
    return time.perf_counter() - start


def latencies(url: str, images: list[bytes], n: int) -> list[float]:
    with httpx2.Client(timeout=120) as client:
        return [post(client, url, images[i % len(images)]) for i in range(n)]


def throughput(url: str, images: list[bytes], clients: int, per_client: int) -> float:
    barrier = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        with httpx2.Client(timeout=300) as client:
            barrier.wait()
            try:
                for i in range(per_client):
                    post(client, url, images[(k * per_client + i) % len(images)])
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return clients * per_client / elapsed


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def engine_times(path: Path, images: list[bytes]) -> tuple[float, float]:
    """The engine in this process: one image, and sixteen (per batch)."""
    engine = Engine.from_path(path, EngineConfig(device="cpu"))
    one = timeit(lambda: engine.predict(images[:1]), repeats=10)
    sixteen = timeit(lambda: engine.predict(images[:16]), repeats=3)
    return one, sixteen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model")
    parser.add_argument("--latency-requests", type=int, default=30)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-client", type=int, default=4)
    parser.add_argument("--wait-ms", type=float, default=10.0)
    args = parser.parse_args()

    path = model_path(args.model)
    images = [p.read_bytes() for p in ham_paths(64)]
    engine_1, engine_16 = engine_times(path, images)

    rates = {}
    lat: list[float] = []
    for label, batch in (("micro-batched (max 16)", 16), ("one at a time", 1)):
        with Server(path, batch, args.wait_ms) as server:
            latencies(server.url, images, 3)  # warm-up: loads the model
            if batch == 16:
                lat = latencies(server.url, images, args.latency_requests)
            rates[label] = throughput(server.url, images, args.clients, args.per_client)

    print(f"machine: {machine()}")
    print(
        f"engine, 1 image (decode + predict + Grad-CAM, no PNG): {engine_1 * 1000:.0f} ms; "
        f"16 images: {engine_16 * 1000 / 16:.0f} ms / image"
    )
    print(
        f"POST /v1/predict, 1 client, {len(lat)} guest requests (PNG overlays inline): "
        f"p50 {pct(lat, 50) * 1000:.0f} ms, p95 {pct(lat, 95) * 1000:.0f} ms "
        f"(p50 / engine time = {pct(lat, 50) / engine_1:.2f})"
    )
    for label, rate in rates.items():
        print(f"{args.clients} clients x {args.per_client} requests, {label}: {rate:.2f} images/s")
    ratio = rates["micro-batched (max 16)"] / rates["one at a time"]
    print(
        f"p50_ms={pct(lat, 50) * 1000:.0f} p95_ms={pct(lat, 95) * 1000:.0f} "
        f"batching_speedup={ratio:.2f}"
    )


if __name__ == "__main__":
    main()
