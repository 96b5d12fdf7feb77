"""Counts for the environment and the asset-check results of the shown partitions."""
import streamlit as st

import review_data as rd
import ui

sel = ui.selection()
st.header(f"{sel.environment}: segment {sel.segment}")
identities = ui.query(sel.paths, "identities", sel.environment, sel.stamp)
columns = st.columns(4)
columns[0].metric("global identities", identities["global_id"].nunique())
columns[1].metric("tracklets", len(identities))
columns[2].metric("cameras", identities["camera"].nunique())
columns[3].metric("segments", identities["segment"].nunique())

st.subheader("Asset checks")
checks = rd.check_results(sel.paths, sel.environment, [sel.segment])
if checks.empty:
    st.info(f"no check results for {sel.environment} / {sel.segment} in {sel.paths.dagster_home}")
else:
    failed = checks[~checks["passed"]]
    (st.warning if len(failed) else st.success)(
        f"{len(checks) - len(failed)} of {len(checks)} checks passed"
        + (f"; failing: {', '.join(failed['check'])}" if len(failed) else ""))
    st.dataframe(checks.assign(metadata=checks["metadata"].map(str)), hide_index=True, width="stretch")
