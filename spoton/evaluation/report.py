"""Report tables: the Markdown table of the headline metrics and the ``tracking_evaluation`` rows
(ground-plane rows: HOTA and MOTP over the distance similarity, see
:func:`spoton.evaluation.metrics.evaluate_ground_plane`)."""
from __future__ import annotations

from typing import Mapping

from spoton.evaluation.metrics import MapError, TrackingMetrics
from spoton.evaluation.multi_camera import EnvironmentEvaluation


def metrics_table(rows: Mapping[str, TrackingMetrics], map_error: Mapping[str, MapError] | None = None) -> str:
    """A Markdown table of the headline metrics, one row per sequence (percent like MOTChallenge)."""
    header = ["sequence", "HOTA", "MOTA", "IDF1", "Prec", "Rec", "IDSW", "Frag", "MT", "ML", "GT ids",
              "pred ids", "frames", "map err p50 (m)", "map err p90 (m)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, m in rows.items():
        error = (map_error or {}).get(name)
        cells = [name, f"{100 * m.hota:.1f}", f"{100 * m.mota:.1f}", f"{100 * m.idf1:.1f}",
                 f"{100 * m.precision:.1f}", f"{100 * m.recall:.1f}", str(m.id_switches), str(m.fragmentations),
                 str(m.mostly_tracked), str(m.mostly_lost), str(m.gt_ids), str(m.predicted_ids), str(m.frames),
                 "-" if error is None or not error.pairs else f"{error.median_m:.2f}",
                 "-" if error is None or not error.pairs else f"{error.p90_m:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def evaluation_table(evaluation: EnvironmentEvaluation) -> str:
    """Every scored sequence of a multi-camera run as one Markdown table."""
    rows = {f"{camera} (global ids)": m for camera, m in evaluation.per_camera.items()}
    rows |= {f"{camera} (tracker ids)": m for camera, m in evaluation.tracker_ids.items()}
    rows["all cameras (cross-camera)"] = evaluation.cross_camera
    rows |= {f"floor, trajectories within {radius:g} m": m for radius, m in evaluation.ground_plane.items()}
    errors = {f"{camera} (global ids)": e for camera, e in evaluation.map_error.items()
              if camera in evaluation.per_camera}
    if "trajectories" in evaluation.map_error:
        errors["all cameras (cross-camera)"] = evaluation.map_error["trajectories"]
    return metrics_table(rows, errors)


def evaluation_records(evaluation: EnvironmentEvaluation) -> list[dict]:
    """One flat dict per scored sequence: the rows of the ``tracking_evaluation`` table."""
    out = []
    for scope, group in (("global", evaluation.per_camera), ("tracker", evaluation.tracker_ids),
                         ("cross_camera", {"all": evaluation.cross_camera})):
        for camera, metrics in group.items():
            error = evaluation.map_error.get("trajectories" if scope == "cross_camera" else camera)
            record = {"scope": scope, "camera": camera, **metrics.as_dict()}
            if scope != "tracker" and error is not None:
                record |= {"map_error_median_m": error.median_m, "map_error_p90_m": error.p90_m,
                           "map_error_pairs": error.pairs}
            out.append(record)
    for radius, metrics in evaluation.ground_plane.items():
        out.append({"scope": ground_plane_scope(radius), "camera": "all", **metrics.as_dict()})
    return out


def ground_plane_scope(radius_m: float) -> str:
    """The ``scope`` of a ground-plane row: ``ground_plane_1m`` for map positions matched within 1 m."""
    return f"ground_plane_{radius_m:g}m"
