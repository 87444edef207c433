"""The adaptive schedule's decisions (core/train/schedule.py), from validation metrics alone."""

from __future__ import annotations

from core.train.schedule import AdaptiveSchedule


def _m(worst: float, acc: float = 0.9, epg: float = 0.3) -> dict:
    return {"accuracy": acc, "worst_group_accuracy": worst, "epg": epg, "multi_label": False}


def _run(schedule: AdaptiveSchedule, scores: list[dict], epoch_s: float = 10.0) -> list:
    decisions = []
    for i, metrics in enumerate(scores):
        decisions.append(schedule.after_epoch(metrics, elapsed_s=epoch_s * (i + 1), epoch_s=epoch_s))
        if decisions[-1].stop:
            break
    return decisions


def test_keeps_the_rate_while_improving_and_stops_when_saturated() -> None:
    schedule = AdaptiveSchedule(lr=1e-4, max_epochs=30)
    schedule.start(_m(0.0, 0.5))
    decisions = _run(schedule, [_m(0.6), _m(0.995), _m(0.995), _m(1.0)])
    assert decisions[0].lr == 1e-4 and not decisions[0].stop
    # saturated: stops at once, no "at least 3 epochs" wait (the demo's wait doubled for nothing, issue 23)
    assert decisions[1].stop and "saturated" in decisions[1].reason and len(decisions) == 2


def test_a_stall_raises_the_rate_then_stops_at_the_ceiling() -> None:
    schedule = AdaptiveSchedule(lr=1e-4, max_epochs=30)
    schedule.start(_m(0.0, 0.5))
    decisions = _run(schedule, [_m(0.0), _m(0.005), _m(0.0), _m(0.0), _m(0.0)])
    assert decisions[0].lr == 1e-3 and not decisions[0].stop  # nothing moved at 1e-4: ten times faster
    assert [d.stop for d in decisions] == [False, False, False, True]  # three stalled epochs at the ceiling
    assert "3 epochs at the highest learning rate" in decisions[-1].reason
    assert AdaptiveSchedule(lr=2e-3, max_epochs=3).max_lr == 2e-3  # a rate above the ceiling is never raised
    schedule = AdaptiveSchedule(lr=1e-4, max_epochs=30)
    schedule.start(_m(0.0, 0.5))
    # a feature being learned moves in steps: a stall between two gains does not end the run
    decisions = _run(schedule, [_m(0.0), _m(0.3), _m(0.29), _m(0.5), _m(0.505), _m(0.5), _m(0.49), _m(0.9)])
    assert [d.stop for d in decisions] == [False] * 6 + [True] and decisions[2].lr == 1e-3
    assert schedule.best_epoch == 4


def test_a_collapse_rolls_back_and_lowers_the_rate_for_good() -> None:
    schedule = AdaptiveSchedule(lr=1e-3, max_epochs=30, factor=10.0, max_lr=1e-3)
    schedule.start(_m(0.0, 0.5))
    decisions = _run(schedule, [_m(0.7), _m(0.3)])
    assert decisions[1].rollback and decisions[1].lr < 1e-3 and schedule.best_epoch == 1
    assert schedule.max_lr == decisions[1].lr  # never raised above the rate that held


def test_explicit_epochs_cap_and_minimum_and_budget() -> None:
    schedule = AdaptiveSchedule(lr=1e-4, max_epochs=2)
    schedule.start(_m(1.0, 1.0))  # already perfect: still runs the two epochs asked for
    decisions = _run(schedule, [_m(1.0, 1.0), _m(1.0, 1.0), _m(1.0, 1.0)])
    assert [d.stop for d in decisions] == [False, True] and decisions[0].lr == 1e-4  # no faster when saturated
    schedule = AdaptiveSchedule(lr=1e-4, max_epochs=30, budget_s=35.0)
    schedule.start(_m(0.0, 0.5))
    decisions = _run(schedule, [_m(0.2), _m(0.4), _m(0.6), _m(0.8)])  # 10 s per epoch: the 4th would end at 40 s
    assert len(decisions) == 3 and decisions[-1].stop and "budget" in decisions[-1].reason
    schedule = AdaptiveSchedule(lr=1e-4, max_epochs=3, budget_s=5.0)  # a loaded machine: still the 3 asked for
    schedule.start(_m(0.0, 0.5))
    assert [d.stop for d in _run(schedule, [_m(0.2), _m(0.4), _m(0.6)], epoch_s=100.0)] == [False, False, True]


def test_multi_label_without_groups_uses_f1_and_never_epg_alone() -> None:
    schedule = AdaptiveSchedule(lr=1e-4, max_epochs=30)
    schedule.start({"f1": 0.5, "multi_label": True, "epg": 0.1, "worst_group_accuracy": None})
    same_f1_more_epg = {"f1": 0.5, "multi_label": True, "epg": 0.9, "worst_group_accuracy": None}
    decisions = _run(schedule, [same_f1_more_epg])
    assert schedule.log[0]["outcome"] == "stalled" and decisions[0].lr == 1e-3


