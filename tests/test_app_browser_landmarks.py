"""Click-to-move in a real browser (headless Chromium, the embedded demo model), on the desktop and
on a phone.

The crop view shows the current result (here: a smile typed into its slider), not the uploaded face,
and the before/after result stays wholly on the screen beside it while points are picked and moved.
On a phone (390x844) the zoomed mouth and eye views draw every point at least 24 CSS px from every
other, and a tap on each dot picks that point. Needs Chromium as tests/test_app_browser.py does.
Leaves ``app-click-to-move.png``, ``app-phone-zoom-mouth.png`` and ``app-phone-zoom-left-eye.png``
in ``test-artifacts/``.
"""

import io
import itertools
import urllib.request

import numpy as np
import pytest
from app_browser_page import DESKTOP, PHONE, Page, chromium, serve_app, settle
from PIL import Image
from portraitgan_hub_space import app, crop_zoom, pipeline
from portraitgan_hub_space.style import PREVIEW_SIDE_JS

from portraitgan_hub.default_model import load_model
from portraitgan_hub.faces.alignment import Alignment
from portraitgan_hub.faces.expressions import EXPRESSION_NAMES

#: The smallest distance between two dots on a phone that a finger tells apart.
TAP_CSS_PX = 24


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def browser():
    with chromium(DESKTOP) as session:
        yield session


@pytest.fixture(scope="module")
def url(model):
    with serve_app(model) as address:
        yield address


def _screen(model, photo, side: int, smile: float = 0.0, zoom: str = "whole face"):
    """The session and the crop view the app makes for ``photo`` at this preview side and smile."""
    handlers = app.Handlers(model)
    options = ("photo", "photo", 1.0, False, "whole picture", 1.0, "all", side, zoom)
    sliders = [0.0] * len(EXPRESSION_NAMES)
    session = handlers.photo_changed(str(photo), None, *options, *sliders)[3]
    sliders[EXPRESSION_NAMES.index("smile")] = smile
    session, _, view, *_ = handlers.rerender(session.with_last(None), *options, *sliders)
    return session, view


