"""The PortraitGAN tab in a real browser, inside the fake WebUI page, under each host's gradio.

For each host gradio (3.41.2 and 4.40.0, the venvs of tests/webui_host/make_venvs.sh; no host runs
gradio 6, whose app tests/test_app_browser.py drives), tests/webui_host/serve.py serves the fake
host's page (txt2img, img2img, extras, then the extension's tab) with the extension loaded as the
host loads it (its javascript/*.js and style.css too), in that venv's Python; headless Chromium
(driven from here, as tests/test_app_browser.py does) then:

1. clicks "Send to PortraitGAN" beside the txt2img gallery (the 1350 px photo as if generated):
   the host's paste-params event copies it into the tab's photo box and javascript/portraitgan.js
   switches to the tab, whose photo event finds the face and renders;
2. types a smile into the smile slider + Enter: a new "after" image (timed: key to image);
3. clicks a landmark in the crop view and then where it should go: "1 point(s) moved";
4. clicks "Send to img2img" under the full-size result: the img2img tab shows it.

and, in a second test on the same server: seven mouse drags of the smile slider, each timed from
the release to the new "after" image (the medians are reported, never asserted: the goal, 0.4 s on
a quiet machine, is in docs/benchmarks.md); one slow drag (8 steps in 1.6 s) is one render and one
new picture, none while the button is down (javascript/portraitgan.js holds a drag's steps back);
scrolled to the last slider, the result column is position: sticky and the before/after wholly in
the window. A third test: a right-button press with no release, then ArrowRight, is one render of
the new value; two fingers on two sliders render both final values (one render per finger). A
fourth, at 1366x768: the result column scrolls on its own to its Send to img2img button while the
controls are scrolled down (``webui_tab_gradio*_laptop.png`` in ``test-artifacts/``).

Leaves in ``test-artifacts/``: ``webui_tab_gradio3.png`` and ``webui_tab_gradio4.png`` (the tab after
the edit; with ``PORTRAITGAN_UPDATE_DOCS=1`` also written over ``docs/webui_tab_gradio*.png``, the
pictures of docs/webui-extension.md), ``webui_tab_gradio*_img2img.png`` (img2img after "Send to
img2img"), ``webui_tab_gradio*_scrolled.png`` (scrolled to the last slider) and
``webui-tab-latency.txt`` (the browser's and the server's times of each step).

Needs ``chromium``, ``chromedriver`` and selenium here, and the venvs (``VENV_ROOT``, default
/tmp/portraitgan-host-venvs). A missing venv or browser skips, unless
``PORTRAITGAN_WEBUI_BROWSER_TESTS=required`` (tests/webui_host/ci.sh), where it fails.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from pathlib import Path

import pytest
from app_browser_page import chromium, unavailable
from webui_browser_page import ROOT, Server, Tab, telling

DOCS = ROOT / "docs"
ARTIFACTS = ROOT / "test-artifacts"
VENV_ROOT = Path(os.environ.get("VENV_ROOT", "/tmp/portraitgan-host-venvs"))
HOSTS = {"gradio3": VENV_ROOT / "a1111" / "bin" / "python", "gradio4": VENV_ROOT / "forge" / "bin" / "python"}
SIZE = (1400, 1700)
REQUIRED_BY = "PORTRAITGAN_WEBUI_BROWSER_TESTS"
REPORT: list[str] = []


@pytest.fixture(scope="module")
def browser():
    with chromium(SIZE, REQUIRED_BY) as session:  # as tests/test_app_browser.py's, in app_browser_page.py
        session.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": SIZE[0], "height": SIZE[1], "deviceScaleFactor": 1, "mobile": False},
        )
        yield session
    if REPORT:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "webui-tab-latency.txt").write_text("\n".join(REPORT) + "\n")


@pytest.fixture(scope="module", params=list(HOSTS))
def host(request, full_size_photo):
    """``(gradio, server)``: serve.py in the host venv of ``gradio`` ("gradio3", "gradio4"), its major
    checked, for this module's tests under that gradio; what it said is printed if a test fails."""
    gradio = request.param
    python = str(HOSTS[gradio])
    if not Path(python).exists():
        unavailable(f"no host venv at {python} (bash tests/webui_host/make_venvs.sh)", REQUIRED_BY)
    server = Server(python, full_size_photo)
    try:
        assert server.version.split(".")[0] == gradio.removeprefix("gradio"), server.version
        yield gradio, server
    finally:
        server.stop()


