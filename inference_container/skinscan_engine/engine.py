"""The batched predictor every caller uses: local stack, CLI, inference container, batch jobs.

One forward pass per batch gives the logits (calibrated by the card's temperature), the pooled
``layer3`` and ``layer4`` features (the "unknown" gate) and the ``layer4`` activations
(closed-form Grad-CAM). The convolutional trunk, its BatchNorms folded into the convolutions,
runs under bf16 autocast where the hardware has native bf16; pooling, the head, the gate and
Grad-CAM always run in fp32.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from . import heatmap
from .gradcam import class_targets, gradcam, probability_targets
from .model import CLASS_NAMES, fold_batchnorm, head_linear, malignant_mask, trunk_features
from .model_card import LoadedModel, load_model
from .ood import gate_features
from .preprocessing import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    Geometry,
    ImageDecodeError,
    decode_image,
    fit_to_geometry,
    normalize,
    to_batch,
    to_rgb,
    upright,
)
from .verdict import MALIGNANT, UNKNOWN, VERDICTS, verdict_codes

ImageInput = bytes | np.ndarray | Image.Image
Precision = Literal["auto", "bf16", "fp32"]
RESULT_KEYS = (
    "verdict",
    "p_malignant",
    "confidence",
    "top_class",
    "probabilities",
    "ood_score",
    "reason",
    "model_version",
)


@dataclass(frozen=True)
class EngineConfig:
    """How the engine runs; :meth:`from_env` reads ``SKINSCAN_*`` overrides."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Precision = "auto"  # auto: bf16 where the hardware does it natively
    channels_last: bool = True
    fold_batchnorm: bool = True  # BatchNorm folded into the convolutions (same outputs, faster)
    compile: bool = False  # torch.compile the trunk (CUDA; slow first batch)
    cudnn_benchmark: bool = True
    max_batch_size: int = 32  # larger requests are split into chunks of this size
    overlay_width: int = 384  # width of the overlay / raw heatmap PNGs (aspect of the input)
    overlay_alpha: float = 0.45
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    threads: int = 0  # CPU intra-op threads; 0 leaves torch's default

    @classmethod
    def from_env(cls, **overrides: Any) -> EngineConfig:
        env = os.environ
        cfg = cls(
            device=env.get("SKINSCAN_DEVICE", cls.device),
            precision=env.get("SKINSCAN_PRECISION", cls.precision),  # type: ignore[arg-type]
            compile=env.get("SKINSCAN_COMPILE", "0").lower() in ("1", "true", "yes"),
            fold_batchnorm=env.get("SKINSCAN_FOLD_BN", "1").lower() not in ("0", "false", "no"),
            max_batch_size=int(env.get("SKINSCAN_ENGINE_MAX_BATCH", cls.max_batch_size)),
            overlay_width=int(env.get("SKINSCAN_OVERLAY_WIDTH", cls.overlay_width)),
            threads=int(env.get("SKINSCAN_TORCH_THREADS", cls.threads)),
        )
        return replace(cfg, **overrides)


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 convolutions are then faster than fp32 (about 1.6-2x here)."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def use_bf16(precision: str, device: torch.device) -> bool:
    if precision == "fp32":
        return False
    if precision == "bf16":
        return True
    if device.type == "cuda":
        # Native bf16 from Ampere (compute capability 8) on; is_bf16_supported() also says yes
        # for older cards (a T4), where it is emulated and slower than fp32.
        return torch.cuda.get_device_capability(device)[0] >= 8
    return device.type == "cpu" and cpu_has_native_bf16()


@dataclass
class Prepared:
    """An image ready for the model (``pixels``) and for display (``view``), same framing."""

    pixels: np.ndarray  # H x W x 3 uint8 at the model's input size
    view: np.ndarray  # the same framing at the overlay size


