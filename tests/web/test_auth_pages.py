"""Signing in and out in a real browser; the dashboard; switching to Chinese."""

from __future__ import annotations

from tests.web.conftest import shot, sign_in


def test_sign_in_shows_the_dashboard_and_sign_out_ends_the_session(page, live):
    page.goto(f"{live.url}/")
    assert page.url == f"{live.url}/login?next=/"
    page.get_by_label("Username").fill("coordinator")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Unknown user or wrong password."
    assert page.get_by_label("Password").get_attribute("aria-invalid") == "true"
    shot(page, "01-wrong-password")
    sign_in(page, live, "coordinator")
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert "0 of 35 enrolled" in page.inner_text("main")
    shot(page, "02-dashboard")
    cookie = next(c for c in page.context.cookies() if c["name"] == "nettrial_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{live.url}/")
    assert page.url.startswith(f"{live.url}/login")


def test_the_interface_switches_to_simplified_chinese(page, live):
    sign_in(page, live, "investigator")
    with page.expect_navigation():
        page.get_by_label("Language").select_option("zh")  # submits itself (app.js)
    assert page.get_by_role("heading", name="首页").is_visible()
    assert "已入组 0 / 35" in page.inner_text("main")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    shot(page, "01-chinese-dashboard")
