"""The original system's way against the engine: throughput ratio, same model and input size.

Original: fp32, one image at a time, decode + preprocess, a forward pass with hooks on
``layer4`` and a full backward pass for the gradients, Grad-CAM from hooked tensors.
Engine: batched decode + predict + closed-form Grad-CAM in its default precision. Both start
from the same JPEG bytes and end with a probability vector and a normalised map per image.
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import ham_paths, machine, model_path
from torch.nn import functional as F

from skinscan_engine.engine import Engine, EngineConfig
from skinscan_engine.model_card import load_model
from skinscan_engine.preprocessing import Geometry, load_for_model, normalize, to_batch


def original_one(
    model: torch.nn.Module, data: bytes, geometry: Geometry
) -> tuple[torch.Tensor, torch.Tensor]:
    """One image the old way: hooks, forward, backward of the top logit, Grad-CAM."""
    saved: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output: torch.Tensor) -> None:
        saved["act"] = output
        output.register_hook(lambda grad: saved.__setitem__("grad", grad))

    handle = model.layer4.register_forward_hook(keep)
    try:
        x = normalize(to_batch([load_for_model(data, geometry)]), geometry).contiguous()
        model.zero_grad(set_to_none=True)
        logits = model(x)
        probs = F.softmax(logits, dim=1)
        top = int(logits.argmax(1))
        logits[0, top].backward()  # full backward through the network
        weights = saved["grad"].mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * saved["act"]).sum(1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
        cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)
        return probs.detach(), cam.detach()
    finally:
        handle.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()

    path = model_path(args.model)
    engine = Engine.from_path(path, EngineConfig(device="cpu", max_batch_size=args.batch))
    old = load_model(path, "cpu").network.eval()
    images = [p.read_bytes() for p in ham_paths(args.images)]

    original_one(old, images[0], engine.geometry)  # warm-up
    start = time.perf_counter()
    for data in images:
        original_one(old, data, engine.geometry)
    t_old = time.perf_counter() - start

    engine.predict(images[: args.batch])  # warm-up
    start = time.perf_counter()
    engine.predict(images)
    t_new = time.perf_counter() - start

    print(f"machine: {machine()}")
    print(
        f"model: {engine.version}; {args.images} real images at "
        f"{engine.geometry.width}x{engine.geometry.height}"
    )
    print(f"original (fp32, batch 1, hooks + backward): {args.images / t_old:.3g} images/s")
    print(
        f"engine ({'bf16' if engine.bf16 else 'fp32'}, batch {args.batch}, closed-form "
        f"Grad-CAM): {args.images / t_new:.3g} images/s"
    )
    print(f"throughput_ratio={t_old / t_new:.2f}")


if __name__ == "__main__":
    main()