@dataclass
class Prediction:
    """One image's answer: the JSON ``result`` plus the Grad-CAM map and its PNGs (lazy)."""

    result: dict[str, Any]
    cam: np.ndarray  # H x W float32 in [0, 1] at the model's input size
    view: np.ndarray  # the photo as the model framed it, at the overlay size
    #: What the map explains: "malignant" or "benign" (the call made), or a class asked for.
    explained_class: str
    alpha: float = 0.45
    _pngs: dict[str, bytes] = field(default_factory=dict, repr=False)

    def heatmap_png(self) -> bytes:
        """The raw map as 8-bit greyscale PNG, same size and framing as the overlay."""
        if "heatmap" not in self._pngs:
            h, w = self.view.shape[:2]
            self._pngs["heatmap"] = heatmap.heatmap_png(self.cam, w, h)
        return self._pngs["heatmap"]

    def overlay_png(self) -> bytes:
        """The map in the jet colormap blended on the photo, as RGB PNG."""
        if "overlay" not in self._pngs:
            self._pngs["overlay"] = heatmap.overlay_png(self.view, self.cam, self.alpha)
        return self._pngs["overlay"]

    def as_dict(self, heatmaps: bool = False) -> dict[str, Any]:
        """The result; with ``heatmaps`` also ``heatmap_png`` and ``overlay_png`` bytes."""
        out = dict(self.result)
        if heatmaps:
            out["heatmap_png"] = self.heatmap_png()
            out["overlay_png"] = self.overlay_png()
        return out


@dataclass(frozen=True)
class Bf16Check:
    """How bf16 compares with fp32 on a set of images."""

    n: int
    verdict_agreement: float
    max_abs_dp: float

    @property
    def ok(self) -> bool:
        return self.verdict_agreement >= 0.995 and self.max_abs_dp <= 0.02


