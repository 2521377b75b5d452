"""Training throughput of the SkinScan ResNet-50 by input size and precision.

Used to pick the input size and epoch count for a training run, and run by
``training/gpu_session.sh`` for the GPU figures. Prints images per second for fp32 and bfloat16
autocast at each size, and the bf16/fp32 ratio measured in the same run.

    python bench/train_throughput.py [--sizes 128x96,200x150] [--batch 32] [--steps 4]
                                     [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from skinscan_engine.model import build_model
from skinscan_training.optim import make_optimizer


def images_per_second(
    size: tuple[int, int], bf16: bool, batch: int, steps: int, device: str = "cpu"
) -> float:
    """Training images per second of one optimiser step after warm-up, as the trainer runs it."""
    dev = torch.device(device)
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    model = build_model().to(dev).to(memory_format=torch.channels_last).train()
    opt = make_optimizer(model, "adamw", lr=1e-3, weight_decay=0.0, device=dev)
    w, h = size
    x = torch.randn(batch, 3, h, w, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 7, (batch,), device=dev)
    warmup = 1 if dev.type == "cpu" else 5  # oneDNN / cuDNN pick their kernels on early steps
    for i in range(steps + warmup):
        if i == warmup:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128x96,200x150", help="WxH,WxH,...")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    where = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {where}, {threads} threads, batch {args.batch}")
    for spec in args.sizes.split(","):
        w, h = (int(v) for v in spec.split("x"))
        fp32 = images_per_second((w, h), False, args.batch, args.steps, args.device)
        bf16 = images_per_second((w, h), True, args.batch, args.steps, args.device)
        ratio = bf16 / fp32
        print(f"{w}x{h}: fp32 {fp32:.1f} img/s  bf16 {bf16:.1f} img/s  bf16/fp32 {ratio:.2f}x")


if __name__ == "__main__":
    main()
