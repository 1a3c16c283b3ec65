"""Read the operator's figures from the database, for ``/metrics`` and the Overview tab.

Counters come from the run totals every process adds to (``picloud.models.stats``);
gauges from the outbox, the dead letters and the live processes' reports. Everything
here covers every process and node sharing the database.
"""
import collections
import datetime
from dataclasses import dataclass

import peewee

from picloud.metrics.heartbeat import live_processes
from picloud.metrics.tally import BUCKET_LABELS, OVERLOADED
from picloud.models import App, DeadLetter, OutboxEvent, RunCount, RunDuration, RunHour, utcnow


@dataclass(frozen=True)
class Histogram:
    """Durations of one app's runs from one source."""

    app: str
    source: str
    buckets: tuple  # ((le label, cumulative count), ...) ending with "+Inf"
    sum_seconds: float


@dataclass(frozen=True)
class Figures:
    """Everything ``/metrics`` reports, as plain values."""

    executions: tuple  # ((app slug, source, status, count), ...)
    durations: tuple  # (Histogram, ...)
    overloaded: tuple  # ((app slug, count), ...), every app
    outbox_pending: int
    dead_letters_open: tuple  # ((app slug, count), ...), every app
    executor_slots: int
    executor_busy: int
    gate_waiting: int


def read_figures(now=None):
    """Read every figure, summed over all processes."""
    slugs = dict(App.select(App.id, App.slug).tuples())
    executions, overloaded, sums = [], collections.Counter(), collections.Counter()
    for app_id, source, outcome, runs, seconds in RunCount.select(
        RunCount.app_id, RunCount.source, RunCount.outcome, RunCount.runs, RunCount.duration_seconds
    ).tuples():
        if app_id not in slugs:
            continue  # an app deleted while its runs were being counted
        if outcome == OVERLOADED:
            overloaded[slugs[app_id]] += runs
        else:
            executions.append((slugs[app_id], source, outcome, runs))
            sums[(app_id, source)] += seconds
    open_letters = dict(
        DeadLetter.select(DeadLetter.app, peewee.fn.COUNT(DeadLetter.id))
        .where(DeadLetter.resolution.is_null())
        .group_by(DeadLetter.app)
        .tuples()
    )
    processes = list(live_processes(now))
    return Figures(
        executions=tuple(sorted(executions)),
        durations=_histograms(slugs, sums),
        overloaded=tuple(sorted((slug, overloaded[slug]) for slug in slugs.values())),
        outbox_pending=OutboxEvent.select().count(),
        dead_letters_open=tuple(sorted((slug, open_letters.get(app_id, 0)) for app_id, slug in slugs.items())),
        executor_slots=sum(p.slots for p in processes),
        executor_busy=sum(p.busy for p in processes),
        gate_waiting=sum(p.waiting for p in processes),
    )


def _histograms(slugs, sums):
    counts = collections.defaultdict(collections.Counter)
    for app_id, source, le, runs in RunDuration.select(
        RunDuration.app_id, RunDuration.source, RunDuration.le, RunDuration.runs
    ).tuples():
        if app_id in slugs:
            counts[(app_id, source)][le] += runs
    histograms = []
    for (app_id, source), per_bucket in counts.items():
        total, buckets = 0, []
        for label in BUCKET_LABELS:
            total += per_bucket.get(label, 0)
            buckets.append((label, total))
        histograms.append(Histogram(slugs[app_id], source, tuple(buckets), sums[(app_id, source)]))
    return tuple(sorted(histograms, key=lambda h: (h.app, h.source)))


@dataclass(frozen=True)
class Hour:
    """One hour of an app's activity, as the Overview chart draws it."""

    hour: datetime.datetime
    runs: int
    errors: int
    overloaded: int


def hourly_activity(app_id, hours=24, now=None):
    """Return an app's last ``hours`` hours, oldest first, one Hour for every hour."""
    current = (now or utcnow()).replace(minute=0, second=0, microsecond=0)
    first = current - datetime.timedelta(hours=hours - 1)
    stored = {row.hour: row for row in RunHour.since(app_id, first)}
    activity = []
    for n in range(hours):
        hour = first + datetime.timedelta(hours=n)
        row = stored.get(hour)
        activity.append(Hour(hour, row.runs, row.errors, row.overloaded) if row else Hour(hour, 0, 0, 0))
    return activity
