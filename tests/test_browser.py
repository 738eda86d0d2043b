"""The chat page in a real headless Chromium: `python app.py --port N --index TMP` in a subprocess, driven by
Playwright. Checks answers with citations, uploads, follow-ups, removal, injection safety and that the page
makes no request off 127.0.0.1. Writes docs/screenshot.png when it is missing or QA_UPDATE_SCREENSHOT=1."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import ROOT, SEED_ID, running_app

from qa.settings import Settings

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
DATA = Path(__file__).resolve().parent / "data" / "browser"
SCREENSHOT = ROOT / "docs" / "screenshot.png"
IRAQ = "When did Iraq pass its anti-trafficking law?"

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium, or `make browser`)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
expect = sync_api.expect


@pytest.fixture(scope="module")
def server(seed_index, tmp_path_factory):
    """The app as a user starts it, over a copy of the seed index, with the default (span) reader."""
    tmp = tmp_path_factory.mktemp("browser")
    index = tmp / "index"
    shutil.copytree(seed_index, index)
    with running_app(tmp, index) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


class Session:
    """One browser tab on the app, recording every request and dialog."""

    def __init__(self, browser, url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 1000})
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.context.on("request", lambda r: self.requests.append(r.url))
        self.page = self.context.new_page()
        self.page.on("dialog", self._dialog)
        self.page.goto(url, wait_until="load")
        self.page.wait_for_selector("#question textarea", timeout=60_000)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def ask(self, question: str):
        """Type ``question``, press Ask; the bot's reply once it is there."""
        bots = self.page.locator("#chat [data-testid=bot]")
        n = bots.count()
        self.page.fill("#question textarea", question)
        self.page.click("#ask")
        expect(bots).to_have_count(n + 1, timeout=90_000)
        return bots.nth(n)

    def tab(self, name: str) -> None:
        self.page.get_by_role("tab", name=name).click()

    def upload(self, path: Path) -> None:
        self.tab("Reports")
        self.page.set_input_files("#upload input[type=file]", str(path))
        expect(self.page.locator("#upload-status")).to_contain_text(f"added {path.stem}", timeout=120_000)
        self.tab("Chat")

    def assert_offline_and_quiet(self) -> None:
        away = [u for u in self.requests if urlparse(u).scheme not in ("data", "blob")
                and urlparse(u).hostname != "127.0.0.1"]
        assert away == [], f"the page requested {away}"
        assert self.dialogs == [], f"dialogs fired: {self.dialogs}"
        assert self.page.evaluate("window.__xss") is None


@pytest.fixture
def session(server, browser):
    s = Session(browser, server)
    yield s
    s.context.close()


