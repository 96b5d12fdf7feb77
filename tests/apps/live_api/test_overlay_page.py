"""The overlay page in real headless Chromium against a real API server: start a session from the
page, receive ticks, see boxes drawn on the canvas over the playing (Range-served) video."""
from __future__ import annotations

import shutil

import httpx
import pytest
from live_api_server import KEYS, live_server, live_store  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def browser():
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def canvas_box_pixels(page, camera: str) -> dict:
    """Opaque pixels on the camera's canvas (the boxes and labels), and the canvas size."""
    return page.evaluate("""(camera) => {
        const canvas = document.querySelector(`figure[data-camera="${camera}"] canvas`);
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let opaque = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 200) opaque += 1;
        return {opaque, width: canvas.width, height: canvas.height, total: data.length / 4};
    }""", camera)


def test_page_is_served_with_its_assets(live_server):
    page = httpx.get(f"{live_server.base}/")
    assert page.status_code == 200 and "/static/overlay.js" in page.text
    script = httpx.get(f"{live_server.base}/static/overlay.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert httpx.get(f"{live_server.base}/static/../app.py").status_code == 404


def test_overlay_draws_boxes_over_the_playing_video(live_server, page, tmp_path):
    page.goto(f"{live_server.base}/?token={KEYS['admin']}")
    assert page.evaluate("localStorage.getItem('spoton.token')") == KEYS["admin"]
    assert "token=" not in page.url  # moved into localStorage, out of the address bar
    page.wait_for_function("document.querySelectorAll('#environments option').length > 0", timeout=20_000)
    page.click("#start")
    page.wait_for_function("window.spoton.sessionId && window.spoton.ticks >= 3", timeout=60_000)
    session_id = page.evaluate("window.spoton.sessionId")
    try:
        cameras = page.evaluate("Object.keys(window.spoton.lastTick.cameras)")
        assert sorted(cameras) == ["cam1", "cam2", "cam3"]
        # the <video> plays the camera's sub-video, served by the API's media route
        page.wait_for_function("""() => [...document.querySelectorAll('video')].every(
            v => v.readyState >= 2 && !v.paused)""", timeout=30_000)
        src = page.evaluate("document.querySelector('figure[data-camera=\"cam1\"] video').src")
        assert "/api/v1/media/pets_s2l1/cam1/sub_video_" in src
        first = page.evaluate("document.querySelector('figure[data-camera=\"cam1\"] video').currentTime")
        page.wait_for_function("""(t0) => {
            const v = document.querySelector('figure[data-camera="cam1"] video');
            return Math.abs(v.currentTime - t0) > 0.2; }""", arg=first, timeout=10_000)
        # boxes drawn: the tick has people and the canvas has opaque box pixels, sized to the display
        page.wait_for_function("Object.values(window.spoton.boxesDrawn).some(n => n > 0)", timeout=30_000)
        drawn = page.evaluate("window.spoton.boxesDrawn")
        camera = max(drawn, key=drawn.get)
        pixels = canvas_box_pixels(page, camera)
        size = page.evaluate("""(camera) => {
            const fig = document.querySelector(`figure[data-camera="${camera}"]`);
            const c = fig.querySelector('canvas').getBoundingClientRect();
            const v = fig.querySelector('video').getBoundingClientRect();
            return {cw: c.width, ch: c.height, vw: v.width, vh: v.height, dpr: devicePixelRatio};
        }""", camera)
        assert (size["cw"], size["ch"]) == (size["vw"], size["vh"])  # the canvas covers the video
        assert pixels["width"] == round(size["cw"] * size["dpr"])
        assert 50 < pixels["opaque"] < 0.5 * pixels["total"], pixels  # outlines, not a filled canvas
        # each drawn box sits where its tick says: its left edge, half-way down, is painted
        on_edge = page.evaluate("""(camera) => {
            const view = window.spoton.cameras[camera];
            const canvas = view.canvas, ctx = canvas.getContext('2d');
            return view.drawn.tracks.map(t => {
                const x = Math.round(t.bbox.x * canvas.width);
                const y = Math.round((t.bbox.y + t.bbox.h / 2) * canvas.height);
                const strip = ctx.getImageData(Math.max(x - 2, 0), Math.min(y, canvas.height - 1), 5, 1).data;
                return Math.max(strip[3], strip[7], strip[11], strip[15], strip[19]);
            });
        }""", camera)
        assert on_edge and all(alpha > 200 for alpha in on_edge), on_edge
        status = page.text_content("#status")
        assert session_id in status and "running" in status
        page.screenshot(path=str(tmp_path / "overlay.png"))  # kept in pytest's tmp for a look
    finally:
        page.click("#stop")
    page.wait_for_function("window.spoton.sessionId === null", timeout=20_000)
    with live_server.client("viewer") as client:
        assert client.get(f"/api/v1/sessions/{session_id}").status_code == 404


def test_page_reconnects_after_the_socket_drops(live_server, page):
    created = live_server.create_session(tick_rate_hz=4)
    try:
        page.goto(f"{live_server.base}/?token={KEYS['viewer']}")
        page.wait_for_function("document.querySelectorAll('#sessions option').length > 1", timeout=20_000)
        page.select_option("#sessions", created["session_id"])
        page.wait_for_function("window.spoton.ticks >= 2", timeout=60_000)
        page.evaluate("window.spoton.socket.close()")  # as if the network dropped
        page.wait_for_function("window.spoton.reconnects >= 1", timeout=10_000)
        ticks = page.evaluate("window.spoton.ticks")
        page.wait_for_function(f"window.spoton.wsState === 'open' && window.spoton.ticks > {ticks}",
                               timeout=30_000)
    finally:
        live_server.delete_session(created["session_id"])


def test_bad_token_is_reported_on_the_page(live_server, page):
    page.goto(f"{live_server.base}/?token=not-a-key")
    page.wait_for_function("document.getElementById('status').classList.contains('error')", timeout=20_000)
    assert "401" in page.text_content("#status")

