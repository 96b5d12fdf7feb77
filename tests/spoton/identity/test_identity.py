"""Global identities on synthetic scenes with a known answer.

The generator walks people along straight legs at 1.3 m/s on a 20 x 15 m floor seen by cameras
with overlapping coverage (7 fps, small clock phase offsets), adds map noise per camera (a
constant calibration bias plus per-frame jitter), breaks tracklets at 20 s segment boundaries, at
coverage edges and at random occlusions, and draws embeddings as a person prototype plus noise
so that same-person cosine is ~0.85 and different-person ~0.73.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from spoton.identity.resolver import IdentityConfig, resolve_global_identities

FPS = 7.0
SEGMENT_S = 20.0
SPEED = 1.3
DIM = 1280
# name -> coverage (xmin, ymin, xmax, ymax) in metres, clock phase offset in seconds
CAMERAS = {"cam1": ((0, 0, 12, 15), 0.0), "cam2": ((8, 0, 20, 15), 0.02),
           "cam3": ((4, 7, 16, 15), -0.03)}


@dataclass
class Person:
    waypoints: list[tuple[float, float]]
    t_enter: float
    # (camera, t0, t1): unseen by that camera in [t0, t1)
    occlusions: list[tuple[str, float, float]] = field(default_factory=list)

    def position(self, t: np.ndarray) -> np.ndarray:
        points = np.asarray(self.waypoints, float)
        legs = np.linalg.norm(np.diff(points, axis=0), axis=1)
        arrival = self.t_enter + np.concatenate([[0], np.cumsum(legs)]) / SPEED
        return np.column_stack([np.interp(t, arrival, points[:, k]) for k in (0, 1)])

    @property
    def t_exit(self) -> float:
        legs = np.linalg.norm(np.diff(np.asarray(self.waypoints, float), axis=0), axis=1)
        return self.t_enter + legs.sum() / SPEED


def _prototypes(n: int, rng: np.random.Generator) -> np.ndarray:
    """Person prototypes c + a*u: all share a common direction, like ImageNet features do."""
    common = np.zeros(DIM)
    common[0] = 1.0
    u = rng.normal(size=(n, DIM))
    u[:, 0] = 0
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return common + np.sqrt(0.164) * u  # same: (1+a2)/(1+a2+b2)=0.85, different: 1/(1+a2+b2)=0.73


def _embedding(prototype: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Prototype + noise in a 12-d subspace: pair cosines spread by ~0.04 (std), as real features do."""
    noise = np.zeros(DIM)
    noise[1:13] = rng.normal(size=12)
    vector = prototype + np.sqrt(0.205) * noise / np.linalg.norm(noise)
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def simulate(people: list[Person], seed: int, cameras=CAMERAS, occlusion_rate_hz: float = 1 / 12,
             jitter_m: float = 0.2, bias_m: float = 0.1):
    """(boxes, embeddings, truth) where truth maps tracklet_id -> person index."""
    rng = np.random.default_rng(seed)
    prototypes = _prototypes(len(people), rng)
    bias = {cam: rng.normal(0, bias_m, 2) for cam in cameras}
    t_end = max(p.t_exit for p in people)
    frames = np.arange(0, int(t_end * FPS) + 2)
    rows, embeddings, truth = [], [], {}
    for cam, ((xmin, ymin, xmax, ymax), offset) in cameras.items():
        ts = frames / FPS + offset
        next_id = {}
        for pid, person in enumerate(people):
            occlusions = list(person.occlusions)
            t = person.t_enter + rng.exponential(1 / occlusion_rate_hz)
            while t < person.t_exit:
                occlusions.append((cam, t, t + rng.uniform(0.4, 2.5)))
                t += rng.exponential(1 / occlusion_rate_hz)
            true = person.position(ts)
            seen = (ts >= person.t_enter) & (ts <= person.t_exit)
            seen &= (true >= [xmin, ymin]).all(axis=1) & (true <= [xmax, ymax]).all(axis=1)
            for c, t0, t1 in occlusions:
                if c == cam:
                    seen &= ~((ts >= t0) & (ts < t1))
            segment = (frames // int(SEGMENT_S * FPS)) + 1
            # a new tracklet wherever visibility starts or the segment changes
            starts = seen & ~np.r_[False, seen[:-1] & (segment[1:] == segment[:-1])]
            run = np.cumsum(starts)
            for r in np.unique(run[seen]):
                idx = np.flatnonzero(seen & (run == r))
                seg = f"{segment[idx[0]]:02d}"
                next_id[seg] = next_id.get(seg, 0) + 1
                tid = f"{cam}/{seg}/{next_id[seg]}"
                truth[tid] = pid
                observed = true[idx] + bias[cam] + rng.normal(0, jitter_m, (len(idx), 2))
                foot_x, foot_y = 40 + 30 * true[idx, 0], 100 + 25 * true[idx, 1]  # any monotone image
                rows.append(pd.DataFrame({
                    "camera": cam, "segment": seg, "tracklet_id": tid, "ts": ts[idx],
                    "map_x": observed[:, 0], "map_y": observed[:, 1], "conf": 0.8,
                    "x1": foot_x - 20, "y1": foot_y - 100, "x2": foot_x + 20, "y2": foot_y}))
                embeddings.append({"tracklet_id": tid, "embedding": _embedding(prototypes[pid], rng)})
    return pd.concat(rows, ignore_index=True), pd.DataFrame(embeddings), truth


def pairwise_precision_recall(assignments: pd.DataFrame, truth: dict[str, int]) -> tuple[float, float]:
    gid = dict(zip(assignments["tracklet_id"], assignments["global_id"]))
    tp = fp = fn = 0
    for a, b in combinations(sorted(truth), 2):
        same_pred, same_true = gid[a] == gid[b], truth[a] == truth[b]
        tp += same_pred and same_true
        fp += same_pred and not same_true
        fn += same_true and not same_pred
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1)


