"""People per zone over time, and how long visits to each zone last."""
import streamlit as st

import ui

sel = ui.selection()
occupancy = ui.query(sel.paths, "occupancy", sel.environment, sel.stamp)
st.subheader("Occupancy (time-averaged people per zone)")
st.line_chart(occupancy.pivot(index="t_start", columns="zone", values="mean_people"), x_label="seconds",
              y_label="people")
st.dataframe(occupancy, hide_index=True)
st.subheader("Dwell per zone")
st.dataframe(ui.query(sel.paths, "dwell_per_zone", sel.environment, sel.stamp), hide_index=True)
