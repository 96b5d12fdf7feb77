"""One camera's frame with the tracked boxes, coloured and tagged by global identity."""
import streamlit as st

import review_data as rd
import ui

sel = ui.selection()
env = rd.load_environment(sel.paths, sel.environment)
camera = st.selectbox("Camera", env.camera_names, key="frames_camera")
try:
    first, last = rd.frame_range(sel.paths, sel.environment, sel.segment, camera)
except rd.ReviewDataError as error:
    st.warning(str(error))
    st.stop()
frame_index = st.slider("Frame of the sub-video", first, last, first, key="frames_index")
boxes = rd.frame_boxes(sel.paths, sel.environment, sel.segment, camera, frame_index)
image = rd.decode_frame(sel.paths, sel.environment, camera, sel.segment, frame_index)
ts = f"{boxes['ts'].iloc[0]:.2f} s" if len(boxes) else "no tracks"
st.image(ui.rgb(rd.annotated_frame(image, boxes)),
         caption=f"{camera} segment {sel.segment} frame {frame_index} ({ts}): {len(boxes)} people")
st.dataframe(boxes, hide_index=True)