def _edge_point(rng: np.random.Generator) -> tuple[float, float]:
    """A point on the floor's border: people come in and leave through the edges."""
    side, u = int(rng.integers(4)), float(rng.uniform(0.05, 0.95))
    return [(u * 20, 0.2), (u * 20, 14.8), (0.2, u * 15), (19.8, u * 15)][side]


def random_people(n: int, rng: np.random.Generator, horizon_s: float = 80.0) -> list[Person]:
    """Walks from an edge through 2-5 random waypoints to an edge, entering at random times."""
    people = []
    for _ in range(n):
        inner = rng.uniform([1, 1], [19, 14], size=(int(rng.integers(2, 6)), 2))
        person = Person([_edge_point(rng), *map(tuple, inner), _edge_point(rng)], t_enter=0.0)
        person.t_enter = float(rng.uniform(0, max(horizon_s - person.t_exit, 1.0)))
        people.append(person)
    return people


def _groups(result, truth) -> dict[int, set[int]]:
    """person -> set of global ids given to its tracklets."""
    out: dict[int, set[int]] = {}
    for tid, gid in zip(result.assignments["tracklet_id"], result.assignments["global_id"]):
        out.setdefault(truth[tid], set()).add(int(gid))
    return out


def test_embedding_generator_matches_the_real_feature_statistics():
    rng = np.random.default_rng(0)
    protos = _prototypes(6, rng)
    same = [float(_embedding(protos[0], rng) @ _embedding(protos[0], rng)) for _ in range(200)]
    diff = [float(_embedding(protos[0], rng) @ _embedding(protos[1], rng)) for _ in range(200)]
    assert 0.82 < np.mean(same) < 0.88 and 0.70 < np.mean(diff) < 0.76


def test_person_walking_through_the_overlap_of_two_cameras_gets_one_id():
    person = Person([(1.0, 4.0), (19.0, 4.0)], t_enter=1.0)  # crosses cam1 -> overlap -> cam2
    boxes, embeddings, truth = simulate([person], seed=1, occlusion_rate_hz=1e-6)
    result = resolve_global_identities(boxes, embeddings)
    assert set(boxes["camera"]) == {"cam1", "cam2"}
    assert result.assignments["global_id"].tolist() == [1, 1]
    assert result.diagnostics["covisible_merged"] == 1


def test_identity_continues_across_a_segment_boundary():
    # only cam1 sees x < 8: the walk from t=14 to t=20.9 is cut at t=20 into two tracklets
    person = Person([(1.0, 2.0), (1.0, 11.0)], t_enter=14.0)
    boxes, embeddings, truth = simulate([person], seed=2, occlusion_rate_hz=1e-6)
    result = resolve_global_identities(boxes, embeddings)
    assert sorted(boxes["segment"].unique()) == ["01", "02"]
    assert len(result.assignments) == 2 and result.assignments["global_id"].nunique() == 1
    assert result.diagnostics["continuation_merged"] == 1


