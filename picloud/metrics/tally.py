"""Sum a batch of execution records into the rows of the run figures (pure).

A record counts once it is final: ``queued`` and ``running`` records are a run's
earlier states, written again when it ends. Runs that ran (they have a duration) go
into the duration histogram; ``skipped`` runs and overload refusals do not.
"""
import collections
import datetime
from dataclasses import dataclass

from prometheus_client.utils import floatToGoString

from picloud.models import Execution

# Upper bounds of the duration histogram's buckets, in seconds: a warm hello run takes
# well under a millisecond, the longest a script may take is its timeout.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BUCKET_LABELS = tuple(floatToGoString(bound) for bound in BUCKETS) + ("+Inf",)
# Statuses that are not a run's end yet.
UNFINISHED = frozenset({"queued", "running"})
OVERLOADED = "overloaded"


@dataclass(frozen=True)
class Tally:
    """Rows to add to ``run_counts``, ``run_durations`` and ``run_hours``."""

    counts: tuple
    durations: tuple
    hours: tuple

    def __bool__(self):
        return bool(self.counts or self.hours)


def bucket_label(seconds):
    """Return the label of the histogram bucket a duration falls in."""
    for bound, label in zip(BUCKETS, BUCKET_LABELS):
        if seconds <= bound:
            return label
    return "+Inf"


def hour_of(moment):
    """Return the UTC hour (naive datetime) of an ISO 8601 text or a datetime."""
    if isinstance(moment, str):
        moment = datetime.datetime.fromisoformat(moment.removesuffix("Z"))
    return moment.replace(tzinfo=None, minute=0, second=0, microsecond=0)


def tally(records, refusals, now):
    """Sum final records, and refusals ``{(app_id, source): n}`` made before ``now``."""
    counts = collections.defaultdict(lambda: [0, 0.0])
    durations = collections.Counter()
    hours = collections.defaultdict(lambda: [0, 0, 0])
    for record in records:
        status = record.get("status")
        if status in UNFINISHED:
            continue
        app_id, source = record["app_id"], record["source"]
        count = counts[(app_id, source, status)]
        count[0] += 1
        hour = hours[(app_id, hour_of(record.get("queued_at") or now))]
        hour[0] += 1
        hour[1] += status in Execution.FAILED
        duration_ms = record.get("duration_ms")
        if duration_ms is not None:
            count[1] += duration_ms / 1000
            durations[(app_id, source, bucket_label(duration_ms / 1000))] += 1
    for (app_id, source), refused in refusals.items():
        counts[(app_id, source, OVERLOADED)][0] += refused
        hours[(app_id, hour_of(now))][2] += refused
    return Tally(
        counts=tuple(
            {"app_id": a, "source": s, "outcome": o, "runs": n, "duration_seconds": d}
            for (a, s, o), (n, d) in counts.items()
        ),
        durations=tuple({"app_id": a, "source": s, "le": le, "runs": n} for (a, s, le), n in durations.items()),
        hours=tuple(
            {"app_id": a, "hour": h, "runs": r, "errors": e, "overloaded": o}
            for (a, h), (r, e, o) in hours.items()
        ),
    )
