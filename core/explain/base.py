"""The protocol every explainer shares: build once, enter to hook, attribute in one batched pass.

Attributions (docs/science.md §3): with ``f`` the feature map at the chosen layer and ``t_i`` the target of image
``i``, one forward pass gives the logits and ``f``; one batched ``torch.autograd.grad`` of ``Σ_i score_i``
gives ``g = ∂ Σ_i score_i / ∂ f``; each algorithm combines ``f`` and ``g`` into a map ``(B, h, w)``.

Several classes of one image (multi-label evaluation, the Compare view): :meth:`Explainer.attribute_multi`
forwards each image once and runs one explanation backward per (image, class) on the retained graph.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Self

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from core.explain.layers import resolve_layer

__all__ = ["Attribution", "Explainer", "MultiAttribution", "pairs_of", "target_scores", "upsample"]


@dataclass(frozen=True)
class Attribution:
    """What :meth:`Explainer.attribute` returns.

    Attributes:
        logits: ``(B, C)`` from the same forward pass that produced the maps.
        maps: ``(B, h, w)`` raw attributions at the layer's resolution (not upsampled, not clamped).
    """

    logits: Tensor
    maps: Tensor


@dataclass(frozen=True)
class MultiAttribution:
    """What :meth:`Explainer.attribute_multi` returns.

    Attributes:
        logits: ``(B, C)``, one forward per image.
        maps: ``(P, h, w)`` raw attributions, one per (image, class) pair, in the order of ``pairs``.
        pairs: ``(P, 2)`` long: image index, class index; image-major, classes in the order given.
        gradients: ``(P, K, h, w)`` the explained score's gradient at the layer per pair (``keep_gradients``;
            B-cos at the input: the dynamic-linear weights ``W(x)`` of the colour view), else None.
    """

    logits: Tensor
    maps: Tensor
    pairs: Tensor
    gradients: Tensor | None = None


def pairs_of(targets_per_image: Sequence[Sequence[int] | Tensor], device: torch.device | None = None) -> Tensor:
    """``(P, 2)`` long (image index, class index) pairs, image-major, from one class list per image.

    Tensors stay on their device (no host sync); plain lists are read on the host.
    """
    if targets_per_image and all(isinstance(c, Tensor) for c in targets_per_image):
        tensors = [c.reshape(-1).long() for c in targets_per_image]  # type: ignore[union-attr]
        device = device or tensors[0].device
        classes = torch.cat([c.to(device) for c in tensors])
        counts = torch.tensor([c.numel() for c in tensors], device=device)
        images = torch.repeat_interleave(torch.arange(len(tensors), device=device), counts)
        return torch.stack([images, classes], 1)
    rows = [(i, int(c)) for i, classes in enumerate(targets_per_image) for c in classes]
    return torch.tensor(rows, dtype=torch.long, device=device).view(-1, 2)


def target_scores(logits: Tensor, targets: Tensor, *, contrast: bool = False) -> Tensor:
    """Score to explain per image: ``logit[i, t_i]``, or ``logit_t − max_{c≠t} logit_c`` with ``contrast``.

    Args:
        logits: ``(B, C)``.
        targets: ``(B,)`` long class indices.
        contrast: explain the margin over the strongest other class (docs/science.md §7).

    Returns:
        ``(B,)`` scores, differentiable w.r.t. ``logits``.
    """
    picked = logits.gather(1, targets[:, None])[:, 0]
    if not contrast:
        return picked
    others = logits.masked_fill(F.one_hot(targets, logits.shape[1]).bool(), float("-inf"))
    return picked - others.amax(dim=1)


class Explainer:
    """Base class: a context manager that captures the feature at one layer with a forward hook.

    Subclasses implement :meth:`_combine` (and may override :meth:`_gradient`).

    Args:
        model: classifier taking ``images (B, 3, H, W)`` and returning ``logits (B, C)``.
        layer: ``"input"``, ``"mid1"``..``"mid3"``, ``"final"`` or any dotted module name
            (see :func:`core.explain.layers.resolve_layer`).
        channels_last: feed images in channels-last memory format; ``None`` follows the model's conv weights.
    """

    name: ClassVar[str] = "base"

    def __init__(self, model: nn.Module, layer: str = "input", *, channels_last: bool | None = None) -> None:
        self.model = model
        self.layer = layer
        self.module = resolve_layer(model, layer)  # None: the image tensor itself
        self.channels_last = _model_is_channels_last(model) if channels_last is None else channels_last
        self._handle: RemovableHandle | None = None
        self._capturing = False
        self._graph_free = False
        self._alphas: Tensor | None = None  # per-row feature scale, used by Integrated Gradients
        self._feature: Tensor | None = None

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self) -> Self:
        if self._handle is not None:
            raise RuntimeError(f"{type(self).__name__} is already entered; it is not re-entrant")
        if self.module is not None:
            self._handle = self.module.register_forward_hook(self._hook)
        else:
            self._handle = _NullHandle()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        handle, self._handle = self._handle, None
        self._feature = None
        if handle is not None:
            handle.remove()

    # -- public API --------------------------------------------------------------------------------
    def attribute(
        self, images: Tensor, targets: Tensor, *, create_graph: bool = False, contrast: bool = False,
        rows: Tensor | None = None,
    ) -> Attribution:
        """Explain ``targets`` from one forward pass and one batched gradient call.

        Args:
            images: ``(B, 3, H, W)`` in [0, 1]; never modified.
            targets: ``(B,)`` long class indices.
            create_graph: keep the graph so the maps can be differentiated (guided training).
            contrast: explain ``logit_t − max_{c≠t} logit_c`` instead of ``logit_t``.
            rows: ``(B,)`` bool; only these images' scores are explained (the other maps are zero, and
                no graph is built for them): guided training explains the annotated images only.

        Returns:
            :class:`Attribution` with ``logits (B, C)`` and raw ``maps (B, h, w)`` at the layer resolution.
        """
        self._check(images, targets)
        return self._attribute(images, targets, create_graph=create_graph, contrast=contrast, graph_free=False,
                               rows=rows)

    def __call__(self, images: Tensor, targets: Tensor, *, contrast: bool = False) -> Tensor:
        """Maps upsampled bilinearly to the input size, without any graph.

        Args:
            images: ``(B, 3, H, W)``.
            targets: ``(B,)`` long.

        Returns:
            ``(B, H, W)`` detached attributions.
        """
        maps = self.attribute_detached(images, targets, contrast=contrast).maps
        return upsample(maps, images.shape[-2:])

    def attribute_detached(self, images: Tensor, targets: Tensor, *, contrast: bool = False) -> Attribution:
        """Like :meth:`attribute`, but without any graph: the cheap path for evaluation and display.

        Nothing before the layer records a graph, and an explainer may skip further work that only a graph
        needs (B-cos: dynamic factors computed as constants). Same values as ``attribute(...)``.

        Args:
            images: ``(B, 3, H, W)``; never modified.
            targets: ``(B,)`` long.
            contrast: explain ``logit_t − max_{c≠t} logit_c`` instead of ``logit_t``.

        Returns:
            :class:`Attribution` with detached ``logits (B, C)`` and raw ``maps (B, h, w)``.
        """
        self._check(images, targets)
        with graph_free_block(), self._graph_free_context():
            images, targets = usable_in_autograd(images), usable_in_autograd(targets)
            return self._attribute(images, targets, create_graph=False, contrast=contrast, graph_free=True)

    def attribute_multi(self, images: Tensor, targets_per_image: Sequence[Sequence[int] | Tensor], *,
                        contrast: bool = False, keep_gradients: bool = False) -> MultiAttribution:
        """Explain several classes per image without a graph: one forward per image, one explanation backward
        per (image, class) from the shared graph (``retain_graph``). Same values as :meth:`attribute_detached`
        on the images repeated once per pair, at a fraction of the forwards.

        Images are grouped by their number of classes ``k``; each group is forwarded once and backwarded ``k``
        times (the ``j``-th backward explains every image's ``j``-th class).

        Args:
            images: ``(B, 3, H, W)``; never modified.
            targets_per_image: ``B`` sequences of class indices (a sequence may be empty: logits only).
            contrast: explain ``logit_t − max_{c≠t} logit_c`` instead of ``logit_t``.
            keep_gradients: also return each pair's gradient at the layer (not every explainer can).

        Returns:
            :class:`MultiAttribution`: detached ``logits (B, C)``, ``maps (P, h, w)``, ``pairs (P, 2)``.
        """
        if self._handle is None:
            raise RuntimeError(f"use {type(self).__name__} as a context manager: `with explainer: ...`")
        if images.ndim != 4 or len(targets_per_image) != images.shape[0]:
            raise ValueError(f"need images (B, C, H, W) and one class list per image; got images "
                             f"{tuple(images.shape)} and {len(targets_per_image)} class lists")
        pairs = pairs_of(targets_per_image, images.device)
        counts = [len(classes) for classes in targets_per_image]
        with graph_free_block(), self._graph_free_context():
            images = usable_in_autograd(images)
            return self._attribute_multi(images, pairs, counts, contrast, keep_gradients)

    def _attribute_multi(self, images: Tensor, pairs: Tensor, counts: list[int], contrast: bool,
                         keep_gradients: bool = False) -> MultiAttribution:
        """Group images by class count; per group one forward, then one retained-graph backward per class slot."""
        offsets = [0]
        for count in counts:
            offsets.append(offsets[-1] + count)
        logits: Tensor | None = None
        maps: Tensor | None = None
        gradients: Tensor | None = None
        for k in sorted(set(counts)):
            rows = [i for i, count in enumerate(counts) if count == k]
            index = torch.tensor(rows, device=images.device)
            if k == 0:
                with torch.no_grad():
                    group_logits = self.model(images[index])
            else:
                group_logits, feature = self._forward(images[index], graph_free=True)
                starts = torch.tensor([offsets[i] for i in rows], device=images.device)
                for j in range(k):
                    score = self._score(group_logits, pairs[starts + j, 1], contrast)
                    grad = self._gradient(score, feature, create_graph=False, retain_graph=j < k - 1)
                    group_maps = self._combine(feature, grad).detach()  # (n_k, h, w)
                    if maps is None:
                        maps = group_maps.new_zeros((pairs.shape[0], *group_maps.shape[1:]))
                    maps[starts + j] = group_maps
                    if keep_gradients:
                        if gradients is None:
                            gradients = grad.new_zeros((pairs.shape[0], *grad.shape[1:]))
                        gradients[starts + j] = grad.detach()
            group_logits = group_logits.detach()
            if logits is None:
                logits = group_logits.new_empty((images.shape[0], group_logits.shape[1]))
            logits[index] = group_logits
        if logits is None:  # no images at all
            logits = images.new_zeros((0, 0))
        if maps is None:  # no pairs: an empty (0, 1, 1) stack
            maps = images.new_zeros((0, 1, 1))
        return MultiAttribution(logits=logits, maps=maps, pairs=pairs, gradients=gradients)

    def _graph_free_context(self) -> contextlib.AbstractContextManager[object]:
        """Entered around graph-free explanations; subclasses may make the model skip work nobody needs."""
        return contextlib.nullcontext()

    # -- the algorithm -----------------------------------------------------------------------------
    def _attribute(
        self, images: Tensor, targets: Tensor, *, create_graph: bool, contrast: bool, graph_free: bool,
        rows: Tensor | None = None,
    ) -> Attribution:
        logits, feature = self._forward(images, graph_free=graph_free)
        score = self._score(logits, targets, contrast, rows)
        grad = self._gradient(score, feature, create_graph=create_graph)
        with torch.set_grad_enabled(create_graph):
            maps = self._combine(feature, grad)
        if graph_free:
            logits = logits.detach()
        return Attribution(logits=logits, maps=maps)

    @staticmethod
    def _score(logits: Tensor, targets: Tensor, contrast: bool, rows: Tensor | None = None) -> Tensor:
        """``Σ_i score_i`` (a scalar) over all images or the selected `rows`: one gradient call per batch."""
        with torch.enable_grad():  # also under the caller's no_grad: the logits carry the post-layer graph
            scores = target_scores(logits, targets.to(logits.device), contrast=contrast)
            if rows is not None:
                scores = torch.where(rows.to(scores.device), scores, torch.zeros_like(scores))
            return scores.sum()

    def _gradient(self, score: Tensor, feature: Tensor, *, create_graph: bool, retain_graph: bool | None = None
                  ) -> Tensor:
        """``∂ score / ∂ feature``, same shape as ``feature`` (``retain_graph``: another backward follows)."""
        (grad,) = torch.autograd.grad(score, feature, create_graph=create_graph, retain_graph=retain_graph)
        return grad

    def _combine(self, feature: Tensor, grad: Tensor) -> Tensor:
        """Turn ``feature, grad: (B, K, h, w)`` into ``maps: (B, h, w)``."""
        raise NotImplementedError

    # -- feature capture ---------------------------------------------------------------------------
    def _forward(self, images: Tensor, *, graph_free: bool, alphas: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run the model once; return ``logits (N, C)`` and the feature that requires grad.

        With ``graph_free`` nothing before the layer records a graph: the forward runs under ``no_grad``
        and the hook switches grad mode on at the layer (restored when the ``no_grad`` block exits).
        ``alphas (N,)`` scale the feature row-wise (Integrated Gradients).
        """
        x = images.contiguous(memory_format=torch.channels_last) if self.channels_last else images
        self._feature, self._alphas, self._graph_free = None, alphas, graph_free
        try:
            if self.module is None:  # the image itself is the feature
                with torch.enable_grad():
                    leaf = x if x.requires_grad else x.detach().requires_grad_()
                    feature = leaf * _expand(alphas, leaf) if alphas is not None else leaf
                    return self.model(feature), feature
            self._capturing = True
            with torch.no_grad() if graph_free else torch.enable_grad():
                logits = self.model(x)
            if self._feature is None:
                raise RuntimeError(f"layer {self.layer!r} did not run in the forward pass; choose another layer")
            return logits, self._feature
        finally:
            self._capturing, self._alphas = False, None

    def _hook(self, module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor | None:
        if not self._capturing:
            return None
        if self._feature is not None:
            raise RuntimeError(f"layer {self.layer!r} ran twice in one forward pass; choose a module that runs once")
        if self._graph_free:
            torch.set_grad_enabled(True)  # the surrounding no_grad block restores the previous mode
        feature = output if output.requires_grad else output.detach().requires_grad_()
        if self._alphas is not None:
            feature = feature * _expand(self._alphas, feature)
        self._feature = feature
        return feature

    def _check(self, images: Tensor, targets: Tensor) -> None:
        if self._handle is None:
            raise RuntimeError(f"use {type(self).__name__} as a context manager: `with explainer: ...`")
        if images.ndim != 4:
            raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
        if targets.shape != (images.shape[0],):
            raise ValueError(f"targets must be (B,) = ({images.shape[0]},) class indices, got {tuple(targets.shape)}")


def upsample(maps: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """Bilinear upsampling ``(B, h, w) -> (B, H, W)`` (align_corners=False); a no-op at the same size."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]


def graph_free_block() -> contextlib.ExitStack:
    """``no_grad``, also inside a caller's ``inference_mode`` (whose tensors autograd could not use)."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode(False))
    stack.enter_context(torch.no_grad())
    return stack


def usable_in_autograd(x: Tensor) -> Tensor:
    """An inference tensor cannot be saved for backward: copy it (anything else is returned as is)."""
    return x.clone() if x.is_inference() else x


def _expand(alphas: Tensor, like: Tensor) -> Tensor:
    return alphas.to(like.dtype).view(-1, *([1] * (like.ndim - 1)))


def _model_is_channels_last(model: nn.Module) -> bool:
    weight = next((p for p in model.parameters() if p.ndim == 4), None)
    return weight is not None and weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()


class _NullHandle:
    """Stands in for a hook handle when the feature is the image itself (nothing to remove)."""

    def remove(self) -> None:
        return None
