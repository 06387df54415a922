"""The app's page as tests/test_app_browser.py reads and drives it in headless Chromium, and the
counters its server fixture keeps. Not a test module: selenium is imported when a ``Page`` is made,
so importing this needs nothing that the browser test may lack (it skips without Chromium)."""

import time
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
TOAST = ".toast-body, [data-testid='toast-body']"
DESKTOP, PHONE = (1400, 1000), (390, 844)
#: Calls of the re-render handler, counted by the server (held-key debouncing is checked on it).
RERENDERS: list[float] = []
#: Photo jobs that did work: True for a file, False for an emptied box (gradio's repeated change
#: events, which the handler drops at once, are not counted).
PHOTOS: list[bool] = []
#: Seconds each re-render waits before it runs: lets the test look at the page while a render is on.
SLOW_RENDER = [0.0]


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
