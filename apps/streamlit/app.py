"""SpotOn review app: what the pipeline produced, per environment and segment, and identity corrections.

    SPOTON_VAR=var .venv/bin/streamlit run apps/streamlit/app.py     (or `make review`)
"""
import streamlit as st

import ui
from review_data import ReviewDataError, ReviewPaths, environments, segments

st.set_page_config(page_title="SpotOn review", layout="wide")
paths = ReviewPaths.from_env()
try:
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
    st.caption(f"data: {paths.var}")
ui.remember(paths, environment, segment)

st.navigation([
    st.Page("review_pages/overview.py", title="Overview & checks", default=True),
    st.Page("review_pages/frames.py", title="Frames"),
    st.Page("review_pages/map.py", title="Map"),
    st.Page("review_pages/identities.py", title="Identities"),
    st.Page("review_pages/occupancy.py", title="Occupancy & dwell"),
]).run()
