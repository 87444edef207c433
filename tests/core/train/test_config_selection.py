"""TrainConfig validation/round trip and Pareto-front checkpoint selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.train.config import TrainConfig
from core.train.selection import ParetoArchive, decision_point, selection_point


def test_config_round_trips_and_ignores_unknown_keys() -> None:
    cfg = TrainConfig(loss="l1", layer="mid2", lam=0.5, target="contrast")
    assert TrainConfig.from_dict({**cfg.to_dict(), "from_the_future": 1}) == cfg


@pytest.mark.parametrize("field,value", [("loss", "hinge"), ("layer", "mid9"), ("attribution", "lrp"),
                                         ("target", "both"), ("annotated_fraction", 0.0), ("epochs", 0)])
def test_config_rejects_bad_values_with_the_field_name(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_with_overrides_keeps_unset_fields() -> None:
    cfg = TrainConfig().with_overrides(lr=0.5, loss=None)
    assert cfg.lr == 0.5 and cfg.loss == "energy"


def test_auto_target_is_the_contrast_for_single_label_and_the_class_logit_for_multi_label() -> None:
    assert TrainConfig().target == "auto"
    assert TrainConfig().guides_contrast(multi_label=False) and not TrainConfig().guides_contrast(multi_label=True)
    assert TrainConfig(target="contrast").guides_contrast(multi_label=True)
    assert not TrainConfig(target="class").guides_contrast(multi_label=False)


def _metrics(acc: float, epg: float, iou: float) -> dict[str, float]:
    return {"accuracy": acc, "epg": epg, "iou": iou, "multi_label": False}


def test_selection_point_uses_f1_for_multilabel() -> None:
    assert selection_point({"f1": 0.7, "accuracy": 0.2, "epg": 0.5, "iou": 0.1, "multi_label": True}) == (0.7, 0.5, 0.1)


def test_archive_deletes_dominated_checkpoint_files(tmp_path: Path) -> None:
    archive = ParetoArchive()
    paths = [tmp_path / f"c{i}.pt" for i in range(3)]
    for p in paths:
        p.write_bytes(b"x")
    assert archive.add(paths[0], 1, _metrics(0.90, 0.30, 0.10)) == []
    removed = archive.add(paths[1], 2, _metrics(0.91, 0.50, 0.20))  # dominates the first
    assert removed == [paths[0]] and not paths[0].exists()
    assert archive.add(paths[2], 3, _metrics(0.95, 0.40, 0.20)) == []  # trade-off: both stay
    assert [e["epoch"] for e in archive.front] == [2, 3]


def test_archive_ties_within_a_bin_keep_the_earliest(tmp_path: Path) -> None:
    archive = ParetoArchive(bin_width=0.005)
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    archive.add(a, 1, _metrics(0.900, 0.500, 0.300))
    removed = archive.add(b, 2, _metrics(0.901, 0.501, 0.301))  # same bins
    assert removed == [b] and a.exists() and not b.exists()


def test_best_prefers_localisation_within_accuracy_tolerance(tmp_path: Path) -> None:
    archive = ParetoArchive()
    for i, m in enumerate([_metrics(0.97, 0.30, 0.1), _metrics(0.96, 0.60, 0.3), _metrics(0.80, 0.90, 0.5)]):
        path = tmp_path / f"{i}.pt"
        path.write_bytes(b"x")
        archive.add(path, i + 1, m)
    assert archive.best(tolerance=0.02)["epoch"] == 2  # equal on accuracy (within 0.02): EPG decides
    assert archive.best(tolerance=0.0)["epoch"] == 1  # no tolerance: the best accuracy


def _grouped(worst: float, acc: float, epg: float) -> dict[str, float]:
    return {"accuracy": acc, "worst_group_accuracy": worst, "epg": epg, "iou": 0.1, "multi_label": False}


def test_best_is_decided_on_worst_group_first_never_on_epg_alone(tmp_path: Path) -> None:
    # issue 13: a base at chance made "highest EPG within 0.02 of the base accuracy" pick the EPG-only checkpoint
    archive = ParetoArchive()
    runs = [_grouped(0.00, 0.50, 0.98), _grouped(0.62, 0.75, 0.40), _grouped(0.63, 0.70, 0.55),
            _grouped(0.30, 0.80, 0.70)]
    for i, m in enumerate(runs):
        path = tmp_path / f"{i}.pt"
        path.write_bytes(b"x")
        archive.add(path, i + 1, m)
    assert archive.best(tolerance=0.02)["epoch"] == 2  # worst group 0.62 ~ 0.63: accuracy decides
    assert archive.best(tolerance=0.0)["epoch"] == 3  # strictly the best worst group
    assert {e["epoch"] for e in archive.front} >= {2, 3}  # the front keeps decision-best checkpoints


def test_decision_point_falls_back_to_f1_without_groups() -> None:
    assert decision_point({"f1": 0.7, "accuracy": 0.2, "epg": 0.5, "multi_label": True,
                           "worst_group_accuracy": None}) == (0.7, 0.7, 0.5)
    assert decision_point(_grouped(0.4, 0.9, 0.3)) == (0.4, 0.9, 0.3)
