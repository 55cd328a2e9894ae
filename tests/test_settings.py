"""Settings: defaults < TOML file < HUSTINGS_* environment < flags; bad input names the key."""

import dataclasses
from pathlib import Path

import pytest

from aggregator.errors import SettingsError
from aggregator.settings import Settings, load_settings


def test_defaults():
    s = load_settings(environ={})
    assert s.data_dir == Path("data")
    assert s.database_url == ""
    assert s.allow_networks == ()
    assert s.fetch_deadline_s == 30
    assert s.fetch_max_bytes == 10_000_000
    assert s.sanitizer == "nh3"
    assert s.resolved_database_url.startswith("sqlite:///") and s.resolved_database_url.endswith("hustings.sqlite3")


def test_layers_in_order(tmp_path):
    cfg = tmp_path / "h.toml"
    cfg.write_text('fetch_deadline_s = 12\nsanitizer = "bleach"\nfetch_workers = 3\n')
    env = {"HUSTINGS_FETCH_DEADLINE_S": "7", "HUSTINGS_ALLOW_NETWORKS": "127.0.0.0/8, ::1/128"}
    s = load_settings(config_file=cfg, environ=env, fetch_workers=5)
    assert s.sanitizer == "bleach"  # file
    assert s.fetch_deadline_s == 7  # env beats file
    assert s.fetch_workers == 5  # flag beats file
    assert s.allow_networks == ("127.0.0.0/8", "::1/128")


def test_config_from_environment_and_table(tmp_path):
    cfg = tmp_path / "h.toml"
    cfg.write_text('[hustings]\ndata_dir = "/srv/hustings"\n')
    s = load_settings(environ={"HUSTINGS_CONFIG": str(cfg)})
    assert s.data_dir == Path("/srv/hustings")


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().data_dir = Path("x")  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs, names",
    [
        (dict(environ={"HUSTINGS_NO_SUCH_THING": "1"}), "no_such_thing"),
        (dict(environ={"HUSTINGS_FETCH_DEADLINE_S": "soon"}), "fetch_deadline_s"),
        (dict(environ={"HUSTINGS_FETCH_MAX_BYTES": "-5"}), "fetch_max_bytes"),
        (dict(environ={"HUSTINGS_SANITIZER": "html5lib"}), "sanitizer"),
        (dict(environ={"HUSTINGS_ALLOW_NETWORKS": "localhost"}), "allow_networks"),
        (dict(environ={"HUSTINGS_FETCH_WORKERS": "2.5"}), "fetch_workers"),
        (dict(environ={"HUSTINGS_SITE_URL": "ftp://x"}), "site_url"),
        (dict(environ={}, bogus=1), "bogus"),
    ],
)
def test_bad_input_names_the_setting(kwargs, names):
    with pytest.raises(SettingsError, match=names):
        load_settings(**kwargs)


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    cfg = tmp_path / "h.toml"
    cfg.write_text("fetch_deadlin_s = 3\n")
    with pytest.raises(SettingsError) as err:
        load_settings(config_file=cfg, environ={})
    assert "fetch_deadlin_s" in str(err.value) and str(cfg) in str(err.value)


def test_bad_toml_and_missing_file(tmp_path):
    cfg = tmp_path / "h.toml"
    cfg.write_text("this is = = not toml")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(config_file=cfg, environ={})
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(config_file=tmp_path / "missing.toml", environ={})


def test_user_agent_names_the_site():
    s = load_settings(environ={"HUSTINGS_SITE_URL": "https://hustings.example.org"})
    assert s.http_user_agent.startswith("Hustings/") and "https://hustings.example.org" in s.http_user_agent
