"""The fake WebUI host's server and the PortraitGAN tab's page object, for tests/test_webui_browser.py.

:class:`Server` runs tests/webui_host/serve.py in a host venv's Python and reads what it reports;
:class:`Tab` drives the tab in the selenium ``browser`` (CSS lookups, pictures, the status line,
mouse and touch events through CDP); :func:`telling` prints serve.py's output when a test fails.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from app_browser_page import after_pictures, watch_after

ROOT = Path(__file__).resolve().parents[1]
SERVE = ROOT / "tests" / "webui_host" / "serve.py"


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

    def renders(self) -> int:
        """How many re-renders (slider, option) made a new picture (serve.py counts them)."""
        with urllib.request.urlopen(self.url + "portraitgan-test/renders", timeout=10) as answer:
            return int(json.load(answer))

    def rendered(self) -> list[dict[str, float]]:
        """The slider values (by expression name) of each re-render that made a new picture."""
        with urllib.request.urlopen(self.url + "portraitgan-test/rendered", timeout=10) as answer:
            return json.load(answer)

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

    def settle(self, server: Server, quiet_s: float = 1.0) -> list[str]:
        """Wait until the server has run no event for ``quiet_s`` seconds; the before/after shown then."""
        seen, since = None, time.perf_counter()
        while time.perf_counter() - since < quiet_s:
            time.sleep(0.1)
            now = len(server.timings())
            if now != seen:
                seen, since = now, time.perf_counter()
        return self.wait.until(lambda b: len(pair := self.result_pair()) >= 2 and pair)

    def watch_after(self) -> None:
        """From now on, record every picture the "after" image shows (:meth:`after_pictures`)."""
        watch_after(self.b, "#portraitgan-before-after")

    def after_pictures(self) -> list[str]:
        return after_pictures(self.b)

    def in_window(self, selector: str) -> bool:
        """Whether the element is laid out and wholly inside the window (to a pixel's rounding)."""
        return bool(
            self.b.execute_script(
                """const r = document.querySelector(arguments[0]).getBoundingClientRect();
                return r.width > 0 && r.top >= -1 && r.left >= -1 && r.bottom <= innerHeight + 1
                  && r.right <= innerWidth + 1;""",
                selector,
            )
        )

    def open(self, server: Server) -> list[str]:
        """The host's page, the photo sent to the tab and its first render settled; the pair shown."""
        self.b.get(server.url)
        self.wait.until(lambda b: self.shown("#txt2img_send_to_portraitgan"))
        self.click("#txt2img_send_to_portraitgan")
        self.wait.until(lambda b: self.shown("#portraitgan-status") and self.status().startswith(("1 face", "Error")))
        assert self.status().startswith("1 face"), self.status()
        return self.settle(server)

    def centre(self, element) -> tuple[float, float]:
        """The element's middle in the window's CSS px (where CDP input events go)."""
        box = self.b.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return [r.x, r.y, r.width, r.height]", element
        )
        return box[0] + box[2] / 2, box[1] + box[3] / 2

    def mouse(self, kind: str, x: float, y: float, button: str = "left", buttons: int = 1) -> None:
        """One CDP mouse event (``Input.dispatchMouseEvent``): nothing but it, no release after a press."""
        event = dict(type=kind, x=x, y=y, button=button, buttons=buttons, clickCount=1)
        self.b.execute_cdp_cmd("Input.dispatchMouseEvent", event)

    def touch(self, kind: str, points: dict[int, tuple[float, float]]) -> None:
        """One CDP touch event (``Input.dispatchTouchEvent``): ``points`` the fingers down, by id."""
        touch_points = [dict(x=x, y=y, id=finger) for finger, (x, y) in points.items()]
        self.b.execute_cdp_cmd("Input.dispatchTouchEvent", dict(type=kind, touchPoints=touch_points))

    def button(self, text: str, inside: str):
        for element in self.b.find_elements(self.By.CSS_SELECTOR, f"{inside} button"):
            if element.text.strip() == text:
                return element
        raise AssertionError(f"no button {text!r} in {inside}")


def telling(test):
    """``test`` (whose ``host`` argument is the fixture's) printing what serve.py said when it fails."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        try:
            return test(*args, **kwargs)
        except BaseException:
            print("serve.py said:\n" + "".join(kwargs["host"][1].lines[-60:]))
            raise

    return run
