"""Headless Chromium through selenium (Debian's: scripts/browser-setup.sh) for the
tests of the web page, and the helpers that read it while it updates itself."""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from polling import wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1024")

def _service_missing(message: str) -> NoReturn:
    if os.environ.get("TESTS_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def chromium(tmp_path: Path, expected: Callable[[str], bool] | None = None
             ) -> Iterator[Any]:
    """Headless Chromium with a fresh profile, downloading into tmp_path/downloads; no
    severe error may reach its console, but those whose message ``expected`` passes
    (refusals a test provokes)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        _service_missing("no headless Chromium: run scripts/browser-setup.sh (as root)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _service_missing("no selenium: run scripts/browser-setup.sh (pip install selenium)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options,
                              service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        (tmp_path / "downloads").mkdir()
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {
            "behavior": "allow", "downloadPath": str(tmp_path / "downloads")})
        driver.set_page_load_timeout(30)
        yield driver
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
                  and not (expected is not None and expected(entry["message"]))]
        assert not errors, errors
    finally:
        driver.quit()


# Reading the page ----------------------------------------------------------------------

def find(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def text(driver: Any, css: str) -> str:
    """The element's text, or "" while it is not there (or being replaced)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        return str(find(driver, css).text)
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def attribute(driver: Any, css: str, name: str) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        return str(find(driver, css).get_attribute(name) or "")
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def shows(driver: Any, css: str, expected: str | Callable[[str], bool],
          timeout: float = 20) -> str:
    """Waits until the element's text is ``expected`` (or passes it); returns the text."""
    check = expected if callable(expected) else (lambda found: found == expected)
    try:
        return wait_until(lambda: (found := text(driver, css)) and check(found) and found,
                          timeout=timeout, what=f"{css} to show {expected!r}")
    except AssertionError as error:
        raise AssertionError(f"{error}; it shows {text(driver, css)!r}") from None


def click(driver: Any, css: str) -> None:
    """Clicks the element once it is there (rows are updated in place while we look)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    def clicked() -> bool:
        try:
            find(driver, css).click()
        except (NoSuchElementException, StaleElementReferenceException):
            return False
        return True

    wait_until(clicked, timeout=20, what=f"{css} to click")


def at(driver: Any, fragment: str) -> None:
    wait_until(lambda: urllib.parse.urlsplit(driver.current_url).fragment == fragment,
               what=f"the URL fragment #{fragment} (at {driver.current_url})")


def row(uuid: str, column: str) -> str:
    return f'tr[data-uuid="{uuid}"] td.col-{column}'


def log_shows(driver: Any, name: str, expected: Callable[[str], bool]) -> str:
    wait_until(lambda: attribute(driver, "#log-text", "data-log") == name,
               what=f"the {name} tab")
    return wait_until(lambda: (found := attribute(driver, "#log-text", "textContent"))
                      and expected(found) and found, timeout=20, what=f"{name} text")
