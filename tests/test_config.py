import pytest

from picloud.config import ConfigError, ensure_secret_key, load_settings


def test_defaults_follow_the_contract():
    settings = load_settings({})
    assert settings.bind == "127.0.0.1:8080"
    assert settings.database_url == "sqlite:///data/picloud.db"
    assert settings.queue_wait_ms == 2000
    assert settings.max_body_bytes == 1_048_576
    assert settings.max_timeout_seconds == 60
    assert settings.max_trigger_depth == 8
    assert settings.dispatch_poll_ms == 100
    assert settings.log_retention_days == 7
    assert settings.proxy_count == 0
    assert settings.executor_processes >= 1
    assert settings.app_max_share == 0.5
    assert not settings.is_postgres


def test_environment_overrides_defaults(tmp_path):
    settings = load_settings(
        {
            "PICLOUD_BIND": "0.0.0.0:9000",
            "PICLOUD_DATA_DIR": str(tmp_path),
            "PICLOUD_QUEUE_WAIT_MS": "250",
            "PICLOUD_EXECUTOR_PROCESSES": "3",
            "DATABASE_URL": "postgresql://u@h:5432/d",
        }
    )
    assert settings.bind == "0.0.0.0:9000"
    assert settings.queue_wait_ms == 250
    assert settings.executor_processes == 3
    assert settings.is_postgres


def test_app_max_share_takes_a_fraction_up_to_one():
    assert load_settings({"PICLOUD_APP_MAX_SHARE": " 0.25 "}).app_max_share == 0.25
    assert load_settings({"PICLOUD_APP_MAX_SHARE": "1"}).app_max_share == 1.0


def test_sqlite_file_defaults_to_the_data_dir(tmp_path):
    settings = load_settings({"PICLOUD_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path}/picloud.db"


@pytest.mark.parametrize(
    "name, value",
    [
        ("PICLOUD_QUEUE_WAIT_MS", "soon"),
        ("PICLOUD_EXECUTOR_PROCESSES", "0"),
        ("PICLOUD_MAX_BODY_BYTES", "-1"),
        ("PICLOUD_BIND", "8080"),
        ("PICLOUD_BIND", "host:99999"),
        ("DATABASE_URL", "mysql://x"),
        ("PICLOUD_APP_MAX_SHARE", "half"),
        ("PICLOUD_APP_MAX_SHARE", "0"),
        ("PICLOUD_APP_MAX_SHARE", "1.5"),
        ("PICLOUD_APP_MAX_SHARE", "nan"),
    ],
)
def test_invalid_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_secret_key_is_generated_once_and_kept(tmp_path):
    settings = load_settings({"PICLOUD_DATA_DIR": str(tmp_path)})
    first = ensure_secret_key(settings)
    assert len(first) == 64
    assert ensure_secret_key(settings) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_configured_secret_key_wins(tmp_path):
    settings = load_settings({"PICLOUD_DATA_DIR": str(tmp_path), "PICLOUD_SECRET_KEY": "abc"})
    assert ensure_secret_key(settings) == "abc"
    assert not (tmp_path / "secret_key").exists()
