"""The Domains tab: the host names an app claims."""
from picloud.dashboard.base import bp, login_required, notify
from picloud.dashboard.apps import app_page, describe_error, render_tab, show_error
from picloud.dashboard.forms import DomainForm
from picloud.errors import Conflict, ValidationFailed
from picloud.manager.domains import add_domain, delete_domain
from picloud.models import Domain


def _render(app, form=None, error=None, status=200):
    return render_tab(
        app,
        "domains",
        "domains/index.html",
        "domains/_list.html",
        status=status,
        domains=Domain.select().where(Domain.app == app).order_by(Domain.pattern),
        form=form or DomainForm(formdata=None),
        error=error,
    )


@bp.get("/apps/<slug>/domains")
@login_required()
@app_page
def domains(app):
    """List the app's domain claims, with a form to add one."""
    return _render(app)


@bp.post("/apps/<slug>/domains")
@login_required("domains.manage")
@app_page
def claim_domain(app):
    """Claim a host name or a ``*.`` wildcard for the app."""
    form = DomainForm()
    if not form.validate_on_submit():
        return _render(app, form, status=422)
    try:
        domain = add_domain(app, form.pattern.data)
    except (Conflict, ValidationFailed) as exc:
        show_error(form, exc, "pattern")
        return _render(app, form, status=exc.status)
    notify(f"{app.slug} now answers on {domain.pattern}.")
    return _render(app)


@bp.post("/apps/<slug>/domains/<id:domain_id>/delete")
@login_required("domains.manage")
@app_page
def remove_domain(app, domain_id):
    """Drop one of the app's domain claims."""
    try:
        delete_domain(app, domain_id)
    except Conflict as exc:
        return _render(app, error=describe_error(exc), status=exc.status)
    notify("Dropped the domain claim.")
    return _render(app)