def test_two_people_crossing_paths_keep_distinct_ids():
    # an X through the cam1/cam2 overlap at t~8; each camera loses one person while they cross
    a = Person([(2.0, 2.0), (18.0, 13.0)], t_enter=0.0, occlusions=[("cam1", 7.5, 9.0)])
    b = Person([(2.0, 13.0), (18.0, 2.0)], t_enter=0.0, occlusions=[("cam2", 7.5, 9.0)])
    boxes, embeddings, truth = simulate([a, b], seed=3, occlusion_rate_hz=1e-6)
    result = resolve_global_identities(boxes, embeddings)
    groups = _groups(result, truth)
    assert all(len(ids) == 1 for ids in groups.values()), groups
    assert groups[0] != groups[1]


def test_side_by_side_walkers_in_the_overlap_are_not_swapped():
    # 0.6 m apart: both pairs agree within 1 m; the closer match wins, cannot-link blocks the rest
    a = Person([(1.0, 5.0), (19.0, 5.0)], t_enter=0.0)
    b = Person([(1.0, 5.6), (19.0, 5.6)], t_enter=0.0)
    boxes, embeddings, truth = simulate([a, b], seed=4, occlusion_rate_hz=1e-6, bias_m=0.0)
    result = resolve_global_identities(boxes, embeddings)
    groups = _groups(result, truth)
    assert all(len(ids) == 1 for ids in groups.values()) and groups[0] != groups[1], groups


def _violations(boxes: pd.DataFrame, assignments: pd.DataFrame) -> pd.DataFrame:
    """Box pairs of one global id at one instant that cannot be one person: same camera and
    segment but different tracklets, or more than 4 m apart."""
    frame = boxes.merge(assignments, on="tracklet_id")
    frame["instant"] = np.round(frame["ts"] * FPS).astype(int)
    pairs = frame.merge(frame, on=["global_id", "instant"])
    pairs = pairs[pairs["tracklet_id_x"] < pairs["tracklet_id_y"]]
    same_camera = (pairs["camera_x"] == pairs["camera_y"]) & (pairs["segment_x"] == pairs["segment_y"])
    apart = np.hypot(pairs["map_x_x"] - pairs["map_x_y"], pairs["map_y_x"] - pairs["map_y_y"]) > 4.0
    return pairs[same_camera | apart]


def test_six_people_pairwise_precision_and_recall():
    config = IdentityConfig()
    scores = []
    for seed in range(11, 21):
        rng = np.random.default_rng(seed)
        boxes, embeddings, truth = simulate(random_people(6, rng), seed=seed)
        result = resolve_global_identities(boxes, embeddings, config)
        precision, recall = pairwise_precision_recall(result.assignments, truth)
        scores.append((precision, recall))
        d = result.diagnostics
        print(f"seed {seed}: {len(truth)} tracklets of 6 people -> {d['identities']} ids, pairwise "
              f"precision {precision:.3f} recall {recall:.3f} (merged {d['covisible_merged']} "
              f"co-visible + {d['continuation_merged']} continuation, {d['cannot_links']} cannot-links)")
        assert precision >= 0.9 and recall >= 0.9, seed
        assert _violations(boxes, result.assignments).empty
        assert not _violations(boxes, result.assignments.assign(global_id=1)).empty  # checker bites
        cannot = result.links[result.links["kind"] == "cannot_link"]
        gid = dict(zip(result.assignments["tracklet_id"], result.assignments["global_id"]))
        assert all(gid[a] != gid[b] for a, b in zip(cannot["tracklet_a"], cannot["tracklet_b"]))
    precision, recall = np.mean(scores, axis=0)
    print(f"mean over 10 scenes: pairwise precision {precision:.3f} recall {recall:.3f}")
    assert precision >= 0.97 and recall >= 0.97


def test_ids_are_dense_ordered_by_first_appearance_and_deterministic():
    rng = np.random.default_rng(21)
    boxes, embeddings, truth = simulate(random_people(4, rng, horizon_s=40), seed=21)
    boxes["embedding_as_list"] = None  # unrelated extra columns are ignored
    embeddings["embedding"] = embeddings["embedding"].map(list)  # lists are accepted
    first = resolve_global_identities(boxes, embeddings).assignments
    shuffled = boxes.sample(frac=1.0, random_state=0)
    second = resolve_global_identities(shuffled, embeddings.iloc[::-1]).assignments
    pd.testing.assert_frame_equal(first, second)
    ids = first["global_id"].to_numpy()
    assert set(ids) == set(range(1, ids.max() + 1))
    start = boxes.groupby("tracklet_id")["ts"].min()
    first_seen = first.assign(start=first["tracklet_id"].map(start)).groupby("global_id")["start"].min()
    assert first_seen.is_monotonic_increasing


