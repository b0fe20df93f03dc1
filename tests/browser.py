"""Headless Chromium helpers shared by the browser tests and bench/fresh_ui.py: the driver
with this machine's flags, waiting for a condition, and reading the chat's streamed answer."""

from __future__ import annotations

import time
from pathlib import Path

BOT_MESSAGES = "#chatbot .message.bot, #chatbot [data-testid='bot']"


def chromium(downloads: Path | None = None):
    """A headless Chromium (selenium); with `downloads`, files are saved there without asking."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    if downloads is not None:
        options.add_experimental_option(
            "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        )
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    if downloads is not None:
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
    driver.set_page_load_timeout(60)
    return driver


def wait_for(condition, timeout: float = 120, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception:  # element not there yet, or replaced while reading it
            value = None
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def bot_text(driver) -> str:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    # A streaming answer re-renders its message; a read that lands mid-render is simply retried.
    for _ in range(20):
        messages = driver.find_elements(By.CSS_SELECTOR, BOT_MESSAGES)
        try:
            return messages[-1].text if messages else ""
        except StaleElementReferenceException:
            time.sleep(0.05)
    return ""


def bot_messages(driver) -> int:
    from selenium.webdriver.common.by import By

    return len(driver.find_elements(By.CSS_SELECTOR, BOT_MESSAGES))


def answer_times(
    driver, submitted: float, before: int, quiet_s: float = 3.0, timeout: float = 300
) -> tuple[float, float]:
    """Seconds from `submitted` to the first text of the new answer (the bot's message number
    `before` + 1) and to its last change."""
    first = last = None
    text = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = bot_text(driver) if bot_messages(driver) > before else ""
        real = now.strip() and not now.rstrip().endswith("…")
        if now != text:
            text = now
            if real:
                last = time.monotonic()
                first = first or last
        elif real and last and time.monotonic() - last > quiet_s:
            return first - submitted, last - submitted
        time.sleep(0.1)
    raise AssertionError(f"the answer did not finish; last text: {text[:200]!r}")
