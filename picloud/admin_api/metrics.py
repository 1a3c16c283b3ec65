"""``GET /metrics`` (any Host): Prometheus text format, for a token with ``metrics.read``.

The figures cover every process sharing the database (docs/metrics.md). Counters are
totals kept in the database, so a worker that restarts never makes one go back.
"""
from flask import Blueprint, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from picloud.admin_api.base import requires
from picloud.metrics.figures import read_figures

bp = Blueprint("metrics", __name__)


class FiguresCollector:
    """A prometheus_client collector yielding the metric families of one Figures."""

    def __init__(self, figures):
        self.figures = figures

    def collect(self):
        f = self.figures
        executions = CounterMetricFamily(
            "picloud_executions", "Finished script runs.", labels=("app", "source", "status")
        )
        for app, source, status, count in f.executions:
            executions.add_metric((app, source, status), count)
        yield executions
        durations = HistogramMetricFamily(
            "picloud_execution_duration_seconds", "How long finished runs took.", labels=("app", "source")
        )
        for h in f.durations:
            durations.add_metric((h.app, h.source), list(h.buckets), h.sum_seconds)
        yield durations
        overloaded = CounterMetricFamily(
            "picloud_overloaded", "Requests refused with 503 overloaded: no execution slot in time.", labels=("app",)
        )
        for app, count in f.overloaded:
            overloaded.add_metric((app,), count)
        yield overloaded
        yield GaugeMetricFamily("picloud_outbox_pending", "Events and async requests not yet delivered.", value=f.outbox_pending)
        dead_letters = GaugeMetricFamily("picloud_dead_letters_open", "Dead letters not yet resolved.", labels=("app",))
        for app, count in f.dead_letters_open:
            dead_letters.add_metric((app,), count)
        yield dead_letters
        yield GaugeMetricFamily("picloud_executor_slots", "Execution slots of all server processes.", value=f.executor_slots)
        yield GaugeMetricFamily("picloud_executor_busy", "Execution slots running a script now.", value=f.executor_busy)
        yield GaugeMetricFamily("picloud_gate_waiting", "Runs waiting for an execution slot now.", value=f.gate_waiting)


@bp.get("/metrics")
@requires("metrics.read")
def metrics():
    """Report every figure in Prometheus text format (0.0.4, which every Prometheus reads)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FiguresCollector(read_figures()))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)
