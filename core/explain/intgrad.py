"""Integrated Gradients (Sundararajan et al., ICML 2017) from a zero baseline, batched over steps.

``A = Σ_c f ⊙ (1/m) Σ_{k=1..m} g(k/m · f)``: a right Riemann sum, so the last step (α = 1) is the plain
forward pass and its logits are returned. All steps of all images run in as few forward passes as
``internal_batch_size`` allows (one by default). At the ``"input"`` layer this is classic IG on the image
(on ``[x, 1-x]`` for a native B-cos net); at a deeper layer it is IG of the sub-network after that layer.
For a bias-free piecewise-linear network the gradient is constant along the path, so IG equals
Input×Gradient exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from core.explain.base import Attribution, Explainer, MultiAttribution

__all__ = ["IntegratedGradients"]


class IntegratedGradients(Explainer):
    """Integrated Gradients at the chosen layer; maps ``(B, h, w)``.

    Args:
        model, layer, channels_last: as :class:`core.explain.base.Explainer`.
        steps: Riemann steps ``m`` (≥ 1).
        internal_batch_size: most rows (images × steps) per forward pass; ``None`` runs all in one.
    """

    name = "intgrad"

    def __init__(
        self,
        model: nn.Module,
        layer: str = "input",
        *,
        steps: int = 16,
        internal_batch_size: int | None = None,
        channels_last: bool | None = None,
    ) -> None:
        super().__init__(model, layer, channels_last=channels_last)
        if steps < 1:
            raise ValueError(f"steps must be ≥ 1, got {steps}")
        if internal_batch_size is not None and internal_batch_size < 1:
            raise ValueError(f"internal_batch_size must be ≥ 1 or None, got {internal_batch_size}")
        self.steps = steps
        self.internal_batch_size = internal_batch_size

    def _steps_per_pass(self, batch: int) -> int:
        if self.internal_batch_size is None:
            return self.steps
        return max(1, min(self.steps, self.internal_batch_size // batch))

    def _attribute(
        self, images: Tensor, targets: Tensor, *, create_graph: bool, contrast: bool, graph_free: bool,
        rows: Tensor | None = None,
    ) -> Attribution:
        batch, m = images.shape[0], self.steps
        per_pass = self._steps_per_pass(batch)
        grad_sum: Tensor | float = 0.0
        logits = feature = None
        for start in range(0, m, per_pass):
            n = min(per_pass, m - start)
            # Step-major rows: rows [j*B, (j+1)*B) hold step start+j+1 of every image.
            alphas = torch.arange(start + 1, start + n + 1, device=images.device, dtype=images.dtype) / m
            step_logits, scaled = self._forward(
                images.repeat(n, 1, 1, 1), graph_free=graph_free, alphas=alphas.repeat_interleave(batch)
            )
            score = self._score(step_logits, targets.repeat(n), contrast, None if rows is None else rows.repeat(n))
            grad = self._gradient(score, scaled, create_graph=create_graph)  # (n*B, K, h, w)
            grad_sum = grad_sum + grad.unflatten(0, (n, batch)).sum(dim=0)
            if start + n == m:  # the last rows have α = 1: the plain forward pass
                logits, feature = step_logits[-batch:], scaled[-batch:]
        # m ≥ 1, so the last pass always ran
        assert logits is not None and feature is not None and isinstance(grad_sum, Tensor)
        with torch.set_grad_enabled(create_graph):
            maps = (feature * grad_sum).sum(dim=1) / m  # (B, h, w)
        return Attribution(logits=logits.detach() if graph_free else logits, maps=maps)

    def _attribute_multi(self, images: Tensor, pairs: Tensor, counts: list[int], contrast: bool,
                         keep_gradients: bool = False) -> MultiAttribution:
        # Every step is a forward of its own, so there is no graph to share between classes: explain the
        # images repeated once per pair (the logits of the α = 1 step serve the images). No single gradient
        # stands for the path, so `keep_gradients` gives none.
        out = (self._attribute(images[pairs[:, 0]], pairs[:, 1], create_graph=False, contrast=contrast,
                               graph_free=True) if pairs.shape[0] else None)
        first = [sum(counts[:i]) for i in range(len(counts))]
        missing = [i for i, count in enumerate(counts) if count == 0]
        with torch.no_grad():
            extra = self.model(images[missing]) if missing else None
        width = out.logits.shape[1] if out is not None else extra.shape[1] if extra is not None else 0
        logits = images.new_zeros((images.shape[0], width))
        covered = [i for i, count in enumerate(counts) if count]
        if out is not None:
            logits[covered] = out.logits[[first[i] for i in covered]].to(logits.dtype)
        if extra is not None:
            logits[missing] = extra.to(logits.dtype)
        maps = out.maps.detach() if out is not None else images.new_zeros((0, 1, 1))
        return MultiAttribution(logits=logits, maps=maps, pairs=pairs)
