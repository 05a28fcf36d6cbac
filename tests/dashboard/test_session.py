"""The page's routes without a browser: its files and headers, the cookie sign-in, CSRF, sign-out,
and the local Swagger UI. (These routes are pages, not the API: they are not in the OpenAPI
document, so their access is tested here rather than in the access matrix.)"""

from __future__ import annotations

import pytest

from backend.auth.context import REFRESH_COOKIE, SESSION_COOKIE

PAGE = {"X-Wangge-Page": "1"}


def sign_in(app, who: str = "supervisor"):  # type: ignore[no-untyped-def]
    client = app.test_client()
    response = client.post(
        "/dashboard/session", json={"username": who, "password": f"{who}-password"}, headers=PAGE
    )
    assert response.status_code == 200, response.json
    return client, response


def test_the_page_and_its_files_are_served_with_a_strict_policy(anon_client):
    page = anon_client.get("/dashboard")
    assert page.status_code == 200 and page.mimetype == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "unsafe" not in policy
    html = page.get_data(as_text=True)
    assert "<script>" not in html and "http://" not in html and "https://" not in html
    assert page.headers["X-Frame-Options"] == "DENY"
    for path in (
        "/dashboard/src/app.js",
        "/dashboard/src/map.js",
        "/dashboard/src/style.css",
        "/dashboard/vendor/maplibre-gl/maplibre-gl.mjs",
        "/dashboard/vendor/maplibre-gl/maplibre-gl-worker.mjs",
        "/dashboard/vendor/maplibre-gl/maplibre-gl.css",
    ):
        response = anon_client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Content-Security-Policy"] == policy
    assert anon_client.get("/dashboard/src/app.js").mimetype == "text/javascript"
    # No basemap by default: nothing outside the origin, in the policy or the page's settings.
    assert "http" not in policy
    assert anon_client.get("/dashboard/config").json == {"basemap": None}


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/src/../routes.py",
        "/dashboard/src/%2e%2e/routes.py",
        "/dashboard/vendor/maplibre-gl/../package.json",
        "/dashboard/vendor/maplibre-gl/LICENSE.txt",
        "/dashboard/vendor/left-pad/index.js",
        "/dashboard/src/nothing.js",
    ],
)
def test_nothing_else_is_served_from_the_page_folders(anon_client, path):
    response = anon_client.get(path)
    assert response.status_code == 404, path
    assert response.mimetype == "application/problem+json"


def test_the_api_docs_load_swagger_ui_from_the_app(anon_client):
    html = anon_client.get("/docs").get_data(as_text=True)
    assert "cdn." not in html and "https://" not in html
    assert '/dashboard/vendor/swagger-ui/swagger-ui-bundle.js"' in html
    for name in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        assert anon_client.get(f"/dashboard/vendor/swagger-ui/{name}").status_code == 200, name


def test_sign_in_keeps_the_login_in_http_only_strict_cookies(app):
    client, response = sign_in(app)
    cookies = response.headers.getlist("Set-Cookie")
    session = next(c for c in cookies if c.startswith(SESSION_COOKIE + "="))
    refresh = next(c for c in cookies if c.startswith(REFRESH_COOKIE + "="))
    for cookie in (session, refresh):
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/dashboard/session" in refresh
    body = response.json
    assert body["signed_in"] and body["role"] == "supervisor" and body["area_code"] == "440117103"
    # No token in the body: the page's scripts never hold one.
    assert "access_token" not in body and "refresh_token" not in body and len(body["csrf_token"]) == 64
    assert response.headers["Cache-Control"] == "no-store"
    # The cookie is a credential for the API, within the user's scope.
    assert client.get("/api/v1/me").json["username"] == "supervisor"
    assert client.get("/api/v1/stats/overdue?area=440117103").status_code == 200
    assert client.get("/api/v1/stats/overdue?area=440117104").status_code == 404
    assert client.get("/dashboard/session").json["csrf_token"] == body["csrf_token"]


