"""Secrets at rest: sealing, key files, invalid keys stopping the server, key rotation."""
import os
import subprocess
import sys
import uuid

import pytest
from cryptography.fernet import Fernet
from peewee import SqliteDatabase

from picloud.config import ConfigError, load_settings
from picloud.vault import SealedValueUnreadable, Vault, load_vault
from tests.support.live import ROOT


def test_seal_then_open_round_trips_and_hides_the_value():
    vault = Vault([Fernet.generate_key().decode()])
    token = vault.seal("sécret value")
    assert "sécret" not in token and "value" not in token
    assert vault.open(token) == "sécret value"


def test_a_token_of_another_key_cannot_be_opened():
    token = Vault([Fernet.generate_key().decode()]).seal("x")
    with pytest.raises(SealedValueUnreadable):
        Vault([Fernet.generate_key().decode()]).open(token)


def test_rotation_keeps_old_tokens_readable_and_reseals_under_the_first_key():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = Vault([old]).seal("rotate me")
    both = Vault([new, old])
    assert both.open(token) == "rotate me"
    resealed = both.reseal(token)
    assert Vault([new]).open(resealed) == "rotate me"
    with pytest.raises(SealedValueUnreadable):
        Vault([old]).open(resealed)


@pytest.mark.parametrize("key", ["not-a-key", "a" * 44, Fernet.generate_key().decode() + ",garbage"])
def test_an_invalid_key_is_a_config_error_naming_the_variable(tmp_path, key):
    settings = load_settings({"PICLOUD_DATA_DIR": str(tmp_path), "PICLOUD_SECRETS_KEY": key})
    with pytest.raises(ConfigError, match="PICLOUD_SECRETS_KEY"):
        load_vault(settings)


def test_without_a_key_one_is_generated_once_into_the_data_dir(tmp_path):
    settings = load_settings({"PICLOUD_DATA_DIR": str(tmp_path)})
    token = load_vault(settings).seal("kept")
    key_file = tmp_path / "secrets_key"
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert load_vault(settings).open(token) == "kept"


def _run_app(args, env, tmp_path):
    full = {**os.environ, "PICLOUD_DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
            "PICLOUD_EXECUTOR_PROCESSES": "1", "PICLOUD_BIND": "127.0.0.1:1", **env}
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=120)


def test_the_server_refuses_to_start_with_an_invalid_key(tmp_path):
    result = _run_app([], {"PICLOUD_SECRETS_KEY": "not-a-fernet-key"}, tmp_path)
    assert result.returncode != 0
    assert "PICLOUD_SECRETS_KEY" in result.stderr
    assert not (tmp_path / "p.db").exists()


def test_rotate_secrets_reseals_every_value_under_the_new_key(tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert _run_app(["migrate"], {"PICLOUD_SECRETS_KEY": old}, tmp_path).returncode == 0
    database = SqliteDatabase(str(tmp_path / "p.db"))
    database.execute_sql("INSERT INTO app (slug, name, description, created_at, updated_at) VALUES ('r', 'r', '', '2026-01-01', '2026-01-01')")
    app_id = database.execute_sql("SELECT id FROM app WHERE slug = 'r'").fetchone()[0]
    value = "rotated-" + uuid.uuid4().hex
    database.execute_sql(
        "INSERT INTO app_secrets (app_id, name, token, created_at, updated_at) VALUES (?, 'K', ?, '2026-01-01', '2026-01-01')",
        (app_id, Vault([old]).seal(value)),
    )
    result = _run_app(["rotate-secrets"], {"PICLOUD_SECRETS_KEY": f"{new},{old}"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 secret" in result.stdout
    token = database.execute_sql("SELECT token FROM app_secrets").fetchone()[0]
    assert Vault([new]).open(token) == value
    with pytest.raises(SealedValueUnreadable):
        Vault([old]).open(token)