def test_short_tracklets_and_missing_embeddings_still_get_an_id():
    person = Person([(1.0, 4.0), (6.0, 4.0)], t_enter=0.0)
    boxes, embeddings, _ = simulate([person], seed=5, occlusion_rate_hz=1e-6)
    blip = pd.DataFrame({"camera": "cam1", "segment": "01", "tracklet_id": "cam1/01/99", "ts": [1.0],
                         "map_x": [10.0], "map_y": [12.0], "conf": 0.3,
                         "x1": 0.0, "y1": 0.0, "x2": 10.0, "y2": 30.0})
    nowhere = blip.assign(tracklet_id="cam2/01/98", camera="cam2", map_x=np.nan, map_y=np.nan)
    result = resolve_global_identities(pd.concat([boxes, blip, nowhere]), embeddings)
    assert set(result.assignments["tracklet_id"]) == {"cam1/01/1", "cam1/01/99", "cam2/01/98"}
    assert result.assignments["global_id"].nunique() == 3


def test_uncalibrated_camera_stitches_segments_by_pixels():
    person = Person([(1.0, 2.0), (1.0, 11.0)], t_enter=14.0)
    boxes, embeddings, _ = simulate([person], seed=6, occlusion_rate_hz=1e-6)
    boxes[["map_x", "map_y"]] = np.nan
    result = resolve_global_identities(boxes, embeddings)
    assert result.assignments["global_id"].nunique() == 1


def _still(camera: str, tracklet_id: str, x: float, y: float, seconds: float = 3.0) -> pd.DataFrame:
    ts = np.arange(0, seconds, 1 / FPS)
    return pd.DataFrame({"camera": camera, "segment": "01", "tracklet_id": tracklet_id, "ts": ts,
                         "map_x": x, "map_y": y, "conf": 0.9,
                         "x1": 0.0, "y1": 0.0, "x2": 40.0, "y2": 100.0})


def test_cannot_link_is_checked_between_clusters_not_only_pairs():
    # cam1 sees two people 0.8 m apart; cam2's single tracklet agrees with both within 1 m.
    # Pairwise, (c, b) looks fine; once c has joined a, adding b would put a and b together.
    boxes = pd.concat([_still("cam1", "a", 5.0, 5.0), _still("cam1", "b", 5.8, 5.0),
                       _still("cam2", "c", 5.3, 5.0)])
    result = resolve_global_identities(boxes, pd.DataFrame(columns=["tracklet_id", "embedding"]))
    gid = dict(zip(result.assignments["tracklet_id"], result.assignments["global_id"]))
    assert gid["a"] == gid["c"] != gid["b"]
    decisions = result.links.set_index(["tracklet_a", "tracklet_b"])["decision"]
    assert decisions[("a", "c")] == "merged" and decisions[("b", "c")] == "refused_cannot_link"


def _walk(tracklet_id: str, t0: float, x0: float, vx: float, seconds: float, edge_at: str) -> pd.DataFrame:
    """One camera's tracklet walking along x at ``vx`` m/s; its box touches the frame's right border
    at its "end" or "start" (``edge_at``), as someone leaving or entering the view there does."""
    ts = t0 + np.arange(0, seconds, 1 / FPS)
    bbox_x = np.linspace(0.5, 0.96, len(ts)) if edge_at == "end" else np.linspace(0.96, 0.5, len(ts))
    return pd.DataFrame({"camera": "cam1", "segment": "01", "tracklet_id": tracklet_id, "ts": ts,
                         "map_x": x0 + vx * (ts - t0), "map_y": 5.0, "conf": 0.9,
                         "x1": 0.0, "y1": 0.0, "x2": 40.0, "y2": 100.0,
                         "bbox_x": bbox_x, "bbox_y": 0.4, "bbox_w": 0.05, "bbox_h": 0.2})


