"""The floor plan: each identity's trajectory in its colour, and the heatmap of time spent, from the
batch pipeline or from one live session's history."""
import streamlit as st

from spoton.analytics import colour_scale_max

import review_data as rd
import ui

sel = ui.selection()
env = rd.load_environment(sel.paths, sel.environment)
sessions = rd.live_sessions(sel.paths, sel.environment)
shown = st.radio("Data", ["batch", *sessions["session_id"]], horizontal=True, key="map_source",
                 format_func=lambda s: "batch pipeline" if s == "batch" else f"live {s}")
if shown == "batch":
    paths_m = ui.query(sel.paths, "trajectories", sel.environment, sel.stamp)
    cells = ui.query(sel.paths, "heatmap_cells", sel.environment, sel.stamp)
else:
    paths_m = rd.trajectories(sel.paths, sel.environment, "live", shown)
    cells = rd.live_heatmap_cells(sel.paths, env, shown)
all_ids = sorted(paths_m["global_id"].unique().tolist())
chosen = st.multiselect("Identities", all_ids, default=all_ids, key="map_ids")
left, right = st.columns(2)
left.image(ui.rgb(rd.draw_trajectories(env, paths_m[paths_m["global_id"].isin(chosen)])),
           caption=f"trajectories of {len(chosen)} identities (metres; +Y up)", width="stretch",
           output_format="PNG")
right.image(ui.rgb(rd.draw_heatmap(env, cells)),
            caption=f"heatmap: person-seconds per cell, red >= {colour_scale_max(cells['seconds']):.1f} s "
                    f"(98th percentile; peak {cells['seconds'].max():.1f} s)",
            width="stretch", output_format="PNG")
