"""``jaxstyle.serve``: the JSON API through Starlette's TestClient, then the page in headless Chromium."""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxstyle.serve import create_app

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "figures" / "web.png"
SCREENSHOT_ENV = "JAXSTYLE_SCREENSHOT"
# With JAXSTYLE_SCREENSHOT set, the browser test serves trained decoders (this file, else the shipped
# set) so the figure shows a real result; otherwise tiny untrained ones.
SCREENSHOT_DECODERS_ENV = "JAXSTYLE_SCREENSHOT_DECODERS"

# Small limits so the refusals are cheap to provoke; gatys as small as it goes; transform and arbitrary
# photos longer than 64 px are scaled down.
LIMITS = dict(max_upload_bytes=200_000, max_pixels=100_000, gatys_size=48, gatys_iterations=3, max_side=64)


def tiny_decoders() -> dict:
    """Untrained decoders for relu1_1 and relu2_1 at a quarter width: the arbitrary method's whole
    path (VGG encoding, WCT/AdaIN, decoding), fast; the pictures are not the point."""
    import jax

    from jaxstyle.methods.arbitrary import vgg_decoders

    return vgg_decoders.init_decoders(jax.random.key(0), (1, 2), width=0.25)


def png_bytes(width: int, height: int, seed: int = 0) -> bytes:
    """A noisy RGB PNG of ``width x height``."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client() -> Iterator:
    with warnings.catch_warnings():  # starlette >= 1 would rather have httpx2; httpx works the same
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    with TestClient(create_app(**LIMITS, decoders=tiny_decoders())) as test_client:  # raises on any 500
        yield test_client


def finished_status(status: dict, state: str = "done") -> dict:
    """``status`` without its ``seconds`` (checked: a positive run time), for exact comparison."""
    status = dict(status)
    seconds = status.pop("seconds")
    assert isinstance(seconds, float) and 0.0 < seconds < 600.0, seconds
    assert status["state"] == state, status
    return status


def wait_for(client, job_id: str, timeout: float = 60.0) -> dict:
    """Poll a job until it is done or failed; returns its last status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/api/jobs/{job_id}")
        assert response.status_code == 200, response.text
        status = response.json()
        assert 0.0 <= status["progress"] <= 1.0
        if status["state"] in ("done", "error"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {status}")


def submit(client, photo: bytes, filename: str = "photo.png", **fields: str):
    return client.post("/api/jobs", data=fields, files={"photo": (filename, photo, "image/png")})


def result_image(client, job_id: str) -> Image.Image:
    response = client.get(f"/api/jobs/{job_id}/result.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


def test_page_and_styles(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for element in ('id="photo"', 'id="style"', 'id="strength"', 'id="preserve-color"', 'id="go"',
                    "<progress", 'id="result"', 'id="download"', 'id="error"', 'value="arbitrary"',
                    'id="model"', 'id="time"'):
        assert element in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no outside assets
    styles = client.get("/api/styles").json()
    assert "scream" in styles["transform"] and "starry_night" in styles["gatys"]
    assert styles["arbitrary"] == styles["gatys"] and styles["unavailable"] == {}
    assert styles["models"] == ["microast", "wct", "adain"]
    assert styles["limits"]["max_upload_bytes"] == LIMITS["max_upload_bytes"]


def test_transform_job(client):
    response = submit(client, png_bytes(64, 48), method="transform", style="scream", strength="0.8",
                      preserve_color="1")
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    status = wait_for(client, job_id)
    assert finished_status(status) == {"state": "done", "progress": 1.0, "message": "done"}
    image = result_image(client, job_id)
    assert image.size == (64, 48) and image.mode == "RGB"


def test_arbitrary_job_with_uploaded_style(client):
    """An uploaded style image without a method is an arbitrary job; the photo (96x72) comes back at
    the ``max_side`` long side (64x48), decodable, with the measured run time in its status."""
    response = client.post("/api/jobs", data={"strength": "0.7"},
                           files={"photo": ("p.png", png_bytes(96, 72, 3), "image/png"),
                                  "style_image": ("s.png", png_bytes(40, 56, 4), "image/png")})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    status = wait_for(client, job_id)
    assert finished_status(status) == {"state": "done", "progress": 1.0, "message": "done"}
    image = result_image(client, job_id)
    assert image.size == (64, 48) and image.mode == "RGB"
    pixels = np.asarray(image)
    assert pixels.std() > 0  # a picture, not a flat fill


@pytest.mark.usefixtures("builtin_styles")
def test_arbitrary_job_with_builtin_style(client):
    """A built-in painting by name, AdaIN, colours kept; an odd-sized photo keeps its size."""
    response = submit(client, png_bytes(45, 33, 5), method="arbitrary", style="wave", model="adain",
                      preserve_color="1")
    assert response.status_code == 202, response.text
    status = wait_for(client, response.json()["id"])
    assert finished_status(status)["progress"] == 1.0
    assert result_image(client, response.json()["id"]).size == (45, 33)


@pytest.mark.slow  # 16 s
def test_gatys_job_with_uploaded_style(client):
    response = client.post("/api/jobs", data={"method": "gatys"},
                           files={"photo": ("p.png", png_bytes(64, 48, 1), "image/png"),
                                  "style_image": ("s.png", png_bytes(40, 40, 2), "image/png")})
    assert response.status_code == 202, response.text
    status = wait_for(client, response.json()["id"], timeout=80)
    assert status["state"] == "done" and status["progress"] == 1.0, status
    assert result_image(client, response.json()["id"]).size == (48, 36)  # long side gatys_size


def _chunked(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), 65536):
        yield body[start : start + 65536]


BAD_UPLOADS = {
    "text file": (dict(photo=b"just some text\n"), 400, "not an image"),
    "empty file": (dict(photo=b""), 400, "empty"),
    "truncated png": (dict(photo=png_bytes(64, 48)[:2000]), 400, "truncated"),
    "over the byte limit": (dict(photo=png_bytes(300, 300)), 413, "limit"),
    # A real header that claims 400x300, with little data behind it: refused before decoding.
    "over the pixel limit": (dict(photo=png_bytes(400, 300)[:200]), 400, "limit"),
    "unknown style": (dict(style="nope"), 400, "unknown style"),
    "path as style": (dict(style="../../etc/passwd"), 400, "unknown style"),
    "path as gatys style": (dict(method="gatys", style="/etc/passwd"), 400, "unknown style"),
    "model file as style": (dict(style=str(REPO / "jaxstyle" / "assets" / "scream.msgpack")), 400, "unknown style"),
    "unknown method": (dict(method="magic"), 400, "unknown method"),
    "missing photo": (dict(photo=None), 400, "photo"),
    "strength 2": (dict(strength="2"), 400, "strength"),
    "strength nan": (dict(strength="nan"), 400, "strength"),
    "strength with gatys": (dict(method="gatys", style="wave", strength="0.5"), 400, "strength"),
    "style image with transform": (dict(method="transform", style_image=png_bytes(32, 32)), 400, "gatys"),
    "unknown arbitrary style": (dict(method="arbitrary", style="scream_fast"), 400, "unknown style"),
    "path as arbitrary style": (dict(method="arbitrary", style="/etc/passwd"), 400, "unknown style"),
    "unknown arbitrary model": (dict(method="arbitrary", style="wave", model="svd"), 400, "unknown model"),
    "model with transform": (dict(model="wct"), 400, "arbitrary"),
    "arbitrary strength 1.5": (dict(method="arbitrary", style="wave", strength="1.5"), 400, "strength"),
    "arbitrary strength -0.1": (dict(method="arbitrary", style="wave", strength="-0.1"), 400, "strength"),
    "arbitrary style image not an image": (dict(method="arbitrary", style_image=b"GIF89a nonsense"), 400,
                                           "style image"),
    "too small": (dict(photo=png_bytes(8, 8)), 400, "at least"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_upload_is_a_json_4xx(client, case):
    changes, status, words = BAD_UPLOADS[case]
    fields = {"method": "transform", "style": "scream", "photo": png_bytes(64, 48)} | changes
    photo, style_image = fields.pop("photo"), fields.pop("style_image", None)
    # An unknown file field keeps the form multipart when there is no photo; the server skips it.
    files = {"other": ("notes.txt", b"x", "text/plain")}
    if photo is not None:
        files["photo"] = ("photo.png", photo, "image/png")
    if style_image is not None:
        files["style_image"] = ("style.png", style_image, "image/png")
    response = client.post("/api/jobs", data=fields, files=files)
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert words in message.lower() and "\n" not in message


@pytest.mark.parametrize("problem", ["missing", "corrupt"])
@pytest.mark.usefixtures("builtin_styles")
def test_wct_without_decoders_is_a_one_line_503(tmp_path, problem):
    """Decoders that cannot be loaded leave the app up without wct/adain: /api/styles says why, such a
    job gets a one-line 503 that says how to get them; MicroAST (the default model) and the other
    methods still work."""
    from starlette.testclient import TestClient

    path = tmp_path / "decoders.msgpack"
    if problem == "corrupt":
        path.write_bytes(b"\x93not msgpack decoders")
    with TestClient(create_app(**LIMITS, decoders=path)) as test_client:
        unavailable = test_client.get("/api/styles").json()["unavailable"]
        assert set(unavailable) == {"wct", "adain"}
        why = unavailable["wct"]
        assert "decoder" in why and "bin/train --decoders" in why and "\n" not in why
        for fields in (dict(method="arbitrary", style="wave", model="wct"), dict(style_image=b"any", model="adain")):
            style_image = fields.pop("style_image", None)
            files = {"photo": ("p.png", png_bytes(32, 32), "image/png")}
            if style_image is not None:
                files["style_image"] = ("s.png", style_image, "image/png")
            response = test_client.post("/api/jobs", data=fields, files=files)
            assert response.status_code == 503, response.text
            message = response.json()["error"]
            assert message.startswith(f"model {fields.get('model', 'adain')} is not available") and "\n" not in message
            assert "bin/train --decoders" in message
        for fields in (dict(method="arbitrary", style="wave"), dict(method="transform", style="wave")):
            response = submit(test_client, png_bytes(32, 32), **fields)
            assert response.status_code == 202, response.text
            assert wait_for(test_client, response.json()["id"])["state"] == "done"


def test_no_arbitrary_model_at_all_turns_the_method_off(tmp_path):
    """Neither MicroAST nor the decoders: the arbitrary method is off, with MicroAST's reason."""
    from starlette.testclient import TestClient

    from jaxstyle.serve.app import load_app_weights

    bad = tmp_path / "bad.msgpack"
    bad.write_bytes(b"nope")
    weights, unavailable = load_app_weights(bad, None)
    assert set(weights) == {"microast"} and set(unavailable) == {"wct", "adain"}
    missing = tmp_path / "missing.msgpack"
    with TestClient(create_app(**LIMITS, decoders=bad, microast_model=missing)) as test_client:
        unavailable = test_client.get("/api/styles").json()["unavailable"]
        assert set(unavailable) == {"arbitrary", "microast", "wct", "adain"}
        response = submit(test_client, png_bytes(32, 32), method="arbitrary", style="wave")
        assert response.status_code == 503 and "missing.msgpack" in response.json()["error"]


def test_body_checks(client):
    """Not multipart, a malformed body, and an over-long body without Content-Length (cut off while read)."""
    response = client.post("/api/jobs", json={"photo": "x"})
    assert response.status_code == 415 and "multipart" in response.json()["error"]
    response = client.post("/api/jobs", content=b"--x\r\nnonsense", headers={"content-type": "multipart/form-data"})
    assert response.status_code == 415
    response = client.post("/api/jobs", content=b"garbage\r\n--b--",
                           headers={"content-type": "multipart/form-data; boundary=b"})
    assert 400 <= response.status_code < 500 and response.json()["error"]
    head = b'--b\r\nContent-Disposition: form-data; name="photo"; filename="p.png"\r\n\r\n'
    response = client.post("/api/jobs", content=_chunked(head + b"\0" * 300_000),
                           headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413 and "limit" in response.json()["error"]
    assert client.post("/api/jobs", content=b"x", headers={"content-type": "multipart/form-data; boundary=b",
                                                             "content-length": "999999999"}).status_code == 413


def test_form_field_checks(client):
    """A field sent twice, or a text field far too long, is refused while the body is read."""
    photo = ("photo.png", png_bytes(64, 48), "image/png")
    response = client.post("/api/jobs", data={"style": "scream"}, files=[("photo", photo), ("photo", photo)])
    assert response.status_code == 400 and "twice" in response.json()["error"]
    response = client.post("/api/jobs", data={"style": "s" * 5000}, files={"photo": photo})
    assert response.status_code == 400 and "too long" in response.json()["error"]


def test_unknown_job_and_route(client):
    for path in ("/api/jobs/nope", "/api/jobs/nope/result.png", "/api/jobs/../../etc/passwd", "/nowhere"):
        response = client.get(path)
        assert response.status_code == 404 and response.json()["error"], path
    assert client.get("/api/jobs").status_code == 405


def test_client_filename_creates_no_file(client, tmp_path, monkeypatch):
    """A filename like ``../../x.png`` is ignored: nothing is written in the working folder, its
    parents, or the temporary folder (uploads stay in memory)."""
    cwd = tmp_path / "a" / "b"
    cwd.mkdir(parents=True)
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    before = sorted(tmp_path.rglob("*"))
    response = submit(client, png_bytes(64, 48), filename="../../x.png", method="transform", style="wave")
    assert response.status_code == 202
    assert wait_for(client, response.json()["id"])["state"] == "done"
    assert sorted(tmp_path.rglob("*")) == before
    assert not list(spool.iterdir())
    assert not (REPO / "x.png").exists() and not (REPO.parent / "x.png").exists()


def test_old_results_are_dropped():
    """Only the last ``keep_results`` finished jobs stay in memory."""
    from jaxstyle.serve import Worker

    worker = Worker(keep=2, max_queued=8)
    jobs = [worker.submit(lambda job: np.zeros((16, 16, 3), np.float32)) for _ in range(4)]
    deadline = time.monotonic() + 10
    while any(job.state != "done" for job in jobs) and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.close()
    assert [worker.get(job.id) for job in jobs] == [None, None, jobs[2], jobs[3]]


def test_cli_port_in_use(capsys):
    """``bin/serve`` on a taken port: one line on stderr, exit 2, before any serving."""
    from jaxstyle.cli.serve import bind, main

    taken = bind("127.0.0.1", 0)
    try:
        assert main(["--port", str(taken.getsockname()[1])]) == 2
    finally:
        taken.close()
    err = capsys.readouterr().err
    assert err.startswith("serve: error: port ") and "in use" in err and err.count("\n") == 1
    assert main(["--port", "0", "--gatys-size", "8"]) == 2  # refused before binding
    assert main(["--port", "0", "--max-upload-mb", "0"]) == 2
    assert "at least 16" in capsys.readouterr().err
    # Decoders asked for by name must load: one line that says how to get them, before binding.
    assert main(["--port", "0", "--decoders", "/nonexistent/decoders.msgpack"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("serve: error: ") and "bin/train --decoders" in err and err.count("\n") == 1


# ---------------------------------------------------------------- the page in a real browser


@pytest.fixture()
def live_url() -> Iterator[str]:
    """The app served by uvicorn on 127.0.0.1 and a free port, in a background thread."""
    import uvicorn

    from jaxstyle.cli.serve import bind, url_of

    sock = bind("127.0.0.1", 0)
    decoders = os.environ.get(SCREENSHOT_DECODERS_ENV) if os.environ.get(SCREENSHOT_ENV) else tiny_decoders()
    server = uvicorn.Server(uvicorn.Config(create_app(decoders=decoders), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
        assert not thread.is_alive()


def _browser():
    """Headless Debian chromium through chromedriver; skipped when missing, but CI=true must run it."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        message = "chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1200,760", "--hide-scrollbars"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)


def _photo(tmp_path: Path) -> Path:
    """scikit-image's cat (a real photo looks better in the screenshot), else a generated PNG."""
    try:
        import skimage

        cat = Path(skimage.__file__).parent / "data" / "chelsea.png"
        if cat.is_file():
            return cat
    except ImportError:
        pass
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes(160, 120))
    return path


def _painting(tmp_path: Path) -> Path:
    """A painting from $JAXSTYLE_STYLES_DIR (for the screenshot), else a generated PNG."""
    shared = Path(os.environ.get("JAXSTYLE_STYLES_DIR", "/nonexistent")) / "starry_night.jpg"
    if shared.is_file():
        return shared
    path = tmp_path / "painting.png"
    path.write_bytes(png_bytes(96, 80, 7))
    return path


def _wait_for_result(driver, previous: str | None) -> str:
    """Wait until the page shows a new result image and its time text; returns the image's URL."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def finished(d) -> bool:
        error = d.find_element(By.ID, "error").text
        assert not error, f"the page shows an error: {error}"
        return d.execute_script("const i = document.getElementById('result');"
                                "return !i.hidden && i.complete && i.naturalWidth > 0 && i.src !== arguments[0]"
                                " && document.getElementById('time').textContent !== '';", previous or "")

    WebDriverWait(driver, 90, poll_frequency=0.25).until(finished)
    return driver.execute_script("return document.getElementById('result').src")


@pytest.mark.slow  # 11 s (skipped without chromium)
def test_browser_end_to_end(live_url, tmp_path):
    """A transform job, then an arbitrary one with an uploaded painting: picking "My own painting"
    under Fast switches to arbitrary; each result shows with the job's measured time."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = _browser()
    try:
        driver.get(live_url)
        WebDriverWait(driver, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#style option")) > 0)
        photo = _photo(tmp_path)
        driver.find_element(By.ID, "photo").send_keys(str(photo))
        Select(driver.find_element(By.ID, "style")).select_by_value("scream")
        driver.find_element(By.ID, "go").click()
        first = _wait_for_result(driver, None)
        width = driver.execute_script("return document.getElementById('result').naturalWidth")
        assert width == Image.open(photo).size[0]
        assert driver.find_element(By.ID, "download").get_attribute("href").endswith("/result.png")
        assert re.fullmatch(r"done in \d+\.\d s \(Fast\)", driver.find_element(By.ID, "time").text)

        Select(driver.find_element(By.ID, "style")).select_by_value("__upload__")
        assert driver.find_element(By.CSS_SELECTOR, "input[name=method][value=arbitrary]").is_selected()
        assert driver.find_element(By.ID, "model").is_displayed()
        assert Select(driver.find_element(By.ID, "model")).first_selected_option.get_attribute("value") == "microast"
        driver.find_element(By.ID, "style-image").send_keys(str(_painting(tmp_path)))
        driver.find_element(By.ID, "go").click()
        second = _wait_for_result(driver, first)
        assert second != first and second.endswith("/result.png")
        width = driver.execute_script("return document.getElementById('result').naturalWidth")
        assert width == Image.open(photo).size[0]
        assert re.fullmatch(r"done in \d+\.\d s \(Arbitrary\)", driver.find_element(By.ID, "time").text)
        if os.environ.get(SCREENSHOT_ENV):
            driver.set_window_size(1200, 940)  # the whole form, arbitrary's options included
            driver.execute_script("window.scrollTo(0, 0)")
            _save_screenshot(driver.get_screenshot_as_png())
    finally:
        driver.quit()


def _save_screenshot(png: bytes) -> None:
    """docs/figures/web.png, reduced to 256 colours to keep the repository small."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(SCREENSHOT, optimize=True)
