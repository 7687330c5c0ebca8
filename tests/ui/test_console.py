"""The console in a real browser (Playwright driving Debian's chromium) against a real server
and a real broken container: log in, see the approval with its evidence, approve, watch the
timeline reach `resolved`; a viewer cannot approve; a form without its CSRF token is refused;
the session cookie's flags; no token in any URL (issue 15).

UPDATE_SCREENSHOTS=1 writes the pages' screenshots into docs/ (docs/console-*.png).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.server.conftest import Server, alert_payload
from tests.support.containers import Lab

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DOCS = Path(__file__).resolve().parents[2] / "docs"
WAIT_MS = 120_000  # generous: the expectations end as soon as they hold


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def shot(page: Page, name: str, tmp: Path) -> None:
    target = DOCS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp
    page.screenshot(path=str(target / f"console-{name}.png"), full_page=True)


def log_in(
    browser: Browser, srv: Server, token: str, seen: list[str]
) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.on("request", lambda request: seen.append(request.url))
    page.goto(srv.url + "/ui/runs")
    expect(page).to_have_url(srv.url + "/ui/login")
    page.get_by_label("Token").fill(token)
    page.get_by_label("Token").press("Enter")  # usable with a keyboard
    expect(page).to_have_url(srv.url + "/ui/runs")
    return context, page


def test_approve_in_the_browser(
    make_server: Callable[..., Server], lab: Lab, browser: Browser, tmp_path: Path
) -> None:
    srv = make_server()
    apu = srv.add_user("apu", "approver")
    vera = srv.add_user("vera", "viewer")
    crashed = lab.crashed()
    run_id = srv.webhook(alert_payload(crashed.name)).json()["runs"][0]["run_id"]
    srv.wait_status(run_id, "awaiting_approval")
    seen: list[str] = []

    # a viewer sees the request and its evidence, and cannot decide
    context, page = log_in(browser, srv, vera, seen)
    (cookie,) = [c for c in context.cookies() if c["name"] == "devops_agent_session"]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/ui")
    assert vera not in cookie["value"]
    page.goto(srv.url + "/ui/approvals")
    expect(page.get_by_test_id("evidence").first).to_contain_text("health_check")
    expect(page.get_by_test_id("viewer-note")).to_be_visible()
    assert page.get_by_test_id("approve").count() == 0
    csrf = page.locator("form[action='/ui/logout'] input[name=csrf]").input_value()
    decide = f"{srv.url}/ui/runs/{run_id}/decide"
    as_viewer = context.request.post(decide, form={"decision": "approve", "csrf": csrf})
    assert as_viewer.status == 403 and "only approvers" in as_viewer.text()
    context.close()

    # an approver: a form without its CSRF token (or with another session's) is refused
    context, page = log_in(browser, srv, apu, seen)
    shot(page, "runs", tmp_path)
    for form in ({"decision": "approve"}, {"decision": "approve", "csrf": csrf}):
        refused = context.request.post(decide, form=form)
        assert refused.status == 403 and "CSRF" in refused.text(), form
    assert srv.run(run_id)["status"] == "awaiting_approval"
    page.goto(srv.url + "/ui/approvals")
    request = page.get_by_test_id("request")
    expect(request).to_contain_text("restart_service")
    expect(request).to_contain_text("medium risk")
    expect(request).to_contain_text("safety_mode")
    expect(page.get_by_test_id("evidence").first).to_contain_text("health_check")
    shot(page, "approvals", tmp_path)
    page.get_by_label("Comment").fill("looks right")
    page.get_by_test_id("approve").click()

    # the run's page follows the run live (its events) until it is resolved
    expect(page).to_have_url(f"{srv.url}/ui/runs/{run_id}")
    expect(page.get_by_test_id("outcome")).to_have_text("resolved", timeout=WAIT_MS)
    expect(page.get_by_test_id("approval")).to_contain_text("approve by apu")
    expect(page.get_by_test_id("timeline")).to_contain_text("execute")
    shot(page, "run", tmp_path)
    run = srv.run(run_id)
    assert (run["approval"]["approver"], run["approval"]["comment"]) == ("apu", "looks right")

    page.goto(srv.url + "/ui/audit")
    expect(page.get_by_test_id("verify")).to_contain_text("Verified")
    shot(page, "audit", tmp_path)
    page.goto(srv.url + "/ui/control")
    expect(page.get_by_test_id("switch")).to_contain_text("allowed")
    context.close()
    tokens = (apu, vera, srv.token)
    assert seen and not [u for u in seen if any(t in u for t in tokens)]


def test_logged_out_pages_and_the_admin_kill_switch(
    make_server: Callable[..., Server], browser: Browser, tmp_path: Path
) -> None:
    srv = make_server()
    context = browser.new_context()
    page = context.new_page()
    for path in ("/ui/runs", "/ui/approvals", "/ui/audit", "/ui/control", "/ui/patterns"):
        page.goto(srv.url + path)
        expect(page).to_have_url(srv.url + "/ui/login")
    events = context.request.get(srv.url + "/ui/runs/x/events")
    assert events.status == 401
    page.get_by_label("Token").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown token")
    shot(page, "login", tmp_path)
    page.get_by_label("Token").fill(srv.token)  # AGENT_API_TOKEN: the user admin
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("who")).to_contain_text("admin (admin)")
    page.goto(srv.url + "/ui/control")
    page.get_by_label("Reason").fill("change freeze")
    page.get_by_role("button", name="Pause all actions").click()
    expect(page.get_by_test_id("switch")).to_contain_text("paused")
    assert srv.get("/status").json()["kill_switch"]["actions_paused"] is True
    rows = srv.get("/audit", params={"kind": "control"}).json()["rows"]
    assert [(r["actor"], r["detail"]["reason"]) for r in rows] == [("admin", "change freeze")]
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(srv.url + "/ui/login")
    page.goto(srv.url + "/ui/runs")
    expect(page).to_have_url(srv.url + "/ui/login")
    context.close()
