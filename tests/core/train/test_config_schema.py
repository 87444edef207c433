"""TrainConfig is the one schema: its metadata validates, and drives the CLI flags and the UI form."""

from __future__ import annotations

import argparse
import math

import pytest

from core.train.config import TrainConfig, default_of, settings
from services.commands.train import add_config_flags, config_overrides


@pytest.mark.parametrize(("field", "value", "message"), [
    ("lam", -1.0, "lam=-1.0 is out of range: ≥ 0"),
    ("lr", 0.0, "lr=0.0 is out of range: > 0"),
    ("lr", math.nan, "lr must be a number, not NaN"),
    ("epochs", 0, "epochs=0 is out of range"),
    ("annotated_fraction", 1.5, "annotated_fraction=1.5 is out of range"),
    ("loss", "energyy", "loss='energyy' is not one of energy, l1, ppce, rrr"),
    ("layer", "mid9", "is not one of input, mid1"),
])
def test_every_rule_comes_from_the_field_metadata(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        TrainConfig(**{field: value})


def test_values_from_forms_and_json_are_coerced_to_the_field_type() -> None:
    config = TrainConfig.from_dict({"epochs": 3.0, "lam": "0.25", "bf16": "false", "unknown_key": 1})
    assert config.epochs == 3 and isinstance(config.epochs, int) and config.lam == 0.25 and config.bf16 is False
    with pytest.raises(ValueError, match="not a whole number"):
        TrainConfig.from_dict({"epochs": 2.5})


def test_cli_flags_are_generated_for_every_cli_setting_and_round_trip() -> None:
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    flags = {a.dest for a in parser._actions if a.dest != "help"}
    assert flags == {name for name, rule in settings() if rule.cli}
    args = parser.parse_args(["--lam", "2", "--layer", "input", "--freeze-norm", "no", "--epochs", "3"])
    assert config_overrides(args) == {"lam": 2.0, "layer": "input", "freeze_norm": "no", "epochs": 3}
    assert TrainConfig().with_overrides(**config_overrides(args)).freezes_norm() is False
    with pytest.raises(SystemExit):
        parser.parse_args(["--loss", "nope"])  # choices come from the registry


def test_defaults_are_valid_and_auto_resolves_by_model_kind() -> None:
    assert default_of("layer") == TrainConfig().layer
    assert TrainConfig().resolved(is_bcos=True).attribution == "bcos"
    assert TrainConfig().resolved(is_bcos=False).attribution == "ixg"
    assert TrainConfig(attribution="gradcam").resolved(is_bcos=True).attribution == "gradcam"


def test_freeze_norm_auto_follows_the_base_model_and_old_booleans_still_read() -> None:
    assert TrainConfig().freeze_norm == "auto" and TrainConfig().freezes_norm()  # unresolved: the fine-tune default
    assert TrainConfig().resolved(is_bcos=True, fresh=True).freeze_norm == "no"  # a new model learns its norms
    assert TrainConfig().resolved(is_bcos=True).freeze_norm == "yes"
    assert TrainConfig(freeze_norm="yes").resolved(is_bcos=True, fresh=True).freeze_norm == "yes"  # told: kept
    assert TrainConfig.from_dict({"freeze_norm": False}).freeze_norm == "no"  # run rows written before "auto"
    assert TrainConfig.from_dict({"freeze_norm": True}).freeze_norm == "yes"
    with pytest.raises(ValueError, match="freeze_norm='maybe' is not one of auto, yes, no"):
        TrainConfig(freeze_norm="maybe")