@pytest.mark.parametrize("gap_s, joined", [(2.0, False), (0.5, True)])
def test_leaving_and_entering_the_view_is_no_geometric_evidence(gap_s, joined):
    # A walks out at the right border; B walks in there, back the way A came, gap_s later. Seen
    # from the map alone, B is a U-turn within reach of A (a join scoring ~0.4 without the border
    # rule); but nothing saw the person in between, so geometry alone must not join over 1 s.
    leaving = _walk("a", 0.0, 5.0, 1.0, 3.0, edge_at="end")
    entering = _walk("b", leaving["ts"].max() + gap_s, 8.0, -1.0, 3.0, edge_at="start")
    no_appearance = pd.DataFrame(columns=["tracklet_id", "embedding"])
    result = resolve_global_identities(pd.concat([leaving, entering]), no_appearance)
    assert (result.assignments["global_id"].nunique() == 1) is joined
    # without the border columns the same boxes are an ordinary occlusion, and geometry joins them
    plain = pd.concat([leaving, entering]).drop(columns=["bbox_x", "bbox_y", "bbox_w", "bbox_h"])
    assert resolve_global_identities(plain, no_appearance).assignments["global_id"].nunique() == 1


def test_appearance_still_joins_across_the_view_border():
    leaving = _walk("a", 0.0, 5.0, 1.0, 3.0, edge_at="end")
    entering = _walk("b", leaving["ts"].max() + 2.0, 8.0, -1.0, 3.0, edge_at="start")
    same_look = np.ones(8, np.float32) / np.sqrt(8)
    embeddings = pd.DataFrame({"tracklet_id": ["a", "b"], "embedding": [same_look, same_look]})
    result = resolve_global_identities(pd.concat([leaving, entering]), embeddings)
    assert result.assignments["global_id"].nunique() == 1
    link = result.links.set_index(["tracklet_a", "tracklet_b"]).loc[("a", "b")]
    assert link["kind"] == "continuation" and link["decision"] == "merged"


def test_optimal_clustering_passes_the_synthetic_scenes_with_cannot_links_kept():
    config = IdentityConfig(clustering="optimal")
    for seed in (11, 12, 13):
        rng = np.random.default_rng(seed)
        boxes, embeddings, truth = simulate(random_people(6, rng), seed=seed)
        result = resolve_global_identities(boxes, embeddings, config)
        assert result.diagnostics["optimal"] == 1
        precision, recall = pairwise_precision_recall(result.assignments, truth)
        assert precision >= 0.9 and recall >= 0.9, seed
        assert _violations(boxes, result.assignments).empty
        greedy = resolve_global_identities(boxes, embeddings)
        assert greedy.diagnostics["optimal"] == 0


def test_optimal_clustering_beyond_its_size_limit_falls_back_to_greedy():
    from spoton.identity.correlation_clustering import SolverLimits

    rng = np.random.default_rng(11)
    boxes, embeddings, truth = simulate(random_people(6, rng), seed=11)
    tiny = IdentityConfig(clustering="optimal", solver_limits=SolverLimits(max_edges=1))
    result = resolve_global_identities(boxes, embeddings, tiny)
    assert result.diagnostics["optimal"] == 0
    pd.testing.assert_frame_equal(result.assignments, resolve_global_identities(boxes, embeddings).assignments)


@pytest.mark.parametrize("clustering", ["greedy", "optimal"])
def test_must_links_join_what_geometry_keeps_apart(clustering):
    # the same person seen twice 30 s apart (longer than max_gap_s): two ids unless an analyst says one
    first = Person([(1.0, 2.0), (1.0, 6.0)], t_enter=0.0)
    later = Person([(1.0, 2.0), (1.0, 6.0)], t_enter=30.0)
    boxes, embeddings, truth = simulate([first, later], seed=5, cameras={"cam1": CAMERAS["cam1"]},
                                        occlusion_rate_hz=1e-6)
    config = IdentityConfig(clustering=clustering)
    apart = resolve_global_identities(boxes, embeddings, config).assignments
    assert apart["global_id"].nunique() == 2
    a, b = sorted(truth)[0], sorted(truth)[-1]
    joined = resolve_global_identities(boxes, embeddings, config, must_link=[(a, b), ("nope", a)]).assignments
    assert joined["global_id"].nunique() == 1


def test_unknown_clustering_is_refused():
    with pytest.raises(ValueError, match="clustering 'best' is not one of"):
        IdentityConfig(clustering="best")


