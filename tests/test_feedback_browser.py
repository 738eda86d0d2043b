"""Feedback in the chat page, in a real headless Chromium (tests/test_browser.py's setup): ask with the not-found
threshold lowered to see the reader's best guess, mark that answer wrong, select the right answer in the cited
passage with the mouse, send it with a comment, give another verdict with the keyboard and a third ("Wrong" or
"It is there") in the opened report; then export the verdicts and run `qa eval` on them. Writes docs/feedback.png
when it is missing or QA_UPDATE_SCREENSHOT=1."""
from __future__ import annotations

import csv
import json
import os
import shutil

import pytest

from conftest import ROOT, SEED_ID, running_app
from test_browser import Session, browser, expect, sync_api  # noqa: F401  (browser: the shared fixture)

pytestmark = pytest.mark.browser

SHOT = ROOT / "docs" / "feedback.png"
ANNOUNCED = "Who announced that the networks had been dismantled?"
CELL = "Iraqi Security Media Cell"
IRAQ = "When did Iraq pass its anti-trafficking law?"
MINISTRY = "Which ministry collaborated with the intelligence service?"
INTERIOR = "Ministry of Interior"


@pytest.fixture(scope="module")
def app_server(seed_index, tmp_path_factory):
    """(url, index, feedback db): `python app.py` over a copy of the seed index, verdicts in a given database."""
    tmp = tmp_path_factory.mktemp("feedback-browser")
    index, db = tmp / "index", tmp / "verdicts.sqlite3"
    shutil.copytree(seed_index, index)
    with running_app(tmp, index, "--feedback-db", str(db)) as url:
        yield url, index, db


def save_screenshot(page, tmp) -> None:
    """The answer, its verdict buttons and the right-answer panel with the selection, as a small PNG in docs/."""
    top = page.locator("#chat [data-testid=bot]").last.bounding_box()["y"] - 10
    bottom = page.locator("#fb-send").bounding_box()
    page.screenshot(path=str(tmp), clip={"x": 20, "y": top, "width": 1240, "height": bottom["y"] + bottom["height"]
                                         + 10 - top})
    from PIL import Image

    Image.open(tmp).convert("RGB").quantize(colors=64).save(SHOT, optimize=True)


# (el, words, use) => use(the Range of the first occurrence of words in el's text, its text node), or null
WITH_RANGE = """(el, words, use) => {
    const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
        const i = n.data.indexOf(words);
        if (i < 0) continue;
        const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + words.length);
        return use(r, n);
    }
    return null; }"""


def _with_range(container, words: str, use_js: str):
    out = container.evaluate(f"(el, words) => ({WITH_RANGE})(el, words, {use_js})", words)
    assert out is not None, f"{words!r} is not on the page"
    return out


def drag_select(page, container, words: str) -> None:
    """Select ``words`` inside ``container`` (a locator) with the mouse, as a person does."""
    box = _with_range(container, words, """(r) => { const rs = r.getClientRects(), a = rs[0], b = rs[rs.length - 1];
        return [a.left, (a.top + a.bottom) / 2, b.right, (b.top + b.bottom) / 2]; }""")
    page.mouse.move(box[0] + 1, box[1])
    page.mouse.down()
    page.mouse.move(box[2] - 1, box[3], steps=8)
    page.mouse.up()


def select_words(container, words: str) -> None:
    """Select ``words`` inside ``container`` as the browser's selection and release the mouse there: for the opened
    report, where a mouse drag between the words' own coordinates selected to the end of the page on the AMX test
    machine of 2026-12-02 (also at commits before this test last passed; the cause is not found). What is tested is
    the same: the page turns the selection into report offsets on mouseup."""
    _with_range(container, words, """(r, n) => { const s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
        n.parentElement.dispatchEvent(new MouseEvent("mouseup", {bubbles: true})); return true; }""")


def set_threshold(number_input, value: str) -> None:
    """Type ``value`` into the not-found threshold's number box, as a person does, and check the slider took it."""
    number_input.fill(value)
    number_input.press("Enter")
    expect(number_input).to_have_value(value)


