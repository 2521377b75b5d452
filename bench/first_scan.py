"""A user's first scan after the local stack starts, with and without the model preload.

Starts the local stack (``create_app``, as ``skinscan serve`` builds it) on 127.0.0.1, waits
until ``/health`` answers, waits ``--user-delay`` seconds more (the time a person takes to open
the app and pick a photo), then times the first ``POST /v1/predict`` and the next few (the
steady state, the baseline of the ratios). Once without the preload (the model loads in the first
scan) and once with it; ``--rounds`` alternates them.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import httpx2
from _common import ham_paths, machine, model_path
from serving import Server, post


def first_scan(
    path: Path, preload: bool, images: list[bytes], delay: float, steady: int
) -> dict[str, Any]:
    """Seconds of the first scan and median of the next ``steady``; the model's state then."""
    with Server(path, preload=preload) as server, httpx2.Client(timeout=300) as client:
        time.sleep(delay)
        model = client.get(f"{server.url}/health").json()["model"]
        first = post(client, server.url, images[0])
        rest = [post(client, server.url, images[1 + i % (len(images) - 1)]) for i in range(steady)]
    return {"first": first, "steady": statistics.median(rest), "model": model}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model")
    parser.add_argument("--user-delay", type=float, default=10.0)
    parser.add_argument("--steady", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    path = model_path(args.model)
    images = [p.read_bytes() for p in ham_paths(8)]
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for _ in range(args.rounds):
        for preload in (False, True):
            runs[preload].append(first_scan(path, preload, images, args.user_delay, args.steady))

    print(f"machine: {machine()}")
    print(f"first scan {args.user_delay:.0f} s after /health answers; steady = median of next")
    medians = {}
    for preload, results in runs.items():
        first = statistics.median(r["first"] for r in results)
        steady = statistics.median(r["steady"] for r in results)
        medians[preload] = first
        states = ",".join(r["model"] for r in results)
        print(
            f"preload={'on ' if preload else 'off'} first {first * 1000:.0f} ms, "
            f"steady {steady * 1000:.0f} ms, first/steady {first / steady:.2f} "
            f"(model on /health at the first scan: {states})"
        )
    print(f"first_scan_speedup={medians[False] / medians[True]:.2f}")


if __name__ == "__main__":
    main()
