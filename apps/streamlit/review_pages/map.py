"""The floor plan: each identity's trajectory in its colour, and the heatmap of time spent."""
import streamlit as st

from spoton.analytics import colour_scale_max

import review_data as rd
import ui

sel = ui.selection()
env = rd.load_environment(sel.paths, sel.environment)
paths_m = ui.query(sel.paths, "trajectories", sel.environment, sel.stamp)
cells = ui.query(sel.paths, "heatmap_cells", sel.environment, sel.stamp)
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
