"""``vlm3r app`` in a real headless browser (Debian's chromium through chromium-driver and Selenium): the page
opens on the first scene already drawn (the 3D view's canvas has the boxes' pixels), a question's evidence appears,
the tiny model's streamed answer equals ``vlm3r ask``'s, and bad inputs give messages in the page. Skipped, saying
why, where the browser is not installed (``.ci/run`` installs it). With ``VLM3R_SCREENSHOTS=DIR`` the screenshots
the docs show (docs/app.md) are written there."""

import io
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from vlm3r.app.browser import (BOX_RED, browser_missing, canvas_pixels, choose, color_pixels, free_port,
                               start_browser, wait_for)

MISSING = browser_missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"browser tests not run: {MISSING}")
UPLOAD_LIMIT_MB = 1  # --max-upload-mb of the app under test




@pytest.fixture(scope="module")
def inputs(small_synthetic, tiny_model, tmp_path_factory):
    """A dataset copy with one scene's point cloud missing, its questions, a broken question file and a video file
    that is not a video."""
    from vlm3r.qa.generate import generate, load_scenes
    from vlm3r.qa.record import write_qa_jsonl
    from vlm3r.qa.tasks import select_tasks

    root = tmp_path_factory.mktemp("app_browser")
    data = root / "data"
    shutil.copytree(small_synthetic, data)
    records, _ = generate(load_scenes(data), select_tasks("vsi"), seed=0, per_scene=1)
    qa = root / "qa.jsonl"
    write_qa_jsonl(qa, records)
    broken_qa = root / "broken.jsonl"
    broken_qa.write_text("{not json\n")
    scenes = sorted({r.scene_name for r in records})
    (data / "point_cloud" / "train" / f"{scenes[-1]}.ply").unlink()  # the last scene cannot be drawn
    not_video = root / "not_a_video.mp4"
    not_video.write_bytes(b"these bytes are no video")
    too_big = root / "too_big.mp4"
    too_big.write_bytes(bytes(UPLOAD_LIMIT_MB * 1024 * 1024 + 1))
    return {"too_big": too_big, "data": data, "qa": qa, "broken_qa": broken_qa, "records": records, "scenes": scenes,
            "not_video": not_video, "missing": root / "nowhere", "model": tiny_model}


@pytest.fixture(scope="module")
def running(inputs):
    from vlm3r.app.server import AppOptions, start_app

    options = AppOptions(data=[inputs["data"], inputs["missing"]], qa=[inputs["qa"], inputs["broken_qa"]],
                         model=inputs["model"], dtype="fp32", device="cpu", port=free_port(),
                         max_upload_mb=UPLOAD_LIMIT_MB)
    app = start_app(options)
    yield app
    app.close()


@pytest.fixture(scope="module")
def browser(running):
    driver = start_browser(running.url)
    yield driver
    driver.quit()




def text_of(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).text






SCREENSHOT_WIDTH_PX = 1000  # the docs' screenshots, cut to 256 colours: about 100 KB each in the repository


