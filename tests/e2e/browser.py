"""A real, headless Chromium driven by Selenium, for the console tests.

Debian's `chromium`, `chromium-driver` and `python3-selenium` (installed by the test
bootstrap). Each `Browser` has its own fresh profile directory, so two of them are two people
with two cookie jars. Chromium runs as root inside a sandboxed machine, hence `--no-sandbox`.

Every wait here is bounded (WAIT seconds, generous for ASan builds); nothing sleeps to assert
timing. `close()` saves what the browser last showed (a screenshot and its console log) to
the test's artifacts folder, quits the driver, and kills any process still using this
browser's own profile directory (only ever processes this object started).
"""

import base64
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 45.0  # seconds for anything the page should do
PAGE_LOAD_TIMEOUT = 60.0
WINDOW = (1280, 900)
MAX_SHOT_HEIGHT = 8000  # pixels of a full-page screenshot

try:  # Selenium is optional: without it only the browser tests are skipped.
    from selenium import webdriver
    from selenium.common.exceptions import (NoSuchElementException,
                                            StaleElementReferenceException, TimeoutException,
                                            WebDriverException)
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    _SELENIUM_ERROR = None
except ImportError as e:  # pragma: no cover - depends on the machine
    _SELENIUM_ERROR = str(e)


def missing():
    """Why a real browser cannot run here (a sentence), or None when it can."""
    lacks = []
    if not os.access(CHROMIUM, os.X_OK):
        lacks.append(f"{CHROMIUM} (Debian package chromium)")
    if not os.access(CHROMEDRIVER, os.X_OK):
        lacks.append(f"{CHROMEDRIVER} (Debian package chromium-driver)")
    if _SELENIUM_ERROR is not None:
        lacks.append(f"the selenium module (Debian package python3-selenium: {_SELENIUM_ERROR})")
    if not lacks:
        return None
    return "no real browser: missing " + ", ".join(lacks) + "; make test's bootstrap installs them"


def chromium_flags(profile_dir):
    return [
        "--headless=new",
        "--no-sandbox",  # root in a sandboxed machine: Chromium's own sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--user-data-dir={profile_dir}",
    ]


def _pids_using(profile_dir):
    """Ids of live processes whose command line names exactly this profile directory."""
    wanted = f"--user-data-dir={profile_dir}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if wanted in args:
            pids.append(int(entry))
    return pids


