"""`ExplanationService.explain_many` (the Compare view's multi-target entry point) gives what `explain` gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.explain_requests import explain_target
from services.explanations import ExplanationService
from tests.ui.conftest import build_tiny_project


def test_explain_many_matches_explain_one_by_one(tmp_path: Path) -> None:
    tiny = build_tiny_project(tmp_path / "data")
    requests = [explain_target(tiny.deps.engine, tiny.name, image_id, data_dir=tiny.deps.data_dir).request
                for image_id in tiny.image_ids[:3]]
    many = ExplanationService(tiny.deps.settings, tiny.deps.models, cache_dir=tmp_path / "many")
    one = ExplanationService(tiny.deps.settings, tiny.deps.models, cache_dir=tmp_path / "one")
    got = many.explain_many(requests, "bcos", "input", [None, [0, 1], [1]])
    assert [[e.key.class_index for e in row] for row in got][1:] == [[0, 1], [1]]
    assert got[0][0].key.class_index == one.predicted_class(requests[0])
    for request, row in zip(requests, got):
        for explanation in row:
            single = one.explain(request, "bcos", "input", explanation.key.class_index)
            np.testing.assert_allclose(explanation.map(), single.map(), rtol=1e-4, atol=1e-5)
            assert explanation.colour_path is not None and explanation.colour_path.is_file()
            assert explanation.scores == pytest.approx(single.scores, abs=1e-3)
    again = many.explain_many(requests[:1], "bcos", "input", [[got[0][0].key.class_index]])
    assert again[0][0] is got[0][0]  # from the cache, nothing recomputed
    with pytest.raises(ValueError, match="class index 5"):
        many.explain_many(requests[:1], "bcos", "input", [[5]])