@telling
def test_send_edit_and_send_back_in_the_tab(browser, host):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    gradio, server = host
    tab = Tab(browser)
    browser.get(server.url)
    tab.wait.until(lambda b: tab.shown("#txt2img_send_to_portraitgan"))

    # 1. From the txt2img gallery to the tab: the photo arrives, the face is found, a render shows.
    started = time.perf_counter()
    tab.click("#txt2img_send_to_portraitgan")
    tab.wait.until(lambda b: tab.shown("#portraitgan-status"))  # the tab switch (portraitgan.js)
    tab.wait.until(lambda b: tab.status().startswith(("1 face", "Error")))
    assert tab.status().startswith("1 face"), tab.status()
    first = tab.wait.until(lambda b: len(pair := tab.result_pair()) >= 2 and pair)
    sent = time.perf_counter() - started

    # 2. A smile, typed + Enter.
    number = tab.css("#portraitgan-slider-smile input[type=number]")
    tab.b.execute_script("arguments[0].scrollIntoView({block: 'center'})", number)
    number.send_keys(Keys.CONTROL, "a")
    number.send_keys("0.8", Keys.ENTER)
    started = time.perf_counter()
    smiled_pair = tab.new_pair(first)
    smiled = time.perf_counter() - started
    assert "Error" not in tab.status(), tab.status()

    # 3. Click-to-move: a landmark near the crop view's middle (the nose), then 12 px above it.
    crop = tab.wait.until(lambda b: b.find_element(tab.By.CSS_SELECTOR, "#portraitgan-crop-view img"))
    tab.b.execute_script("arguments[0].scrollIntoView({block: 'center'})", crop)
    tab.wait.until(lambda b: crop.size["width"] > 100)
    ActionChains(browser).move_to_element(crop).click().perform()
    tab.wait.until(lambda b: "picked" in tab.status().lower() or "point" in tab.status().lower())
    ActionChains(browser).move_to_element_with_offset(crop, 0, -12).click().perform()
    tab.wait.until(lambda b: "1 point(s) moved" in tab.status() or tab.status().startswith("**Error"))
    assert "1 point(s) moved" in tab.status(), tab.status()
    tab.new_pair(smiled_pair)

    # The full-size result follows the preview; the tab as it is now goes into the docs.
    tab.wait.until(lambda b: tab.images("#portraitgan-result"))
    browser.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.5)
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / f"webui_tab_{gradio}.png"))
    if os.environ.get("PORTRAITGAN_UPDATE_DOCS") == "1":
        shutil.copyfile(ARTIFACTS / f"webui_tab_{gradio}.png", DOCS / f"webui_tab_{gradio}.png")

    # 4. Back to the host: Send to img2img.
    send = tab.button("Send to img2img", "#portraitgan-send")
    tab.b.execute_script("arguments[0].scrollIntoView({block: 'center'})", send)
    send.click()
    tab.wait.until(lambda b: tab.shown("#img2img_image"))
    tab.wait.until(lambda b: tab.images("#img2img_image"))
    assert browser.save_screenshot(str(ARTIFACTS / f"webui_tab_{gradio}_img2img.png"))

    timings = server.timings()
    server_side = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings)
    REPORT.append(
        f"gradio {server.version} (headless Chromium {SIZE[0]}x{SIZE[1]}, embedded demo model, 1350 px photo, "
        f"{os.cpu_count()} CPU(s), load {os.getloadavg()[0]:.1f}): Send to PortraitGAN -> first result "
        f"{sent:.2f} s; smile typed + Enter -> new result {smiled:.2f} s; server: {server_side}"
    )
    print("\n" + REPORT[-1])