def _mouth(image: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    """The mouth's box of a crop view at a quarter of its size: the JPEG, the dots' edges and the
    preview's own size (the page's, not quite the test's) fade; the smile's move does not."""
    part = image.convert("RGB").crop(box)
    return np.asarray(part.resize((part.width // 4, part.height // 4), Image.Resampling.BOX), dtype=np.float64)


def _shown_crop(page: Page) -> Image.Image:
    source = page.css("#crop-view img").get_attribute("src")
    with urllib.request.urlopen(source, timeout=30) as answer:
        return Image.open(io.BytesIO(answer.read())).convert("RGB")


def _picture_size(page: Page) -> tuple[int, int]:
    picture = page.picture("#crop-view img")
    return picture["width"], picture["height"]


def _undo(page: Page):
    return next(b for b in page.b.find_elements(page.By.CSS_SELECTOR, "#landmarks button") if b.text.strip() == "Undo")


def test_the_crop_view_shows_the_result_and_the_result_stays_in_view_while_points_move(
    browser, url, model, full_size_photo
):
    from selenium.webdriver.common.keys import Keys

    page = Page(browser, DESKTOP)
    page.open(url)
    page.upload(full_size_photo)
    first = page.wait.until(lambda b: len(sources := page.results()) == 2 and sources)
    number = page.css("#slider-smile input[type=number]")
    number.clear()
    number.send_keys("1.5", Keys.ENTER)
    page.new_result(first)
    settle(page)
    page.open_accordion("Move single landmarks")
    page.wait.until(lambda b: b.find_elements(page.By.CSS_SELECTOR, "#crop-view img"))
    browser.execute_script("arguments[0].scrollIntoView({block: 'end'})", page.css("#crop-view"))

    # The crop view is the smiling result, not the uploaded face.
    side = browser.execute_script(f"return ({PREVIEW_SIDE_JS})()")
    session, expected = _screen(model, full_size_photo, side, smile=1.5)
    target = session.last.target
    unedited = crop_zoom.draw(
        crop_zoom.ShownResult(session.aligned.crop, Alignment(np.eye(3)[:2], session.aligned.crop.width)),
        pipeline.crop_zoom_of(session, target),
        target,
    )
    page.wait.until(lambda b: _shown_crop(page).size == expected.size)
    zoom = pipeline.crop_zoom_of(session, target)
    mouth = zoom.to_view(target[48:68])
    (left, top), (right, bottom) = (mouth.min(0) - 24).astype(int), (mouth.max(0) + 24).astype(int)
    shown = _mouth(_shown_crop(page), (left, top, right, bottom))
    to_result = np.abs(shown - _mouth(expected, (left, top, right, bottom))).mean()
    to_upload = np.abs(shown - _mouth(unedited, (left, top, right, bottom))).mean()
    assert to_result < 4 and to_upload > 2.5 * to_result, (to_result, to_upload)

    # Pick the chin, move it down: the result and the crop view stay wholly on the screen.
    assert page.in_view("#crop-view img") and page.in_view("#before-after"), "the result is not in view"
    chin = zoom.to_view(target[8:9])[0]
    page.click_picture("#crop-view img", chin)
    page.wait.until(lambda b: "Point 8 picked" in page.status())
    assert page.in_view("#before-after") and page.in_view("#crop-view img")
    before = page.results()
    page.click_picture("#crop-view img", chin + [0, 24])
    page.wait.until(lambda b: "1 point(s) moved" in page.status())
    page.new_result(before)
    assert page.in_view("#before-after") and page.in_view("#crop-view img"), "the result left the screen"
    page.screenshot("app-click-to-move.png")


def test_on_a_phone_the_zoomed_mouth_and_eye_make_every_point_tappable(browser, url, model, london_photo):
    photo = london_photo("005", "neutral")
    page = Page(browser, PHONE)
    try:
        page.open(url)
        page.upload(photo)
        page.wait.until(lambda b: len(page.results()) == 2)
        page.open_accordion("Move single landmarks")
        for zoom in ("mouth", "left eye"):
            session, expected = _screen(model, photo, 480, zoom=zoom)
            page.choose("#crop-zoom", zoom)
            page.wait.until(lambda b, size=expected.size: _picture_size(page) == size)
            target = session.last.target
            geometry = pipeline.crop_zoom_of(session, target, zoom)
            dots = crop_zoom.dot_positions(geometry, target)
            browser.execute_script("arguments[0].scrollIntoView({block: 'end'})", page.css("#crop-view"))
            scale = page.picture("#crop-view img")["scale"]
            closest = min(np.hypot(*(a - b)) for a, b in itertools.combinations(dots, 2)) * scale
            assert closest >= TAP_CSS_PX, f"{zoom}: two dots {closest:.1f} CSS px apart"
            assert page.in_view("#before-after") and page.in_view("#crop-view img")
            assert page.rect("#crop-view img")["top"] >= page.rect("#result-col")["bottom"] - 1  # not under it
            page.screenshot(f"app-phone-zoom-{zoom.replace(' ', '-')}.png")
            for index, dot in zip(geometry.indices, dots):  # each dot, tapped, picks its point
                page.click_picture("#crop-view img", dot)
                page.wait.until(lambda b: "picked" in page.status() or "No landmark" in page.status())
                assert f"Point {index} picked" in page.status(), (zoom, index, page.status())
                _undo(page).click()  # the pick is cancelled
                page.wait.until(lambda b: "Pick cancelled" in page.status())
                browser.execute_script("arguments[0].scrollIntoView({block: 'end'})", page.css("#crop-view"))
        lower = dots[list(geometry.indices).index(46)]  # the left eye's lower lid, pulled down
        before = page.results()
        page.click_picture("#crop-view img", lower)
        page.wait.until(lambda b: "Point 46 picked" in page.status())
        page.click_picture("#crop-view img", lower + [0, 30])
        page.wait.until(lambda b: "1 point(s) moved" in page.status())
        page.new_result(before)
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
