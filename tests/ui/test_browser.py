"""`vltools ui` in a real browser (Playwright driving Debian's chromium): real flows, not page loads.

CI installs chromium (install.sh); these tests skip, saying so, only where it is absent.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
pytestmark = [
    pytest.mark.heavy,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (apt-get install chromium; "
                                                "install.sh does it as root)"),
]
SLOW_MS = 240_000  # the first search loads the model in the server process; the machine is shared


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # chromium's sandbox refuses to run as root
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    pg = browser.new_page()
    pg.set_default_timeout(SLOW_MS)
    yield pg
    pg.close()


def loaded_thumbnails(page) -> list[int]:
    """naturalWidth of every hit thumbnail (0 = the picture did not load)."""
    page.wait_for_load_state("networkidle")
    return page.eval_on_selector_all(".hit img.thumb", "els => els.map(e => e.complete ? e.naturalWidth : 0)")


def test_image_search_shows_thumbnails_with_scores(page, ui_server, media_data):
    page.goto(ui_server + "/search")
    page.select_option("select[name=collection]", media_data["images"])
    page.fill("input[name=query]", "a red circle")
    page.fill("input[name=k]", "4")
    page.click("button[type=submit]")
    page.wait_for_selector(".hit")
    widths = loaded_thumbnails(page)
    assert len(widths) == 4 and all(w > 0 for w in widths), widths
    captions = page.locator(".hit .score").all_inner_texts()
    assert [c.split()[0] for c in captions] == ["#1", "#2", "#3", "#4"]
    scores = [float(c.split()[1]) for c in captions]
    assert scores == sorted(scores, reverse=True)


def test_video_hits_jump_to_their_time(page, ui_server, media_data):
    page.goto(ui_server + f"/search?collection={media_data['videos']}&query=a+moving+shape&k=2")
    page.wait_for_selector(".hit")
    assert all(w > 0 for w in loaded_thumbnails(page))
    href = page.locator(".hit a").first.get_attribute("href")
    assert href.startswith("/media?path=") and "#t=" in href
    assert page.request.get(ui_server + href.split("#")[0]).headers["content-type"] == "video/mp4"


def test_fill_a_form_and_get_a_result_then_a_bad_input_shows_its_error(page, ui_server):
    page.goto(ui_server + "/")
    page.click("a[href='/tool/retrieve.bm25']")
    page.fill("input[name=collection]", "ui_texts")
    page.fill("[name=query]", "turbofan jet engine")
    page.fill("input[name=k]", "3")
    page.click("button[type=submit]")
    page.wait_for_selector(".result")
    assert page.locator(".result td", has_text="s03").count() >= 1
    assert page.locator(".error").count() == 0
    page.fill("input[name=k]", "0")
    page.click("button[type=submit]")
    page.wait_for_selector(".error")
    assert "k: Input should be greater than or equal to 1" in page.inner_text(".error")
    assert page.locator(".result").count() == 0


def test_background_run_shows_live_progress_until_done(page, ui_server):
    docs = ", ".join(f'{{"id": "live{i}", "text": "document number {i} about wings"}}' for i in range(300))
    page.goto(ui_server + "/tool/collection.add")
    page.fill("input[name=collection]", "ui_texts")
    page.fill("textarea[name=documents]", f"[{docs}]")
    page.check("input[name=__background__]")
    page.click("button[type=submit]")
    page.wait_for_url("**/jobs/r*")
    page.wait_for_function("document.getElementById('job-status') && "
                           "document.getElementById('job-status').textContent === 'done'")
    page.wait_for_selector("#job-result table")
    assert "300" in page.inner_text("#job-result")


def test_collections_and_fact_check_pages(page, ui_server):
    page.goto(ui_server + "/collections")
    row = page.locator("table.collections tr", has_text="ui_texts")
    assert int(row.locator("td.count").inner_text()) >= 42
    page.goto(ui_server + "/factcheck")
    page.fill("input[name=claim]", "A wing deflects the oncoming air downward.")
    page.select_option("select[name=collection]", "ui_texts")
    page.click("button[type=submit]")
    page.wait_for_selector(".verdict")
    assert page.locator(".proof li").count() >= 1
    assert page.inner_text(".verdict b") in ("SUPPORTS", "REFUTES", "NOT ENOUGH INFO")
