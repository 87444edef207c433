"""Explanations for the browser app: compute once per (checkpoint, method, layer, class, image), then cache.

A result is a few PNG files (overlay, optional B-cos colour explanation) plus the prediction scores and
the raw map, kept in an in-memory LRU and on disk under `<data dir>/cache/explanations/`, so a
restart does not recompute what was seen before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image as PILImage

from common.cpus import usable_cpus
from core import methods
from core.data import images_to_batch, load_rgb
from core.explain import EXPLAINERS, LAYER_NAMES, bcos_colour, overlay_heatmap, upsample
from core.explain.evidence import evidence_box
from core.explain.visualise import draw_boxes, evidence_scale, legend, note_picture
from services.models import ModelCache, checkpoint_file, model_device
from services.settings import Settings

log = logging.getLogger(__name__)

DISPLAY_SIZE = 384  # small images are shown upscaled to at least this many pixels wide (legend text stays legible)
RENDER_VERSION = 4  # bump when the pictures change: older cached pictures are then redrawn
MAP_MAX_SIDE = 2048  # larger images are explained into maps and pictures reduced by a power of two


def map_scale(width: int, height: int, max_side: int = MAP_MAX_SIDE) -> float:
    """Map pixels per original pixel: 1, or the largest power of two below 1 that fits `max_side`."""
    scale, longest = 1.0, max(int(width), int(height), 1)
    while longest * scale > max_side:
        scale /= 2
    return scale


SERVE_THREADS_ENV = "GUIDANCE_SERVE_THREADS"


def configure_serving_threads(settings: Settings) -> int | None:
    """Use one intra-op torch thread when the app explains on the CPU (env GUIDANCE_SERVE_THREADS overrides,
    capped at the CPUs this process may use, `common.cpus.usable_cpus`).

    A request explains one small image: one thread was measured faster than two, quiet and beside a CPU hog
    (bench/contention.py; OpenMP waits passively, app.py). The app's other work (the trainer) runs in its own
    process with a thread per usable CPU. Returns the thread count set, or None on an accelerator.
    """
    if model_device(settings).type != "cpu":
        return None
    threads = min(usable_cpus(), max(1, int(os.environ.get(SERVE_THREADS_ENV, "1"))))
    torch.set_num_threads(threads)
    log.info("explaining on the CPU with %d torch thread(s) (%s)", threads, SERVE_THREADS_ENV)
    return threads


@dataclass(frozen=True)
class ExplanationKey:
    """Identifies one explanation: the checkpoint file's sha256, method, layer, class index, image id, the
    model's input size (a project's image size can change: `project set P --image-size N`) and the explained score:
    the class logit, or with `contrast` the decision `logit_t − max_{c≠t} logit_c` (single-label projects)."""

    checkpoint_sha: str
    method: str
    layer: str
    class_index: int
    image_id: int
    image_size: int = 0
    contrast: bool = False

    @property
    def stem(self) -> str:
        """File name stem of the cached files."""
        return (f"{self.checkpoint_sha[:16]}-{self.method}-{self.layer}-c{self.class_index}-i{self.image_id}"
                f"-s{self.image_size}{'-decision' if self.contrast else ''}")


@dataclass(frozen=True)
class Explanation:
    """A computed explanation: picture files, the map as `.npy`, and the model's scores for the image."""

    key: ExplanationKey
    overlay_path: Path
    colour_path: Path | None
    map_path: Path
    scores: dict[str, float]  # class name -> probability (sigmoid for multi-label, softmax otherwise)
    logits: list[float]
    map_scale: float = 1.0  # map pixels per original pixel: 1, or a power of two below 1 for very large images
    display_scale: float = 1.0  # overlay pixels per original pixel (the image sits on top, the legend below)
    image_height: int = 0  # height of the image part of the overlay picture (0: unknown, the whole picture)
    saturation: float = 0.0  # |A| at which the overlay's colours saturate (the legend's ± value)

    def map(self) -> np.ndarray:
        """The attribution map `(h, w)`: the original size times `map_scale` (floored)."""
        return np.load(self.map_path)


@dataclass(frozen=True)
class ExplainRequest:
    """What to explain: the image file and size, the project's classes and task."""

    image_id: int
    image_path: Path
    image_size: int
    classes: list[str]
    multi_label: bool
    checkpoint_path: str
    checkpoint_sha: str


