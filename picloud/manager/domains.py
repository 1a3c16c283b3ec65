"""Domain claims: normalising patterns, claiming them for an app, releasing them."""
from peewee import IntegrityError

from picloud.cache import config_change
from picloud.errors import Conflict, NotFound, ValidationFailed
from picloud.models import App, Domain, Route
from picloud.routing.match import InvalidHost, claim_covers, to_ascii_host


def normalize_pattern(raw):
    """Return (pattern, kind) for a host or ``*.`` wildcard, or raise 422 on field pattern."""
    if not isinstance(raw, str):
        raise ValidationFailed("pattern", "pattern must be a string.")
    value = raw.strip()
    if "://" in value or "/" in value or "?" in value or "#" in value:
        raise ValidationFailed("pattern", "A domain pattern is a host name only: no scheme or path.")
    if ":" in value or "[" in value:
        raise ValidationFailed("pattern", "A domain pattern cannot carry a port.")
    wildcard = value.startswith("*.")
    host = value[2:] if wildcard else value
    try:
        host = to_ascii_host(host)
    except InvalidHost as exc:
        raise ValidationFailed("pattern", str(exc)) from None
    if wildcard:
        return "*." + host, "wildcard"
    return host, "exact"


def add_domain(app, pattern):
    """Claim a pattern for the app; 409 domain_taken if any app already claims it."""
    pattern, kind = normalize_pattern(pattern)
    try:
        with config_change():
            return Domain.create(app=app, pattern=pattern, kind=kind)
    except IntegrityError:
        holder = App.select().join(Domain).where(Domain.pattern == pattern).first()
        extra = {"held_by": {"id": holder.id, "slug": holder.slug}} if holder else {}
        raise Conflict(f"{pattern} is already claimed.", code="domain_taken", **extra) from None


def delete_domain(app, domain_id):
    """Release a claim; 409 domain_in_use while a route names a host only it covers."""
    with config_change():
        domain = Domain.get_or_none(Domain.id == domain_id, Domain.app == app)
        if domain is None:
            raise NotFound("No such domain.")
        remaining = [d.pattern for d in Domain.for_app(app) if d.id != domain.id]
        stranded = [
            route.id
            for route in Route.for_app(app).where(Route.host.is_null(False)).order_by(Route.id)
            if claim_covers(domain.pattern, route.host)
            and not any(claim_covers(p, route.host) for p in remaining)
        ]
        if stranded:
            raise Conflict(
                "Routes name a host that only this domain covers.", code="domain_in_use", routes=stranded
            )
        domain.delete_instance()
