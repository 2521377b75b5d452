"""bf16 against fp32 on real images: verdict agreement and largest p_malignant difference.

Passes when verdicts agree on at least 99.5% of the images and p_malignant differs by at most
0.02. Meaningful with the trained model only (a random network's "unknown" gate is noise).
"""

from __future__ import annotations

import argparse

from _common import ham_paths, machine, model_path

from skinscan_engine.engine import Engine, EngineConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    engine = Engine.from_path(model_path(args.model), EngineConfig(device=args.device))
    images = [p.read_bytes() for p in ham_paths(args.images, args.offset)]
    check = engine.check_bf16(images, batch_size=32)
    print(f"machine: {machine()}")
    print(f"model: {engine.version}; {check.n} HAM10000 images")
    print(
        f"verdict_agreement={check.verdict_agreement:.4f} max_abs_dp={check.max_abs_dp:.4f} "
        f"ok={check.ok}"
    )


if __name__ == "__main__":
    main()
