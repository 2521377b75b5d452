"""The "unknown" gate: Mahalanobis distances of pooled features to the training classes.

A max-softmax threshold is a weak test for "not a skin lesion": a network happily gives a
confident softmax for a photo of a cat. The distance of the pooled ``layer4`` features to the
nearest class centre, under a shared covariance fitted on the training set, measures instead
how unlike the training images a picture is. Features are L2-normalised first, which makes the
distance insensitive to overall activation strength (exposure, contrast). :class:`LayeredGate`
sums such distances over several feature spaces (``layer4`` means, ``layer3`` means and spreads).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class MahalanobisGate:
    """Class centres and a whitening matrix fitted on in-distribution features."""

    means: torch.Tensor  # C x D, on normalised features
    whitener: torch.Tensor  # D x D, so that d^2 = ||(f - mu) @ whitener||^2
    threshold: float = float("inf")
    # ``means @ whitener`` is constant: projected once per (means, whitener) pair, not per call.
    _projected: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @classmethod
    def fit(
        cls, features: torch.Tensor, labels: torch.Tensor, num_classes: int, shrinkage: float = 0.1
    ) -> MahalanobisGate:
        """Fit class means and a shrunk shared covariance on N x D features with labels."""
        f = _normalise(features.double())
        present = [c for c in range(num_classes) if bool((labels == c).any())]
        means = torch.stack([f[labels == c].mean(0) for c in present])
        # A class with no training example has no centre; it cannot attract images either.
        slot = {c: i for i, c in enumerate(present)}
        centred = f - means[torch.tensor([slot[int(c)] for c in labels])]
        cov = centred.T @ centred / max(len(f) - len(present), 1)
        # Shrink towards a scaled identity: D is large next to N, so the raw estimate is
        # ill-conditioned and would make noise directions dominate the distance.
        target = torch.eye(cov.shape[0], dtype=cov.dtype) * cov.diagonal().mean()
        cov = (1 - shrinkage) * cov + shrinkage * target
        eigvals, eigvecs = torch.linalg.eigh(cov)
        whitener = eigvecs / eigvals.clamp_min(1e-12).sqrt()
        return cls(means=means.float(), whitener=whitener.float())

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """Squared distance to the nearest class centre (N); larger means less like training."""
        f = _normalise(features.float())
        proj_f = f @ self.whitener  # N x D
        d2 = torch.cdist(proj_f, self.projected_means()).square()
        return d2.min(dim=1).values / f.shape[1]

    def projected_means(self) -> torch.Tensor:
        """The class centres in whitened space (C x D), recomputed only when ``means`` or
        ``whitener`` is replaced (e.g. moved to another device)."""
        cached = self._projected
        if cached is None or cached[0] is not self.means or cached[1] is not self.whitener:
            # A normal tensor even when first called under inference mode, so that later
            # callers outside it (training, evaluation) can use it freely.
            with torch.inference_mode(False), torch.no_grad():
                projected = self.means @ self.whitener
            cached = self._projected = (self.means, self.whitener, projected)
        return cached[2]

    def calibrate(self, in_dist_scores: torch.Tensor, max_reject: float = 0.05) -> float:
        """Set the threshold so that at most ``max_reject`` of in-distribution images exceed it."""
        self.threshold = threshold_rejecting(in_dist_scores, max_reject)
        return self.threshold

    def to_tensors(self, prefix: str = "ood.") -> dict[str, torch.Tensor]:
        return {f"{prefix}means": self.means, f"{prefix}whitener": self.whitener}

    @classmethod
    def from_tensors(
        cls, tensors: dict[str, torch.Tensor], threshold: float, prefix: str = "ood."
    ) -> MahalanobisGate:
        return cls(
            means=tensors[f"{prefix}means"].float(),
            whitener=tensors[f"{prefix}whitener"].float(),
            threshold=threshold,
        )


def gate_features(layer3: torch.Tensor, layer4: torch.Tensor) -> dict[str, torch.Tensor]:
    """Pooled fp32 statistics of the trunk's activations, one N x D tensor per feature space.

    ``layer4_mean`` is what the classifier's head sees; ``layer3_mean_std`` adds the mean and
    spread of mid-level textures, which photos of other things rarely share with dermoscopy.
    """
    l3, l4 = layer3.float(), layer4.float()
    mean3 = l3.mean(dim=(2, 3), keepdim=True)
    # Two passes by hand, not ``Tensor.std``: on the CPU, torch's std over a few dozen pixels
    # per channel took 3 ms per batch of 16, a third of all predict adds to the forward pass;
    # this is 0.4 ms and the same unbiased estimate to float rounding.
    d = l3 - mean3
    n = l3.shape[2] * l3.shape[3]
    std3 = ((d * d).sum(dim=(2, 3)) / max(n - 1, 1)).sqrt()
    return {
        "layer4_mean": l4.mean(dim=(2, 3)),
        "layer3_mean_std": torch.cat([mean3.flatten(1), std3], dim=1),
    }


@dataclass
class LayeredGate:
    """The "unknown" gate: Mahalanobis distances in several feature spaces, summed.

    Each space's distance is put on a common scale (median and interquartile range of the
    validation images) before the sum, so no space dominates by its units alone. A single
    space with ``centre`` 0 and ``scale`` 1 is the plain :class:`MahalanobisGate` distance.
    """

    parts: dict[str, MahalanobisGate]
    centres: dict[str, float]
    scales: dict[str, float]
    threshold: float = float("inf")

    @classmethod
    def fit(
        cls,
        train: dict[str, torch.Tensor],
        labels: torch.Tensor,
        num_classes: int,
        val: dict[str, torch.Tensor],
    ) -> LayeredGate:
        """Fit one gate per space on ``train`` features; standardise on ``val`` features."""
        parts, centres, scales = {}, {}, {}
        for name, feats in train.items():
            part = MahalanobisGate.fit(feats, labels, num_classes)
            d = part.score(val[name]).double()
            lo, mid, hi = torch.quantile(d, torch.tensor([0.25, 0.5, 0.75], dtype=d.dtype))
            parts[name], centres[name] = part, float(mid)
            scales[name] = max(float(hi - lo), 1e-12)
        return cls(parts=parts, centres=centres, scales=scales)

    @classmethod
    def single(cls, gate: MahalanobisGate, space: str = "layer4_mean") -> LayeredGate:
        """Wrap a one-space gate (its distance and threshold unchanged)."""
        return cls(
            parts={space: gate}, centres={space: 0.0}, scales={space: 1.0}, threshold=gate.threshold
        )

    def score(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-image score (N); larger means less like the training images."""
        total: torch.Tensor | None = None
        for name, part in self.parts.items():
            z = (part.score(features[name]) - self.centres[name]) / self.scales[name]
            total = z if total is None else total + z
        assert total is not None, "a gate needs at least one feature space"
        return total

    def calibrate(self, in_dist_scores: torch.Tensor, max_reject: float = 0.05) -> float:
        """Set the threshold so that at most ``max_reject`` of in-distribution images exceed it."""
        self.threshold = threshold_rejecting(in_dist_scores, max_reject)
        return self.threshold

    def to(self, device: torch.device | str) -> LayeredGate:
        """Move the fitted tensors to ``device`` (in place); returns self."""
        for part in self.parts.values():
            part.means, part.whitener = part.means.to(device), part.whitener.to(device)
        return self

    def to_tensors(self, prefix: str = "ood.") -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for name, part in self.parts.items():
            out.update(part.to_tensors(f"{prefix}{name}."))
        return out

    def card_fields(self) -> dict[str, object]:
        """What the model card stores next to the tensors to rebuild this gate."""
        return {
            "method": "mahalanobis_layers",
            "threshold": self.threshold,
            "parts": [
                {"features": n, "centre": self.centres[n], "scale": self.scales[n]}
                for n in self.parts
            ],
        }

    @classmethod
    def from_card(
        cls, tensors: dict[str, torch.Tensor], ood: dict, prefix: str = "ood."
    ) -> LayeredGate:
        """Rebuild from saved tensors and the card's ``ood`` fields (both card formats)."""
        threshold = float(ood["threshold"])
        if ood.get("method") == "mahalanobis":  # one layer4 space, as in version 1.0.0
            return cls.single(MahalanobisGate.from_tensors(tensors, threshold, prefix))
        # The threshold applies to the summed score; a part on its own has none.
        parts = {
            p["features"]: MahalanobisGate.from_tensors(
                tensors, float("inf"), f"{prefix}{p['features']}."
            )
            for p in ood["parts"]
        }
        return cls(
            parts=parts,
            centres={p["features"]: float(p["centre"]) for p in ood["parts"]},
            scales={p["features"]: float(p["scale"]) for p in ood["parts"]},
            threshold=threshold,
        )


def threshold_rejecting(scores: torch.Tensor, max_reject: float) -> float:
    """The smallest score threshold that at most ``max_reject`` of ``scores`` exceed.

    An order statistic rather than an interpolated quantile: on a small set an interpolated
    quantile can let one image too many above the threshold.
    """
    ordered = scores.double().flatten().sort().values
    n = len(ordered)
    if n == 0:
        raise ValueError("no scores to calibrate on")
    allowed = int(max_reject * n + 1e-9)
    return float(ordered[n - 1 - min(allowed, n - 1)])


def _normalise(features: torch.Tensor) -> torch.Tensor:
    return features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)
