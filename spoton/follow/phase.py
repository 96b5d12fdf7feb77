"""The tracking phase of a followed target, a small clocked state machine.

Transitions (``seen``: the target is in view this instant; times on the caller's clock, seconds):

- ``IDLE``: no target. ``select`` -> ``ACQUIRING``.
- ``ACQUIRING``: a target was chosen, not yet locked. Seen in ``lock_frames`` consecutive
  updates -> ``TRACKING``; not locked within ``acquire_timeout_s`` of the choice -> ``LOST``.
- ``TRACKING``: locked. Unseen for more than ``lost_after_s`` -> ``LOST`` (a missed frame or two
  is not a loss).
- ``LOST``: seen again (same id, or re-acquired by appearance) -> ``REACQUIRED``; unseen for
  more than ``give_up_s`` since the loss -> ``IDLE`` (the target is dropped).
- ``REACQUIRED``: shown for ``reacquired_hold_s`` while seen, then ``TRACKING``; unseen for more
  than ``lost_after_s`` -> ``LOST`` again.
- ``select`` from any phase -> ``ACQUIRING`` (a new target); ``clear`` from any phase -> ``IDLE``.

The machine also keeps the numbers the metrics report: time to lock, time locked (``TRACKING``
or ``REACQUIRED``) out of time with a target, re-acquisitions.
"""
from __future__ import annotations

from dataclasses import dataclass

PHASES = ("IDLE", "ACQUIRING", "TRACKING", "LOST", "REACQUIRED")
LOCKED_PHASES = ("TRACKING", "REACQUIRED")


@dataclass(frozen=True)
class PhaseConfig:
    lock_frames: int = 3
    acquire_timeout_s: float = 3.0
    lost_after_s: float = 0.5
    give_up_s: float = 10.0
    reacquired_hold_s: float = 1.0

    def __post_init__(self) -> None:
        if self.lock_frames < 1:
            raise ValueError(f"lock_frames must be >= 1, got {self.lock_frames}")
        for name in ("acquire_timeout_s", "lost_after_s", "give_up_s", "reacquired_hold_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        if self.give_up_s <= self.lost_after_s:
            raise ValueError(f"give_up_s ({self.give_up_s}) must exceed lost_after_s ({self.lost_after_s})")


class PhaseMachine:
    """One target's phase; ``update`` once per processed instant, ``select``/``clear`` on commands."""

    def __init__(self, config: PhaseConfig = PhaseConfig()):
        self.config = config
        self.phase = "IDLE"
        self.target_id: int | None = None
        self.reacquisitions = 0
        self.time_to_lock_s: float | None = None  # of the latest selection, once locked
        self.locked_s = 0.0
        self.targeted_s = 0.0
        self._since = 0.0  # when the current phase began
        self._selected_at = 0.0
        self._last_seen: float | None = None
        self._streak = 0
        self._last_update: float | None = None

    def select(self, target_id: int, now: float) -> None:
        self.target_id = target_id
        self.time_to_lock_s = None
        self._selected_at = now
        self._last_seen = None
        self._streak = 0
        self._enter("ACQUIRING", now)

    def clear(self, now: float) -> None:
        self.target_id = None
        self._last_seen = None
        self._streak = 0
        self._enter("IDLE", now)

    @property
    def locked(self) -> bool:
        return self.phase in LOCKED_PHASES

    @property
    def fraction_locked(self) -> float | None:
        """Time locked over time with a target chosen (None before any)."""
        return self.locked_s / self.targeted_s if self.targeted_s > 0 else None

    def update(self, seen: bool, now: float) -> str:
        """Advance to ``now`` given whether the target is in view; returns the phase."""
        if self._last_update is not None and self.phase != "IDLE":
            elapsed = max(0.0, now - self._last_update)
            self.targeted_s += elapsed
            if self.locked:
                self.locked_s += elapsed
        self._last_update = now
        if self.phase == "IDLE":
            return self.phase
        if seen:
            self._last_seen = now
            self._streak += 1
        else:
            self._streak = 0
        unseen_s = now - (self._last_seen if self._last_seen is not None else self._since)
        cfg = self.config
        if self.phase == "ACQUIRING":
            if self._streak >= cfg.lock_frames:
                self.time_to_lock_s = now - self._selected_at
                self._enter("TRACKING", now)
            elif now - self._selected_at > cfg.acquire_timeout_s:
                self._enter("LOST", now)
        elif self.phase == "TRACKING":
            if unseen_s > cfg.lost_after_s:
                self._enter("LOST", now)
        elif self.phase == "LOST":
            if seen:
                self.reacquisitions += 1
                self._enter("REACQUIRED", now)
            elif now - self._since > cfg.give_up_s:
                self.clear(now)
        elif self.phase == "REACQUIRED":
            if unseen_s > cfg.lost_after_s:
                self._enter("LOST", now)
            elif now - self._since >= cfg.reacquired_hold_s:
                self._enter("TRACKING", now)
        return self.phase

    def _enter(self, phase: str, now: float) -> None:
        self.phase = phase
        self._since = now