@telling
def test_a_drag_renders_once_and_the_result_stays_in_view(browser, host):
    from selenium.webdriver.common.action_chains import ActionChains

    gradio, server = host
    tab = Tab(browser)
    browser.get(server.url)
    tab.wait.until(lambda b: tab.shown("#txt2img_send_to_portraitgan"))
    tab.click("#txt2img_send_to_portraitgan")
    tab.wait.until(lambda b: tab.shown("#portraitgan-status") and tab.status().startswith(("1 face", "Error")))
    assert tab.status().startswith("1 face"), tab.status()
    previous = tab.settle(server)

    # Mouse: every release renders, timed from the release to the new "after" image.
    smile = tab.css("#portraitgan-slider-smile input[type=range]")
    tab.b.execute_script("arguments[0].scrollIntoView({block: 'center'})", smile)
    latencies, first_event = [], len(server.timings())
    for offset in (60, -30, 45, -50, 35, -25, 55):  # from the track's middle (0): a new value each time
        ActionChains(browser).click_and_hold(smile).move_by_offset(offset, 0).release().perform()
        released = time.perf_counter()
        previous = tab.new_pair(previous)
        latencies.append(time.perf_counter() - released)
        previous = tab.settle(server, 0.5)

    # The server's re-renders; under 3.41 each is followed by a repeat that renders nothing (< 20 ms).
    server_side = [seconds for name, seconds in server.timings()[first_event:] if name == "rerender" and seconds > 0.02]

    # One slow drag (8 steps in 1.6 s) is one render and one new picture: none of its in-between values.
    tab.watch_after()
    before = server.renders()
    chain = ActionChains(browser).click_and_hold(smile)
    for _ in range(8):
        chain = chain.move_by_offset(8, 0).pause(0.2)
    chain.perform()  # the button still down: no render yet (gradio has seen none of the steps), and
    time.sleep(0.5)  # the number box follows the thumb all the same (the script draws it; gradio can't)
    held_renders = server.renders() - before
    number = tab.css("#portraitgan-slider-smile input[type=number]").get_attribute("value")
    assert held_renders == 0, f"{held_renders} render(s) while the button was down"
    assert float(number) == float(smile.get_attribute("value")) > 0.0, (number, smile.get_attribute("value"))
    ActionChains(browser).release().perform()
    previous = tab.new_pair(previous)
    previous = tab.settle(server)
    time.sleep(1.0)  # a late picture, if any, would show by now
    pictures, drag_renders = tab.after_pictures(), server.renders() - before
    assert drag_renders == 1, f"one drag ran {drag_renders} renders"
    assert len(pictures) == 2 and pictures[-1] == previous[-1], f"one drag showed {len(pictures) - 1} pictures"

    # Two drags in a row, the second released while the first one's render runs: both values render,
    # the second last (gradio 3.41 drops an event while its job is on: compat.slider_renders follows it).
    before = server.renders()
    ActionChains(browser).click_and_hold(smile).move_by_offset(40, 0).release().perform()
    ActionChains(browser).click_and_hold(smile).move_by_offset(-40, 0).release().perform()
    previous = tab.settle(server, 1.5)
    assert server.renders() - before == 2, f"two drags in a row ran {server.renders() - before} renders"

    # Scrolled down to the crop view (below the last slider), then to the page's end, the result
    # stays in the window.
    result_col = "#portraitgan-result-col"
    position = browser.execute_script(f"return getComputedStyle(document.querySelector('{result_col}')).position")
    assert position == "sticky", position
    for scroll in ("arguments[0].scrollIntoView({block: 'end'})", "window.scrollTo(0, document.body.scrollHeight)"):
        browser.execute_script(scroll, tab.css("#portraitgan-crop-view"))
        time.sleep(0.3)
        assert browser.execute_script("return window.scrollY") > 300  # the page did scroll
        assert tab.in_window("#portraitgan-before-after"), "the result scrolled out of view"
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / f"webui_tab_{gradio}_scrolled.png"))

    timed = ", ".join(f"{value:.2f}" for value in latencies)
    REPORT.append(
        f"gradio {server.version} (headless Chromium {SIZE[0]}x{SIZE[1]}, embedded demo model, 1350 px photo, "
        f"{os.cpu_count()} CPU(s), load {os.getloadavg()[0]:.1f}): slider release -> new result image, smile: "
        f"{timed} s (median {statistics.median(latencies):.2f} s; the server's re-render: median "
        f"{statistics.median(server_side):.2f} s of {len(server_side)}); one slow drag (8 steps in 1.6 s): "
        f"{len(pictures) - 1} new picture, {drag_renders} render"
    )
    print("\n" + REPORT[-1])


