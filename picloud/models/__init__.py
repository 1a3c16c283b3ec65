"""Peewee models, one module per part of PiCloud, and the queries that belong to them."""
from picloud.models.base import BaseModel, isoformat, utcnow  # noqa: F401
from picloud.models.users import ApiToken, LoginFailure, User  # noqa: F401
from picloud.models.apps import App, AppSlugHistory, ConfigVersion, Domain, Execution, Route, Script, ScriptVersion  # noqa: F401
from picloud.models.outbox import DeadLetter, OutboxEvent, ScheduleTick, Trigger  # noqa: F401
from picloud.models.data import Document, KVEntry  # noqa: F401
from picloud.models.secrets import Secret  # noqa: F401
from picloud.models.stats import RunCount, RunDuration, RunHour, ServerProcess  # noqa: F401
