"""Headless Chromium for the browser tests (:func:`chromium`, shared with tests/test_webui_browser.py),
the app served for them (:func:`serve_app`, with the counters it keeps), and the app's page as
tests/test_app_browser*.py read and drive it (:class:`Page`). Not a test module: selenium is imported
when a browser or a ``Page`` is made, so importing this needs nothing that the browser tests may lack
(they skip without Chromium)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
TOAST = ".toast-body, [data-testid='toast-body']"
DESKTOP, PHONE = (1400, 1000), (390, 844)
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
#: Calls of the re-render handler, counted by the server (held-key debouncing is checked on it).
RERENDERS: list[float] = []
#: Re-renders that made a new picture (a call that changed nothing on the screen is not one).
RENDERS: list[float] = []
#: Photo jobs that did work: True for a file, False for an emptied box (gradio's repeated change
#: events, which the handler drops at once, are not counted).
PHOTOS: list[bool] = []
#: Seconds each re-render waits before it runs: lets the test look at the page while a render is on.
SLOW_RENDER = [0.0]


def unavailable(reason: str, required_by: str = "PORTRAITGAN_BROWSER_TESTS") -> NoReturn:
    """Skip the test for ``reason``; fail it where the environment variable ``required_by`` is "required"."""
    if os.environ.get(required_by) == "required":
        pytest.fail(f"browser test required but {reason}")
    pytest.skip(reason)


@contextlib.contextmanager
def chromium(window: tuple[int, int], required_by: str = "PORTRAITGAN_BROWSER_TESTS") -> Iterator[Any]:
    """Headless Chromium (selenium's ``webdriver.Chrome``) with a ``window`` (width, height) and a
    fresh profile, quit at the end; skipped (see :func:`unavailable`) without selenium, Chromium or
    chromedriver."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install -e '.[dev]')", required_by)
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not found or not driver:
        unavailable("chromium / chromedriver not found (apt-get install chromium chromium-driver)", required_by)
    options = webdriver.ChromeOptions()
    options.binary_location = found
    for flag in (*CHROMIUM_FLAGS, f"--window-size={window[0]},{window[1]}"):
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        session = webdriver.Chrome(service=Service(driver), options=options)  # an explicit driver: no download
        try:
            yield session
        finally:
            session.quit()


@contextlib.contextmanager
def serve_app(model: Any) -> Iterator[str]:
    """The app on ``model``, served on a free local port until the end; yields its URL. Its
    re-renders are counted (:data:`RERENDERS`, :data:`RENDERS`) and slowed by :data:`SLOW_RENDER`,
    its photo jobs counted (:data:`PHOTOS`)."""
    from portraitgan_hub_space import app

    rerender, photo_changed = app.Handlers.rerender, app.Handlers.photo_changed
    skip = type(app.gr.skip())

    def counted(self, *args):
        RERENDERS.append(time.perf_counter())
        time.sleep(SLOW_RENDER[0])
        outputs = rerender(self, *args)
        if not isinstance(outputs[1], skip):
            RENDERS.append(time.perf_counter())
        return outputs

    def counted_photo(self, image, *args):
        outputs = photo_changed(self, image, *args)
        if not all(isinstance(output, skip) for output in outputs[2:]):
            PHOTOS.append(image is not None)
        return outputs

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        patch.setattr(app.Handlers, "rerender", counted)
        patch.setattr(app.Handlers, "photo_changed", counted_photo)
        demo = app.build_demo(model)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        app.launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True)
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            demo.close()


def watch_after(browser: Any, selector: str) -> None:
    """From now on, record in the page every new picture the before/after view ``selector`` shows as
    its "after" image (its second ``img``); :func:`after_pictures` reads them."""
    browser.execute_script(
        """
        const view = document.querySelector(arguments[0]);
        const shown = window.portraitganAfter = [];
        const note = () => {
          const images = view.querySelectorAll('img');
          const src = images.length === 2 ? images[1].src : null;
          if (src && shown[shown.length - 1] !== src) shown.push(src);
        };
        note();
        new MutationObserver(note).observe(view, {subtree: true, childList: true, attributes: true});""",
        selector,
    )


def after_pictures(browser: Any) -> list[str]:
    """The "after" pictures recorded since :func:`watch_after`, in order (their ``src``)."""
    return browser.execute_script("return window.portraitganAfter || []")


