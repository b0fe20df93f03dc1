"""The app in a real headless Chromium: ask, watch the answer stream in with source cards,
follow a citation to its card, browse the table, look at the overview. Screenshots of every
step go to test-artifacts/."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.browser import bot_text, wait_for

# Gradio's own pandas calls warn under pandas 3; not ours to fix.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")]

ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"
QUESTION = "Which papers use state space models?"


def shot(driver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def answer_finished(driver, quiet_s: float = 3.0) -> str:
    """The bot's last message once it has stopped changing for `quiet_s` seconds."""
    text, since = bot_text(driver), time.monotonic()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = bot_text(driver)
        if now != text:
            text, since = now, time.monotonic()
        elif text.strip() and not text.rstrip().endswith("…") and time.monotonic() - since > quiet_s:
            return text
    raise AssertionError(f"the answer did not finish; last text: {text[:200]!r}")


def open_tab(driver, name: str) -> None:
    from selenium.webdriver.common.by import By

    tab = next(
        b for b in driver.find_elements(By.CSS_SELECTOR, "button[role='tab']") if b.text.strip() == name
    )
    tab.click()


def click_last_citation(driver, attempts: int = 5) -> str:
    """Click the answer's last citation link; the chat may re-render once more after the answer
    is done (the chips, the map), so a link found a moment ago can be stale: find it again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for attempt in range(attempts):
        try:
            link = driver.find_elements(By.CSS_SELECTOR, "#chatbot a.cite")[-1]
            target = link.get_attribute("href").split("#")[1]
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", link)
            link.click()
            return target
        except StaleElementReferenceException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def test_ask_follow_citation_browse_overview(app_url, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = browser
    driver.get(app_url)
    box = wait_for(
        lambda: driver.find_element(By.CSS_SELECTOR, "#question textarea, #question input"),
        60,
        "the question box",
    )
    assert "Ask a question" in driver.find_element(By.ID, "sources").text
    shot(driver, "01-start")

    # Ask: the source cards appear, then the answer streams in.
    box.send_keys(QUESTION)
    box.send_keys(Keys.ENTER)
    cards = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#sources .card"), 180, "source cards")
    assert any("state space" in c.text.lower() for c in cards)
    shot(driver, "02-sources")
    answer = answer_finished(driver)
    assert QUESTION in driver.find_element(By.ID, "chatbot").text
    assert driver.find_elements(By.CSS_SELECTOR, "#sources .card mark"), "evidence is highlighted"
    shot(driver, "03-answer")

    # A citation link scrolls to its card and flashes it.
    wait_for(
        lambda: driver.find_elements(By.CSS_SELECTOR, "#chatbot a.cite"),
        10,
        f"a citation link in {answer[:200]!r}",
    )
    handles = len(driver.window_handles)
    target = click_last_citation(driver)
    card = driver.find_element(By.ID, target)
    wait_for(lambda: "flash" in card.get_attribute("class"), 5, "the cited card to flash")
    time.sleep(1)  # smooth scrolling
    in_view = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return r.top >= -5 && r.top < window.innerHeight;",
        card,
    )
    assert in_view, "the cited card is scrolled into view"
    assert len(driver.window_handles) == handles, "the citation did not open a new tab"
    shot(driver, "04-citation")

    # Browse: search the table, select a row, see its card.
    open_tab(driver, "Browse")
    search = wait_for(
        lambda: next(
            e
            for e in driver.find_elements(By.CSS_SELECTOR, "#browse-search textarea, #browse-search input")
            if e.is_displayed()
        ),
        10,
        "search box",
    )
    search.send_keys("S4Sleep")

    def filtered_rows():
        rows = driver.find_elements(By.CSS_SELECTOR, "#browse-table .virtual-row")
        return [r for r in rows if "S4Sleep: Elucidating" in r.text] if len(rows) <= 3 else None

    rows = wait_for(filtered_rows, 20, "the table filtered to the S4Sleep paper")
    rows[0].find_element(By.CSS_SELECTOR, "[role='gridcell']").click()
    card = wait_for(
        lambda: driver.find_element(By.CSS_SELECTOR, "#browse-card .card"), 20, "the selected paper's card"
    )
    assert "S4Sleep" in card.text
    shot(driver, "05-browse")

    # Overview: both plots render (Vega draws into a canvas or an svg).
    open_tab(driver, "Overview")
    wait_for(
        lambda: driver.find_elements(By.CSS_SELECTOR, "#corpus-map canvas, #corpus-map svg"),
        30,
        "the corpus map",
    )
    time.sleep(1)
    shot(driver, "06-overview")
    driver.execute_script("document.getElementById('corpus-map').scrollIntoView()")
    time.sleep(0.5)
    # The map marks the sources once the answer is complete, which may be after the text has
    # paused for a while (the model still reading its prompt).
    wait_for(
        lambda: "source of last answer" in driver.find_element(By.ID, "corpus-map").text,
        180,
        "the last answer's sources marked on the map",
    )
    shot(driver, "07-corpus-map")

    open_tab(driver, "Settings")
    wait_for(lambda: "endpoint" in driver.find_element(By.TAG_NAME, "body").text, 10, "the settings table")
    driver.find_element(By.ID, "export").click()
    wait_for(
        lambda: ".md" in driver.find_element(By.ID, "export-file").text, 20, "the exported Markdown file"
    )
    shot(driver, "08-settings-export")

    # Nothing was fetched from anywhere but the app itself.
    urls = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    hosts = {urlparse(u).hostname for u in urls if u.startswith("http")}
    assert hosts <= {"127.0.0.1"}, hosts


def test_stop_cancels_a_running_answer(app_url, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = browser
    driver.get(app_url)
    box = wait_for(
        lambda: driver.find_element(By.CSS_SELECTOR, "#question textarea, #question input"),
        60,
        "the question box",
    )
    box.send_keys("Which papers use deep learning for ECG analysis?")
    box.send_keys(Keys.ENTER)
    wait_for(
        lambda: (lambda t: t.strip() and not t.rstrip().endswith("…"))(bot_text(driver)),
        180,
        "the first token",
    )
    driver.find_element(By.ID, "stop").click()
    stopped = wait_for(
        lambda: (lambda t: t if "(stopped)" in t else None)(bot_text(driver)), 10, "the stopped mark"
    )
    time.sleep(3)
    assert bot_text(driver) == stopped, "nothing streams in after Stop"
    shot(driver, "09-stopped")

    # The app lives on: the next question gets a full answer and its own cards.
    box.send_keys(QUESTION)
    box.send_keys(Keys.ENTER)
    wait_for(
        lambda: driver.find_elements(By.CSS_SELECTOR, "#sources [data-turn='2'] .card"),
        180,
        "cards of the next answer",
    )
    assert "(stopped)" not in answer_finished(driver)
    shot(driver, "10-after-stop")

    # An example question is one click away; "New conversation" empties chat and sources.
    example = next(b for b in driver.find_elements(By.CSS_SELECTOR, ".examples button") if "email" in b.text)
    example.click()
    wait_for(lambda: "don't state" in bot_text(driver), 120, "the refusal for the email question")
    shot(driver, "11-example-question")
    next(
        b for b in driver.find_elements(By.TAG_NAME, "button") if b.text.strip() == "New conversation"
    ).click()
    wait_for(
        lambda: not driver.find_elements(By.CSS_SELECTOR, "#sources .card"), 20, "the sources panel to empty"
    )
    assert not bot_text(driver)
