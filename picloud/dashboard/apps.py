"""The Apps list and the app page's frame: tabs, former-slug redirects, the Overview tab.

Every app page lives under ``/admin/apps/<slug>/...``. Views take the app through
``@app_page``, which resolves the slug, answers a former slug with a redirect to the
same sub-path under the current one, and hands the view the ``App``.
"""
import functools

from flask import g, make_response, redirect, render_template, request, url_for
from peewee import prefetch

from picloud.dashboard.base import bp, login_required
from picloud.dashboard.forms import AppForm, ResolveForm
from picloud.errors import Conflict, ValidationFailed
from picloud.manager import apps as manager
from picloud.manager.apps import FormerSlug, app_counts, check_slug, resolve_app
from picloud.manager.routes import route_urls
from picloud.metrics.figures import hourly_activity
from picloud.models import App, DeadLetter, Domain, Execution, Route, Script
from picloud.routing.explain import UnreadableUrl, explain_url

# The app page's tabs, in order: (name, label, endpoint). Adding a tab is one line here.
TABS = (
    ("overview", "Overview", "dashboard.app"),
    ("scripts", "Scripts", "dashboard.scripts"),
    ("routes", "Routes", "dashboard.routes"),
    ("domains", "Domains", "dashboard.domains"),
    ("triggers", "Triggers", "dashboard.triggers"),
    ("data", "Data", "dashboard.data"),
    ("logs", "Logs", "dashboard.logs"),
    ("dead_letters", "Dead letters", "dashboard.dead_letters"),
    ("settings", "Settings", "dashboard.app_settings"),
)

RECENT_RUNS = 10


def app_page(view):
    """Resolve ``slug`` to the App (redirecting a former slug) and pass it as ``app``."""

    @functools.wraps(view)
    def wrapper(slug, **kwargs):
        # A live slug first: resolve_app tries ids first, and a slug may be all digits.
        app = App.by_slug(slug)
        if app is None:
            try:
                app = resolve_app(slug)
            except FormerSlug as moved:
                return _redirect_to_slug(moved.app.slug)
        if app.slug != slug:  # reached by id: show the canonical address
            return _redirect_to_slug(app.slug)
        g.app = app
        return view(app=app, **kwargs)

    return wrapper


def _redirect_to_slug(slug):
    # GET keeps the 301 of docs/api.md §4; a form posted from a page opened before a rename
    # must keep its method and body, which only 308 promises.
    target = url_for(request.endpoint, **{**request.view_args, "slug": slug})
    if request.query_string:
        target += "?" + request.query_string.decode("latin-1")
    return redirect(target, 301 if request.method in ("GET", "HEAD") else 308)


def go_to(url):
    """Send the browser to ``url``: an ``HX-Redirect`` for htmx, else a 303."""
    if request.htmx:
        response = make_response("", 200)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, 303)


def show_error(form, exc, fallback):
    """Put a manager error next to the form field it names, or next to ``fallback``."""
    field = str(exc.extra.get("field") or fallback).replace(".", "_")
    target = form._fields.get(field) or form._fields[fallback]
    target.errors = list(target.errors or ()) + [describe_error(exc)]


def describe_error(exc):
    """Return an error's message with the details a person needs to act on it."""
    message = exc.message
    held_by = exc.extra.get("held_by")
    if held_by:
        message += f" (held by app {held_by['slug']})"
    for kind in ("routes", "triggers"):
        ids = exc.extra.get(kind)
        if ids:
            message += f" ({kind}: {', '.join('#' + str(i) for i in ids)})"
    if exc.extra.get("line"):
        message = f"line {exc.extra['line']}: {message}"
    return message


def render_tab(app, tab, page, partial=None, status=200, **context):
    """Render a tab's partial for htmx, else its page with the tab list and ``tab`` marked."""
    template = partial if partial and request.htmx else page
    if template == page:  # the tab list shows how many dead letters wait
        context.setdefault("open_dead_letters", DeadLetter.for_app(app).count())
    body = render_template(template, app=app, tab=tab, tabs=TABS, section="apps", **context)
    return body, status


def script_names(app):
    """Return {script id: name} for the app's scripts."""
    return dict(Script.select(Script.id, Script.name).where(Script.app == app).tuples())


@bp.get("/apps")
@login_required()
def apps():
    """List the apps, with a form to create one."""
    return _render_list(AppForm(formdata=None))


def _render_list(form, status=200, slug_check=None):
    listed = prefetch(App.select().order_by(App.slug), Domain.select().order_by(Domain.pattern))
    return (
        render_template(
            "apps/index.html", apps=listed, form=form, slug_check=slug_check, section="apps",
            resolve_form=ResolveForm(formdata=None),
        ),
        status,
    )


