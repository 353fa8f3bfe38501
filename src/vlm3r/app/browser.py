"""The app's page in a headless browser (Debian's chromium through chromium-driver, driven by Selenium), as its
browser tests and ``benchmarks/app.py`` read and drive it: starting the browser, waiting for what the page should
show, picking a dropdown's option, and reading the 3D view's canvas. Selenium is a test requirement, imported only
here, when a browser is started."""

from __future__ import annotations

import io
import shutil
import socket
import time

import numpy as np

from vlm3r.viz.scene3d import LINE_COLORS

# chromium without a GPU: WebGL through SwiftShader, which chromium now enables only when asked
BROWSER_ARGS = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--enable-unsafe-swiftshader",
                "--use-angle=swiftshader", "--window-size=1400,1000"]
WAIT_S = 60  # seconds the page may take to show what is expected (the first render compiles shaders)
POLL_S = 0.05  # seconds between two reads of the page
BOX_RED = LINE_COLORS["boxes"]  # as the viewer shows it (sRGB; the GLB stores it linear): a drawn scene has it
COLOR_TOLERANCE = 40  # per channel: the renderer blends a one-pixel line with the white around it


def browser_missing() -> str | None:
    """Why a browser cannot be driven here, or None."""
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        return ("no chromium and chromium-driver on this machine (.ci/run installs them: apt-get install chromium "
                "chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (make installs it with the test requirements)"
    return None


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_browser(url: str):
    """Headless chromium (``BROWSER_ARGS``) on ``url``: a Selenium driver, to ``quit()`` when done."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in BROWSER_ARGS:
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.get(url)
    return driver


def wait_for(check, what: str, timeout_s: float = WAIT_S, poll_s: float = POLL_S):
    """``check()``'s first truthy value within ``timeout_s``; an AssertionError naming ``what`` otherwise (an
    exception inside ``check``, such as an element not there yet, counts as not yet)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception:  # an element not there yet, or replaced while read
            value = None
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"not within {timeout_s:g} s: {what}")


def type_into(driver, element_id: str, typed: str) -> None:
    """Type the start of an option's label into a dropdown, its current label cleared first."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = driver.find_element(By.CSS_SELECTOR, f"#{element_id} input")
    field.click()
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.BACKSPACE)
    field.send_keys(typed)


def offered(driver, element_id: str, typed: str):
    """The dropdown's first option whose label starts with ``typed``, or None. The list filters (and renders
    again) as it is typed into: until then its first option may be another one."""
    from selenium.webdriver.common.by import By

    options = driver.find_elements(By.CSS_SELECTOR, f"#{element_id} li[role=option]")
    return next((o for o in options if o.text.strip().startswith(typed.strip())), None)


def choose(driver, element_id: str, typed: str) -> None:
    """Pick a dropdown's option: ``typed`` typed into it, the first option whose label starts so clicked (tried
    again when the list renders again between finding the option and clicking it)."""
    type_into(driver, element_id, typed)

    def click_offered() -> bool:
        option = offered(driver, element_id, typed)
        if option is None:
            return False
        option.click()
        return True

    wait_for(click_offered, f"{typed!r} offered and picked")


def canvas_pixels(driver, view_id: str) -> np.ndarray:
    """The 3D view ``view_id``'s canvas as it is on the screen now: [H, W, 3] RGB."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    canvas = driver.find_element(By.CSS_SELECTOR, f"#{view_id} canvas")
    return np.asarray(Image.open(io.BytesIO(canvas.screenshot_as_png)).convert("RGB"))


def color_pixels(pixels: np.ndarray, rgb) -> int:
    """How many pixels are within ``COLOR_TOLERANCE`` of ``rgb`` in every channel."""
    return int(np.all(np.abs(pixels.astype(int) - np.array(rgb)) <= COLOR_TOLERANCE, axis=-1).sum())
