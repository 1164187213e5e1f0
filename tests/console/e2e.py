#!/usr/bin/python3
"""End-to-end test of Hato's admin console in headless Chromium (Selenium 4).

Usage:
  e2e.py --url https://127.0.0.1:PORT --user admin --password PW --api http://127.0.0.1:HTTPPORT \
         --from sender@shop.example --to rcpt@dest.example --block blocked@dest.example --shots DIR

Preconditions (set up by the caller): the console account, the sending domain of --from, and a
manual block of --block. Needs Debian's chromium and chromedriver (/usr/bin) and the `selenium`
package; Selenium Manager is never used (the driver path is given explicitly).

Steps (one "PASS" line each; the first failure prints "FAIL: ..." and exits 1):
  1 login       wrong password -> the server's error on the login form; then a real login
  2 api-user    invalid name -> error, list unchanged; create "e2e-app", read its key (shown once)
  3 send        POST {api}/api/v2/emails/send.json with that key -> 200 {"id"}
  4 log         delivery log search by recipient until the message appears; open its detail
  5 dashboard   the per-minute chart image loads; today's "received" >= 1
  6 blocks      --block is listed; Unblock (confirm) removes it; "not-an-address" -> error
  7 errors      allowed IP "300.1.1.1/99", domain "bad domain", retention -5 -> errors,
                nothing changed
  8 cluster     the node table shows a node with health "up"; no CSP violation was logged
Screenshots go to --shots: login, api-user, log, message, dashboard, blocks, errors-ip,
errors-domain, errors (retention), cluster (.png), and fail.png on failure.

Page hooks used (documented at the top of console/assets/app.js): every form #X has #X-submit,
#X-error (.error, role=alert) and #X-notice. Specifically: #login-form #login-user
#login-password, #me-user, #nav a[data-nav=...], #api-user-form #api-user-name #api-user-key-value
#api-users-table tr[data-name], #log-form #log-recipient #log-table tr[data-id][data-recipient],
#message-view #msg-id, img#chart-minutes, #daily-table td[data-col=received], #blocks-table
tr[data-address] button[data-test=unblock], #block-form #block-address, #allowed-ip-form
#allowed-ip-network #allowed-ips-table tr[data-name], #domain-form #domain-name #domains-list
.domain[data-name], #retention-form #retention-days #retention-forever #retention-current,
#cluster-table tr[data-id] td[data-col=health].
"""
import argparse
import json
import os
import sys
import time
import traceback
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 15  # seconds for ordinary UI changes (the server may be forwarding writes to a leader)