def screenshot(driver, name: str) -> None:
    """With ``VLM3R_SCREENSHOTS=DIR``, the page as it looks now, for the docs (docs/app.md)."""
    folder = os.environ.get("VLM3R_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
        page = page.resize((SCREENSHOT_WIDTH_PX, round(page.height * SCREENSHOT_WIDTH_PX / page.width)), Image.LANCZOS)
        page.quantize(256).save(Path(folder) / name, optimize=True)


def open_tab(driver, name: str) -> None:
    from selenium.webdriver.common.by import By

    wait_for(lambda: driver.find_element(By.XPATH, f"//button[@role='tab' and normalize-space()='{name}']"),
             f"the {name} tab").click()




def test_the_page_opens_on_the_first_scene_drawn(browser, inputs):
    first = inputs["scenes"][0]
    wait_for(lambda: first in text_of(browser, "scene-info"), "the first scene's summary")
    # the canvas shows the boxes' red: the GLB was loaded and drawn, not just a blank canvas
    wait_for(lambda: color_pixels(canvas_pixels(browser, "scene-3d"), BOX_RED), "box edges drawn in the 3D view")
    assert color_pixels(canvas_pixels(browser, "scene-3d"), (255, 255, 255)) > 0  # the white background around them
    screenshot(browser, "app-scenes.png")
    # the bad inputs given at the start are said on the page, each naming its folder or file
    problems = text_of(browser, "problems")
    assert f"--data {inputs['missing']}: not a folder" in problems
    assert f"{inputs['broken_qa']}: line 1" in problems


def test_a_scene_that_cannot_be_drawn_says_which_file(browser, inputs):
    open_tab(browser, "Scenes")
    choose(browser, "scene-pick", inputs["scenes"][-1])
    missing = inputs["data"] / "point_cloud" / "train" / f"{inputs['scenes'][-1]}.ply"
    message = wait_for(lambda: text_of(browser, "scene-error"), "an error in the page")
    assert str(missing) in message and message.startswith("Error:")


def test_a_questions_evidence_appears(browser, inputs):
    record = next(r for r in inputs["records"] if r.question_type == "object_abs_distance"
                  and r.scene_name != inputs["scenes"][-1])
    open_tab(browser, "Questions")
    choose(browser, "question-pick", f"#{record.id} ")
    info = wait_for(lambda: (t := text_of(browser, "question-info")) and "Evidence" in t and t,
                    "the question's evidence")
    label = record.extra["evidence"]["segments"][0]["label"]
    assert f"Right answer: {record.ground_truth}" in info and f"length: {label}" in info
    wait_for(lambda: color_pixels(canvas_pixels(browser, "question-3d"), (255, 120, 0)),
             "the question's objects drawn in orange")
    screenshot(browser, "app-question.png")


def test_the_streamed_answer_equals_vlm3r_ask(browser, inputs, running):
    from selenium.webdriver.common.by import By

    from vlm3r.model.pipeline import AskRequest

    label = next(iter(running.catalog.videos))
    video = running.catalog.videos[label]
    question = "How many chairs are in this room?"
    # what `vlm3r ask --model M --dtype fp32 VIDEO QUESTION` prints, by its own code path, with the app's model
    asked = AskRequest.from_arguments([str(video), question]).answer(running.session.pipeline)
    open_tab(browser, "Ask")
    browser.find_element(By.CSS_SELECTOR, "#ask-question textarea").send_keys(question)
    browser.find_element(By.ID, "ask-button").click()
    answer = browser.find_element(By.CSS_SELECTOR, "#ask-answer textarea")
    # a textarea's value has its line breaks as "\n" (HTML normalises "\r\n"), so the answer is compared so too
    wait_for(lambda: answer.get_attribute("value") == asked.replace("\r\n", "\n").replace("\r", "\n"),
             f"the answer {asked!r} (shown: {answer.get_attribute('value')!r})")
    screenshot(browser, "app-ask.png")


def test_an_upload_that_is_not_a_video_says_so_in_the_page(browser, inputs):
    from selenium.webdriver.common.by import By

    open_tab(browser, "Ask")
    browser.find_element(By.CSS_SELECTOR, "#ask-upload input[type=file]").send_keys(str(inputs["not_video"]))
    wait_for(lambda: "not_a_video" in text_of(browser, "ask-upload"), "the upload listed")
    question = browser.find_element(By.CSS_SELECTOR, "#ask-question textarea")
    question.clear()
    question.send_keys("How big is this room?")
    browser.find_element(By.ID, "ask-button").click()
    message = wait_for(lambda: text_of(browser, "ask-error"), "an error in the page")
    assert message.startswith("Error:") and "not_a_video.mp4" in message


def test_an_upload_over_the_limit_is_refused_in_the_page(browser, inputs):
    from selenium.webdriver.common.by import By

    open_tab(browser, "Ask")
    browser.find_element(By.CSS_SELECTOR, "#ask-upload input[type=file]").send_keys(str(inputs["too_big"]))
    toast = wait_for(lambda: " ".join(t.text for t in browser.find_elements(By.CSS_SELECTOR, ".toast-body")),
                     "a message about the upload")
    assert f'exceed the maximum allowed size of {UPLOAD_LIMIT_MB:.1f} Mb: "too_big.mp4"' in toast
