"""The web page in a real browser: the system's Chromium driven by Playwright, against the
service served over HTTP by uvicorn in a thread of this process, with the tiny modelscope.

Playwright's own browser download is not used (it needs the network): ./setup.sh installs
Debian's chromium, or PROMPTREEL_CHROMIUM names another Chrome. With
PROMPTREEL_SCREENSHOT=docs/page.png the first test saves the picture of the page that the
README shows.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator

import pytest
from conftest import bearer

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:
    pytest.fail("playwright is not installed: run ./setup.sh", pytrace=False)

# Without the background-networking switches Chromium keeps dialling Google's services, and on a
# closed network those connections hang the browser.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000  # a background training job may share this machine's cores
TOKEN = "s3cret-token"
PHONE = {"width": 375, "height": 740}
expect.set_options(timeout=TIMEOUT_MS)  # its own default is 5 s, whatever the page's is


def chromium_path() -> str:
    path = os.environ.get("PROMPTREEL_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail(
            "no Chromium for the page test: run ./setup.sh (it installs Debian's chromium), "
            "or set PROMPTREEL_CHROMIUM=/path/to/chrome",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, serve: Callable[..., str]) -> Iterator[Page]:
    """A fresh 1280x800 page; it closes before the service stops (its event streams with it).
    A JavaScript exception on the page fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    if errors:
        pytest.fail(f"JavaScript errors on the page: {errors}")


def fill_small_job(page: Page, prompt: str) -> None:
    page.fill("#prompt", prompt)
    for field, value in {"num_frames": "8", "num_inference_steps": "12"}.items():
        page.fill(f"#{field}", value)


def scroll_width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_a_video_made_from_the_page(serve: Callable[..., str], page: Page) -> None:
    """With a token: every fetch, the event stream and the video itself must carry it."""
    base = serve(token=TOKEN)
    page.goto(f"{base}/#token={TOKEN}")
    page.select_option("#model", "shapes")
    fill_small_job(page, "a blue square moving left")
    page.press("#num_inference_steps", "Enter")

    # queued and followed live: the bar leaves the queue only on the stream's `done` event
    expect(page.locator("#queue progress")).to_have_count(1)
    page.wait_for_function(
        "() => { const bar = document.querySelector('#queue progress');"
        " return bar === null || bar.value > 0; }"
    )
    video = page.locator("#gallery video")
    expect(video).to_have_count(1)
    page.wait_for_function(
        "() => { const video = document.querySelector('#gallery video');"
        " return video.readyState >= 2 && video.error === null; }",
        timeout=TIMEOUT_MS,
    )
    expect(page.locator("#queue li")).to_have_count(0)
    expect(page.locator("#message")).to_have_text("")
    assert video.get_attribute("src") == f"/v1/jobs/1/video?token={TOKEN}"
    assert video.evaluate("v => v.controls && v.loop && v.muted && v.playsInline")

    card = page.locator("#gallery li").first
    expect(card.locator(".prompt")).to_have_text("a blue square moving left")
    record = card.locator("details", has=page.locator("summary", has_text="Record"))
    assert record.get_attribute("open") is None  # folded away until asked for
    expect(record.locator("pre")).to_contain_text('"prompt": "a blue square moving left"')
    expect(record.locator("pre")).to_contain_text('"num_frames": 8')
    # what each stage took and the memory it used at its peak
    expect(card.locator(".hint").first).to_contain_text("peak RAM")
    stages = card.locator("details", has=page.locator("summary", has_text="Time and memory"))
    stages.locator("summary").click()
    expect(stages.locator("tr")).to_have_count(5)  # a header, load, encode, denoise, decode
    expect(stages.locator("tr").nth(3)).to_contain_text("denoise")
    expect(stages.locator("tr").nth(3).locator("td").nth(2)).to_have_text(
        re.compile(r"^\d+(\.\d)? (MiB|GiB)$")
    )

    download = card.get_by_role("link", name="Download video 1")
    href = download.get_attribute("href")
    assert href == f"/v1/jobs/1/video?download=1&token={TOKEN}"
    assert download.get_attribute("download") is not None
    response = page.request.get(base + href)
    assert response.ok and response.headers["content-disposition"].startswith("attachment")

    if os.environ.get("PROMPTREEL_SCREENSHOT"):
        # Chrome's loading spinner fades out about a second after the whole clip is in
        page.wait_for_function("document.querySelector('#gallery video').readyState === 4")
        page.wait_for_timeout(1500)
        page.screenshot(path=os.environ["PROMPTREEL_SCREENSHOT"])

    # a phone: one column, nothing wider than the screen, even with the record unfolded
    page.set_viewport_size(PHONE)
    record.locator("summary").click()
    page.locator("#job-form summary").click()
    assert scroll_width(page) <= PHONE["width"]

    # Rerun sends the same request again, seed and file format included
    card.get_by_role("button", name="Rerun").click()
    expect(page.locator("#queue li")).to_have_count(1)
    jobs = [page.request.get(f"{base}/v1/jobs/{i}", headers=bearer(TOKEN)).json() for i in (1, 2)]
    assert jobs[1]["request"] == jobs[0]["request"]
    assert jobs[1]["output_format"] == jobs[0]["output_format"] == "mp4"


