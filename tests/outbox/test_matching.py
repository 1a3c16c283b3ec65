"""docs/api.md §9: which data changes a trigger fires for — globs and ops (pure)."""
import pytest

from picloud.models import Trigger
from picloud.outbox import matches
from picloud.manager.triggers import ops_field


def trigger(glob, ops=()):
    return Trigger(kind="kv", glob=glob, ops=list(ops))


@pytest.mark.parametrize(
    "glob, name, expected",
    [
        ("orders/*", "orders/1", True),
        ("orders/*", "orders/a/b", True),  # * crosses slashes: keys are not paths
        ("orders/*", "orders", False),
        ("orders/*", "Orders/1", False),  # case-sensitive
        ("user:?", "user:7", True),
        ("user:?", "user:17", False),
        ("v[12]", "v1", True),
        ("v[12]", "v3", False),
        ("v[!12]", "v3", True),
        ("exact", "exact", True),
        ("exact", "exact2", False),
        ("*", "", True),
        ("a.b", "aXb", False),  # no regex semantics
        ("ünïcode*", "ünïcode-ok", True),
    ],
)
def test_globs_match_shell_style_and_case_sensitive(glob, name, expected):
    assert matches(trigger(glob), "set", name) is expected


def test_empty_ops_means_every_op():
    assert matches(trigger("*"), "set", "k") and matches(trigger("*"), "delete", "k")


def test_ops_filter_which_changes_fire():
    only_delete = trigger("*", ["delete"])
    assert matches(only_delete, "delete", "k")
    assert not matches(only_delete, "set", "k")


def test_ops_are_deduplicated_in_canonical_order():
    assert ops_field("docs", ["delete", "insert", "delete"]) == ["insert", "delete"]
    assert ops_field("kv", None) == []


def test_the_cached_triggers_of_an_app_follow_every_trigger_change(own_database, unique):
    from picloud.models import App, Script, User
    from picloud.outbox import watching_triggers
    from picloud.manager.triggers import create_trigger, delete_trigger, update_trigger

    app = App.create(slug=unique("cache"), name="cache")
    script = Script.create(app=app, name="s", source="return 1")
    user = User.create(username=unique("u"), password_hash="x", role="admin")
    assert watching_triggers(app.id, "kv", "set", "a/1") == []  # now cached: nothing listens
    trigger = create_trigger(app, "kv", {"script_id": script.id, "key_glob": "a/*"}, user)
    assert [t.id for t in watching_triggers(app.id, "kv", "set", "a/1")] == [trigger.id]
    update_trigger(trigger, {"enabled": False})
    assert watching_triggers(app.id, "kv", "set", "a/1") == []
    update_trigger(trigger, {"enabled": True, "key_glob": "b/*"})
    assert watching_triggers(app.id, "kv", "set", "a/1") == []
    assert [t.id for t in watching_triggers(app.id, "kv", "set", "b/1")] == [trigger.id]
    delete_trigger(trigger)
    assert watching_triggers(app.id, "kv", "set", "b/1") == []
    App.delete().where(App.id == app.id).execute()
