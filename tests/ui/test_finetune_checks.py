"""The Fine-tune tab's warning (`#finetune-val-warning`, ui/handlers/finetune_checks.py): shown for a project whose
validation split is too small to judge a run, hidden for one that is big enough, never an error."""

from __future__ import annotations

import re

from tests.services.test_validation_split import make_project
from tests.ui.conftest import TinyProject
from ui.handlers import finetune_checks


def test_the_tiny_project_gets_a_visible_warning_and_a_big_one_none(tiny: TinyProject) -> None:
    shown = finetune_checks.validation_warning(tiny.deps, tiny.name)  # 2 val images: one per group
    assert shown["visible"] and "too small to judge a run" in shown["value"]
    assert "rests on 1 validation image of group" in shown["value"].replace("\\", "")
    make_project(tiny.deps.engine, "big", val={"light": 50, "dark": 50}, train={"light": 200, "dark": 200})
    assert finetune_checks.validation_warning(tiny.deps, "big") == {"__type__": "update", "value": "",
                                                                   "visible": False}


def test_the_fix_points_to_the_data_tab_and_names_stay_text(tiny: TinyProject) -> None:
    name = "<img src=x onerror=alert(1)> *birds*"
    make_project(tiny.deps.engine, name, val={None: 35}, train={None: 286})
    value = finetune_checks.validation_warning(tiny.deps, name)["value"]
    assert re.search(r"(?<!\\)[<>*]", value) is None  # no tag, no emphasis: each is escaped
    assert r"\<img src\=x onerror\=alert\(1\)\> \*birds\*" in value
    assert re.search(r"“Carve a bigger validation split” in the Data tab moves \d+ training images",
                     value.replace("\\", ""))


def test_no_project_or_an_unknown_one_hides_the_warning(tiny: TinyProject) -> None:
    for project in (None, "", "no such project"):
        assert not finetune_checks.validation_warning(tiny.deps, project)["visible"]
