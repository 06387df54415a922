"""Screenshots of the app with the embedded demo checkpoint, for the README (docs/app/).

    python benchmarks/app_screenshots.py [--photo tests/assets/london/019_neutral.jpg] [--out docs/app]

Starts the app on a free local port with ``DEFAULT_MODEL``, drives headless Chromium (needs
``chromium``, ``chromedriver`` and selenium, as the browser test does), uploads a held-out London
photo, types a smile, then turns the picture into a sketch, and saves ``app-demo-smile.jpg`` and
``app-demo-sketch.jpg`` at desktop size (1400x1000). The browser test (tests/test_app_browser.py)
checks the behaviour, with random weights; this only shows what a user sees with the real ones.
"""

from __future__ import annotations

import argparse
import io
import shutil
import socket
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photo", type=Path, default=ROOT / "tests/assets/london/019_neutral.jpg")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/app")
    parser.add_argument("--smile", default="1.2")
    args = parser.parse_args(argv)

    from portraitgan_hub_space import app
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from portraitgan_hub import DEFAULT_MODEL, PortraitGAN

    demo = app.build_demo(PortraitGAN.from_pretrained(DEFAULT_MODEL).eval())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app.launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        try:
            wait = WebDriverWait(browser, 120, poll_frequency=0.05)
            browser.get(f"http://127.0.0.1:{port}/")
            wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#slider-smile input[type=range]"))

            def results() -> list[str]:
                return browser.execute_script("""
                    return [...document.querySelectorAll('#before-after img')]
                      .filter(i => i.complete && i.naturalWidth > 0).map(i => i.src);""")

            def save(name: str) -> None:
                browser.execute_script("document.querySelector('#editor').scrollIntoView();")
                # the full-size PNG follows the preview: wait until its download button is live
                wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "#download").is_enabled())
                time.sleep(1.5)  # the image fades in
                png = browser.get_screenshot_as_png()
                Image.open(io.BytesIO(png)).convert("RGB").save(args.out / name, quality=88)
                print(f"wrote {args.out / name}")

            browser.find_element(By.CSS_SELECTOR, "#input-image input[type=file]").send_keys(str(args.photo))
            first = wait.until(lambda b: len(sources := results()) == 2 and sources)
            number = browser.find_element(By.CSS_SELECTOR, "#slider-smile input[type=number]")
            number.clear()
            number.send_keys(args.smile, Keys.ENTER)
            smiled = wait.until(lambda b: len(sources := results()) == 2 and sources != first and sources)
            save("app-demo-smile.jpg")
            target = browser.find_element(By.CSS_SELECTOR, "#target input")
            target.click()
            target.send_keys(Keys.CONTROL, "a")
            target.send_keys("sketch", Keys.ENTER)
            wait.until(lambda b: len(sources := results()) == 2 and sources != smiled and sources)
            save("app-demo-sketch.jpg")
        finally:
            browser.quit()
            demo.close()


if __name__ == "__main__":
    main()
