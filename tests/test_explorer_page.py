"""The gate explorer page (GET /) in a real browser, against `lstmkit serve` running the
tiny trained models: pick a model, paste or load an input, Explain, see the drawings.

Debian's chromium drives the page (`make setup` installs it where it can): playwright's
own browser download needs network, which test machines may not have.
"""

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]
TOKEN = "explorer-test-token"
WAIT_MS = 20_000  # for one explain answer: the models are tiny, the machine may be busy

# (the fraction of a canvas's pixels that something was drawn on: 0 for a blank one)
DRAWN_FRACTION = """(id) => {
  const canvas = document.getElementById(id);
  if (!canvas.width || !canvas.height) return 0;
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let drawn = 0;
  for (let k = 3; k < pixels.length; k += 4) if (pixels[k]) drawn++;
  return drawn / (canvas.width * canvas.height);
}"""


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (`make setup` installs it as root with apt-get)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS,
                                             headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def start_server(runs: list[str], log: Path, *options: str) -> tuple[str, subprocess.Popen]:
    """`lstmkit serve RUNS` on a free port -> (its address, the process), once it answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "lstmkit", "serve", *runs, "--port", str(port), *options],
            stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/v1/health", timeout=2):
                return url, process
        except OSError:
            time.sleep(0.2)
    process.kill()
    process.wait()
    pytest.fail(f"lstmkit serve did not start:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def server(trained_run, tmp_path_factory):
    runs = [f"{task}={trained_run(task)}" for task in ("forecast", "classify", "lm", "translate")]
    url, process = start_server(runs, tmp_path_factory.mktemp("serve") / "server.log")
    yield url
    stop(process)


@pytest.fixture(scope="module")
def token_server(trained_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve-token")
    (folder / "token.txt").write_text(TOKEN)
    url, process = start_server([f"forecast={trained_run('forecast')}"], folder / "server.log",
                                "--token-file", str(folder / "token.txt"))
    yield url
    stop(process)


@pytest.fixture(scope="module")
def forecast_csv(tmp_path_factory) -> Path:
    """The forecaster's training file: a history it can explain."""
    from tasks import write_data

    folder = tmp_path_factory.mktemp("forecast-data")
    write_data("forecast", folder)
    return folder / "data.csv"


def open_explorer(page, url: str, model: str) -> None:
    page.goto(url)
    page.wait_for_selector(f"#model option[value={model}]", state="attached")
    page.select_option("#model", model)


def explain(page, state: str = "done") -> None:
    page.click("#explain")
    page.wait_for_selector(f"body[data-state={state}]", timeout=WAIT_MS)


def assert_gates_drawn(page) -> None:
    for gate in ("forget", "input", "output", "cell"):
        assert page.evaluate(DRAWN_FRACTION, f"gate-{gate}") > 0.2, f"#gate-{gate} is blank"
    cell = page.locator("#gate-cell")
    cell.hover(position={"x": cell.bounding_box()["width"] * 0.6, "y": 10})
    readout = page.locator("#readout")
    assert readout.is_visible() and "unit" in readout.text_content()


def test_a_pasted_history_draws_the_forecast_and_the_gates(server, page, forecast_csv):
    open_explorer(page, server, "forecast")
    page.fill("#input", forecast_csv.read_text())
    explain(page)
    assert "forecast" in page.text_content("#summary")
    assert page.evaluate(DRAWN_FRACTION, "chart") > 0.01
    assert_gates_drawn(page)
    assert not page.is_visible("#attention")
    assert not page.is_visible("#error")


def test_a_file_loads_into_the_input(server, page, forecast_csv):
    open_explorer(page, server, "forecast")
    page.set_input_files("#file", str(forecast_csv))
    page.wait_for_function("document.getElementById('input').value.length > 0")
    assert page.input_value("#input") == forecast_csv.read_text()
    explain(page)
    assert page.evaluate(DRAWN_FRACTION, "chart") > 0.01


@pytest.mark.parametrize(("model", "text", "shown"), [
    ("classify", "great big cat sat on the mat", "#probabilities .bar"),
    ("lm", "def a(x):\n    return 3\n", "#next .bar"),
    ("translate", "eight hundred sixty four", "#attention"),
])
def test_text_models_show_their_prediction_and_gates(server, page, model, text, shown):
    open_explorer(page, server, model)
    page.fill("#input", text)
    explain(page)
    assert page.locator(shown).first.is_visible()
    assert_gates_drawn(page)
    if model == "classify":
        assert sorted(page.locator("#probabilities .bar span:first-child").all_text_contents()) \
            == ["neg", "pos"]
    if model == "translate":
        assert page.evaluate(DRAWN_FRACTION, "attention") > 0.2
        assert page.is_visible("#translation")


def test_bad_input_shows_the_servers_message(server, page):
    one_row = "month,sales\n2010-01-01,100\n"
    request = urllib.request.Request(
        f"{server}/v1/models/forecast/explain", data=json.dumps({"csv": one_row}).encode(),
        headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=30)
    message = json.load(answer.value)["error"]["message"]
    open_explorer(page, server, "forecast")
    page.fill("#input", one_row)
    explain(page, state="error")
    assert page.is_visible("#error")
    assert page.text_content("#error") == message


def test_the_page_asks_for_the_token_and_then_works(token_server, page, forecast_csv):
    page.goto(token_server)
    page.wait_for_selector("#token", state="visible")
    assert "token" in page.text_content("#error")
    page.fill("#token", TOKEN)
    page.press("#token", "Enter")
    page.wait_for_selector("#model option[value=forecast]", state="attached")
    page.fill("#input", forecast_csv.read_text())
    explain(page)
    page.reload()  # the token stays for the browser tab's session
    page.wait_for_selector("#model option[value=forecast]", state="attached")
    assert not page.is_visible("#token")