class ExplanationService:
    """Computes and caches explanations; thread-safe, shared by all users of one server."""

    def __init__(self, settings: Settings, models: ModelCache, cache_dir: Path, capacity: int = 512) -> None:
        self.settings = settings
        self.models = models
        self.cache_dir = cache_dir
        self.capacity = capacity
        self._memory: OrderedDict[ExplanationKey, Explanation] = OrderedDict()
        self._predicted: OrderedDict[tuple[str, int, int], int] = OrderedDict()  # (sha, image, size) -> class
        self._lock = threading.Lock()
        self._compute_lock = threading.Lock()  # one model forward at a time: 2 cores, no oversubscription

    def explain(self, request: ExplainRequest, method: str, layer: str, class_index: int, *,
                decision: bool = False) -> Explanation:
        """The explanation of `class_index` for the request's image, from cache when available. With `decision`
        (single-label projects) the explained score is the decision, `class_index`'s logit minus the highest
        other logit (docs/science.md §10), instead of the class logit."""
        self.explain_check(request, method, layer, class_index)
        if decision and (request.multi_label or len(request.classes) < 2):
            raise ValueError("the decision map (class vs the runner-up) needs a single-label project with two "
                             "classes or more; explain the class logit instead")
        key = ExplanationKey(request.checkpoint_sha, method, layer, class_index, request.image_id, request.image_size,
                             decision)
        cached = self.cached(key)
        if cached is not None:
            return cached
        with self._compute_lock:
            cached = self.cached(key)
            if cached is None:
                cached = self._compute(key, request)
                self._remember(cached)
        return cached

    def predicted_class(self, request: ExplainRequest) -> int:
        """The class the model predicts for the request's image (highest logit), from one forward pass.

        Remembered per (checkpoint, image), and learnt for free from every explanation computed, so
        explaining "the predicted class" costs one explanation, not two.
        """
        key = (request.checkpoint_sha, request.image_id, request.image_size)
        with self._lock:
            if key in self._predicted:
                return self._predicted[key]
        with self._compute_lock:
            device = model_device(self.settings)
            loaded = self.models.get(checkpoint_file(self.settings, request.checkpoint_path), device,
                                     expected_classes=request.classes)
            batch = images_to_batch([load_rgb(request.image_path)], request.image_size).to(device)  # (1, 3, S, S)
            with torch.no_grad():
                logits = loaded.model(batch).float().cpu()[0]  # (C,)
        predicted = int(torch.argmax(logits))
        self._remember_prediction(key, predicted)
        return predicted

    def explain_many(self, requests: Sequence[ExplainRequest], method: str, layer: str,
                     classes: Sequence[Sequence[int] | None]) -> list[list[Explanation]]:
        """Explanations of several images of one project under one checkpoint, several classes each (None: the
        predicted class), cached ones reused. The missing ones come from one forward per image and one
        explanation backward per (image, class) (`Explainer.attribute_multi`), the B-cos colour view included.

        Returns:
            Per request, its explanations in the order of its classes (one for None).
        """
        if len(requests) != len(classes):
            raise ValueError(f"{len(requests)} images but {len(classes)} class lists: give one list per image")
        if len({(r.checkpoint_sha, r.image_size) for r in requests}) > 1:
            raise ValueError("explain_many takes images of one project under one checkpoint; call it per checkpoint")
        for request, chosen in zip(requests, classes):
            for class_index in chosen or ():
                self.explain_check(request, method, layer, class_index)
        with self._compute_lock:
            wanted = self._with_predictions(requests, classes)
            keys = [[ExplanationKey(r.checkpoint_sha, method, layer, c, r.image_id, r.image_size) for c in chosen]
                    for r, chosen in zip(requests, wanted)]
            found = {key: self.cached(key) for row in keys for key in row}
            missing = [[key.class_index for key in row if found[key] is None] for row in keys]
            todo = [i for i, row in enumerate(missing) if row]
            if todo:
                computed = self._compute_many([requests[i] for i in todo], method, layer, [missing[i] for i in todo])
                for explanation in computed:
                    self._remember(explanation)
                    found[explanation.key] = explanation
        return [[found[key] for key in row] for row in keys]  # type: ignore[misc]

    def explain_check(self, request: ExplainRequest, method: str, layer: str, class_index: int) -> None:
        """ValueError saying what to choose when `method`, `layer` or `class_index` cannot explain the request."""
        if method not in EXPLAINERS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(EXPLAINERS)}")
        if layer not in LAYER_NAMES:
            raise ValueError(f"unknown layer {layer!r}; choose one of {', '.join(LAYER_NAMES)}")
        if not methods.METHODS[method].supports(layer):
            where = ", ".join(methods.LAYERS[name].label for name in methods.METHODS[method].layers)
            raise ValueError(f"{methods.METHODS[method].label} is not meaningful at the {methods.LAYERS[layer].label} "
                             f"layer; use it at {where}")
        if not 0 <= class_index < len(request.classes):
            raise ValueError(f"class index {class_index} is out of range for {len(request.classes)} classes")

    def _with_predictions(self, requests: Sequence[ExplainRequest], classes: Sequence[Sequence[int] | None]
                          ) -> list[list[int]]:
        """`classes` with None replaced by the predicted class: remembered, or one batched forward of the rest."""
        wanted: list[list[int] | None] = []
        for request, chosen in zip(requests, classes):
            key = (request.checkpoint_sha, request.image_id, request.image_size)
            with self._lock:
                known = self._predicted.get(key)
            wanted.append(list(chosen) if chosen is not None else [known] if known is not None else None)
        unknown = [i for i, chosen in enumerate(wanted) if chosen is None]
        if unknown:
            model, device = self._model(requests[0])
            batch = images_to_batch([load_rgb(requests[i].image_path) for i in unknown],
                                    requests[0].image_size).to(device)  # (U, 3, S, S)
            with torch.no_grad():
                predicted = model(batch).argmax(1).tolist()
            for i, c in zip(unknown, predicted):
                self._remember_prediction((requests[i].checkpoint_sha, requests[i].image_id, requests[i].image_size),
                                          int(c))
                wanted[i] = [int(c)]
        return [chosen or [] for chosen in wanted]

    def _model(self, request: ExplainRequest) -> tuple[torch.nn.Module, torch.device]:
        device = model_device(self.settings)
        loaded = self.models.get(checkpoint_file(self.settings, request.checkpoint_path), device,
                                 expected_classes=request.classes)
        return loaded.model, device

    def _compute_many(self, requests: Sequence[ExplainRequest], method: str, layer: str,
                      classes: Sequence[Sequence[int]]) -> list[Explanation]:
        """Explain `classes[i]` of `requests[i]` in one multi-target pass; write each result like `_compute`."""
        model, device = self._model(requests[0])
        rgbs = [load_rgb(r.image_path) for r in requests]  # (H, W, 3) uint8, original sizes
        batch = images_to_batch(rgbs, requests[0].image_size).to(device)  # (N, 3, S, S)
        colour_view = methods.METHODS[method].colour_view and getattr(model, "is_bcos", False)
        with EXPLAINERS[method](model, layer=layer) as explainer:
            out = explainer.attribute_multi(batch, classes, keep_gradients=colour_view and layer == "input")
            weights = out.gradients  # at the input: the colour view's W(x), from the same backward
            if colour_view and weights is None:
                weights = explainer.weights(batch[out.pairs[:, 0]], out.pairs[:, 1])
        results = []
        for p, (i, class_index) in enumerate(out.pairs.tolist()):
            request, rgb = requests[i], rgbs[i]
            scale = map_scale(rgb.shape[1], rgb.shape[0])
            if scale < 1:  # a huge photo: maps and pictures at a browser-friendly size
                rgb = cv2.resize(rgb, (max(1, int(rgb.shape[1] * scale)), max(1, int(rgb.shape[0] * scale))),
                                 interpolation=cv2.INTER_AREA)
            amap = upsample(out.maps[p:p + 1], (rgb.shape[0], rgb.shape[1]))[0].cpu().numpy()  # (H, W)
            colour = bcos_colour(weights[p], batch[i]) if weights is not None and weights.shape[1] == 6 else None
            logits = out.logits[i].float().cpu()
            probs = torch.sigmoid(logits) if request.multi_label else torch.softmax(logits, 0)
            key = ExplanationKey(request.checkpoint_sha, method, layer, class_index, request.image_id,
                                 request.image_size)
            results.append(self._write(key, rgb, amap, colour, request.classes, probs, logits, scale))
        return results

    def _remember_prediction(self, key: tuple[str, int, int], predicted: int) -> None:
        with self._lock:
            self._predicted[key] = predicted
            self._predicted.move_to_end(key)
            while len(self._predicted) > 16 * self.capacity:
                self._predicted.popitem(last=False)

    def cached(self, key: ExplanationKey) -> Explanation | None:
        """The cached explanation for `key` (memory first, then disk), or None."""
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        meta = self.cache_dir / f"{key.stem}.json"
        if not meta.exists():
            return None
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
            if data.get("render") != RENDER_VERSION:  # drawn by an older version (no legend): draw again
                return None
            colour = self.cache_dir / f"{key.stem}-colour.png"
            found = Explanation(key, self.cache_dir / f"{key.stem}.png", colour if colour.exists() else None,
                                self.cache_dir / f"{key.stem}.npy", data["scores"], data["logits"],
                                float(data.get("map_scale", 1.0)), float(data["display_scale"]),
                                int(data["image_height"]), float(data["saturation"]))
        except (OSError, ValueError, KeyError):
            return None
        self._remember(found)
        return found

    def _remember(self, explanation: Explanation) -> None:
        key, logits = explanation.key, explanation.logits
        predicted = max(range(len(logits)), key=logits.__getitem__)
        self._remember_prediction((key.checkpoint_sha, key.image_id, key.image_size), predicted)
        with self._lock:
            self._memory[explanation.key] = explanation
            self._memory.move_to_end(explanation.key)
            while len(self._memory) > self.capacity:
                self._memory.popitem(last=False)

    def _compute(self, key: ExplanationKey, request: ExplainRequest) -> Explanation:
        device = model_device(self.settings)
        path = checkpoint_file(self.settings, request.checkpoint_path)
        loaded = self.models.get(path, device, expected_classes=request.classes)
        model = loaded.model
        rgb = load_rgb(request.image_path)  # (H, W, 3) uint8, original size
        batch = images_to_batch([rgb], request.image_size).to(device)  # (1, 3, S, S)
        scale = map_scale(rgb.shape[1], rgb.shape[0])
        if scale < 1:  # a huge photo: maps and pictures at a browser-friendly size (the model sees S×S anyway)
            size = (max(1, int(rgb.shape[1] * scale)), max(1, int(rgb.shape[0] * scale)))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        targets = torch.tensor([key.class_index], device=device)
        with EXPLAINERS[key.method](model, layer=key.layer) as explainer:
            out = explainer.attribute(batch, targets, contrast=key.contrast)
            maps = upsample(out.maps.detach(), (rgb.shape[0], rgb.shape[1]))  # (1, H, W)
            colour = None
            if methods.METHODS[key.method].colour_view and getattr(model, "is_bcos", False):
                weights = explainer.weights(batch, targets, contrast=key.contrast)
                if weights.shape[1] == 6:
                    colour = bcos_colour(weights[0], batch[0])
        logits = out.logits.detach().float().cpu()[0]
        probs = torch.sigmoid(logits) if request.multi_label else torch.softmax(logits, 0)
        return self._write(key, rgb, maps[0].cpu().numpy(), colour, request.classes, probs, logits, scale)

    def _write(self, key: ExplanationKey, rgb: np.ndarray, amap: np.ndarray, colour: np.ndarray | None,
               classes: list[str], probs: torch.Tensor, logits: torch.Tensor, scale_of_map: float = 1.0
               ) -> Explanation:
        """Draw and store the overlay (one colour convention, legend below), the colour view, map and scores."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        scale = max(1, DISPLAY_SIZE // max(rgb.shape[:2]))
        big = np.kron(rgb, np.ones((scale, scale, 1), dtype=np.uint8)) if scale > 1 else rgb
        method = methods.METHODS[key.method]
        saturation = evidence_scale(amap, signed=method.signed)
        heat = overlay_heatmap(big, amap, signed=method.signed, scale=saturation, desaturate=0.5)
        note = f"{method.label} at {methods.LAYERS[key.layer].label}; colours saturate at the 99.5th percentile"
        strip = legend(heat.shape[1], scale=saturation, signed=method.signed,
                       explained=explained_score(key, classes, logits.tolist()), note=note)
        overlay_path = self.cache_dir / f"{key.stem}.png"
        # fast to write; the cache is local
        PILImage.fromarray(np.concatenate([heat, strip])).save(overlay_path, compress_level=1)
        colour_path = None
        if colour is not None:
            colour_path = self.cache_dir / f"{key.stem}-colour.png"
            on_black = _composite_on_black(colour, scale)
            PILImage.fromarray(on_black).save(colour_path, compress_level=1)
        map_path = self.cache_dir / f"{key.stem}.npy"
        np.save(map_path, amap.astype(np.float32))
        scores = {name: round(float(p), 4) for name, p in zip(classes, probs.tolist())}
        meta = {"scores": scores, "logits": [float(v) for v in logits.tolist()], "map_scale": scale_of_map,
                "render": RENDER_VERSION, "display_scale": scale * scale_of_map, "image_height": int(heat.shape[0]),
                "saturation": saturation}
        (self.cache_dir / f"{key.stem}.json").write_text(json.dumps(meta), encoding="utf-8")
        return Explanation(key, overlay_path, colour_path, map_path, scores, meta["logits"], scale_of_map,
                           scale * scale_of_map, int(heat.shape[0]), saturation)

    def outlined(self, explanation: Explanation, boxes: Sequence[tuple[float, float, float, float]],
                 box_labels: Sequence[str], truth: Sequence[str]) -> Path:
        """The overlay with the ground truth drawn on it: `boxes` (original pixels) outlined with their labels,
        and the image's labels `truth` added under the legend. Cached by content, so the cached overlay
        itself never changes when boxes do."""
        text = (f"ground truth: {', '.join(truth) or '(no label)'} · "
                + (f"{len(boxes)} box{'es' if len(boxes) != 1 else ''} outlined in yellow" if boxes else "no boxes"))
        digest = hashlib.sha1(repr((RENDER_VERSION, list(boxes), list(box_labels), text)).encode(),
                              usedforsecurity=False).hexdigest()[:12]
        path = self.cache_dir / f"{explanation.key.stem}-gt-{digest}.png"
        if path.exists():
            return path
        picture = np.asarray(PILImage.open(explanation.overlay_path).convert("RGB"))
        split = explanation.image_height or picture.shape[0]
        image = draw_boxes(picture[:split], boxes, box_labels, scale=explanation.display_scale)
        line = note_picture(text, picture.shape[1])
        PILImage.fromarray(np.concatenate([image, picture[split:], line])).save(path, compress_level=1)
        return path

    def placeholder(self, text: str, width: int = DISPLAY_SIZE) -> Path:
        """A picture saying `text` (why a panel is empty), cached by its text."""
        digest = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]
        path = self.cache_dir / f"note-{digest}.png"
        if not path.exists():
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            PILImage.fromarray(note_picture(text, width, height=width, grey=True, size=13)).save(path)
        return path


def runner_up(logits: Sequence[float], class_index: int) -> int:
    """The class with the highest logit other than `class_index`: what the decision map weighs it against."""
    return max((c for c in range(len(logits)) if c != class_index), key=lambda c: logits[c])


def explained_score(key: ExplanationKey, classes: Sequence[str], logits: Sequence[float]) -> str:
    """What the map of `key` explains, for a legend or caption: `“cat”` (the class logit), or for a decision map
    `the decision “cat” over “dog” (the runner-up)` (`logit_cat − logit_dog`; "the predicted class" when the
    explained class is not the top one)."""
    if not key.contrast:
        return f"“{classes[key.class_index]}”"
    other = runner_up(logits, key.class_index)
    role = "the runner-up" if logits[key.class_index] >= logits[other] else "the predicted class"
    return f"the decision “{classes[key.class_index]}” over “{classes[other]}” ({role})"


def _composite_on_black(rgba: np.ndarray, scale: int) -> np.ndarray:
    """RGBA `(h, w, 4)` → RGB on black, upscaled by an integer factor (the B-cos papers' presentation)."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    rgb = (rgba[..., :3].astype(np.float32) * alpha).round().astype(np.uint8)
    return np.kron(rgb, np.ones((scale, scale, 1), dtype=np.uint8)) if scale > 1 else rgb


def propose_box(amap: np.ndarray, fraction: float = 0.5) -> tuple[float, float, float, float] | None:
    """A box around the strongest positive evidence: pixels above `fraction` of the max of the blurred map, the
    bounding box of the component holding the most evidence (`core.explain.evidence.evidence_box`).

    amap: `(H, W)` at original image size. Returns `(x0, y0, x1, y1)` or None for a map with no
    positive evidence.
    """
    found = evidence_box(amap, fraction)
    if found is None:
        return None
    x0, y0, x1, y1 = found[0]
    return float(x0), float(y0), float(x1), float(y1)