class Failure(Exception):
    pass


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="console base URL, e.g. https://127.0.0.1:8443")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--api", required=True, help="HTTP API base URL, e.g. http://127.0.0.1:8400")
    p.add_argument("--from", dest="sender", required=True)
    p.add_argument("--to", dest="rcpt", required=True)
    p.add_argument("--block", required=True)
    p.add_argument("--shots", required=True)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    a = p.parse_args()
    a.url = a.url.rstrip("/")
    a.api = a.api.rstrip("/")
    os.makedirs(a.shots, exist_ok=True)

    opts = webdriver.ChromeOptions()
    opts.binary_location = a.chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--ignore-certificate-errors", "--window-size=1400,1000"):
        opts.add_argument(arg)
    opts.accept_insecure_certs = True  # the cluster's self-signed certificate
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(a.chromedriver), options=opts)
    t0 = time.monotonic()
    try:
        E2E(driver, a).run()
    except Exception as e:  # noqa: BLE001 - report anything, with a screenshot
        try:
            driver.save_screenshot(os.path.join(a.shots, "fail.png"))
        except WebDriverException:
            pass
        if not isinstance(e, Failure):
            traceback.print_exc()
        print(f"FAIL: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    finally:
        driver.quit()
    print(f"ALL PASSED in {time.monotonic() - t0:.1f}s", flush=True)


class E2E:
    def __init__(self, driver, a):
        self.d = driver
        self.a = a

    # ------------------------------------------------------------------ helpers

    def wait(self, cond, what, timeout=WAIT):
        """Wait until cond(driver) is truthy; fail with `what` otherwise."""
        def safe(d):
            try:
                return cond(d)
            except StaleElementReferenceException:
                return False
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1).until(safe)
        except TimeoutException:
            raise Failure(f"timed out after {timeout}s waiting for: {what}") from None

    def el(self, css, timeout=WAIT):
        """A displayed element."""
        return self.wait(lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()), None),
                         f"element {css} to be shown", timeout)

    def rows(self, css, attr):
        return [r.get_attribute(attr) for r in self.d.find_elements(By.CSS_SELECTOR, css)]

    def fill(self, css, text):
        e = self.el(css)
        e.clear()
        e.send_keys(text)
        return e

    def submit(self, form_id):
        """Click the form's submit button and wait until it is enabled again (request done)."""
        btn = self.el(f"#{form_id}-submit")
        self.wait(lambda d: btn.is_enabled(), f"#{form_id}-submit to be enabled")
        btn.click()

        def done(d):
            try:
                return btn.is_enabled() or not btn.is_displayed()
            except StaleElementReferenceException:
                return True  # the page was re-rendered (e.g. login -> console)
        self.wait(done, f"#{form_id} request to finish")

    def expect_error(self, form_id):
        """Wait for the form's visible .error box; return its text."""
        err = self.wait(lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, f"#{form_id}-error")
                                        if e.is_displayed() and e.text.strip()), None),
                        f"an error message in #{form_id}-error")
        cls = err.get_attribute("class").split()
        if "error" not in cls or err.get_attribute("role") != "alert":
            raise Failure(f"#{form_id}-error is not an .error role=alert element")
        return err.text.strip()

    def expect_success(self, form_id, css, what):
        """Wait for `css` to be shown after submitting #form_id; fail with the form's error."""
        def check(d):
            err = [e.text.strip() for e in d.find_elements(By.CSS_SELECTOR, f"#{form_id}-error") if e.is_displayed()]
            if err and err[0]:
                raise Failure(f"{what} was refused: {err[0]!r}")
            return next((e for e in d.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()), None)
        return self.wait(check, what)

    def go(self, nav, ready_css):
        """Navigate with the sidebar and wait for the page's main element."""
        link = self.el(f'#nav a[data-nav="{nav}"]')
        link.click()
        self.wait(lambda d: d.execute_script("return location.hash") == f"#/{nav}", f"the address #/{nav}")
        return self.el(ready_css)

    def reload(self, ready_css):
        """Reload the page (the session cookie survives) and wait for `ready_css`."""
        self.d.refresh()
        return self.el(ready_css)

    def shot(self, name):
        self.d.save_screenshot(os.path.join(self.a.shots, name))

    def passed(self, step, detail):
        print(f"PASS {step}: {detail}", flush=True)

    def unchanged(self, before, ready_css, rows_css, attr, what):
        """After a refused change: reload from the server and compare the list."""
        self.reload(ready_css)
        after = self.rows(rows_css, attr)
        if sorted(after) != sorted(before):
            raise Failure(f"{what} changed after a refused request: {before} -> {after}")

    # ------------------------------------------------------------------ steps

    def run(self):
        self.login()
        key = self.api_user()
        msg_id = self.send(key)
        self.log(msg_id)
        self.dashboard()
        self.blocks()
        self.bad_input()
        self.cluster()
        self.no_csp_violations()

    def login(self):
        a = self.a
        self.d.get(a.url + "/#/dashboard")
        self.el("#login-form")
        self.fill("#login-user", a.user)
        self.fill("#login-password", a.password + "-wrong")
        self.submit("login-form")
        text = self.expect_error("login-form")
        if not self.d.find_elements(By.CSS_SELECTOR, "#login-form"):
            raise Failure("the login form went away after a wrong password")
        if self.d.find_elements(By.CSS_SELECTOR, "#nav"):
            raise Failure("the console opened with a wrong password")
        self.shot("login.png")
        self.fill("#login-password", a.password)
        self.submit("login-form")
        me = self.expect_success("login-form", "#me-user", f"logging in as {a.user}")
        self.wait(lambda d: me.text.strip() == a.user, f"#me-user to show {a.user}")
        self.el("#dash-pending")
        self.passed("1 login", f"wrong password refused ({text!r}); logged in as {a.user}")

    def api_user(self):
        self.go("settings/api-users", "#api-users-table")
        before = self.rows("#api-users-table tr[data-name]", "data-name")
        self.fill("#api-user-name", "bad name!")
        self.submit("api-user-form")
        err = self.expect_error("api-user-form")
        if self.el("#api-user-name").get_attribute("value") != "bad name!":
            raise Failure("the API user form lost its input after an error")
        if self.d.find_elements(By.CSS_SELECTOR, "#api-user-key-value"):
            raise Failure("a key was shown for a refused API user")
        self.unchanged(before, "#api-users-table", "#api-users-table tr[data-name]", "data-name", "the API user list")
        self.fill("#api-user-name", "e2e-app")
        self.submit("api-user-form")
        key_el = self.expect_success("api-user-form", "#api-user-key-value", "creating API user e2e-app")
        key = key_el.text.strip()
        if len(key) < 16:
            raise Failure(f"the API key shown is too short: {key!r}")
        self.el('#api-users-table tr[data-name="e2e-app"]')
        self.shot("api-user.png")
        self.passed("2 api-user", f"invalid name refused ({err!r}); e2e-app created, key of {len(key)} characters")
        return key

    def send(self, key):
        a = self.a
        body = {"api_user": "e2e-app", "api_key": key,
                "to": [{"address": a.rcpt, "name": "Rcpt"}], "from": {"address": a.sender, "name": "Shop"},
                "subject": "e2e console test", "text": "hello"}
        req = urllib.request.Request(a.api + "/api/v2/emails/send.json", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            raise Failure(f"send.json answered {e.code}: {e.read().decode(errors='replace')}") from None
        if status != 200:
            raise Failure(f"send.json answered {status}: {text}")
        try:
            msg_id = json.loads(text)["id"]
        except (ValueError, KeyError, TypeError):
            raise Failure(f"send.json answer has no id: {text}") from None
        if not isinstance(msg_id, str) or not msg_id:
            raise Failure(f"send.json id is not a string: {text}")
        self.passed("3 send", f"send.json accepted the message: id {msg_id}")
        return msg_id

    def log(self, msg_id):
        a = self.a
        self.go("log", "#log-form")
        self.fill("#log-recipient", a.rcpt)
        row_css = f'#log-table tr[data-id="{msg_id}"]'
        deadline = time.monotonic() + 30
        while True:
            self.submit("log-form")
            rows = [r for r in self.d.find_elements(By.CSS_SELECTOR, row_css)
                    if (r.get_attribute("data-recipient") or "").lower() == a.rcpt.lower()]
            if rows:
                break
            if time.monotonic() > deadline:
                seen = self.rows("#log-table tr[data-id]", "data-id")
                raise Failure(f"no delivery-log row for {msg_id} to {a.rcpt} within 30s (rows: {seen})")
            time.sleep(0.5)
        self.shot("log.png")
        rows[0].find_element(By.CSS_SELECTOR, "a.msg-link").click()
        view = self.el("#message-view")
        self.wait(lambda d: msg_id in (view.text or "") and a.rcpt.lower() in view.text.lower(),
                  f"the message view to show {msg_id} and {a.rcpt}")
        shown = self.el("#msg-id").text.strip()
        self.shot("message.png")
        self.passed("4 log", f"delivery log found {msg_id} for {a.rcpt}; detail shows id {shown}")

    def dashboard(self):
        self.go("dashboard", "#dash-pending")
        self.wait(lambda d: d.execute_script(
            "const i = document.getElementById('chart-minutes'); return i && i.complete && i.naturalWidth > 0;"),
            "the per-minute chart image to load")
        cell = '#daily-table tbody tr:first-child td[data-col="received"]'

        def received(d):
            e = d.find_elements(By.CSS_SELECTOR, cell)
            if not e:
                return None
            digits = "".join(ch for ch in e[0].text if ch.isdigit())
            return int(digits) if digits and int(digits) >= 1 else None
        n = self.wait(received, "today's received count >= 1 in #daily-table (the page refreshes every 5 s)", 30)
        self.shot("dashboard.png")
        self.passed("5 dashboard", f"per-minute chart loaded; today received {n}")

    def blocks(self):
        a = self.a
        want = a.block.lower()
        self.go("blocks", "#blocks-table")

        def addresses():
            return [x.lower() for x in self.rows("#blocks-table tr[data-address]", "data-address")]
        self.wait(lambda d: want in addresses(), f"{a.block} in the block list")
        row = next(r for r in self.d.find_elements(By.CSS_SELECTOR, "#blocks-table tr[data-address]")
                   if r.get_attribute("data-address").lower() == want)
        row.find_element(By.CSS_SELECTOR, 'button[data-test="unblock"]').click()
        alert = self.wait(EC.alert_is_present(), "the unblock confirmation dialog")
        alert.accept()
        self.wait(lambda d: want not in addresses(), f"{a.block} to leave the block list")
        self.el("#blocks-notice")
        self.unchanged(addresses(), "#blocks-table", "#blocks-table tr[data-address]", "data-address",
                       "the block list (after the unblock)")
        if want in addresses():
            raise Failure(f"{a.block} is back in the block list after a reload")

        before = self.rows("#blocks-table tr[data-address]", "data-address")
        self.fill("#block-address", "not-an-address")
        self.submit("block-form")
        err = self.expect_error("block-form")
        if self.el("#block-address").get_attribute("value") != "not-an-address":
            raise Failure("the block form lost its input after an error")
        self.shot("blocks.png")
        self.unchanged(before, "#blocks-table", "#blocks-table tr[data-address]", "data-address", "the block list")
        self.passed("6 blocks", f"{a.block} unblocked; invalid address refused ({err!r})")

    def bad_input(self):
        # Allowed IPs
        self.go("settings/smtp", "#allowed-ips-table")
        before = self.rows("#allowed-ips-table tr[data-name]", "data-name")
        self.fill("#allowed-ip-network", "300.1.1.1/99")
        self.submit("allowed-ip-form")
        e1 = self.expect_error("allowed-ip-form")
        self.shot("errors-ip.png")
        self.unchanged(before, "#allowed-ips-table", "#allowed-ips-table tr[data-name]", "data-name", "the allowed IPs")

        # Sending domains
        self.go("settings/domains", "#domain-form")
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#domains-list .domain[data-name], #domains-list .empty-card"),
                  "the sending domain list")
        before = self.rows("#domains-list .domain[data-name]", "data-name")
        self.fill("#domain-name", "bad domain")
        self.submit("domain-form")
        e2 = self.expect_error("domain-form")
        self.shot("errors-domain.png")
        self.reload("#domain-form")
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#domains-list .domain[data-name], #domains-list .empty-card"),
                  "the sending domain list")
        after = self.rows("#domains-list .domain[data-name]", "data-name")
        if sorted(after) != sorted(before):
            raise Failure(f"the sending domains changed after a refused request: {before} -> {after}")

        # Retention
        self.go("settings/retention", "#retention-form")
        cur = self.el("#retention-current")
        self.wait(lambda d: cur.text.strip() not in ("", "\u2026"), "the current retention")
        before = cur.text.strip()
        forever = self.el("#retention-forever")
        if forever.is_selected():
            forever.click()
        self.fill("#retention-days", "-5")
        self.submit("retention-form")
        e3 = self.expect_error("retention-form")
        if self.el("#retention-current").text.strip() != before:
            raise Failure("the shown retention changed after a refused request")
        self.shot("errors.png")
        cur = self.reload("#retention-current")
        self.wait(lambda d: cur.text.strip() not in ("", "\u2026"), "the current retention")
        if cur.text.strip() != before:
            raise Failure(f"the retention changed after a refused request: {before!r} -> {cur.text.strip()!r}")
        self.passed("7 errors", f"allowed IP ({e1!r}), domain ({e2!r}) and retention ({e3!r}) refused; nothing changed")

    def cluster(self):
        self.go("cluster", "#cluster-table")
        self.wait(lambda d: any(c.text.strip() == "up" for c in d.find_elements(
            By.CSS_SELECTOR, '#cluster-table tr[data-id] td[data-col="health"]')), "a node with health \"up\"")
        ids = self.rows("#cluster-table tr[data-id]", "data-id")
        self.shot("cluster.png")
        self.passed("8 cluster", f"nodes {', '.join(ids)} listed, at least one up")

    def no_csp_violations(self):
        try:
            logs = self.d.get_log("browser")
        except WebDriverException:
            return  # this driver does not keep logs
        bad = [x["message"] for x in logs if "Content Security Policy" in x.get("message", "")]
        if bad:
            raise Failure("the page broke its Content-Security-Policy: " + " | ".join(bad[:3]))
        self.passed("csp", "no Content-Security-Policy violation in the browser log")


if __name__ == "__main__":
    main()