class Browser:
    """One person's headless Chromium window on a console at `base_url`."""

    def __init__(self, base_url, name, artifacts):
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.artifacts = Path(artifacts)
        self.profile_dir = Path(tempfile.mkdtemp(prefix=f"signoff-chromium-{name}-"))
        self.log_entries = []
        self.driver = None

    # Life cycle ---------------------------------------------------------------------------

    def start(self):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in chromium_flags(self.profile_dir):
            options.add_argument(flag)
        # The console log shows Content-Security-Policy refusals and script errors.
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(executable_path=CHROMEDRIVER)
        self.driver = webdriver.Chrome(service=service, options=options)
        self.driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
        self.driver.set_script_timeout(WAIT)
        return self

    def close(self):
        """Save the last screen and console log, quit, and make sure nothing is left running."""
        try:
            if self.driver is not None:
                self.artifacts.mkdir(parents=True, exist_ok=True)
                try:
                    self.driver.save_screenshot(str(self.artifacts / f"last-{self.name}.png"))
                    self.collect_log()
                except WebDriverException:
                    pass
                (self.artifacts / f"console-{self.name}.log").write_text(
                    "\n".join(json.dumps(e, sort_keys=True) for e in self.log_entries) + "\n")
        finally:
            service_proc = None
            if self.driver is not None:
                service_proc = getattr(self.driver.service, "process", None)
                try:
                    self.driver.quit()
                except Exception:
                    pass
                self.driver = None
            if service_proc is not None and service_proc.poll() is None:
                service_proc.kill()
                service_proc.wait(10)
            deadline = time.monotonic() + 10
            while True:
                pids = _pids_using(self.profile_dir)
                if not pids or time.monotonic() > deadline:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.1)
            shutil.rmtree(self.profile_dir, ignore_errors=True)

    # Waiting ------------------------------------------------------------------------------

    def wait(self, condition, what, timeout=WAIT):
        """Poll `condition()` until it returns something true; return it, or fail naming `what`."""

        def attempt(_driver):
            try:
                return condition()
            except (NoSuchElementException, StaleElementReferenceException):
                return False

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(attempt)
        except TimeoutException:
            raise AssertionError(
                f"[{self.name}] timed out after {timeout}s waiting for {what}; "
                f"at {self.driver.current_url!r}; alerts on the page: {self.alerts()}; "
                f"console log: {self.collect_log()[-5:]}"
            ) from None

    def alerts(self):
        """Texts of the page's visible role=alert elements (its error messages), for failures."""
        try:
            return self.js("""
                return Array.from(document.querySelectorAll('[role=alert]'))
                  .filter(e => e.offsetParent !== null && e.textContent.trim())
                  .map(e => (e.id ? '#' + e.id + ': ' : '') + e.textContent.trim());""")
        except WebDriverException as e:
            return [f"(could not read the page: {e.msg})"]

    # Looking at the page ------------------------------------------------------------------

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def js_async(self, script, *args):
        """Run `script`, whose last argument is the callback that delivers its value."""
        return self.driver.execute_async_script(script, *args)

    def by_id(self, element_id):
        return self.driver.find_element(By.ID, element_id)

    def find(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def shown(self, element_id):
        """True when the element exists and is displayed."""
        found = self.driver.find_elements(By.ID, element_id)
        return bool(found) and found[0].is_displayed()

    def usable(self, element_id):
        """True when the element exists, is displayed and is enabled (a button one can press)."""
        found = self.driver.find_elements(By.ID, element_id)
        return bool(found) and found[0].is_displayed() and found[0].is_enabled()

    def text(self, element_id):
        """The element's rendered text ('' when it is absent or hidden)."""
        found = self.driver.find_elements(By.ID, element_id)
        return found[0].text if found and found[0].is_displayed() else ""

    def wait_text(self, element_id, predicate, what, timeout=WAIT):
        """Wait until the displayed text of #element_id satisfies `predicate`; return the text."""

        def check():
            t = self.text(element_id)
            return t if t and predicate(t) else False

        return self.wait(check, f"#{element_id} to show {what}", timeout)

    def hash(self):
        return self.js("return location.hash;")

    def screenshot(self, path):
        """Save the whole page (not only the window's height) as a PNG at `path`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        width, height = self.js("const e = document.documentElement;"
                                "return [e.scrollWidth, Math.max(e.scrollHeight, innerHeight)];")
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": min(height, MAX_SHOT_HEIGHT),
                     "scale": 1},
        })
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def collect_log(self):
        """Every console message so far (Chromium hands each one out only once)."""
        try:
            self.log_entries.extend(self.driver.get_log("browser"))
        except WebDriverException:
            pass
        return self.log_entries

    def csp_refusals(self):
        """Console messages where Chromium refused something under the page's CSP."""
        return [e for e in self.collect_log()
                if "Content Security Policy" in e.get("message", "")]

    # Doing things -------------------------------------------------------------------------

    def open(self, path="/"):
        self.driver.get(self.base_url + path)

    def go(self, route):
        """Follow a hash route (#/queue, #/r/ID) inside the page, as a link would."""
        self.js("location.hash = arguments[0];", route)

    def set_marker(self):
        """Mark this document; `still_same_document()` is false after any reload or navigation."""
        self.js("window.__signoffMarker = 1;")

    def still_same_document(self):
        return self.js("return window.__signoffMarker === 1;") is True

    def sign_in(self, token, principal):
        """Sign in through the form; wait until the page says who is signed in."""
        self.wait(lambda: self.shown("signin-form"), "the sign-in form")
        box = self.by_id("token-input")
        box.clear()
        box.send_keys(token)
        self.by_id("signin-button").click()
        self.wait_text("whoami", lambda t: principal in t, f"'{principal}' as the signed-in person")
        self.wait(lambda: not self.shown("signin-form"), "the sign-in form to go away")

    def cookie(self, name):
        found = self.driver.get_cookie(name)
        return found or None

    def fetch(self, method, path, body=None, headers=None):
        """fetch() from inside the page, with the browser's own cookies: {status, text}."""
        return self.js_async(
            """
            const [method, path, body, headers, done] = arguments;
            const init = {method, headers: headers || {}, credentials: 'same-origin'};
            if (body !== null) init.body = body;
            fetch(path, init)
              .then(r => r.text().then(t => done({status: r.status, text: t})))
              .catch(e => done({status: -1, text: String(e)}));
            """,
            method, path, body, headers or {},
        )