class Engine:
    """Images in, :class:`Prediction` out, in batches."""

    def __init__(self, loaded: LoadedModel, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.device = resolve_device(self.config.device)
        if self.config.threads > 0:
            torch.set_num_threads(self.config.threads)
        self.card = loaded.card
        self.gate = loaded.gate
        self.geometry: Geometry = self.card.geometry
        self.classes: tuple[str, ...] = tuple(self.card.classes)
        self.bf16 = use_bf16(self.config.precision, self.device)
        network = loaded.network.eval()
        if self.config.fold_batchnorm:
            # In place: the engine owns ``loaded`` (a folded network can no longer be trained).
            network = fold_batchnorm(network)
        network = network.to(self.device)
        if self.config.channels_last:
            network = network.to(memory_format=torch.channels_last)
        self.network = network
        self.head = head_linear(network)
        self.malignant = malignant_mask(self.classes).to(self.device)
        self.temperature = float(self.card.temperature or 1.0)
        self.threshold = float(self.card.threshold)
        self.ood_method = str((self.card.ood or {}).get("method") or "none")
        ood_threshold = (self.card.ood or {}).get("threshold")
        self.ood_threshold = float(ood_threshold) if ood_threshold is not None else None
        if self.gate is not None:
            self.gate.to(self.device)
        w = self.config.overlay_width
        self.view_geometry = replace(
            self.geometry, width=w, height=round(w * self.geometry.height / self.geometry.width)
        )
        self._trunk = trunk_features
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = self.config.cudnn_benchmark
            if self.config.compile:
                self._trunk = torch.compile(trunk_features)
        # One forward at a time: concurrent callers queue instead of oversubscribing cores.
        self._lock = threading.Lock()

    @classmethod
    def from_path(cls, path: str | Path, config: EngineConfig | None = None) -> Engine:
        """Load the model at ``path`` (weights, card, their stem, or a folder with one model)."""
        config = config or EngineConfig.from_env()
        return cls(load_model(Path(path), resolve_device(config.device)), config)

    @property
    def version(self) -> str:
        return self.card.version

    # -- preparing images ---------------------------------------------------------------------

    def prepare(self, image: ImageInput) -> Prepared:
        """Decode (bytes) or convert (array, PIL image) and frame for the model and display.

        Raises :class:`ImageDecodeError` for anything that is not a readable image.
        """
        if isinstance(image, bytes | bytearray | memoryview):
            img = decode_image(
                bytes(image), max_bytes=self.config.max_bytes, max_pixels=self.config.max_pixels
            )
        elif isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ImageDecodeError("bad_array", "arrays must be H x W x 3 uint8 (RGB)")
            img = Image.fromarray(image)
        elif isinstance(image, Image.Image):
            # As decoding bytes does: upright by its EXIF, loaded (a lazily opened, truncated
            # file fails here, as an ImageDecodeError, not later).
            try:
                image.load()
                img = to_rgb(upright(image))
            except (OSError, SyntaxError, ValueError) as exc:
                raise ImageDecodeError(
                    "corrupt", f"The image is truncated or corrupt ({exc.__class__.__name__})."
                ) from exc
        else:
            raise ImageDecodeError("bad_input", f"cannot read a {type(image).__name__}")
        pixels = fit_to_geometry(img, self.geometry)
        view = fit_to_geometry(img, self.view_geometry)
        return Prepared(pixels=pixels, view=view)

    # -- predicting ---------------------------------------------------------------------------

    def predict(
        self, images: Sequence[ImageInput], classes: Sequence[str | int | None] | None = None
    ) -> list[Prediction]:
        """Predict a list of images; raises :class:`ImageDecodeError` on the first bad one."""
        return self.predict_prepared([self.prepare(i) for i in images], classes)

    def predict_safe(self, images: Sequence[ImageInput]) -> list[Prediction | ImageDecodeError]:
        """Predict a list of images; bad ones come back as their :class:`ImageDecodeError`."""
        prepared: list[Prepared | ImageDecodeError] = []
        for image in images:
            try:
                prepared.append(self.prepare(image))
            except ImageDecodeError as exc:
                prepared.append(exc)
        good = [p for p in prepared if isinstance(p, Prepared)]
        answers = iter(self.predict_prepared(good))
        return [next(answers) if isinstance(p, Prepared) else p for p in prepared]

    def predict_prepared(
        self, prepared: Sequence[Prepared], classes: Sequence[str | int | None] | None = None
    ) -> list[Prediction]:
        """The batched core: chunks of ``max_batch_size``; ``classes`` picks Grad-CAM targets."""
        out: list[Prediction] = []
        size = max(1, self.config.max_batch_size)
        for start in range(0, len(prepared), size):
            chunk = prepared[start : start + size]
            wanted = classes[start : start + size] if classes is not None else None
            out.extend(self._predict_chunk(chunk, wanted))
        return out

    def _class_index(self, c: str | int) -> int:
        if isinstance(c, str):
            if c not in self.classes:
                raise ValueError(f"unknown class {c!r}; expected one of {self.classes}")
            return self.classes.index(c)
        if not 0 <= int(c) < len(self.classes):
            raise ValueError(f"class index {c} out of range")
        return int(c)

    def _predict_chunk(
        self, chunk: Sequence[Prepared], wanted: Sequence[str | int | None] | None
    ) -> list[Prediction]:
        if not chunk:
            return []
        batch = to_batch([p.pixels for p in chunk])
        with self._lock, torch.inference_mode():
            fmap, features, logits = self.forward(batch)
            probs = F.softmax(logits / self.temperature, dim=1)
            p_mal = probs[:, self.malignant].sum(dim=1)
            # The map explains the benign/malignant call (p_malignant against the threshold),
            # not the most likely of seven diagnoses: a "malignant" answer whose top class is a
            # nevus must show what made it malignant. An "unknown" answer shows the call the
            # classifier would have made.
            malignant = p_mal >= self.threshold
            sign = malignant.float() * 2 - 1
            targets = probability_targets(probs, self.malignant, self.temperature, sign)
            explained = ["malignant" if m else "benign" for m in malignant.tolist()]
            for i, c in enumerate(wanted or ()):
                if c is not None:  # a caller asked for one class's map
                    index = self._class_index(c)
                    targets[i] = class_targets(torch.tensor([index]), len(self.classes))[0]
                    explained[i] = self.classes[index]
            cams = gradcam(fmap, self.head, targets, (self.geometry.height, self.geometry.width))
            ood = self.ood_scores(features, logits, probs)
            host = [t.float().cpu() for t in (probs, p_mal, ood, cams)]
        probs_h, p_mal_h, ood_h, cams_h = (t.numpy() for t in host)
        codes = self._verdict_codes(p_mal_h, ood_h)
        return [
            Prediction(
                result=self._result(probs_h[i], float(p_mal_h[i]), float(ood_h[i]), int(codes[i])),
                cam=cams_h[i],
                view=p.view,
                explained_class=explained[i],
                alpha=self.config.overlay_alpha,
            )
            for i, p in enumerate(chunk)
        ]

    def forward(
        self, batch: torch.Tensor, bf16: bool | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """uint8 N x 3 x H x W -> (layer4 activations, fp32 gate features, fp32 logits).

        The gate features are :func:`~skinscan_engine.ood.gate_features`; ``"layer4_mean"``
        among them is the pooled vector the head classifies.
        """
        bf16 = self.bf16 if bf16 is None else bf16
        if self.device.type == "cuda":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        x = normalize(batch.to(self.device), self.geometry)
        if not self.config.channels_last:
            x = x.contiguous()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            mid, fmap = self._trunk(self.network, x)
        # Pooling and the head in fp32: full-precision probabilities for free.
        features = gate_features(mid, fmap)
        logits = self.head(features["layer4_mean"])
        return fmap, features, logits

    def ood_scores(
        self, features: dict[str, torch.Tensor], logits: torch.Tensor, probs: torch.Tensor
    ) -> torch.Tensor:
        """The card's "unknown" score per image (larger = less like the training images)."""
        if self.ood_method.startswith("mahalanobis") and self.gate is not None:
            return self.gate.score(features)
        if self.ood_method == "energy":
            t = self.temperature
            return -t * torch.logsumexp(logits / t, dim=1)
        if self.ood_method == "max_softmax":
            return 1.0 - probs.max(dim=1).values
        return torch.zeros(logits.shape[0], device=logits.device)

    def _verdict_codes(self, p_mal: np.ndarray, ood: np.ndarray) -> np.ndarray:
        """The card's decision rule on a batch (codes of ``verdict.VERDICTS``)."""
        return verdict_codes(np.clip(p_mal, 0.0, 1.0), ood, self.threshold, self.ood_threshold)

    def _result(self, probs: np.ndarray, p_mal: float, ood: float, code: int) -> dict[str, Any]:
        p_mal = min(max(p_mal, 0.0), 1.0)
        top = int(np.argmax(probs))
        top_class = self.classes[top]
        malignant = p_mal >= self.threshold
        # Confidence is the calibrated probability of the benign/malignant call made.
        confidence = p_mal if malignant else 1.0 - p_mal
        likely = f"most likely {CLASS_NAMES.get(top_class, top_class)} ({probs[top]:.0%})"
        verdict = VERDICTS[code]
        if code == UNKNOWN:
            reason = (
                "not recognised as a skin-lesion photo: it is unlike the images the model was "
                f"trained on ({self.ood_method} out-of-distribution score {ood:.3g} > threshold "
                f"{self.ood_threshold:.3g}), so the benign/malignant estimate is not reliable"
            )
        elif code == MALIGNANT:
            reason = f"p_malignant {p_mal:.3f} >= threshold {self.threshold:.3f}; {likely}"
        else:
            reason = f"p_malignant {p_mal:.3f} < threshold {self.threshold:.3f}; {likely}"
        return {
            "verdict": verdict,
            "p_malignant": round(p_mal, 6),
            "confidence": round(min(max(confidence, 0.0), 1.0), 6),
            "top_class": top_class,
            "probabilities": {
                c: round(float(p), 6) for c, p in zip(self.classes, probs, strict=True)
            },
            "ood_score": round(float(ood), 6),
            "reason": reason,
            "model_version": self.card.version,
        }

    # -- checks -------------------------------------------------------------------------------

    def check_bf16(self, images: Sequence[ImageInput], batch_size: int = 16) -> Bf16Check:
        """Compare bf16 with fp32 verdicts and p_malignant on ``images`` (same network)."""
        prepared = [self.prepare(i) for i in images]
        agree, max_dp = 0, 0.0
        with self._lock, torch.inference_mode():
            for start in range(0, len(prepared), batch_size):
                batch = to_batch([p.pixels for p in prepared[start : start + batch_size]])
                answers = []
                for bf16 in (False, True):
                    _, features, logits = self.forward(batch, bf16=bf16)
                    probs = F.softmax(logits / self.temperature, dim=1)
                    p_mal = probs[:, self.malignant].sum(dim=1)
                    ood = self.ood_scores(features, logits, probs)
                    verdicts = self._verdict_codes(p_mal.cpu().numpy(), ood.cpu().numpy())
                    answers.append((p_mal.cpu(), verdicts))
                (p32, v32), (p16, v16) = answers
                agree += int((v32 == v16).sum())
                max_dp = max(max_dp, float((p32 - p16).abs().max()))
        n = len(prepared)
        return Bf16Check(n=n, verdict_agreement=agree / n if n else 1.0, max_abs_dp=max_dp)