def test_example_question_is_answered_with_a_citation(session, tmp_path):
    page = session.page
    page.get_by_text(IRAQ, exact=True).first.click()  # example questions are there on first load
    expect(page.locator("#question textarea")).to_have_value(IRAQ)
    page.click("#ask")
    bot = page.locator("#chat [data-testid=bot]").first
    expect(bot.locator(".qa-short strong")).to_have_text("2012", timeout=90_000)
    expect(bot).to_contain_text("confidence")
    cite = bot.locator(f'.qa-cite.qa-doc-{SEED_ID}').first
    expect(cite).to_contain_text("[1]")
    expect(cite).to_contain_text("seeds/iraq-trafficking-networks.txt")
    expect(cite.locator("blockquote mark")).to_have_text("2012")
    copied = re.compile(r"A: 2012 \(confidence \d+%\).*«2012»", re.S)  # the plain-text copy
    expect(page.locator("#copy-text textarea")).to_have_value(copied)
    page.locator("#chat").scroll_into_view_if_needed()
    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": 1280, "height": 900})
    if not SCREENSHOT.exists() or os.environ.get("QA_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
    # the citation opens on the whole report, scrolled to the highlighted passage
    cite.locator("summary").click()
    report = cite.locator(".qa-report")
    expect(report).to_be_visible()
    expect(report.locator(".qa-passage mark")).to_have_text("2012")
    assert report.evaluate("e => e.scrollTop") > 0
    assert report.evaluate("e => e.textContent").startswith("The Iraqi Security Media Cell")
    # the settings start at the assistant's: 8 passages and the reader's threshold for collections, not snapped
    page.get_by_text("Limit the search · settings").click()
    cfg = json.loads((ROOT / "qa/weights/reader/reader_config.json").read_text())
    expect(page.locator("#k input[type=range]")).to_have_value(str(Settings.k))
    expect(page.locator("#threshold input[type=range]")).to_have_value(str(cfg.get("ask_threshold", 0.5)))
    session.assert_offline_and_quiet()


def test_follow_up_question_uses_the_conversation(session):
    first = session.ask("Who dismantled the two networks?")
    expect(first.locator(".qa-short strong")).to_contain_text("Intelligence Service")
    second = session.ask("Which ministry helped them?")
    expect(second.locator(".qa-short strong")).to_contain_text("Ministry of Interior")
    expect(second.locator(".qa-resolved")).to_contain_text("Intelligence Service")
    session.page.click("#clear")  # a new conversation forgets the earlier answers
    expect(session.page.locator("#chat [data-testid=bot]")).to_have_count(0)
    session.assert_offline_and_quiet()


def test_uploaded_report_is_answerable_then_removable(session, tmp_path):
    path = tmp_path / "kelmar-lighthouse.txt"
    path.write_text("Kelmar lighthouse survey\nDate: 2 March 2024\nDuring the spring survey the Kelmar lighthouse "
                    "keeper counted 1,337 grey seals on the northern rocks.\n", encoding="utf-8")
    session.upload(path)
    bot = session.ask("How many grey seals did the Kelmar lighthouse keeper count?")
    expect(bot.locator(".qa-short strong")).to_have_text("1,337")
    expect(bot.locator(".qa-cite.qa-doc-kelmar-lighthouse").first).to_contain_text("2024-03-02")
    page = session.page
    session.tab("Reports")
    table = page.locator("#reports")
    expect(table).to_contain_text("kelmar-lighthouse")
    expect(table).to_contain_text(SEED_ID)
    page.click("#remove input")
    page.keyboard.type("kelmar")
    page.get_by_role("option", name="Kelmar lighthouse survey (kelmar-lighthouse)").click()
    page.click("#remove-btn")
    expect(page.locator("#upload-status")).to_contain_text("removed kelmar-lighthouse", timeout=60_000)
    expect(table).not_to_contain_text("kelmar-lighthouse")
    session.tab("Chat")
    bot = session.ask("How many grey seals did the Kelmar lighthouse keeper count?")
    expect(bot.locator(".qa-cite.qa-doc-kelmar-lighthouse")).to_have_count(0)
    session.assert_offline_and_quiet()


def test_injected_report_and_question_render_as_inert_text(session, tmp_path):
    src = DATA / "injection-report.txt"
    path = tmp_path / src.name
    shutil.copyfile(src, path)
    session.upload(path)
    bot = session.ask("<img src=x onerror=\"alert('question')\"> How many ship inspections did the Port Veldra "
                      "harbour authority record?")
    expect(bot.locator(".qa-short strong")).to_have_text("913")
    cite = bot.locator(".qa-cite.qa-doc-injection-report").first
    cite.locator("summary").click()
    expect(cite.locator(".qa-report")).to_be_visible()
    page = session.page
    page.wait_for_timeout(1000)  # give any injected handler the chance to run
    chat = page.locator("#chat")
    for sel in ("script", "img", "svg", "iframe", "object", "style", "a", "details[ontoggle]", ".katex"):
        assert chat.locator(f".qa-answer {sel}, .qa-question {sel}").count() == 0, sel
    text = cite.inner_text()
    for shown in ("<script>alert('script'); window.__xss = 'script'</script>",
                  "![pixel](http://198.51.100.7/pixel.png)", "[details](javascript:alert('link'))",
                  "<b>Harbour bulletin</b> <img src=x onerror=", "$$\\href{javascript:alert('katex')}{k}$$"):
        assert shown in text
    expect(chat.locator(".qa-question").last).to_contain_text("<img src=x onerror=\"alert('question')\">")
    session.tab("Reports")
    expect(page.locator("#reports")).to_contain_text("<b>Harbour bulletin</b>")
    assert page.locator("#reports img, #reports b, #reports script").count() == 0
    session.assert_offline_and_quiet()
