"""cwl_crunch.config: defaults, the TOML file, CWL_CRUNCH_* variables, validation."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cwl_crunch.config import Config, Peer, load_config
from cwl_crunch.errors import ConfigError


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path):
    """No CWL_CRUNCH_* variable of the real environment leaks in; home defaults below tmp."""
    for name in list(os.environ):
        if name.startswith("CWL_CRUNCH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_without_file_or_variables(tmp_path):
    config = load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path / "home")})
    home = tmp_path / "home"
    assert config.home == home
    assert config.cluster_id == "local"
    assert config.max_cores == 0.0
    assert config.max_ram == 0
    assert config.poll_interval > 0
    assert config.api_url == ""
    assert config.api_token == ""
    assert config.config is None
    # Derived locations all live below home.
    assert config.database == f"sqlite:///{home / 'records.sqlite'}"
    assert config.store == home / "store"
    assert config.work == home / "work"


def test_default_home_follows_xdg_data_home(tmp_path):
    config = load_config()
    assert config.home == tmp_path / "xdg" / "cwl-crunch"


def test_process_environment_is_used_when_no_mapping_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("CWL_CRUNCH_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("CWL_CRUNCH_CLUSTER_ID", "envid")
    config = load_config()
    assert config.home == tmp_path / "h"
    assert config.cluster_id == "envid"


def test_explicit_mapping_ignores_process_crunch_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("CWL_CRUNCH_CLUSTER_ID", "procs")
    monkeypatch.setenv("CWL_CRUNCH_NO_SUCH_KEY", "x")  # would be an error if read
    config = load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path / "h")})
    assert config.cluster_id == "local"
    assert config.home == tmp_path / "h"


def test_explicit_mapping_decides_the_default_home(tmp_path):
    config = load_config(environ={"XDG_DATA_HOME": str(tmp_path / "given")})
    assert config.home == tmp_path / "given" / "cwl-crunch"


def test_file_in_home_is_read(tmp_path):
    home = tmp_path / "home"
    path = write_config(
        home / "config.toml",
        'cluster_id = "sitea"\nmax_cores = 2.5\nmax_ram = 1024\npoll_interval = 0.5\n'
        'store_dir = "/data/store"\napi_url = "http://x:1"\n',
    )
    config = load_config(environ={"CWL_CRUNCH_HOME": str(home)})
    assert config.cluster_id == "sitea"
    assert config.max_cores == 2.5
    assert config.max_ram == 1024
    assert config.poll_interval == 0.5
    assert config.store_dir == Path("/data/store")
    assert config.store == Path("/data/store")
    assert config.api_url == "http://x:1"
    assert config.config == path


def test_file_named_by_cwl_crunch_config(tmp_path):
    path = write_config(tmp_path / "elsewhere" / "c.toml", 'cluster_id = "other"\n')
    # A config.toml in home must then be ignored.
    write_config(tmp_path / "home" / "config.toml", 'cluster_id = "homef"\n')
    config = load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path / "home"),
                                  "CWL_CRUNCH_CONFIG": str(path)})
    assert config.cluster_id == "other"
    assert config.config == path


def test_environment_overrides_file(tmp_path):
    home = tmp_path / "home"
    write_config(home / "config.toml", 'cluster_id = "filev"\nmax_cores = 4\n')
    config = load_config(environ={"CWL_CRUNCH_HOME": str(home),
                                  "CWL_CRUNCH_CLUSTER_ID": "envvv"})
    assert config.cluster_id == "envvv"
    assert config.max_cores == 4.0  # not overridden: the file's value stays


def test_keyword_overrides_win_over_environment_and_file(tmp_path):
    home = tmp_path / "home"
    write_config(home / "config.toml", 'cluster_id = "filev"\n')
    config = load_config(environ={"CWL_CRUNCH_HOME": str(home),
                                  "CWL_CRUNCH_CLUSTER_ID": "envvv"}, cluster_id="kwarg")
    assert config.cluster_id == "kwarg"


def test_environment_values_are_coerced_to_field_types(tmp_path):
    config = load_config(environ={
        "CWL_CRUNCH_HOME": str(tmp_path),
        "CWL_CRUNCH_MAX_CORES": "1.5",
        "CWL_CRUNCH_MAX_RAM": "2048",
        "CWL_CRUNCH_WORK_DIR": str(tmp_path / "w"),
    })
    assert config.max_cores == 1.5
    assert isinstance(config.max_cores, float)
    assert config.max_ram == 2048
    assert isinstance(config.max_ram, int)
    assert config.work_dir == tmp_path / "w"
    assert config.work == tmp_path / "w"


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    path = write_config(tmp_path / "home" / "config.toml", 'cluster_id = "local"\nmax_corse = 2\n')
    with pytest.raises(ConfigError) as info:
        load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path / "home")})
    assert str(path) in str(info.value)
    assert "max_corse" in str(info.value)


def test_config_key_is_not_allowed_inside_the_file(tmp_path):
    path = write_config(tmp_path / "c.toml", 'config = "/other.toml"\n')
    with pytest.raises(ConfigError, match="'config'"):
        load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path), "CWL_CRUNCH_CONFIG": str(path)})


def test_unknown_environment_variable(tmp_path):
    with pytest.raises(ConfigError, match="CWL_CRUNCH_FOO"):
        load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path), "CWL_CRUNCH_FOO": "1"})


def test_unrelated_environment_variables_are_ignored(tmp_path):
    config = load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path), "CWL_CRUNCHY": "1",
                                  "PATH": "/bin"})
    assert config.cluster_id == "local"


@pytest.mark.parametrize("name, value", [
    ("CWL_CRUNCH_MAX_CORES", "abc"),
    ("CWL_CRUNCH_MAX_RAM", "abc"),
    ("CWL_CRUNCH_MAX_RAM", "1.5"),
    ("CWL_CRUNCH_POLL_INTERVAL", "soon"),
])
def test_bad_environment_value(tmp_path, name, value):
    with pytest.raises(ConfigError) as info:
        load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path), name: value})
    assert name[len("CWL_CRUNCH_"):].lower() in str(info.value)


@pytest.mark.parametrize("line", [
    'max_cores = "abc"',
    'cluster_id = 12345',
    'api_url = ["a"]',
])
def test_bad_file_value_names_file_and_key(tmp_path, line):
    path = write_config(tmp_path / "config.toml", line + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path)})
    assert str(path) in str(info.value)
    assert line.split()[0] in str(info.value)


def test_file_that_is_not_toml(tmp_path):
    path = write_config(tmp_path / "config.toml", "this is = = not toml\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path)})


def test_missing_file_named_by_cwl_crunch_config(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path), "CWL_CRUNCH_CONFIG": str(missing)})
    assert str(missing) in str(info.value)


@pytest.mark.parametrize("cluster_id", ["loca", "locals", "Local", "lo-al", "", "ab cd"])
def test_bad_cluster_id(tmp_path, cluster_id):
    with pytest.raises(ConfigError, match="cluster_id"):
        load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path),
                             "CWL_CRUNCH_CLUSTER_ID": cluster_id})


@pytest.mark.parametrize("cluster_id", ["local", "siteb", "a1b2c", "00000"])
def test_good_cluster_id(tmp_path, cluster_id):
    config = load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path),
                                  "CWL_CRUNCH_CLUSTER_ID": cluster_id})
    assert config.cluster_id == cluster_id


@pytest.mark.parametrize("name, value", [
    ("CWL_CRUNCH_MAX_CORES", "-1"),
    ("CWL_CRUNCH_MAX_RAM", "-1"),
    ("CWL_CRUNCH_POLL_INTERVAL", "0"),
    ("CWL_CRUNCH_POLL_INTERVAL", "-0.5"),
])
def test_out_of_range_values(tmp_path, name, value):
    with pytest.raises(ConfigError):
        load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path), name: value})


@pytest.mark.parametrize("name, value, words", [
    ("CWL_CRUNCH_DISPATCHER", "pbs", "dispatcher 'pbs' is not one of local, slurm"),
    ("CWL_CRUNCH_SLURM_OPTIONS", "--account='lab", "slurm_options"),
])
def test_bad_dispatcher_settings(tmp_path, name, value, words):
    with pytest.raises(ConfigError, match=words):
        load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path), name: value})


def test_dispatcher_settings(tmp_path):
    config = load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path),
                                  "CWL_CRUNCH_DISPATCHER": "slurm",
                                  "CWL_CRUNCH_SLURM_PARTITION": "long",
                                  "CWL_CRUNCH_SLURM_OPTIONS": "--account=lab --qos='a b'"})
    assert (config.dispatcher, config.slurm_partition, config.slurm_options) == (
        "slurm", "long", "--account=lab --qos='a b'")
    assert load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path)}).dispatcher == "local"


def test_replace_validates(tmp_path):
    config = load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path)})
    changed = config.replace(cluster_id="sitec", max_cores=3.0)
    assert (changed.cluster_id, changed.max_cores) == ("sitec", 3.0)
    assert config.cluster_id == "local"  # the original is untouched
    with pytest.raises(ConfigError):
        config.replace(cluster_id="BAD")
    with pytest.raises(ConfigError):
        config.replace(poll_interval=0)


def test_config_is_frozen(tmp_path):
    config = load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path)})
    assert isinstance(config, Config)
    with pytest.raises(AttributeError):
        config.cluster_id = "other"  # type: ignore[misc]


def test_database_url_setting_replaces_the_default_file(tmp_path):
    config = load_config(environ={"CWL_CRUNCH_HOME": str(tmp_path),
                                  "CWL_CRUNCH_DATABASE_URL": "postgresql://h/db"})
    assert config.database == "postgresql://h/db"


def test_home_in_named_file_is_honoured_or_rejected(tmp_path):
    path = write_config(tmp_path / "c.toml", f'home = "{tmp_path / "from-file"}"\n')
    try:
        config = load_config(environ={"CWL_CRUNCH_CONFIG": str(path)})
    except ConfigError:
        return  # rejecting the key is acceptable too; ignoring it silently is not
    assert config.home == tmp_path / "from-file"


def test_isolation_is_namespaces_unless_set_to_none(tmp_path):
    assert load_config(environ={}, home=tmp_path).isolation == "namespaces"
    assert load_config(environ={"CWL_CRUNCH_ISOLATION": "none"},
                       home=tmp_path).isolation == "none"
    with pytest.raises(ConfigError, match="isolation 'off' is not one of namespaces, none"):
        load_config(environ={"CWL_CRUNCH_ISOLATION": "off"}, home=tmp_path)


def test_environment_makes_another_process_load_the_same_values(tmp_path):
    """Config.environment is how a dispatcher child or SLURM worker is given the
    config: loading what it builds gives back the same values, paths resolved."""
    config = load_config(environ={}, home=tmp_path / "home", cluster_id="abcde",
                         max_cores=1.5, max_ram=1 << 30, poll_interval=0.25,
                         dispatcher="slurm", isolation="none")
    keys = ("home", "cluster_id", "database_url", "store_dir", "work_dir", "max_cores",
            "max_ram", "poll_interval", "dispatcher", "isolation", "container_engine")
    environment = config.environment(*keys)
    assert set(environment) == {"CWL_CRUNCH_" + key.upper() for key in keys}
    loaded = load_config(environ=environment)
    for key in keys:
        if key not in ("database_url", "store_dir", "work_dir"):
            assert getattr(loaded, key) == getattr(config, key), key
    assert (loaded.database, loaded.store, loaded.work) == (
        config.database, config.store, config.work)


def test_environment_refuses_an_unknown_key(tmp_path):
    with pytest.raises(ConfigError, match="no config key 'colour'"):
        load_config(environ={}, home=tmp_path).environment("colour")


def test_peers_are_read_from_the_file_and_handed_on_as_one_variable(tmp_path):
    (tmp_path / "config.toml").write_text(
        'cluster_id = "sitea"\n[peers.siteb]\nurl = "http://127.0.0.1:8642/"\n'
        'token = "crunch/siteb-tok-aaaaaaaaaaaaaaa/secret"\n')
    config = load_config({"CWL_CRUNCH_HOME": str(tmp_path)})
    assert config.peers == {"siteb": Peer("siteb", "http://127.0.0.1:8642",
                                          "crunch/siteb-tok-aaaaaaaaaaaaaaa/secret")}
    again = load_config({"CWL_CRUNCH_HOME": str(tmp_path / "elsewhere"),
                         "CWL_CRUNCH_CLUSTER_ID": "sitea", **config.environment("peers")})
    assert again.peers == config.peers


@pytest.mark.parametrize("peers, problem", [
    ('[peers.sitea]\nurl = "http://x"\ntoken = "t"\n', "must be another cluster's id"),
    ('[peers.SiteB]\nurl = "http://x"\ntoken = "t"\n', "must be another cluster's id"),
    ('[peers.siteb]\nurl = "ftp://x"\ntoken = "t"\n', "must be an http:// or https:// URL"),
    ('[peers.siteb]\nurl = "http://x"\n', "'token' must be a non-empty string"),
    ('[peers.siteb]\nurl = "http://x"\ntoken = "t"\nport = 1\n', "unknown key 'port'"),
    ('peers = "siteb"\n', "expected a table of peers"),
])
def test_a_bad_peer_is_a_config_error_naming_it(tmp_path, peers, problem):
    (tmp_path / "config.toml").write_text('cluster_id = "sitea"\n' + peers)
    with pytest.raises(ConfigError, match=re.escape(problem)):
        load_config({"CWL_CRUNCH_HOME": str(tmp_path)})


def test_peers_from_a_variable_that_is_not_json_are_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"CWL_CRUNCH_PEERS: a JSON object"):
        load_config({"CWL_CRUNCH_HOME": str(tmp_path), "CWL_CRUNCH_PEERS": "{not json"})
