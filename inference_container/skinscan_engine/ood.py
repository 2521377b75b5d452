"""The "unknown" gate: Mahalanobis distance of pooled features to the training classes.

A max-softmax threshold is a weak test for "not a skin lesion": a network happily gives a
confident softmax for a photo of a cat. The distance of the pooled ``layer4`` features to the
nearest class centre, under a shared covariance fitted on the training set, measures instead
how unlike the training images a picture is. Features are L2-normalised first, which makes the
distance insensitive to overall activation strength (exposure, contrast).
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
        self.threshold = float(torch.quantile(in_dist_scores.double(), 1.0 - max_reject))
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


def _normalise(features: torch.Tensor) -> torch.Tensor:
    return features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)