class Page:
    """What the tests read and do on the app's page."""

    def __init__(self, browser, size: tuple[int, int]) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.b, self.By = browser, By
        self.wait = WebDriverWait(browser, 60, poll_frequency=0.01)
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": size[0],
                "height": size[1],
                "deviceScaleFactor": 1,
                "mobile": size[0] < 600,
            },
        )

    def open(self, url: str) -> None:
        self.b.get(url)
        self.wait.until(lambda b: b.find_elements(self.By.CSS_SELECTOR, "#slider-smile input[type=range]"))
        # The page's load events (the preview size, the slider script) run once it is connected: an
        # upload sent before that was seen to be lost once in CI. Wait for the status line and settle.
        self.wait.until(lambda b: b.find_elements(self.By.CSS_SELECTOR, "#status") and self.status().strip())
        time.sleep(0.5)

    def css(self, selector: str):
        return self.b.find_element(self.By.CSS_SELECTOR, selector)

    def results(self) -> list[str]:
        """The sources of the before/after images that are loaded and shown."""
        return self.b.execute_script("""
            return [...document.querySelectorAll('#before-after img')]
              .filter(i => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0)
              .map(i => i.src);""")

    def upload(self, path: Path) -> None:
        self.wait.until(lambda b: b.find_element(self.By.CSS_SELECTOR, "#input-image input[type=file]")).send_keys(
            str(path)
        )

    def status(self) -> str:
        return self.css("#status").text

    def slider_value(self, name: str) -> float:
        return float(self.css(f"#slider-{name} input[type=number]").get_attribute("value"))

    def shown(self) -> tuple[int, int]:
        """(before/after images laid out on the page, spinners or progress bars over the view).

        An image whose new source is still loading keeps showing its old picture, so it counts.
        """
        return tuple(
            self.b.execute_script("""
            const view = document.querySelector('#before-after');
            const images = [...view.querySelectorAll('img')].filter(i => i.getBoundingClientRect().width > 0);
            const busy = [...view.querySelectorAll('.loader, .eta-bar, .progress-bar, .progress-text')]
              .filter(e => e.offsetParent !== null);
            return [images.length, busy.length];""")
        )

    def new_result(self, seen: list[str], watch: list[tuple[int, int]] | None = None) -> list[str]:
        """Wait until the "after" image differs from ``seen``; record what the view showed meanwhile."""

        def changed(_):
            if watch is not None:
                watch.append(self.shown())
            sources = self.results()
            return len(sources) == 2 and sources != seen and sources

        return self.wait.until(changed)

    def rect(self, selector: str) -> dict:
        return self.b.execute_script(
            "const r = arguments[0].getBoundingClientRect();return {top: r.top, bottom: r.bottom, height: r.height};",
            self.css(selector),
        )

    def in_view(self, selector: str) -> bool:
        """Whether the element is laid out and wholly inside the window (to a pixel's rounding)."""
        return bool(
            self.b.execute_script(
                """const r = document.querySelector(arguments[0]).getBoundingClientRect();
                return r.width > 0 && r.top >= -1 && r.left >= -1 && r.bottom <= innerHeight + 1
                  && r.right <= innerWidth + 1;""",
                selector,
            )
        )

    def open_accordion(self, title: str) -> None:
        """Open the closed accordion whose label starts with ``title``."""
        for label in self.b.find_elements(self.By.CSS_SELECTOR, ".label-wrap"):
            if label.text.strip().startswith(title) and "open" not in (label.get_attribute("class") or ""):
                label.click()

    def choose(self, radio: str, choice: str) -> None:
        """Pick ``choice`` in the radio group ``radio`` (a selector)."""
        for label in self.b.find_elements(self.By.CSS_SELECTOR, f"{radio} label"):
            if label.text.strip() == choice:
                self.b.execute_script("arguments[0].scrollIntoView({block: 'center'})", label)
                label.click()
                return
        raise AssertionError(f"no choice {choice!r} in {radio}")

    def picture(self, selector: str) -> dict:
        """Where the picture of the image ``selector`` is drawn: its natural size and, in CSS px, its
        left and top in the window and its scale (``object-fit: contain`` letterboxing taken off)."""
        return self.b.execute_script(
            """const i = document.querySelector(arguments[0]); const r = i.getBoundingClientRect();
            const scale = Math.min(r.width / i.naturalWidth, r.height / i.naturalHeight);
            return {width: i.naturalWidth, height: i.naturalHeight, scale: scale,
                    left: r.left + (r.width - i.naturalWidth * scale) / 2,
                    top: r.top + (r.height - i.naturalHeight * scale) / 2};""",
            selector,
        )

    def click_picture(self, selector: str, xy) -> None:
        """Click the image ``selector`` at its pixel ``xy`` (picture pixels, as ``gr.SelectData.index``)."""
        from selenium.webdriver.common.actions.action_builder import ActionBuilder

        box = self.picture(selector)
        actions = ActionBuilder(self.b)
        x, y = box["left"] + (xy[0] + 0.5) * box["scale"], box["top"] + (xy[1] + 0.5) * box["scale"]
        actions.pointer_action.move_to_location(round(x), round(y)).click()
        actions.perform()

    def watch_after(self) -> None:
        """From now on, record every picture the "after" image shows (:meth:`after_pictures`)."""
        watch_after(self.b, "#before-after")

    def after_pictures(self) -> list[str]:
        return after_pictures(self.b)

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        assert self.b.save_screenshot(str(ARTIFACTS / name))


def settle(page: Page, quiet_s: float = 1.0) -> list[str]:
    """Wait until no render has started for ``quiet_s`` seconds; the result shown then."""
    page.wait.until(lambda b: not RERENDERS or time.perf_counter() - RERENDERS[-1] > quiet_s)
    time.sleep(0.3)  # the last one's image arrives
    return page.wait.until(lambda b: len(sources := page.results()) == 2 and sources)


def visible_error_badges(page: Page) -> int:
    """Gradio's red "Error" labels over output components (status trackers in the error state)."""
    return page.b.execute_script("""
        return [...document.querySelectorAll('.wrap.error, .error .error, [class*="error"]')]
          .filter(e => e.offsetParent !== null && /^\\s*Error\\s*$/.test(e.textContent)).length;""")


#: Drops a file made in the page (``arguments``: box selector, file name, MIME type) on a box's upload area.
DROP_JS = """
const box = document.querySelector(arguments[0]);
const target = box.querySelector('.upload-container, img') || box;
const files = new DataTransfer();
files.items.add(new File(['not a picture'], arguments[1], {type: arguments[2]}));
for (const kind of ['dragenter', 'dragover', 'drop']) {
  target.dispatchEvent(new DragEvent(kind, {bubbles: true, cancelable: true, dataTransfer: files}));
}"""