def test_several_videos_of_one_job_play_side_by_side(serve: Callable[..., str], page: Page) -> None:
    page.goto(serve())
    page.select_option("#model", "shapes")
    page.fill("#prompt", "a red circle")
    for field, value in {"num_frames": "4", "num_inference_steps": "2", "seed": "3"}.items():
        page.fill(f"#{field}", value)
    page.fill("#num_videos_per_prompt", "2")
    page.press("#num_videos_per_prompt", "Enter")

    videos = page.locator("#gallery .videos video")
    expect(videos).to_have_count(2)
    assert videos.nth(1).get_attribute("src") == "/v1/jobs/1/video?number=2"
    page.wait_for_function(
        "() => [...document.querySelectorAll('#gallery video')]"
        ".every(v => v.readyState >= 2 && v.error === null)"
    )
    expect(videos.nth(1)).to_have_attribute("aria-label", "Video (2 of 2): a red circle")
    expect(page.locator("#gallery .card")).to_contain_text("2 videos")
    assert scroll_width(page) <= 1280


def test_a_refused_job_says_why_in_one_line(serve: Callable[..., str], page: Page) -> None:
    """The API's 422 detail is shown; a queued job can be cancelled (no worker: it waits)."""
    base = serve(run_worker=False)
    page.goto(base)
    message = page.locator("#message")
    fill_small_job(page, "a kite")
    page.fill("#num_frames", "100000")
    page.get_by_role("button", name="Generate").click()
    expect(message).to_contain_text("`num_frames`")
    expect(message).to_contain_text("100000")
    assert "\n" not in message.inner_text()
    expect(page.locator("#queue li")).to_have_count(0)
    # the field the refusal names (the API's `argument`) is marked, and only that one
    expect(page.locator("[aria-invalid=true]")).to_have_count(1)
    expect(page.locator("#num_frames")).to_have_attribute("aria-invalid", "true")

    # a switch in the folded settings reaches the request, and a refusal there unfolds them
    page.fill("#num_frames", "4")
    page.locator("#job-form summary").click()
    page.check("input[name=vae_tiling]")
    page.select_option("#offload", "model")  # the CPU has nothing to offload to
    page.locator("#job-form summary").click()  # folded again
    page.get_by_role("button", name="Generate").click()
    expect(message).to_contain_text("offload")
    expect(page.locator("#offload")).to_have_attribute("aria-invalid", "true")
    assert page.locator("#job-form details").get_attribute("open") is not None
    page.select_option("#offload", "none")

    # bad JSON in the settings is caught before anything is sent
    page.fill("#params", "{eta")
    page.get_by_role("button", name="Generate").click()
    expect(message).to_have_text('`params` is not valid JSON; write an object such as {"eta": 0.5}')

    page.fill("#params", "")
    page.get_by_role("button", name="Generate").click()
    expect(message).to_have_text("")
    item = page.locator("#queue li")
    expect(item).to_contain_text("Waiting in the queue")
    assert item.locator("progress").evaluate("bar => bar.position") == -1  # indeterminate
    item.get_by_role("button", name="Cancel").click()
    expect(page.locator("#queue li")).to_have_count(0)
    ended = page.locator("#ended li")
    expect(ended).to_have_count(1)
    expect(ended).to_contain_text("#1 cancelled")
    expect(ended.locator(".reason")).not_to_be_empty()


