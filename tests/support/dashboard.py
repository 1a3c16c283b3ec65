"""A dashboard client for tests over HTTP: logs in like a browser, posts with CSRF."""
import re

import requests


def csrf_from(html):
    """Return the CSRF token a dashboard page carries."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no CSRF token in page"
    return match.group(1)


def selected_tab(html):
    """Return the label of the app page's selected tab."""
    return re.search(r'aria-selected="true">([^<]+)<', html).group(1).strip()


class Dashboard:
    """A logged-in dashboard session that sends the CSRF token with every POST."""

    def __init__(self, base_url, username, password):
        self.base_url = base_url
        self.session = requests.Session()
        page = self.session.get(base_url + "/admin/login", timeout=30)
        response = self.session.post(
            base_url + "/admin/login",
            data={"username": username, "password": password, "csrf_token": csrf_from(page.text)},
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code == 302, response.text
        self.csrf = csrf_from(self.session.get(base_url + "/admin/account", timeout=30).text)

    def get(self, path, htmx=False, **kwargs):
        headers = {"HX-Request": "true"} if htmx else {}
        return self.session.get(self.base_url + path, headers=headers, allow_redirects=False, timeout=30, **kwargs)

    def post(self, path, data=None, htmx=False, csrf=True, **kwargs):
        data = dict(data or {})
        if csrf:
            data["csrf_token"] = self.csrf
        headers = {"HX-Request": "true"} if htmx else {}
        return self.session.post(
            self.base_url + path, data=data, headers=headers, allow_redirects=False, timeout=60, **kwargs
        )
