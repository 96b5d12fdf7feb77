"""Every transition of the tracking phase machine, and the numbers it keeps for the metrics."""
import pytest

from spoton.follow.phase import PhaseConfig, PhaseMachine

CFG = PhaseConfig(lock_frames=3, acquire_timeout_s=2.0, lost_after_s=0.5, give_up_s=5.0, reacquired_hold_s=1.0)


def run(machine: PhaseMachine, seen: list[bool], start: float, dt: float = 0.1) -> list[str]:
    return [machine.update(s, start + i * dt) for i, s in enumerate(seen)]


def locked_machine() -> PhaseMachine:
    machine = PhaseMachine(CFG)
    machine.select(7, 0.0)
    run(machine, [True] * 3, 0.1)
    assert machine.phase == "TRACKING"
    return machine


def test_idle_stays_idle_until_a_target_is_selected():
    machine = PhaseMachine(CFG)
    assert run(machine, [True, False, True], 0.0) == ["IDLE"] * 3
    machine.select(7, 1.0)
    assert (machine.phase, machine.target_id) == ("ACQUIRING", 7)


def test_acquiring_locks_after_consecutive_sightings_only():
    machine = PhaseMachine(CFG)
    machine.select(7, 0.0)
    assert run(machine, [True, True, False, True, True, True], 0.1) == \
        ["ACQUIRING"] * 5 + ["TRACKING"]
    assert machine.time_to_lock_s == pytest.approx(0.6)


def test_acquiring_times_out_to_lost():
    machine = PhaseMachine(CFG)
    machine.select(7, 0.0)
    assert machine.update(False, 2.0) == "ACQUIRING"
    assert machine.update(False, 2.01) == "LOST"


def test_tracking_survives_short_gaps_and_is_lost_after_lost_after_s():
    machine = locked_machine()
    assert machine.update(False, 0.5) == "TRACKING"
    assert machine.update(False, 0.8) == "TRACKING"  # last seen at 0.3: 0.5 s unseen
    assert machine.update(False, 0.81) == "LOST"


def test_lost_to_reacquired_to_tracking():
    machine = locked_machine()
    machine.update(False, 1.0)
    assert machine.phase == "LOST"
    assert machine.update(True, 2.0) == "REACQUIRED"
    assert machine.reacquisitions == 1
    assert machine.update(True, 2.5) == "REACQUIRED"
    assert machine.update(True, 3.0) == "TRACKING"


def test_reacquired_can_be_lost_again():
    machine = locked_machine()
    machine.update(False, 1.0)
    machine.update(True, 2.0)
    assert machine.update(False, 2.4) == "REACQUIRED"
    assert machine.update(False, 2.6) == "LOST"


def test_lost_gives_up_to_idle():
    machine = locked_machine()
    machine.update(False, 1.0)
    assert machine.update(False, 6.0) == "LOST"
    assert machine.update(False, 6.01) == "IDLE"
    assert machine.target_id is None


def test_select_and_clear_work_from_every_phase():
    for steps in ([], [(True, 0.1)], [(True, 0.1), (True, 0.2), (True, 0.3)], [(True, 0.3), (False, 3.0)],
                  [(True, 0.3), (False, 3.0), (True, 3.1)]):
        machine = PhaseMachine(CFG)
        machine.select(7, 0.0)
        for seen, now in steps:
            machine.update(seen, now)
        before = machine.phase
        machine.select(9, 4.0)
        assert (machine.phase, machine.target_id) == ("ACQUIRING", 9), before
        machine.clear(4.1)
        assert (machine.phase, machine.target_id) == ("IDLE", None), before


def test_fraction_locked_counts_locked_time_over_targeted_time():
    machine = PhaseMachine(CFG)
    assert machine.fraction_locked is None
    machine.select(7, 0.0)
    run(machine, [True] * 11, 0.0)  # locks at 0.2, locked 0.2 -> 1.0
    assert machine.fraction_locked == pytest.approx(0.8 / 1.0)


@pytest.mark.parametrize("kwargs", [{"lock_frames": 0}, {"lost_after_s": 0}, {"give_up_s": 0.2, "lost_after_s": 0.5}])
def test_bad_config_is_refused(kwargs):
    with pytest.raises(ValueError):
        PhaseConfig(**kwargs)
