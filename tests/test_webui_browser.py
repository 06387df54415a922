"""The PortraitGAN tab in a real browser, inside the fake WebUI page, under each host's gradio.

For each host gradio (3.41.2 and 4.40.0, the venvs of tests/webui_host/make_venvs.sh; no host runs
gradio 6, whose app tests/test_app_browser.py drives), tests/webui_host/serve.py serves the fake
host's page (txt2img, img2img, extras, then the extension's tab) with the extension loaded as the
host loads it, in that venv's Python; headless Chromium (driven from here, as
tests/test_app_browser.py does) then:

1. clicks "Send to PortraitGAN" beside the txt2img gallery (the 1350 px photo as if generated):
   the host's paste-params event copies it into the tab's photo box and javascript/portraitgan.js
   switches to the tab, whose photo event finds the face and renders;
2. types a smile into the smile slider + Enter: a new "after" image (timed: key to image);
3. clicks a landmark in the crop view and then where it should go: "1 point(s) moved";
4. clicks "Send to img2img" under the full-size result: the img2img tab shows it.

Leaves in ``test-artifacts/``: ``webui_tab_gradio3.png`` and ``webui_tab_gradio4.png`` (the tab after
the edit; with ``PORTRAITGAN_UPDATE_DOCS=1`` also written over ``docs/webui_tab_gradio*.png``, the
pictures of docs/webui-extension.md), ``webui_tab_gradio*_img2img.png`` (img2img after "Send to
img2img") and ``webui-tab-latency.txt`` (the browser's and the server's times of each step).

Needs ``chromium``, ``chromedriver`` and selenium here, and the venvs (``VENV_ROOT``, default
/tmp/portraitgan-host-venvs). A missing venv or browser skips, unless
``PORTRAITGAN_WEBUI_BROWSER_TESTS=required`` (tests/webui_host/ci.sh), where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from app_browser_page import chromium, unavailable

ROOT = Path(__file__).resolve().parents[1]
SERVE = ROOT / "tests" / "webui_host" / "serve.py"
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """serve.py in ``python``, until :meth:`stop`; its output is kept for the failure message."""

    def __init__(self, python: str, sample: Path) -> None:
        self.port = _free_port()
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "PYTHONUNBUFFERED": "1"}
        env.pop("PYTHONPATH", None)
        self.process = subprocess.Popen(
            [python, str(SERVE), "--port", str(self.port), "--sample", str(sample)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.version = ""
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(240) or self.process.poll() is not None:
            self.stop()
            raise AssertionError("serve.py did not start:\n" + "".join(self.lines[-40:]))

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("SERVING "):
                self.version = line.split(" gradio ")[-1].strip()
                self.ready.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def timings(self) -> list[tuple[str, float]]:
        with urllib.request.urlopen(self.url + "portraitgan-test/timings", timeout=10) as answer:
            return [tuple(row) for row in json.load(answer)]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Tab:
    """What the test reads and does on the host's page."""

    def __init__(self, browser) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.b, self.By = browser, By
        self.wait = WebDriverWait(browser, 120, poll_frequency=0.02)

    def css(self, selector: str):
        return self.b.find_element(self.By.CSS_SELECTOR, selector)

    def shown(self, selector: str) -> bool:
        script = "const e = document.querySelector(arguments[0]); return !!e && e.offsetParent !== null;"
        return bool(self.b.execute_script(script, selector))

    def images(self, selector: str) -> list[str]:
        """Sources of the loaded, laid-out images under ``selector``."""
        return self.b.execute_script(
            """return [...document.querySelectorAll(arguments[0] + ' img')]
              .filter(i => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0)
              .map(i => i.src);""",
            selector,
        )

    def status(self) -> str:
        return self.css("#portraitgan-status").text

    def result_pair(self) -> list[str]:
        return self.images("#portraitgan-before-after")

    def new_pair(self, seen: list[str]) -> list[str]:
        def changed(_):
            pair = self.result_pair()
            return len(pair) >= 2 and pair != seen and pair

        return self.wait.until(changed)

    def click(self, selector: str) -> None:
        element = self.css(selector)
        self.b.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def button(self, text: str, inside: str):
        for element in self.b.find_elements(self.By.CSS_SELECTOR, f"{inside} button"):
            if element.text.strip() == text:
                return element
        raise AssertionError(f"no button {text!r} in {inside}")


@pytest.mark.parametrize("gradio", list(HOSTS))
def test_send_edit_and_send_back_in_the_tab(browser, gradio, full_size_photo):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    python = str(HOSTS[gradio])
    if not Path(python).exists():
        unavailable(f"no host venv at {python} (bash tests/webui_host/make_venvs.sh)", REQUIRED_BY)
    server = Server(python, full_size_photo)
    try:
        tab = Tab(browser)
        browser.get(server.url)
        tab.wait.until(lambda b: tab.shown("#txt2img_send_to_portraitgan"))
        major = server.version.split(".")[0]
        assert major == gradio.removeprefix("gradio"), server.version

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
    except Exception:
        print("serve.py said:\n" + "".join(server.lines[-60:]))
        raise
    finally:
        server.stop()