@telling
def test_a_lost_release_and_two_fingers_render_each_sliders_value(browser, host):
    """javascript/portraitgan.js holds a slider per pointer: a right-button press with no release (a
    context menu takes the mouseup) holds nothing, so an arrow key then is one render of its value;
    two fingers on two sliders, the first lifted first, render both sliders' final values."""
    from selenium.webdriver.common.keys import Keys

    gradio, server = host
    tab = Tab(browser)
    tab.open(server)
    smile = tab.css("#portraitgan-slider-smile input[type=range]")
    tab.b.execute_script("arguments[0].scrollIntoView({block: 'center'})", smile)
    time.sleep(0.3)
    x, y = tab.centre(smile)

    # A right-button press on the smile slider and no release, then ArrowRight in it.
    before, start = len(server.rendered()), float(smile.get_attribute("value"))
    tab.mouse("mousePressed", x, y, button="right", buttons=2)
    tab.b.execute_script("arguments[0].focus()", smile)
    tab.b.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
    stepped = float(smile.get_attribute("value"))
    tab.wait.until(lambda b: len(server.rendered()) > before)
    tab.settle(server, 1.5)
    rendered = [r["smile"] for r in server.rendered()[before:]]
    tab.mouse("mouseReleased", x, y, button="right", buttons=0)
    assert stepped > start and rendered == [pytest.approx(stepped)], (start, stepped, rendered)

    # Two fingers: the first drags the smile slider, the second goes down on the next slider and
    # drags it; the first lifts first, the second moves on and lifts.
    ranges = [
        r for r in tab.b.find_elements(tab.By.CSS_SELECTOR, "#portraitgan-editor input[type=range]") if r.is_displayed()
    ]
    other = ranges[[r.id for r in ranges].index(smile.id) + 1]  # the next slider shown
    other_id = tab.b.execute_script("return arguments[0].closest('[id^=portraitgan-slider-]').id", other)
    other_name = other_id.removeprefix("portraitgan-slider-")
    tab.b.execute_script("arguments[0].scrollIntoView({block: 'center'})", other)
    time.sleep(0.3)
    (ax, ay), (bx, by) = tab.centre(smile), tab.centre(other)
    before, other_start = len(server.rendered()), float(other.get_attribute("value"))
    tab.touch("touchStart", {0: (ax, ay)})
    tab.touch("touchMove", {0: (ax + 60, ay)})
    tab.touch("touchStart", {0: (ax + 60, ay), 1: (bx, by)})
    tab.touch("touchMove", {0: (ax + 60, ay), 1: (bx - 40, by)})
    tab.touch("touchEnd", {0: (ax + 60, ay)})  # finger 0 lifts (CDP's touchEnd ends the points named)
    tab.touch("touchMove", {1: (bx - 70, by)})
    tab.touch("touchEnd", {1: (bx - 70, by)})
    final = {"smile": float(smile.get_attribute("value")), other_name: float(other.get_attribute("value"))}
    tab.wait.until(lambda b: len(server.rendered()) > before)
    tab.settle(server, 1.5)
    last = server.rendered()[-1]
    assert final["smile"] != stepped and final[other_name] != other_start, final  # both fingers moved their slider
    assert {name: last[name] for name in final} == pytest.approx(final), (final, server.rendered()[before:])
    assert len(server.rendered()) - before == 2, server.rendered()[before:]  # one render per finger


@telling
def test_send_to_is_reachable_in_the_result_column_on_a_laptop_screen(browser, host):
    """At 1366x768 the result column (about 990 px) is taller than the window: with the controls
    scrolled down to the crop view, the column scrolls on its own to its Send to img2img button,
    which is then wholly in the window and on top there, the page not scrolled by it."""
    gradio, server = host
    tab = Tab(browser)
    metrics = {"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        tab.open(server)
        tab.wait.until(lambda b: tab.images("#portraitgan-result"))  # the full-size result: the column's tallest
        time.sleep(0.5)
        browser.execute_script("arguments[0].scrollIntoView({block: 'end'})", tab.css("#portraitgan-crop-view"))
        time.sleep(0.3)
        scrolled = browser.execute_script("return window.scrollY")
        assert scrolled > 300 and tab.in_window("#portraitgan-before-after"), scrolled
        send = tab.button("Send to img2img", "#portraitgan-send")
        # What the mouse wheel over the column does: scroll the column until the button shows.
        reached = browser.execute_script(
            """const column = document.querySelector('#portraitgan-result-col'), button = arguments[0];
            const below = button.getBoundingClientRect().bottom - column.getBoundingClientRect().bottom;
            column.scrollTop += Math.max(0, below + 8);
            const r = button.getBoundingClientRect();
            const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
            return [r.top >= 0 && r.bottom <= innerHeight && r.left >= 0 && r.right <= innerWidth,
                    !!top && button.contains(top), column.scrollTop, window.scrollY,
                    [r.left, r.top, r.right, r.bottom, innerWidth, innerHeight, column.scrollHeight]];""",
            send,
        )
        assert reached[0] and reached[1], f"Send to img2img not reachable in the column: {reached}"
        assert reached[3] == scrolled, "the page scrolled, not the column"
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / f"webui_tab_{gradio}_laptop.png"))
    finally:
        size = {"width": SIZE[0], "height": SIZE[1], "deviceScaleFactor": 1, "mobile": False}
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", size)
