"""BatchNorm folded into the convolutions against the network as trained, in the engine.

Two engines on the same model, precision and device, one with ``fold_batchnorm`` (the
default) and one without; each answers the same real images through its batched core
(``predict_prepared``: forward, calibrated probabilities, the "unknown" gate, Grad-CAM). The
two are timed in turns so that background load hits both alike; the answers are compared
too, since a fold that changed them would be no optimisation.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

import numpy as np
import torch
from _common import ham_paths, machine, model_path, timeit

from skinscan_engine.engine import Engine, EngineConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model")
    parser.add_argument("--batches", default="1,16", help="comma-separated batch sizes")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    args = parser.parse_args()

    path = model_path(args.model)
    config = EngineConfig(device=args.device, precision=args.precision)
    folded = Engine.from_path(path, config)
    plain = Engine.from_path(path, replace(config, fold_batchnorm=False))
    sizes = [int(b) for b in args.batches.split(",")]
    sync = torch.cuda.synchronize if folded.device.type == "cuda" else (lambda: None)

    print(f"machine: {machine()}")
    print(
        f"model: {folded.version}; device {folded.device}; "
        f"precision {'bf16' if folded.bf16 else 'fp32'}"
    )
    speedups = []
    for size in sizes:
        prepared = [folded.prepare(p.read_bytes()) for p in ham_paths(size)]

        def run(engine: Engine, prepared: list = prepared) -> list:
            answers = engine.predict_prepared(prepared)
            sync()
            return answers

        times: dict[str, list[float]] = {"plain": [], "folded": []}
        for i in range(args.repeats):
            for name, engine in (("plain", plain), ("folded", folded)):
                times[name].append(timeit(lambda e=engine: run(e), repeats=1, warmup=int(i == 0)))
        plain_s, folded_s = statistics.median(times["plain"]), statistics.median(times["folded"])
        pairs = list(zip(run(plain), run(folded), strict=True))
        dp = max(abs(x.result["p_malignant"] - y.result["p_malignant"]) for x, y in pairs)
        dcam = max(float(np.abs(x.cam - y.cam).max()) for x, y in pairs)
        same = sum(x.result["verdict"] == y.result["verdict"] for x, y in pairs)
        speedups.append(plain_s / folded_s)
        print(
            f"batch {size:>3}: as trained {plain_s * 1000:7.1f} ms, "
            f"folded {folded_s * 1000:7.1f} ms ({plain_s / folded_s:.2f}x); "
            f"same verdicts {same}/{size}, "
            f"max |dp_malignant| {dp:.2e}, max |dcam| {dcam:.2e}"
        )
    print(f"fold_speedup={min(speedups):.3f}  (the smallest over batch sizes {args.batches})")


if __name__ == "__main__":
    main()