def test_mark_wrong_select_the_answer_export_and_evaluate(app_server, browser, tmp_path, capsys):  # noqa: F811
    url, index, db = app_server
    s = Session(browser, url)
    page = s.page
    try:
        # staff lower the not-found threshold to see the reader's best guess, which is wrong here (the intelligence
        # service, not the cell), mark it wrong and drag over the right answer in its quote with the mouse
        page.get_by_text("Limit the search · settings").click()
        cfg = json.loads((ROOT / "qa/weights/reader/reader_config.json").read_text())
        calibrated = str(cfg.get("ask_threshold", 0.5))
        expect(page.locator("#threshold input[type=range]")).to_have_value(calibrated)  # the page has set it
        threshold = page.locator("#threshold input[type=number]")
        set_threshold(threshold, "0")
        bot = s.ask(ANNOUNCED)
        expect(bot.locator(".qa-notfound")).to_have_count(0)
        old = bot.locator(".qa-short strong").inner_text()
        bot.locator(".qa-fb-b.qa-v-wrong").click()  # one click: the verdict is stored, the panel opens
        panel = page.locator("#fb-panel").first
        expect(panel).to_be_visible(timeout=30_000)
        expect(page.locator("#fb-heading")).to_contain_text("Marked wrong")
        expect(bot.locator(".qa-fb-b.qa-v-wrong.qa-on")).to_have_count(1, timeout=30_000)
        page.wait_for_function("document.activeElement && document.activeElement.closest('#fb-text') !== null",
                               timeout=10_000)  # keyboard users land in the answer box
        drag_select(page, bot.locator(".qa-quote").first, CELL)
        expect(page.locator("#fb-text textarea")).to_have_value(CELL)
        if not SHOT.exists() or os.environ.get("QA_UPDATE_SCREENSHOT") == "1":
            save_screenshot(page, tmp_path / "feedback.png")
        page.fill("#fb-comment textarea", "<img src=x onerror=\"window.__xss='comment'\"> the cell announced it")
        page.click("#fb-send")
        expect(page.locator("#fb-status")).to_contain_text(f"saved «{CELL}» ({SEED_ID}, characters", timeout=30_000)
        expect(panel).to_be_hidden()
        note = bot.locator(".qa-fb-note")
        expect(note).to_contain_text(f"right answer: «{CELL}» · comment: <img src=x onerror=")
        assert bot.locator(".qa-fb img, .qa-fb script").count() == 0

        set_threshold(threshold, calibrated)  # back to the reader's threshold for collections

        # a verdict with the keyboard only: Tab reaches the real button, Enter presses it
        page.click("#clear")  # a new conversation: the next question is no follow-up
        expect(page.locator("#chat [data-testid=bot]")).to_have_count(0)
        second = s.ask(IRAQ)
        second.locator(".qa-fb-b.qa-v-right").focus()
        page.keyboard.press("Enter")
        expect(second.locator(".qa-fb-note")).to_contain_text("Marked right", timeout=30_000)
        expect(page.locator("#fb-panel").first).to_be_hidden()

        # the right answer selected in the opened report rather than in the quote
        page.click("#clear")
        expect(page.locator("#chat [data-testid=bot]")).to_have_count(0)
        third = s.ask(MINISTRY)
        # the shipped reader says "not found" here (at the threshold for collections): "It is there";
        # a reader that answers (wrongly: the intelligence service) gets "Wrong"; either way the right answer follows
        third_verdict = "is_there" if third.locator(".qa-notfound").count() else "wrong"
        third.locator(f".qa-fb-b.qa-v-{third_verdict}").click()
        expect(page.locator("#fb-panel").first).to_be_visible(timeout=30_000)
        cite = third.locator(".qa-cite").first
        cite.locator("summary").click()
        report = cite.locator(".qa-report")
        expect(report).to_be_visible()
        select_words(report, INTERIOR)
        expect(page.locator("#fb-text textarea")).to_have_value(INTERIOR)
        page.click("#fb-send")
        expect(page.locator("#fb-status")).to_contain_text(f"saved «{INTERIOR}»", timeout=30_000)

        s.tab("Reports")  # the evaluators' view in the chat: verdicts per report
        expect(page.locator("#reports")).to_contain_text(
            "1 right · 1 wrong · 1 it is there" if third_verdict == "is_there" else "1 right · 2 wrong", timeout=30_000)
        s.assert_offline_and_quiet()
    finally:
        s.context.close()

    from qa.cli import main
    from qa.feedback.store import FeedbackStore

    text = next(d for d in _documents(index) if d["id"] == SEED_ID)["text"]
    corrected = [(r.verdict, r.correction) for r in FeedbackStore(db).rows() if r.verdict in ("wrong", "is_there")]
    assert [(v, text[c.start:c.end], c.text, c.source) for v, c in corrected] == [
        ("wrong", CELL, CELL, "selected"), (third_verdict, INTERIOR, INTERIOR, "selected")]
    exported = tmp_path / "staff.jsonl"
    assert main(["feedback", "--db", str(db), "--index", str(index), "export", "-o", str(exported)]) == 0
    flagged = [json.loads(line) for line in exported.read_text().splitlines()[1:]]
    assert [(q["question"], q["answers"], q["old_answer"]) for q in flagged][:2] == [
        (ANNOUNCED, [CELL], old), (IRAQ, ["2012"], "2012")]
    assert flagged[2]["answers"] == [INTERIOR] and len(flagged) == 3
    # a reader that answers right (the rules reader names the cell) scores 100 on what staff flagged
    out = tmp_path / "rules"
    assert main(["eval", str(exported), "--index", str(index), "--reader", "rules", "--no-progress",
                 "--out", str(out)]) == 0
    em = {r["question"]: float(r["EM"]) for r in csv.DictReader((out / "records.csv").open())}
    assert em[ANNOUNCED] == 1.0
    capsys.readouterr()


def _documents(index):
    from qa.store.index import current_generation

    with open(current_generation(index) / "documents.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]
