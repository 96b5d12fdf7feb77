"""The follower's re-acquisition by appearance and motion, and undoing id swaps, on synthetic tracks."""
import numpy as np

from spoton.follow.follower import Follower, ReacquireConfig
from spoton.follow.phase import PhaseConfig

DT = 0.1
PHASE = PhaseConfig(lock_frames=2, lost_after_s=0.25, give_up_s=5.0, reacquired_hold_s=0.3)
LOOKS = {"target": np.array([1.0, 0.0, 0.0]), "twin": np.array([1.0, 0.0, 0.0]),
         "other": np.array([0.6, 0.8, 0.0])}  # cosine 0.6


def box(x: float, y: float = 100.0, h: float = 80.0) -> list[float]:
    return [x - 15, y - h / 2, x + 15, y + h / 2]


class Scene:
    """Frames of (track id, x, who) -> follower updates; embeddings from who each box really is."""

    def __init__(self, follower: Follower):
        self.follower, self.t, self.embedded = follower, 0.0, 0

    def frame(self, people: list[tuple[int, float, str]]) -> int | None:
        ids = np.array([p[0] for p in people], np.int64)
        xyxy = np.array([box(p[1]) for p in people], float).reshape(-1, 4)

        def embed(rows):
            self.embedded += len(rows)
            return np.array([LOOKS[people[r][2]] for r in rows])

        row = self.follower.update(ids, xyxy, self.t, embed)
        self.t += DT
        return None if row is None else int(ids[row])


def tracked_walker(config: ReacquireConfig = ReacquireConfig()) -> Scene:
    follower = Follower(PHASE, config)
    scene = Scene(follower)
    follower.select(1, 0.0)
    for k in range(10):  # target walks right at 100 px/s, a bystander stands at 400
        assert scene.frame([(1, 100 + 10 * k, "target"), (2, 400, "other")]) == 1
    assert follower.phase.phase == "TRACKING"
    return scene


def test_lost_target_is_reacquired_when_appearance_and_motion_agree():
    scene = tracked_walker()
    for k in range(5):  # occluded: only the bystander
        assert scene.frame([(2, 400, "other")]) is None
    assert scene.follower.phase.phase == "LOST"
    # reappears as a new id where its walk puts it, beside a new stranger
    assert scene.frame([(2, 400, "other"), (7, 250, "target"), (8, 240, "other")]) == 7
    assert scene.follower.phase.phase == "REACQUIRED" and scene.follower.phase.reacquisitions == 1


def test_no_reacquisition_when_appearance_or_motion_disagree():
    scene = tracked_walker()
    for _ in range(5):
        scene.frame([(2, 400, "other")])
    assert scene.frame([(7, 250, "other")]) is None  # right place, wrong look
    assert scene.frame([(8, 700, "target")]) is None  # right look, too far from the walk
    assert scene.follower.phase.phase == "LOST"


def test_a_bystander_in_view_all_along_is_never_taken_for_the_target():
    scene = tracked_walker()
    for _ in range(5):  # the bystander (who looks the same) walks to where the target should be
        assert scene.frame([(2, 250, "twin")]) is None
    assert scene.follower.phase.phase == "LOST"


def test_an_id_swap_with_a_crossing_person_is_undone():
    scene = tracked_walker()
    scene.frame([(1, 200, "target"), (3, 205, "other")])  # overlapping: 3 becomes a partner
    # the tracker swaps: id 1 now sits on the other person, id 3 on the target
    assert scene.frame([(1, 260, "other"), (3, 210, "target")]) == 3
    assert scene.follower.target_id == 3 and scene.follower.swaps_fixed == 1
