"""End to end: `streamlit run` in a subprocess, real headless Chromium, pixel checks of the map page."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

import review_data as rd
from spoton.annotate import track_color

pytestmark = pytest.mark.integration
APP = Path(__file__).resolve().parents[3] / "apps" / "streamlit" / "app.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ENV = "pets_s2l1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def streamlit_url(pipeline_var):
    port = free_port()
    env = dict(os.environ, SPOTON_VAR=str(pipeline_var))
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("streamlit did not answer /_stcore/health within 60 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def served_image(page, index: int) -> np.ndarray:
    """The index-th st.image on the page, as the browser fetched it (BGR)."""
    data = page.evaluate("""async (i) => {
        const img = document.querySelectorAll('[data-testid="stImage"] img')[i];
        const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
        return Array.from(bytes); }""", index)
    return cv2.imdecode(np.array(data, np.uint8), cv2.IMREAD_COLOR)


def test_map_page_draws_trajectories_and_heatmap_in_chromium(streamlit_url, pipeline_var, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    paths = rd.ReviewPaths.from_var(pipeline_var)
    env = rd.load_environment(paths, ENV)
    plan = rd.floor_plan_image(env)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1100})
        page.goto(f"{streamlit_url}/map")
        images = page.locator('[data-testid="stImage"] img')
        images.nth(1).wait_for(timeout=60_000)
        page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stImage"] img')]
                                   .filter(i => i.complete && i.naturalWidth > 0).length == 2""", timeout=60_000)
        page.screenshot(path=str(tmp_path / "map_page.png"), full_page=True)
        shown = [cv2.imdecode(np.frombuffer(images.nth(k).screenshot(), np.uint8), cv2.IMREAD_COLOR) for k in (0, 1)]
        trajectories_png, heatmap_png = served_image(page, 0), served_image(page, 1)
        browser.close()

    # trajectories: every identity's path in its colour, where the floor plan transform puts it
    assert trajectories_png.shape == plan.shape
    paths_m = rd.trajectories(paths, ENV)
    hits = total = 0
    for gid, path in paths_m.groupby("global_id"):
        pixels = np.round(env.floor_plan.to_pixels(path[["map_x", "map_y"]].to_numpy())).astype(int)
        for x, y in pixels[:: max(1, len(pixels) // 10)]:
            if 2 <= x < plan.shape[1] - 2 and 2 <= y < plan.shape[0] - 2:
                patch = trajectories_png[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3).astype(int)
                hits += bool(np.any(np.abs(patch - np.array(track_color(int(gid)))).max(axis=1) <= 3))
                total += 1
    assert total > 20 and hits / total >= 0.8, f"{hits}/{total} trajectory samples drawn in their identity colour"

    # heatmap: the hottest cell is painted in the warm end of the colour map, cold cells elsewhere
    cells = rd.heatmap_cells(paths, ENV)
    hottest = cells.loc[cells["seconds"].idxmax()]
    x, y = np.round(env.floor_plan.to_pixels(np.array([[hottest["x_m"], hottest["y_m"]]]))[0]).astype(int)
    b, g, r = heatmap_png[y, x].astype(int)
    assert r > 100 and r > b + 60, f"hottest cell colour {(b, g, r)} is not warm"
    painted = np.any(np.abs(heatmap_png.astype(int) - plan.astype(int)) > 12, axis=2).mean()
    cell_px = (rd.heatmap_cell_m(env, cells) * env.floor_plan.pixels_per_metre) ** 2
    assert painted == pytest.approx(len(cells) * cell_px / plan.shape[0] / plan.shape[1], rel=0.35)

    # what Chromium displays is those pictures (scaled to the column), not a blank or broken image
    for screenshot, source in zip(shown, (trajectories_png, heatmap_png)):
        scaled = cv2.resize(source, (screenshot.shape[1], screenshot.shape[0]), interpolation=cv2.INTER_AREA)
        plain = cv2.resize(plan, (screenshot.shape[1], screenshot.shape[0]), interpolation=cv2.INTER_AREA)
        assert np.abs(screenshot.astype(int) - scaled.astype(int)).mean() < 6
        assert np.abs(screenshot.astype(int) - plain.astype(int)).mean() > 1, "drawn over the plain floor plan"
