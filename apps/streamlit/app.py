"""SpotOn review app: what the pipeline produced, per environment and segment, and identity corrections.

    SPOTON_VAR=var .venv/bin/streamlit run apps/streamlit/app.py     (or `make review`)
"""
import streamlit as st

import ui
from review_data import ReviewDataError, ReviewPaths, environments, segments, sync

st.set_page_config(page_title="SpotOn review", layout="wide")
try:
    paths = ReviewPaths.from_env()
    if paths.s3 is not None and "synced" not in st.session_state:  # the S3 lake, mirrored once per visit
        sync(paths)
        st.session_state["synced"] = True
    paths.check()
    known_environments = environments(paths)
except ReviewDataError as error:
    st.error(str(error))
    st.stop()

with st.sidebar:
    st.title("SpotOn review")
    environment = st.selectbox("Environment", known_environments, key="environment")
    segment = st.selectbox("Segment", segments(paths, environment), key="segment",
                           help="the frame viewer and the check results follow this segment")
    st.caption(f"data: {paths.var}" if paths.s3 is None else f"data: {paths.s3.lake}")
    if paths.s3 is not None and st.button("Reload from S3", help="new live sessions, re-materialized "
                                                                "partitions, what retention deleted"):
        sync(paths)
        ui.refresh()
        st.rerun()
ui.remember(paths, environment, segment)

st.navigation([
    st.Page("review_pages/overview.py", title="Overview & checks", default=True),
    st.Page("review_pages/frames.py", title="Frames"),
    st.Page("review_pages/map.py", title="Map"),
    st.Page("review_pages/identities.py", title="Identities"),
    st.Page("review_pages/occupancy.py", title="Occupancy & dwell"),
]).run()
