"""The one registry of names: explanation methods, localisation losses, layers, guided targets, architectures.

Torch-free on purpose: the command line, the training schema and the UI build their choices from it
without importing torch. The heavy registries (`core.explain.EXPLAINERS`, `core.guidance.LOSSES`,
`core.bcos.ARCHITECTURES`) check on import that they implement exactly these names, so adding a method
is one new file plus one line here (docs/ARCHITECTURE.md, "Adding an explainer or a loss").

Code asks the registry about a *capability* (`method.colour_view`, `method.supports(layer)`), never
compares method names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "ARCHITECTURES",
    "LAYERS",
    "LOSSES",
    "METHODS",
    "TARGETS",
    "Architecture",
    "Entry",
    "Layer",
    "Loss",
    "Method",
    "Target",
    "check_implemented",
    "default_method",
    "evaluation_layer",
]


@dataclass(frozen=True)
class Entry:
    """A named choice with a label for people and a one-line help."""

    name: str
    label: str
    help: str


Layer = Entry  # a named place in a network where explanations are taken (docs/ARCHITECTURE.md, model contract)
Loss = Entry  # a localisation loss (docs/science.md §4): L = L_class + λ · Σ_annotated L_loc
Target = Entry  # which score the guided explanation explains


@dataclass(frozen=True)
class Method(Entry):
    """An explanation method (docs/science.md §3).

    `layers`: the layers where its maps mean what a reader expects (GradCAM is a coarse final-layer
    method: at the input it is a gradient-weighted image, which misleads). `signed`: its maps carry
    negative evidence too. `colour_view`: it has the B-cos colour explanation (a per-pixel dynamic linear
    weight rendered as colour), which only B-cos networks have. `needs_bcos`: meaningless on other nets.
    """

    layers: tuple[str, ...] = ()
    signed: bool = True
    colour_view: bool = False
    needs_bcos: bool = False
    guidable: bool = True

    def supports(self, layer: str) -> bool:
        """Whether maps at `layer` are meaningful for this method."""
        return layer in self.layers


@dataclass(frozen=True)
class Architecture(Entry):
    """A model architecture the app can build by name (core.bcos.build_model)."""

    bcos: bool = True
    torchvision: str | None = None  # the torchvision architecture it is B-cosified from, if any


ALL_LAYERS = ("input", "mid1", "mid2", "mid3", "final")

LAYERS: dict[str, Layer] = {layer.name: layer for layer in (
    Layer("input", "Input", "the image itself (for B-cos nets: after the input encoding)"),
    Layer("mid1", "Mid1", "output of the first residual stage"),
    Layer("mid2", "Mid2", "output of the second residual stage"),
    Layer("mid3", "Mid3", "output of the third residual stage"),
    Layer("final", "Final", "output of the last residual stage"),
)}

METHODS: dict[str, Method] = {method.name: method for method in (
    Method("bcos", "B-cos", "B-cos contributions W(x)·x: sum exactly to the logit", ALL_LAYERS,
           colour_view=True, needs_bcos=True),
    Method("ixg", "Input×Gradient", "input times gradient (for bias-free nets = Integrated Gradients)", ALL_LAYERS),
    Method("gradcam", "GradCAM", "gradient-weighted class activation map (coarse, non-negative)",
           ("mid3", "final"), signed=False),
    Method("intgrad", "Integrated Gradients", "Riemann sum of gradients from a zero baseline", ALL_LAYERS),
)}

LOSSES: dict[str, Loss] = {loss.name: loss for loss in (
    Loss("energy", "Energy", "1 − share of positive evidence inside the boxes; robust to coarse boxes"),
    Loss("l1", "L1", "mean |normalised map − box mask|"),
    Loss("ppce", "PPCE", "per-pixel cross-entropy towards 1 inside the boxes"),
    Loss("rrr", "RRR*", "squared normalised evidence outside the boxes (needs a much smaller λ)"),
)}

TARGETS: dict[str, Target] = {target.name: target for target in (
    Target("auto", "auto", "the contrast on single-label projects, the class logit on multi-label ones"),
    Target("class", "class logit", "explain logit_t, as in the paper"),
    Target("contrast", "contrast", "explain logit_t − max_{c≠t} logit_c: closes negative-evidence shortcuts"),
)}

ARCHITECTURES: dict[str, Architecture] = {arch.name: arch for arch in (
    Architecture("bcos_small", "B-cos small ResNet", "a small B-cos ResNet (the demo's); fast on CPU"),
    Architecture("bcos_resnet18", "B-cos ResNet-18", "B-cos v2 ResNet-18 (release weight files load as they are)"),
    Architecture("bcos_resnet34", "B-cos ResNet-34", "B-cos v2 ResNet-34"),
    Architecture("bcos_resnet50", "B-cos ResNet-50", "B-cos v2 ResNet-50"),
    Architecture("bcosified_resnet18", "ResNet-18 → B-cos", "torchvision ResNet-18, B-cosified",
                 torchvision="resnet18"),
    Architecture("bcosified_resnet50", "ResNet-50 → B-cos", "torchvision ResNet-50, B-cosified",
                 torchvision="resnet50"),
    Architecture("bcosified_densenet121", "DenseNet-121 → B-cos", "torchvision DenseNet-121, B-cosified",
                 torchvision="densenet121"),
)}


def default_method(is_bcos: bool) -> str:
    """The method a model is explained with when none is chosen: the first in registry order it supports
    (a B-cos net's own contributions; Input×Gradient for any other net)."""
    return next(m.name for m in METHODS.values() if is_bcos or not m.needs_bcos)


def evaluation_layer(method: str) -> str:
    """Where before/after figures are measured: the input (where a person reads maps) if the method allows."""
    layers = METHODS[method].layers
    return "input" if "input" in layers else layers[-1]


def check_implemented(kind: str, implemented: Iterable[str], declared: Mapping[str, object]) -> None:
    """Raise at import time when a heavy registry and this one disagree (a forgotten line or file)."""
    missing, extra = sorted(set(declared) - set(implemented)), sorted(set(implemented) - set(declared))
    if missing or extra:
        raise ImportError(f"{kind} registry out of step with core/methods.py: not implemented {missing}, "
                          f"not declared {extra}")
