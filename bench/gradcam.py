"""Engine predict + Grad-CAM against pytorch-grad-cam: same model, same batch of real images.

Prints the figures; the last line reads ``max_abs_diff=<x> speedup=<y>`` where the difference
is between the engine's fp32 maps and pytorch-grad-cam's (normalised maps) and the speedup is
the engine in its default precision (bf16 where the CPU/GPU has it) over pytorch-grad-cam.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _common import ham_paths, machine, model_path, timeit
from pytorch_grad_cam import GradCAM

from skinscan_engine.engine import Engine, EngineConfig
from skinscan_engine.preprocessing import normalize, to_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    path = model_path(args.model)
    fast = Engine.from_path(path, EngineConfig(device=args.device))
    exact = Engine.from_path(path, EngineConfig(device=args.device, precision="fp32"))
    images = [p.read_bytes() for p in ham_paths(args.batch)]
    prepared = [fast.prepare(b) for b in images]
    x = normalize(to_batch([p.pixels for p in prepared]), fast.geometry).to(fast.device)

    def reference() -> np.ndarray:
        # What a caller of pytorch-grad-cam does: predict, then explain the predicted class.
        with GradCAM(model=exact.network, target_layers=[exact.network.layer4[-1]]) as cam:
            maps = cam(input_tensor=x.clone(), targets=None)  # None: the predicted class
            return maps

    ref = reference()
    ours32 = np.stack([p.cam for p in exact.predict_prepared(prepared)])
    ours = np.stack([p.cam for p in fast.predict_prepared(prepared)])
    max_diff = float(np.abs(ours32 - ref).max())
    bf16_diff = float(np.abs(ours - ref).max())

    sync = torch.cuda.synchronize if fast.device.type == "cuda" else (lambda: None)
    t_ref = timeit(lambda: (reference(), sync()), args.repeats)
    t_fast = timeit(lambda: (fast.predict_prepared(prepared), sync()), args.repeats)
    t_exact = timeit(lambda: (exact.predict_prepared(prepared), sync()), args.repeats)
    print(f"machine: {machine()}")
    print(
        f"model: {fast.version}; batch {args.batch} real HAM10000 images at "
        f"{fast.geometry.width}x{fast.geometry.height}; device {fast.device}; "
        f"engine precision {'bf16' if fast.bf16 else 'fp32'}"
    )
    print(f"pytorch-grad-cam (fp32, forward + backward): {t_ref * 1000:.0f} ms / batch")
    print(f"engine predict+Grad-CAM, default precision: {t_fast * 1000:.0f} ms / batch")
    print(
        f"engine predict+Grad-CAM, fp32:              {t_exact * 1000:.0f} ms / batch "
        f"(speedup {t_ref / t_exact:.2f}x)"
    )
    # Where the CPU has no native bf16, the default engine is fp32 too: say which was compared.
    default = "bf16 trunk; the fp32 engine is the exact one" if fast.bf16 else "fp32 as well"
    print(f"max |engine default-precision map - reference| = {bf16_diff:.3g} ({default})")
    print(f"max_abs_diff={max_diff:.2e} speedup={t_ref / t_fast:.2f}")


if __name__ == "__main__":
    main()