@pytest.mark.parametrize("clustering", ["greedy", "optimal"])
def test_a_must_link_wins_over_a_cannot_link(clustering):
    # two people seen at the same time 6 m apart (a cannot-link); an analyst says they are one
    a = Person([(1.0, 2.0), (1.0, 8.0)], t_enter=0.0)
    b = Person([(7.0, 2.0), (7.0, 8.0)], t_enter=0.0)
    boxes, embeddings, truth = simulate([a, b], seed=6, cameras={"cam1": ((0, 0, 12, 15), 0.0)},
                                        occlusion_rate_hz=1e-6)
    config = IdentityConfig(clustering=clustering)
    result = resolve_global_identities(boxes, embeddings, config)
    assert result.assignments["global_id"].nunique() == 2 and result.diagnostics["cannot_links"] == 1
    pair = tuple(sorted(truth))
    joined = resolve_global_identities(boxes, embeddings, config, must_link=[pair])
    assert joined.assignments["global_id"].nunique() == 1
    assert joined.diagnostics["optimal"] == 0  # no clustering keeps both: the solver leaves it to greedy


def _along(camera: str, tracklet_id: str, t0: float, t1: float, offset_y: float = 0.0) -> pd.DataFrame:
    """A tracklet of the person walking along y = 5 at 1 m/s (x = 2 + t), ``offset_y`` off that path."""
    ts = np.arange(round(t0 * FPS), round(t1 * FPS) + 1) / FPS
    return pd.DataFrame({"camera": camera, "segment": "01", "tracklet_id": tracklet_id, "ts": ts,
                         "map_x": 2.0 + ts, "map_y": 5.0 + offset_y, "conf": 0.9,
                         "x1": 0.0, "y1": 0.0, "x2": 40.0, "y2": 100.0})


def _stray_piece_scene() -> tuple[pd.DataFrame, pd.DataFrame]:
    """One person seen by three cameras; cam1's track drifts off them for a moment (``s``, 2.7 m
    away, looking exactly like ``a`` whose track it continues) while cam1 starts a new track ``c``
    on the person. ``s`` joins ``a`` first, and its cannot-links (with ``c``: same camera at the
    same time; with ``d``, ``e``: too far) keep the two halves of the person apart."""
    boxes = pd.concat([_along("cam1", "a", 0.0, 3.0), _along("cam1", "s", 3.9, 4.7, offset_y=2.7),
                       _along("cam1", "c", 3.6, 8.0), _along("cam2", "d", 0.0, 8.0),
                       _along("cam3", "e", 0.0, 8.0)])
    look, other = np.array([1.0, 0.0], np.float32), np.array([0.82, np.sqrt(1 - 0.82 ** 2)], np.float32)
    embeddings = pd.DataFrame({"tracklet_id": list("ascde"), "embedding": [look, look, other, other, other]})
    return boxes, embeddings


def test_repair_undoes_a_stray_piece_that_splits_a_person():
    boxes, embeddings = _stray_piece_scene()
    greedy = resolve_global_identities(boxes, embeddings, IdentityConfig(repair_min_gain=None))
    gid = dict(zip(greedy.assignments["tracklet_id"], greedy.assignments["global_id"]))
    assert gid["a"] == gid["s"] != gid["c"] == gid["d"] == gid["e"]  # the split greedy makes
    repaired = resolve_global_identities(boxes, embeddings)  # the default bar, 1
    gid = dict(zip(repaired.assignments["tracklet_id"], repaired.assignments["global_id"]))
    assert gid["a"] == gid["c"] == gid["d"] == gid["e"] != gid["s"]
    assert repaired.diagnostics["covisible_merged_by_repair"] == 2
    assert repaired.diagnostics["continuation_undone_by_repair"] == 1
    # the repair reached the correlation clustering optimum here
    optimal = resolve_global_identities(boxes, embeddings, IdentityConfig(clustering="optimal"))
    pd.testing.assert_frame_equal(repaired.assignments, optimal.assignments)
    # a move must gain at least the bar: 3.46 gained, not 4
    unmoved = resolve_global_identities(boxes, embeddings, IdentityConfig(repair_min_gain=4.0))
    pd.testing.assert_frame_equal(unmoved.assignments, greedy.assignments)


def test_repair_never_breaks_a_must_link():
    boxes, embeddings = _stray_piece_scene()
    config = IdentityConfig(repair_min_gain=1.0)
    result = resolve_global_identities(boxes, embeddings, config, must_link=[("a", "s")])
    gid = dict(zip(result.assignments["tracklet_id"], result.assignments["global_id"]))
    assert gid["a"] == gid["s"] != gid["c"]
    with pytest.raises(ValueError, match="repair_min_gain 0"):
        IdentityConfig(repair_min_gain=0)
