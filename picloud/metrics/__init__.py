"""Operator figures: run totals written with the execution log, live process reports,
and the reading of both for ``/metrics`` and the dashboard (docs/metrics.md)."""
from picloud import orchestrator
from picloud.metrics.heartbeat import Heartbeat
from picloud.services import services


def init_app(app):
    """Register this process's heartbeat (after the orchestrator, whose gate it reports)."""
    services(app).add(Heartbeat(lambda: orchestrator.current().gate.usage()))