def test_a_sign_in_needs_the_page_header_and_right_credentials(app):
    client = app.test_client()
    body = {"username": "supervisor", "password": "supervisor-password"}
    refused = client.post("/dashboard/session", json=body)
    assert refused.status_code == 403 and refused.mimetype == "application/problem+json"
    wrong = client.post("/dashboard/session", json={**body, "password": "nope"}, headers=PAGE)
    assert wrong.status_code == 401
    empty = client.post("/dashboard/session", json={"username": ""}, headers=PAGE)
    assert empty.status_code == 422
    assert {e["field"] for e in empty.json["errors"]} == {"username", "password"}
    assert client.get("/dashboard/session").json == {"signed_in": False, "renewable": False}


def test_writes_with_the_cookie_need_the_csrf_token(app):
    client, response = sign_in(app, "admin")
    weights = client.get("/api/v1/stats/index-weights").json
    refused = client.put("/api/v1/stats/index-weights", json=weights)
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json["detail"]
    forged = client.put("/api/v1/stats/index-weights", json=weights, headers={"X-CSRF-Token": "0" * 64})
    assert forged.status_code == 403
    done = client.put(
        "/api/v1/stats/index-weights", json=weights, headers={"X-CSRF-Token": response.json["csrf_token"]}
    )
    assert done.status_code == 200
    # Another login of the same user has another CSRF token.
    _, other = sign_in(app, "admin")
    assert other.json["csrf_token"] != response.json["csrf_token"]


def test_refresh_renews_the_access_cookie_and_each_refresh_cookie_works_once(app):
    client, response = sign_in(app)
    old_refresh = client.get_cookie(REFRESH_COOKIE, path="/dashboard/session").value
    renewed = client.post("/dashboard/session/refresh", headers=PAGE)
    assert renewed.status_code == 200
    assert renewed.json["csrf_token"] == response.json["csrf_token"]  # the same login
    assert client.get_cookie(REFRESH_COOKIE, path="/dashboard/session").value != old_refresh
    assert client.get("/api/v1/me").status_code == 200
    assert client.post("/dashboard/session/refresh").status_code == 403  # not from the page
    # The old refresh token again: reuse ends the whole login.
    client.set_cookie(REFRESH_COOKIE, old_refresh, path="/dashboard/session")
    assert client.post("/dashboard/session/refresh", headers=PAGE).status_code == 401
    assert client.get("/api/v1/me").status_code == 401


def test_sign_out_ends_the_login_at_once(app):
    client, response = sign_in(app)
    stolen = client.get_cookie(SESSION_COOKIE).value
    assert client.delete("/dashboard/session").status_code == 403  # no CSRF token
    out = client.delete("/dashboard/session", headers={"X-CSRF-Token": response.json["csrf_token"]})
    assert out.status_code == 204
    cleared = [c for c in out.headers.getlist("Set-Cookie") if "Expires=Thu, 01 Jan 1970" in c]
    assert len(cleared) == 2
    assert client.get("/dashboard/session").json["signed_in"] is False
    # A copy of the access cookie taken before signing out no longer works either.
    thief = app.test_client()
    thief.set_cookie(SESSION_COOKIE, stolen)
    assert thief.get("/api/v1/me").status_code == 401
    assert thief.get("/api/v1/stats/overdue?area=440117103").status_code == 401


def test_a_tampered_cookie_is_refused_and_other_credentials_come_first(app, accounts):
    client, _ = sign_in(app)
    token = client.get_cookie(SESSION_COOKIE).value
    client.set_cookie(SESSION_COOKIE, token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers=accounts.headers("admin")).json["role"] == "admin"
    gis = app.test_client()
    assert gis.get("/dashboard/session", headers=accounts.headers("gis")).json["signed_in"] is False


def test_signing_out_of_an_ended_login_still_clears_the_cookies(app):
    client, response = sign_in(app)
    csrf = {"X-CSRF-Token": response.json["csrf_token"]}
    refresh = client.get_cookie(REFRESH_COOKIE, path="/dashboard/session").value
    assert client.delete("/dashboard/session", headers=csrf).status_code == 204
    # A second tab still holding the old cookies signs out too, from the page.
    stale = app.test_client()
    stale.set_cookie(REFRESH_COOKIE, refresh, path="/dashboard/session")
    assert stale.delete("/dashboard/session").status_code == 403
    out = stale.delete("/dashboard/session", headers=PAGE)
    assert out.status_code == 204
    assert stale.get_cookie(REFRESH_COOKIE, path="/dashboard/session") is None
