"""One identity's crops from every camera, appearance search, and corrections (merge / split)."""
import streamlit as st

import review_data as rd
import ui
from spoton.identity.overrides import Override, OverrideError, append_override, read_overrides

sel = ui.selection()
identities = ui.query(sel.paths, "identities", sel.environment, sel.stamp)
ids = sorted(identities["global_id"].unique().tolist())
global_id = st.selectbox("Global identity", ids, key="identity")
mine = identities[identities["global_id"] == global_id]
st.caption(f"G{global_id}: {len(mine)} tracklets on {', '.join(sorted(mine['camera'].unique()))}, "
           f"{mine['start_ts'].min():.1f} s to {mine['end_ts'].max():.1f} s"
           + (" (corrected)" if mine["override_version"].notna().any() else ""))

st.subheader("Gallery")
crops = ui.gallery(sel.paths, sel.environment, global_id, sel.stamp)
columns = st.columns(min(len(crops), 6) or 1)
for k, crop in enumerate(crops):
    columns[k % len(columns)].image(ui.rgb(crop["image"]), width=110,
                                    caption=f"{crop['camera']} seg {crop['segment']} t={crop['ts']:.1f}s ({crop['tracklet_id']})")

st.subheader("Search by person")
query_tracklet = st.selectbox("Crop to search with", [c["tracklet_id"] for c in crops], key="search_tracklet")
if query_tracklet:
    index = ui.search_index(sel.paths, sel.environment, sel.stamp)
    try:
        matches = index.nearest_identities(query_tracklet, k=5, exclude_own_identity=True)
    except KeyError as error:
        st.warning(str(error))
        matches = []
    st.caption(f"nearest other identities by appearance (cosine similarity, FAISS over {len(index)} tracklets)")
    columns = st.columns(max(len(matches), 1))
    for column, match in zip(columns, matches):
        best = [c for c in ui.gallery(sel.paths, sel.environment, match.global_id, sel.stamp)
                if c["tracklet_id"] == match.tracklet_id]
        if best:
            column.image(ui.rgb(best[0]["image"]), width=110)
        column.markdown(f"**G{match.global_id}** score {match.score:.3f}")

st.subheader("Corrections")
author = st.text_input("Your name", value=rd.current_author(), key="author")
note = st.text_input("Note (why)", key="note")
merge_col, split_col = st.columns(2)
with merge_col:
    other = st.selectbox("Merge with identity", [i for i in ids if i != global_id], key="merge_other")
    if st.button("Record merge", key="merge") and other is not None:
        theirs = identities[identities["global_id"] == other]
        try:
            version = append_override(rd.lake(sel.paths), sel.environment, Override(
                "merge", author, tracklet_id=mine["tracklet_id"].iloc[0], other_tracklet_id=theirs["tracklet_id"].iloc[0],
                global_id=int(global_id), other_global_id=int(other), note=note))
            st.success(f"recorded correction v{version}: merge G{other} into G{global_id}")
        except OverrideError as error:
            st.error(str(error))
with split_col:
    tracklet = st.selectbox("Split off tracklet", mine["tracklet_id"].tolist(), key="split_tracklet")
    if st.button("Record split", key="split") and tracklet:
        try:
            version = append_override(rd.lake(sel.paths), sel.environment,
                                      Override("split", author, tracklet, global_id=int(global_id), note=note))
            st.success(f"recorded correction v{version}: {tracklet} becomes an identity of its own")
        except OverrideError as error:
            st.error(str(error))

history = read_overrides(rd.lake(sel.paths), sel.environment).to_pandas()
if len(history):
    st.dataframe(history, hide_index=True)
    if st.button("Apply corrections (re-materialize global_identities and analytics)", key="apply"):
        with st.spinner("re-materializing with Dagster"):
            run = rd.rematerialize_identities(sel.paths, sel.environment)
        ui.refresh()
        if run.success:
            st.success(f"identities re-materialized (run {run.run_id[:8]})")
            st.rerun()
        else:
            st.error(f"re-materialization failed: {run.error}")
else:
    st.caption("no corrections recorded for this environment yet")
