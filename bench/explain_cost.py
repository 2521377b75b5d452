"""The cost of explaining: engine predict + Grad-CAM against a plain forward pass.

Same model, same precision, same batch of real images. "Plain forward" is the network's
``forward`` (logits only) under inference mode; "predict + Grad-CAM" is the engine's batched
core: normalise, forward, calibrated probabilities, the "unknown" gate, Grad-CAM maps at the
input size, results on the host. Rendering the PNGs is measured separately (it is done only
for callers that want the images).
"""

from __future__ import annotations

import argparse
import statistics

import torch
from _common import ham_paths, machine, model_path, timeit

from skinscan_engine.engine import Engine, EngineConfig
from skinscan_engine.preprocessing import normalize, to_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    args = parser.parse_args()

    engine = Engine.from_path(
        model_path(args.model), EngineConfig(device=args.device, precision=args.precision)
    )
    prepared = [engine.prepare(p.read_bytes()) for p in ham_paths(args.batch)]
    batch = to_batch([p.pixels for p in prepared])
    sync = torch.cuda.synchronize if engine.device.type == "cuda" else (lambda: None)

    def plain() -> None:
        with (
            torch.inference_mode(),
            torch.autocast(engine.device.type, dtype=torch.bfloat16, enabled=engine.bf16),
        ):
            x = normalize(batch.to(engine.device), engine.geometry)
            engine.network(x).float().cpu()
        sync()

    def explained() -> None:
        engine.predict_prepared(prepared)
        sync()

    # Interleave the two so that background load hits both alike.
    t_plain, t_explained = [], []
    for _ in range(args.repeats):
        t_plain.append(timeit(plain, repeats=1, warmup=0 if t_plain else 1))
        t_explained.append(timeit(explained, repeats=1, warmup=0 if t_explained else 1))
    plain_s, explained_s = statistics.median(t_plain), statistics.median(t_explained)
    preds = engine.predict_prepared(prepared)
    render_s = timeit(lambda: [(p._pngs.clear(), p.heatmap_png(), p.overlay_png()) for p in preds])

    print(f"machine: {machine()}")
    print(
        f"model: {engine.version}; batch {args.batch}; device {engine.device}; "
        f"precision {'bf16' if engine.bf16 else 'fp32'}"
    )
    print(f"plain forward:        {plain_s * 1000:.0f} ms / batch")
    print(f"predict + Grad-CAM:   {explained_s * 1000:.0f} ms / batch")
    print(
        f"PNG rendering (heatmap + overlay, {engine.config.overlay_width} px wide): "
        f"{render_s * 1000 / args.batch:.1f} ms / image, on request only"
    )
    print(f"explain_cost_ratio={explained_s / plain_s:.3f}")


if __name__ == "__main__":
    main()
