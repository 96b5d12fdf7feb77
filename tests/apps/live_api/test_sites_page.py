"""The sites page in real headless Chromium against a real API server, from an empty store: a site
from the sample's floor plan and scale, a camera from an uploaded clip of the sample video, its
calibration clicked from the real PETS point pairs (RMS shown under 0.3 m), region and zone drawn,
saved; then the pipeline materializes the sub-videos, the review app's data lists the site's
identities, and a live session started from the overlay page sends ticks with map coordinates.
Each step leaves a screenshot ($SPOTON_TEST_ARTIFACTS, else pytest's tmp dir; the path is printed).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from chromium import browser  # noqa: F401 (fixture)
from live_api_server import KEYS, LiveApiServer, free_port
from live_servers import mjpeg_server, sample_jpegs  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[3]
PLAN = REPO_ROOT / "data" / "environments" / "pets_s2l1" / "floor_plan.png"
PAIRS = json.loads((REPO_ROOT / "data" / "calibration" / "pets_s2l1_view_001.json").read_text())
# the sample plan: 20 pixels per metre, (-22, 20) m at its top-left corner, +Y up
ORIGIN_M, PX_PER_M = (-22.0, 20.0), 20.0
CLIP_FRAMES = 20  # 2 s of the 10 fps sample: 2 sub-videos of 1 s


def plan_px(x_m: float, y_m: float) -> tuple[float, float]:
    return (x_m - ORIGIN_M[0]) * PX_PER_M, (ORIGIN_M[1] - y_m) * PX_PER_M


@pytest.fixture
def page(browser):
    # wide enough that both calibration canvases show at their natural size (clicks land on exact pixels)
    context = browser.new_context(viewport={"width": 1700, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    answers: list[str] = []  # what the next prompts answer (confirmations are accepted)
    page.on("dialog", lambda dialog: dialog.accept(answers.pop(0) if dialog.type == "prompt" and answers else None))
    page.prompt_answers = answers
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def var(tmp_path) -> Path:
    (tmp_path / "var" / "store").mkdir(parents=True)
    return tmp_path / "var"


@pytest.fixture
def server(var):
    server = LiveApiServer(var / "store").wait_ready()
    yield server
    server.stop()


@pytest.fixture
def artifacts(tmp_path) -> Path:
    folder = Path(os.environ.get("SPOTON_TEST_ARTIFACTS", tmp_path / "artifacts")) / "sites_page"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nsites page screenshots: {folder}")
    return folder


def click_canvas(page, canvas: str, x: float, y: float) -> None:
    """Click the canvas at (x, y) of its own pixels, whatever size it is shown at."""
    box = page.evaluate("""(id) => { const c = document.getElementById(id), r = c.getBoundingClientRect();
        return {sx: r.width / c.width, sy: r.height / c.height}; }""", canvas)
    page.click(f"#{canvas}", position={"x": x * box["sx"], "y": y * box["sy"]})


def wait_status(page, text: str, timeout: int = 30_000) -> None:
    from playwright.sync_api import TimeoutError

    try:
        page.wait_for_function("(t) => document.getElementById('status').textContent.includes(t)", arg=text,
                               timeout=timeout)
    except TimeoutError:
        raise AssertionError(f"the status line never said {text!r}: {page.text_content('#status')!r}") from None


def calib_message(page, text: str, timeout: int = 20_000) -> str:
    page.wait_for_function("(t) => document.getElementById('calib-message').textContent.includes(t)", arg=text,
                           timeout=timeout)
    return page.text_content("#calib-message")


def create_site_in_page(page, name: str = "plaza") -> None:
    page.click("#create summary")
    page.fill("#create-name", name)
    page.set_input_files("#create-plan", str(PLAN))
    page.wait_for_function("document.getElementById('create-canvas').width === 700")
    click_canvas(page, "create-canvas", 100, 390)
    click_canvas(page, "create-canvas", 300, 390)  # 200 plan pixels: 10 m
    page.fill("#create-distance", "10")
    page.fill("#create-origin", "-22,20")
    page.select_option("#create-y-axis", "up")
    page.fill("#create-segment", "1")
    page.click("#create-form button[type=submit]")
    wait_status(page, f"site {name} created")


def test_a_site_made_in_the_page_is_calibrated_materialized_reviewed_and_live(server, var, page, artifacts,
                                                                                sample_video, tmp_path):
    started = time.monotonic()

    def mark(step: str) -> None:
        print(f"{time.monotonic() - started:6.1f} s  {step}")

    def shot(step: str) -> None:
        page.screenshot(path=str(artifacts / f"{step}.png"), full_page=True)
        mark(step)

    clip = tmp_path / "clip.avi"  # Motion JPEG: the upload is transcoded to H.264 and cut
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(sample_video), "-frames:v", str(CLIP_FRAMES),
                    "-c:v", "mjpeg", "-q:v", "3", str(clip)], check=True)

    page.goto(f"{server.base}/sites?token={KEYS['admin']}")
    wait_status(page, "0 sites")
    assert "token=" not in page.url
    shot("01_empty_store")

    # 1. the site: the sample's floor plan, its scale from two clicked points 10 m apart
    create_site_in_page(page)
    page.wait_for_selector("#site-section:not([hidden])")
    with server.client("viewer") as client:
        site = client.get("/api/v1/sites/plaza").json()
    assert site["floor_plan"]["metres_per_pixel"] == pytest.approx(0.05)
    assert site["floor_plan"]["origin_m"] == [-22.0, 20.0] and site["floor_plan"]["y_axis"] == "up"
    shot("02_site_created")

    # 2. a camera from the uploaded clip, followed until its job is done
    page.fill("#upload-name", "north")
    page.set_input_files("#upload-file", str(clip))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#jobs li[data-state=done], #jobs li[data-state=failed]", timeout=60_000)
    assert page.get_attribute("#jobs li", "data-state") == "done", page.text_content("#jobs")
    page.wait_for_selector("#camera-table tr[data-camera=north]")
    assert page.text_content("#camera-table tr[data-camera=north] td:nth-child(5)") == "2"
    shot("03_camera_uploaded")

    # 3. calibration: the PETS pairs clicked on the snapshot and on the plan; refused under 4 pairs
    page.click("#camera-table tr[data-camera=north] button.calibrate")
    page.wait_for_function("window.spotonSites.calib && window.spotonSites.calib.snapshot "
                           "&& window.spotonSites.calib.plan", timeout=30_000)
    assert page.evaluate("document.getElementById('image-canvas').width") == 768
    for index, ((u, v), (x, y)) in enumerate(zip(PAIRS["image_points"], PAIRS["map_points"])):
        click_canvas(page, "image-canvas", u, v)
        click_canvas(page, "plan-canvas", *plan_px(x, y))
        if index == 2:
            assert "at least 4" in calib_message(page, "3 pairs")
            assert page.evaluate("document.getElementById('calib-message').classList.contains('error')")
    calib_message(page, f"{len(PAIRS['image_points'])} pairs fit")
    rms = float(page.text_content("#rms").split()[0])
    assert rms < 0.3, f"RMS {rms} m shown"
    errors = [float(cell) for cell in page.eval_on_selector_all("#pairs tbody td:nth-child(4)",
                                                                "cells => cells.map(c => c.textContent)")]
    assert len(errors) == 15 and max(errors) < 0.5
    cyan = page.evaluate("""() => { const c = document.getElementById('image-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 90 && d[i + 1] > 150 && d[i + 2] > 150) n += 1;
        return n; }""")
    assert cyan > 2000, f"the metre grid is drawn over the snapshot ({cyan} grid pixels)"
    shot("04_calibration_checked")
    page.click("#save-calibration")
    calib_message(page, "calibration saved as version")

    # 4. the tracked region on the snapshot, a zone on the plan
    page.select_option("#mode", "region")
    for corner in [(0, 200), (767, 200), (767, 575), (0, 575)]:
        click_canvas(page, "image-canvas", *corner)
    page.click("#save-region")
    calib_message(page, "region saved as version")
    page.select_option("#mode", "zone")
    page.fill("#zone-name", "crossing")
    for corner in [(-11, -10.5), (-5, -10.5), (-5, -3.5), (-11, -3.5)]:
        click_canvas(page, "plan-canvas", *plan_px(*corner))
    page.click("#save-zone")
    calib_message(page, "zone crossing saved as version")
    page.wait_for_selector("#zones li[data-zone=crossing]")
    shot("05_region_and_zone_saved")
    page.locator("#calib-section").screenshot(path=str(artifacts / "05_calibration_section.png"))
    with server.client("viewer") as client:
        site = client.get("/api/v1/sites/plaza").json()
    camera = site["cameras"][0]
    assert site["version"] == 5 and site["versions"] == [1, 2, 3, 4, 5]
    assert camera["calibration_rms_m"] < 0.3 and camera["region_m"] is not None
    assert camera["sub_videos"] == ["plaza/north/sub_video_01.mp4", "plaza/north/sub_video_02.mp4"]
    zone = site["zones"][0]["polygon_m"]
    assert site["zones"][0]["name"] == "crossing" and zone[0] == pytest.approx([-11, -10.5], abs=0.06)

    # 5. the pipeline materializes the sub-videos (what `spoton run ENV` does) while the review app starts
    # and a live session runs: they only read the store, and the wait overlaps
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "SPOTON_STORE", "SPOTON_CATALOG")}
    env |= {"SPOTON_VAR": str(var), "SPOTON_ORT_THREADS": "1"}
    run_log = tmp_path / "spoton_run.log"
    with open(run_log, "w") as log:
        pipeline = subprocess.Popen([sys.executable, "-m", "spoton.cli", "run", "plaza", "--workers", "1"],
                                    env=env, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT)
    review = ReviewApp(env)
    try:
        # 6. the overlay page lists the site as it lists the sample; a live session on it sends map points
        page.click("header nav a")
        page.wait_for_function("[...document.querySelectorAll('#environments option')].some(o => o.value === 'plaza')",
                               timeout=20_000)
        assert page.text_content("#environments option[value=plaza]") == "plaza (1 cameras)"
        page.select_option("#environments", "plaza")
        page.click("#start")
        page.wait_for_function("""() => { const t = window.spoton.lastTick;
            return t && t.cameras.north && t.cameras.north.tracks.some(k => k.map !== null); }""", timeout=90_000)
        session_id = page.evaluate("window.spoton.sessionId")
        try:
            tracks = page.evaluate("window.spoton.lastTick.cameras.north.tracks")
            placed = [t["map"] for t in tracks if t["map"] is not None]
            assert all(-22 <= p["x"] <= 13 and -19 <= p["y"] <= 20 for p in placed), placed  # on the plan
            # and the camera's video plays under its boxes, as the sample's cameras do
            page.wait_for_function("(window.spotonStats.cameras.north || {}).framesDrawn >= 3", timeout=60_000)
            shot("06_live_session")
        finally:
            page.click("#stop")
        page.wait_for_function("window.spoton.sessionId === null", timeout=20_000)
        with server.client("viewer") as client:
            assert client.get(f"/api/v1/sessions/{session_id}").status_code == 404

        assert pipeline.wait(timeout=300) == 0, run_log.read_text()
        progress = [line for line in run_log.read_text().splitlines() if line.startswith("[")]
        assert [line.split()[1] for line in progress] == ["plaza|01", "plaza|02", "plaza"], run_log.read_text()
        mark("pipeline materialized")

        # 7. the review app: its data path lists the site's identities, and its Identities page shows them
        identities = review.identities(var)
        assert len(identities) > 0 and set(identities["camera"]) == {"north"}
        assert identities["global_id"].nunique() >= 2, "the clip has several people in view"
        page.goto(f"{review.wait_ready()}/identities")
        caption = page.get_by_text("tracklets on north")
        caption.wait_for(timeout=60_000)
        shown = re.match(r"G(\d+): (\d+) tracklets on north", caption.text_content())
        assert shown, caption.text_content()  # the first identity of the site, as the data path counts it
        first = int(shown[1])
        assert first == identities["global_id"].min() and int(shown[2]) == (identities["global_id"] == first).sum()
        page.wait_for_function("""() => document.querySelectorAll('[data-testid="stImage"] img').length >= 2
            && [...document.querySelectorAll('[data-testid="stImage"] img')].every(i => i.complete)
            && !document.querySelector('[data-testid="stSkeleton"]')""", timeout=60_000)  # the gallery's crops
        shot("07_review_identities")
    finally:
        if pipeline.poll() is None:
            pipeline.kill()
            pipeline.wait()
        review.stop()
    assert len(list(artifacts.glob("*.png"))) == 8


class ReviewApp:
    """``streamlit run apps/streamlit/app.py`` on a free port over the test's SPOTON_VAR."""

    def __init__(self, env: dict):
        self.url = f"http://127.0.0.1:{free_port()}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "apps" / "streamlit" / "app.py"),
             "--server.headless", "true", "--server.port", self.url.rsplit(":", 1)[1],
             "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO_ROOT)

    def wait_ready(self, timeout_s: float = 60.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/_stcore/health", timeout=1).text == "ok":
                    return self.url
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError(f"the review app did not answer /_stcore/health within {timeout_s} s")

    @staticmethod
    def identities(var: Path):
        """What the Identities page queries (review_data.identities), read in this process."""
        sys.path.insert(0, str(REPO_ROOT / "apps" / "streamlit"))
        try:
            import review_data
        finally:
            sys.path.remove(str(REPO_ROOT / "apps" / "streamlit"))
        paths = review_data.ReviewPaths.from_var(var)
        assert "plaza" in review_data.environments(paths)
        return review_data.identities(paths, "plaza")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def test_viewers_see_the_pages_read_only_and_refusals_show_the_servers_reason(server, page, sample_video,
                                                                                 tmp_path, mjpeg_server):
    with server.client("operator") as client:
        created = client.post("/api/v1/sites", params={"name": "lobby", "metres_per_pixel": 0.05,
                                                       "origin_m": "-22,20", "y_axis": "up"},
                              content=PLAN.read_bytes(), headers={"Content-Type": "image/png"})
        assert created.status_code == 201, created.text
    page.goto(f"{server.base}/sites?token={KEYS['viewer']}")
    wait_status(page, "1 site")
    assert "read-only" in page.text_content("#role")
    assert not page.is_visible("#create") and not page.is_visible("#sites tr[data-site=lobby] button.delete")
    page.click("#sites tr[data-site=lobby] button.open")
    page.wait_for_selector("#site-section:not([hidden])")
    assert not page.is_visible("#uri-form") and not page.is_visible("#upload-form")
    with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {KEYS['viewer']}"}) as client:
        assert client.delete("/api/v1/sites/lobby").status_code == 403, "and the API refuses"

    # an operator: a file URI outside the media roots is refused with the server's reason
    page.evaluate(f"localStorage.setItem('spoton.token', {KEYS['operator']!r})")
    page.goto(f"{server.base}/sites?site=lobby")
    page.wait_for_selector("#uri-form", state="visible")
    page.fill("#uri-name", "door")
    page.select_option("#uri-kind", "file")
    page.fill("#uri-uri", str(tmp_path / "missing.mp4"))
    page.click("#uri-test")
    page.wait_for_function("document.getElementById('test-result').className === 'error'", timeout=20_000)
    assert page.text_content("#test-result").startswith("no connection: 4")
    # a live MJPEG stream with a password: its snapshot shows, the camera is added, the password never shows
    secret = mjpeg_server.url.replace("http://", "http://admin:s3cret@")
    page.fill("#uri-name", "street")
    page.select_option("#uri-kind", "http")
    page.fill("#uri-uri", secret)
    page.click("#uri-test")
    page.wait_for_function("document.getElementById('test-result').className === 'ok'", timeout=20_000)
    assert page.evaluate("document.getElementById('test-snapshot').naturalWidth") == 384
    page.click("#uri-form button[type=submit]")
    wait_status(page, "added camera street")
    assert "admin:***@" in page.text_content("#camera-table tr[data-camera=street]")
    assert "s3cret" not in page.content() and "s3cret" not in page.evaluate("document.body.innerText")
    # a name the API refuses, and a plan that is not an image: 4xx shown, nothing created
    page.click("#create summary")
    page.fill("#create-name", "lobby")
    page.set_input_files("#create-plan", str(PLAN))
    page.check("input[name=scale-mode][value=mpp]")
    page.fill("#create-mpp", "0.05")
    page.click("#create-form button[type=submit]")
    wait_status(page, "could not create the site: 409")
    page.fill("#create-name", "lobby2")
    page.set_input_files("#create-plan", files=[{"name": "plan.png", "mimeType": "image/png",
                                                 "buffer": b"not an image at all"}])
    page.click("#create-form button[type=submit]")
    wait_status(page, "could not create the site: 4")
    with server.client("viewer") as client:
        assert [s["name"] for s in client.get("/api/v1/sites").json()["sites"]] == ["lobby"]

    # uploads: a file that is not a video fails in its job with the reason; a real clip becomes a camera
    page.click("#sites tr[data-site=lobby] button.open")
    page.fill("#upload-name", "junk")
    page.set_input_files("#upload-file", files=[{"name": "junk.mp4", "mimeType": "video/mp4",
                                                 "buffer": b"these bytes are no video " * 40}])
    page.click("#upload-form button[type=submit]")
    failed = page.wait_for_selector("#jobs li[data-state=failed]", timeout=60_000)
    assert "junk: failed" in failed.text_content() and failed.query_selector(".job-reason").text_content()
    clip = tmp_path / "door.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(sample_video), "-frames:v", "10", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(clip)], check=True)
    page.fill("#upload-name", "door")
    page.set_input_files("#upload-file", str(clip))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#jobs li[data-state=done]", timeout=60_000)
    page.fill("#upload-name", "door")  # the same name again: refused before the upload is read
    page.set_input_files("#upload-file", str(clip))
    page.click("#upload-form button[type=submit]")
    wait_status(page, "could not upload door: 409")

    # collinear point pairs: the server's refusal is shown, nothing can be saved
    page.click("#camera-table tr[data-camera=door] button.calibrate")
    page.wait_for_function("window.spotonSites.calib && window.spotonSites.calib.plan", timeout=30_000)
    for k in range(4):
        click_canvas(page, "image-canvas", 100 + 150 * k, 300)
        click_canvas(page, "plan-canvas", 100 + 100 * k, 200)
    assert "on one line" in calib_message(page, "refused: 422")
    assert page.text_content("#rms") == "refused" and page.is_disabled("#save-calibration")

    # a camera with stored videos keeps its name (the server says why); disable it; rename the site
    page.prompt_answers.append("gate")
    page.click("#camera-table tr[data-camera=door] button.rename")
    wait_status(page, "could not rename camera door: 409")
    page.click("#camera-table tr[data-camera=door] button.enable")
    wait_status(page, "disabled camera door")
    assert page.text_content("#camera-table tr[data-camera=door] td:nth-child(3)") == "no"
    assert page.text_content("#camera-table tr[data-camera=door] button.enable") == "Enable"
    before = page.evaluate("window.spotonSites.site.version") - 1
    page.click(f"#versions li[data-version='{before}'] button.restore")
    wait_status(page, f"restored version {before}")
    assert page.text_content("#camera-table tr[data-camera=door] td:nth-child(3)") == "yes"
    page.prompt_answers.append("foyer")
    page.click("#sites tr[data-site=lobby] button.rename")
    wait_status(page, "site lobby renamed to foyer")
    page.wait_for_function("document.getElementById('site-name').textContent === 'foyer'")
    assert "site=foyer" in page.url

    # delete with confirmation (the dialog is accepted): gone from the list, its versions stay
    page.click("#sites tr[data-site=foyer] button.delete")
    wait_status(page, "site foyer deleted")
    assert page.is_hidden("#site-section")
    with server.client("viewer") as client:
        assert client.get("/api/v1/sites").json()["sites"] == []
        foyer = client.get("/api/v1/sites/foyer/versions").json()
        lobby = client.get("/api/v1/sites/lobby/versions").json()
    assert foyer["current"] is None and foyer["versions"] == [1], foyer
    assert len(lobby["versions"]) >= 3, "the name it had before keeps its history too"
    page.fill("#history-name", "foyer")  # and the page brings it back from its history
    page.click("#history-form button[type=submit]")
    page.click("#history li[data-version='1'] button.restore")
    wait_status(page, "site foyer restored from version 1")
    assert page.is_visible("#sites tr[data-site=foyer]") and page.is_visible("#camera-table tr[data-camera=door]")