def _small(worst: float, acc: float = 0.9) -> dict:
    return {**_m(worst, acc), "n_images": 35, "group_sizes": {"a": 20, "b": 15}}  # 15 images behind the score


def test_a_fresh_model_stalled_at_chance_is_not_converged() -> None:
    schedule = AdaptiveSchedule(lr=1e-3, max_epochs=30, fresh=True)
    schedule.start(_m(0.5, 0.5))
    decisions = _run(schedule, [_m(0.5, 0.5)] * 7 + [_m(0.8, 0.8)])
    assert not any(d.stop for d in decisions)  # a trained model would have stopped after 3 stalls
    assert [d.lr for d in decisions[:6]] == [1e-3] * 5 + [1e-3 / 10 ** 0.5]  # 6 stalls at the top: a lower rate
    assert "not learning yet" in decisions[5].reason
    assert schedule.trained and schedule.best_epoch == 8  # 0.8: past half way from 0.5 to 1
    decisions = _run(schedule, [_m(0.8, 0.8)] * 3)  # trained now: patience ends the run again
    assert [d.stop for d in decisions] == [False, False, True]
    schedule = AdaptiveSchedule(lr=1e-3, max_epochs=30, fresh=True)
    schedule.start(_m(0.5, 0.5))
    # a first gain short of half way (0.64 on 357 real digits, where 20 epochs reach 0.97): not yet trained
    decisions = _run(schedule, [_m(0.64, 0.64)] + [_m(0.63, 0.63)] * 4 + [_m(0.9, 0.9)])
    assert not any(d.stop for d in decisions) and not schedule.log[1]["stop"] and schedule.best_epoch == 6
    schedule = AdaptiveSchedule(lr=1e-3, max_epochs=30, fresh=True, budget_s=45.0)
    schedule.start(_m(0.5, 0.5))
    decisions = _run(schedule, [_m(0.5, 0.5)] * 10)  # never learns: the budget ends it, never patience
    assert len(decisions) == 4 and "budget" in decisions[-1].reason
    assert AdaptiveSchedule(lr=1e-3, max_epochs=3).trained  # a model that was trained before: patience as ever

def test_a_small_split_needs_two_epochs_to_saturate_or_collapse() -> None:
    schedule = AdaptiveSchedule(lr=1e-3, max_epochs=30)
    schedule.start(_small(0.5))
    decisions = _run(schedule, [_small(1.0), _small(0.93), _small(1.0), _small(1.0)])
    assert [d.stop for d in decisions] == [False, False, False, True]  # one perfect epoch on 15 images is not proof
    assert "saturated" in decisions[-1].reason and schedule.log[0]["small_split"]
    schedule = AdaptiveSchedule(lr=1e-3, max_epochs=30)
    schedule.start(_small(0.9))
    decisions = _run(schedule, [_small(0.6), _small(0.9)])
    assert not decisions[0].rollback and not decisions[1].rollback  # one bad epoch: noise on 15 images
    schedule = AdaptiveSchedule(lr=1e-3, max_epochs=30)
    schedule.start(_small(0.9))
    decisions = _run(schedule, [_small(0.6), _small(0.6)])
    assert not decisions[0].rollback and decisions[1].rollback and decisions[1].lr < 1e-3  # two in a row: a collapse
    schedule = AdaptiveSchedule(lr=1e-3, max_epochs=30)
    schedule.start(_m(0.9))  # no sizes known (or a big split): one epoch decides, as before
    assert _run(schedule, [_m(0.6)])[0].rollback


def test_progress_counts_the_steps_the_budget_holds_not_the_epoch_cap() -> None:
    import torch

    from core.train import TrainConfig
    from core.train.fine_tune import _Progress

    events: list = []
    progress = _Progress(TrainConfig(budget_s=100.0), steps_per_epoch=32, emit=events.append, epochs=30)
    assert progress.total == 960  # the 30-epoch cap
    progress.started -= 10.0  # 10 s for the first 32 steps: the budget holds ~320
    for step in range(32):
        progress.step(step, {"loss": torch.tensor(1.0)})
    last = events[-1]
    assert 300 <= last.steps_total <= 330 and last.eta_s <= 90.5  # not "step 32/960"
    fixed = _Progress(TrainConfig(schedule="fixed", epochs=30), steps_per_epoch=32, emit=events.append, epochs=30)
    fixed.step(0, {"loss": torch.tensor(1.0)})
    assert events[-1].steps_total == 960  # a fixed run runs every step of its epochs


def test_chance_level_is_the_commonest_class_plus_two_standard_errors() -> None:
    from core.train.validation import chance_level

    assert chance_level([0, 1] * 18, 0.64) == {"majority": 0.5, "threshold": 0.6667, "images": 36}  # 0.64 on 36
    assert chance_level([0, 1] * 18, 0.97) is None  # clearly learned
    assert chance_level([0] * 90 + [1] * 10, 0.9)["majority"] == 0.9  # 90% of one class: 0.9 is no skill
    assert chance_level([0, 1] * 200, 0.6) is None  # on 400 images 0.6 is above noise (threshold 0.55)
    assert chance_level([], 0.0) is None