def test_a_phone_and_the_keyboard_alone(serve: Callable[..., str], page: Page) -> None:
    base = serve(run_worker=False)
    page.set_viewport_size(PHONE)
    page.goto(base)
    expect(page.locator("#model")).to_have_value("shapes")  # the first one that is there
    assert scroll_width(page) <= PHONE["width"]

    def tab() -> str:
        page.keyboard.press("Tab")
        return page.evaluate("document.activeElement.id")

    assert tab() == "model"
    assert tab() == "prompt"
    page.keyboard.type("a kite over the sea")
    assert tab() == "negative_prompt"
    for field, value in [("num_frames", "4"), ("height", "64"), ("width", "64")]:
        assert tab() == field
        page.keyboard.type(value)
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # where the keyboard is can be seen
    page.keyboard.press("Enter")

    item = page.locator("#queue li")
    expect(item).to_contain_text("a kite over the sea")
    sent = page.request.get(f"{base}/v1/jobs/1").json()["request"]
    assert (sent["num_frames"], sent["height"], sent["width"]) == (4, 64, 64)
    assert scroll_width(page) <= PHONE["width"]

    # the Cancel button comes after the form in the tab order, and Enter presses it
    for _ in range(12):
        tab()
        if page.evaluate("document.activeElement.textContent") == "Cancel":
            break
    else:
        pytest.fail("the Cancel button cannot be reached with the Tab key")
    page.keyboard.press("Enter")
    expect(page.locator("#ended li")).to_contain_text("#1 cancelled")


def test_an_image_model_takes_an_upload(
    hub, serve: Callable[..., str], page: Page, tmp_path
) -> None:
    from PIL import Image

    hub("svd")
    base = serve()
    page.goto(base)
    expect(page.locator("#input-row")).to_be_hidden()  # a text-only model takes no file
    page.select_option("#model", "svd")
    expect(page.locator("#input-label")).to_have_text("Image")
    Image.new("RGB", (32, 32), (200, 40, 40)).save(tmp_path / "start.png")
    page.set_input_files("#input-file", str(tmp_path / "start.png"))
    for field, value in {"num_frames": "3", "height": "32", "width": "32"}.items():
        page.fill(f"#{field}", value)
    page.fill("#num_inference_steps", "2")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function(
        "() => { const video = document.querySelector('#gallery video');"
        " return video !== null && video.readyState >= 2 && video.error === null; }",
        timeout=TIMEOUT_MS,
    )
    job = page.request.get(f"{base}/v1/jobs/1").json()
    assert job["inputs"] == ["image"] and job["status"] == "succeeded"


def test_control_images_from_the_page(hub, serve: Callable[..., str], page: Page, tmp_path) -> None:
    """The Control section shows for the models that take control images, a control video goes
    as its own upload, and the finished job links to the control images it was steered by."""
    import numpy as np

    from promptreel.video import Video

    hub("text2video-zero")
    hub("lllyasviel/control_v11p_sd15_canny")
    edges = np.zeros((3, 64, 64, 3), np.uint8)
    edges[:, 16:48, 20:22] = edges[:, 16:48, 42:44] = 255
    Video(edges, fps=8).save(tmp_path / "edges.mp4")
    base = serve()
    page.goto(base)
    for row in ("#control-row", "#base-row", "#input-row"):
        expect(page.locator(row)).to_be_hidden()  # shapes takes none of them

    page.select_option("#model", "text2video-zero")
    expect(page.locator("#control-row")).to_be_visible()
    expect(page.locator("#control-inputs")).to_be_hidden()  # until a kind is chosen
    expect(page.locator("#base")).to_have_attribute(
        "placeholder", "stable-diffusion-v1-5/stable-diffusion-v1-5"
    )
    page.select_option("#control", "canny")
    expect(page.locator("#control-help")).to_contain_text("drawn from the video below")
    expect(page.locator("#input-label")).to_have_text("Video to draw the control images from")
    expect(page.locator("#params-help")).to_contain_text("low_threshold")
    assert page.evaluate("STAGES.control") == "Drawing the control images"

    page.fill("#prompt", "a door")
    fields = {"num_frames": "3", "height": "64", "width": "64", "num_inference_steps": "2"}
    for field, value in {**fields, "guidance_scale": "1.5"}.items():
        page.fill(f"#{field}", value)
    # neither a control video nor a video to draw one from: said before anything is sent
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#message")).to_contain_text("choose a control video")
    expect(page.locator("#control-file")).to_have_attribute("aria-invalid", "true")

    page.set_input_files("#control-file", str(tmp_path / "edges.mp4"))
    page.get_by_role("button", name="Generate").click()
    link = page.get_by_role("link", name="Control video of job 1")
    expect(link).to_have_attribute("href", "/v1/jobs/1/control")
    response = page.request.get(base + "/v1/jobs/1/control")
    assert response.ok and response.headers["content-type"] == "video/mp4"
    job = page.request.get(f"{base}/v1/jobs/1").json()
    assert job["inputs"] == ["control_video"] and job["request"]["control"] == "canny"

    # what a model does not take is not sent, though typed before switching to it
    page.fill("#base", "someone/sd15")
    page.select_option("#model", "shapes")
    expect(page.locator("#control-row")).to_be_hidden()
    sent = page.evaluate("formFields()")
    assert "base" not in sent and "control" not in sent
