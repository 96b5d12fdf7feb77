"""The review app's pages under Streamlit's AppTest, on a real pipeline's outputs (28 source frames)."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import review_data as rd

ENV = "pets_s2l1"
APP_DIR = Path(__file__).resolve().parents[3] / "apps" / "streamlit"


def app(var, monkeypatch) -> AppTest:
    monkeypatch.setenv("SPOTON_VAR", str(var))
    monkeypatch.setenv("SPOTON_USER", "reviewer")
    at = AppTest.from_file(str(APP_DIR / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def page(at: AppTest, name: str) -> AppTest:
    at.switch_page(f"review_pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


def test_without_pipeline_outputs_the_app_says_how_to_make_them(tmp_path, monkeypatch):
    monkeypatch.setenv("SPOTON_VAR", str(tmp_path))
    at = AppTest.from_file(str(APP_DIR / "app.py"), default_timeout=30)
    at.run()
    assert "make demo" in at.error[0].value




@pytest.mark.integration
def test_overview_counts_and_checks_follow_the_segment_picker(pipeline_var, monkeypatch):
    at = app(pipeline_var, monkeypatch)
    paths = rd.ReviewPaths.from_var(pipeline_var)
    ids = rd.identities(paths, ENV)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"global identities": str(ids["global_id"].nunique()), "tracklets": str(len(ids)),
                       "cameras": "3", "segments": "4"}
    checks = at.dataframe[0].value
    assert set(checks["partition"]) == {ENV, f"{ENV}|01"}
    assert {"detections_per_frame", "frames_missing", "track_fragmentation", "cross_camera_agreement"} <= set(checks["check"])
    at.sidebar.selectbox(key="segment").set_value("03").run()
    assert set(at.dataframe[0].value["partition"]) == {ENV, f"{ENV}|03"}


@pytest.mark.integration
def test_frame_viewer_shows_the_tracks_of_the_chosen_frame(pipeline_var, monkeypatch):
    at = page(app(pipeline_var, monkeypatch), "frames")
    at.selectbox(key="frames_camera").set_value("cam2").run()
    at.slider(key="frames_index").set_value(4).run()
    paths = rd.ReviewPaths.from_var(pipeline_var)
    expected = rd.sql(paths, "select count(*) n from tracklets where segment = '01' and camera = 'cam2' "
                             "and frame_index = 4").at[0, "n"]
    assert expected > 0
    assert at.image[0].proto.imgs[0].caption.endswith(f"frame 4 ({at.dataframe[0].value['ts'].iloc[0]:.2f} s): "
                                                      f"{expected} people")
    assert len(at.dataframe[0].value) == expected and at.dataframe[0].value["global_id"].notna().all()


@pytest.mark.integration
def test_map_draws_trajectories_and_heatmap(pipeline_var, monkeypatch):
    at = page(app(pipeline_var, monkeypatch), "map")
    captions = [image.proto.imgs[0].caption for image in at.image]
    ids = rd.trajectories(rd.ReviewPaths.from_var(pipeline_var), ENV)["global_id"].nunique()
    assert captions[0] == f"trajectories of {ids} identities (metres; +Y up)" and captions[1].startswith("heatmap")
    chosen = at.multiselect(key="map_ids").value[:1]
    at.multiselect(key="map_ids").set_value(chosen).run()
    assert at.image[0].proto.imgs[0].caption == "trajectories of 1 identities (metres; +Y up)"


@pytest.mark.integration
def test_occupancy_and_dwell(pipeline_var, monkeypatch):
    at = page(app(pipeline_var, monkeypatch), "occupancy")
    occupancy, dwell = at.dataframe[0].value, at.dataframe[1].value
    assert set(occupancy["zone"]) == {"crossing", "north_path", "east_road", "south_path"}
    assert occupancy["mean_people"].sum() > 0 and (dwell["visits"] > 0).all()
    assert at.get("vega_lite_chart"), "the occupancy chart is drawn"


@pytest.mark.integration
def test_gallery_search_and_a_merge_from_the_app(writable_pipeline_var, monkeypatch):
    var = writable_pipeline_var
    paths = rd.ReviewPaths.from_var(var)
    before = rd.identities(paths, ENV)
    at = page(app(var, monkeypatch), "identities")
    first = int(at.selectbox(key="identity").value)
    crops = [i for i in at.image]
    assert 1 <= len(crops) <= (before["global_id"] == first).sum() + 5  # gallery + search results
    scores = [float(m.value.split("score ")[1]) for m in at.markdown if "score" in m.value]
    assert scores and scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)

    other = int(at.selectbox(key="merge_other").value)
    at.text_input(key="note").input("same red jacket").run()
    at.button(key="merge").click().run()
    assert f"merge G{other} into G{first}" in at.success[0].value
    history = at.dataframe[0].value
    assert history[["action", "author", "note"]].values.tolist() == [["merge", "reviewer", "same red jacket"]]
    at.button(key="apply").click().run()
    assert not at.exception, at.exception
    after = rd.identities(paths, ENV)
    assert after["global_id"].nunique() == before["global_id"].nunique() - 1
    merged = set(before.loc[before["global_id"].isin([first, other]), "tracklet_id"])
    assert set(after.loc[after["global_id"] == min(first, other), "tracklet_id"]) == merged
    assert other not in at.selectbox(key="identity").options or other == min(first, other)