@bp.post("/apps")
@login_required("apps.manage")
def create_app():
    """Create an app and open it."""
    form = AppForm()
    if not form.validate_on_submit():
        return _render_list(form, 422)
    try:
        app = manager.create_app(
            form.slug.data,
            name=form.name.data or None,
            description=form.description.data or None,
            force=form.force.data,
        )
    except (Conflict, ValidationFailed) as exc:
        if exc.code == "slug_in_history":  # the status line offers the takeover
            return _render_list(form, exc.status, slug_check=check_slug(form.slug.data))
        show_error(form, exc, "slug")
        return _render_list(form, exc.status)
    return go_to(url_for("dashboard.app", slug=app.slug))


@bp.get("/resolve")
@login_required()
def resolve_url():
    """Tell which app, route and script answer a URL, and why."""
    form = ResolveForm(request.args)
    explanation, error = None, None
    if form.url.data:
        try:
            explanation = explain_url(form.url.data, form.method.data)
        except UnreadableUrl as exc:
            error = str(exc)
    if request.htmx:
        return render_template("apps/_resolve.html", explanation=explanation, error=error)
    listed = prefetch(App.select().order_by(App.slug), Domain.select().order_by(Domain.pattern))
    return render_template(
        "apps/index.html", apps=listed, form=AppForm(formdata=None), slug_check=None, section="apps",
        resolve_form=form, explanation=explanation, resolve_error=error,
    )


@bp.post("/apps/slug-check")
@login_required("apps.manage")
def check_new_slug():
    """Tell whether a slug is free for a new app."""
    slug = request.form.get("slug", "").strip()
    result = check_slug(slug) if slug else None
    return render_template("apps/_slug_status.html", result=result, app=None)


@bp.get("/apps/<slug>", endpoint="app")
@login_required()
@app_page
def overview(app):
    """Show an app's overview: counts, runs and errors per hour, recent runs.

    Runs, errors and overload refusals come from the run figures ``/metrics`` reports.
    """
    activity = hourly_activity(app.id, hours=24)
    counts = app_counts(app, activity)
    runs = [run.to_dict() for run in Execution.recent(app).limit(RECENT_RUNS)]
    return render_tab(
        app,
        "overview",
        "apps/overview.html",
        counts=counts,
        activity=activity,
        chart=bar_chart(activity),
        runs=runs,
        script_names=script_names(app),
        checklist=first_steps(app, counts, called=bool(runs)),
    )


def first_steps(app, counts, called):
    """Return the steps from a new app to a working URL, or None once all are done.

    The last step hands over a curl command for the first route at a complete URL.
    """
    route = Route.for_app(app).order_by(Route.id).first() if counts["routes"] else None
    url = next((u.href for u in route_urls(route) if u.href), None) if route else None
    steps = [
        ("Claim a domain", counts["domains"] > 0, url_for("dashboard.domains", slug=app.slug)),
        ("Write a script", counts["scripts"] > 0, url_for("dashboard.scripts", slug=app.slug)),
        ("Add a route to it", counts["routes"] > 0, url_for("dashboard.routes", slug=app.slug)),
        ("Call it", called, None),
    ]
    if all(done for _, done, _ in steps):
        return None
    return {"steps": steps, "route": route, "url": url}


# The chart is an inline SVG drawn on the server: no JavaScript, nothing to load.
CHART_WIDTH = 720
CHART_HEIGHT = 120
CHART_GAP = 4


def bar_chart(activity):
    """Lay out one bar pair (runs, errors) per hour in a CHART_WIDTH x CHART_HEIGHT box."""
    peak = max((hour.runs for hour in activity), default=0) or 1
    slot = CHART_WIDTH / max(len(activity), 1)
    bars = []
    for index, hour in enumerate(activity):
        runs_height = round(CHART_HEIGHT * hour.runs / peak, 1)
        errors_height = round(CHART_HEIGHT * hour.errors / peak, 1)
        bars.append(
            {
                "x": round(index * slot + CHART_GAP / 2, 1),
                "width": round(slot - CHART_GAP, 1),
                "runs_y": round(CHART_HEIGHT - runs_height, 1),
                "runs_height": runs_height,
                "errors_y": round(CHART_HEIGHT - errors_height, 1),
                "errors_height": errors_height,
                "label": hour.hour.strftime("%H:%M"),
                "runs": hour.runs,
                "errors": hour.errors,
                "tick": index % 6 == 0,
            }
        )
    return {"width": CHART_WIDTH, "height": CHART_HEIGHT, "peak": peak, "bars": bars}
