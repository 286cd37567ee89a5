"""The one configuration object: a TOML file plus ``CWL_CRUNCH_*`` environment variables.

Precedence, lowest first: built-in defaults, the file, the environment. The file is
``$CWL_CRUNCH_CONFIG`` if set, else ``<home>/config.toml`` if it exists. Unknown keys, in
the file or as ``CWL_CRUNCH_*`` variables, are an error rather than silently ignored: a
typo must not quietly change which cluster a job runs on.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cwl_crunch.errors import ConfigError
from cwl_crunch.model.residency import RESIDENCY_VALUES
from cwl_crunch.model.states import BACKENDS

ENV_PREFIX = "CWL_CRUNCH_"
ISOLATIONS = ("namespaces", "none")
_CLUSTER_ID = re.compile(r"^[a-z0-9]{5}$")


def _default_home(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    data_home = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "cwl-crunch"


@dataclasses.dataclass(frozen=True)
class Peer:
    """Another cluster this one federates with: ``[peers.<cluster_id>]`` in the file."""

    cluster_id: str
    url: str
    """Its API URL (``http://host:port``)."""
    token: str
    """A token that peer issued to this cluster (``cwl-crunch token create --peer
    <this cluster's id>``, run on the peer)."""


_PEER_KEYS = ("url", "token")


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of one cluster connection. Field names are the config keys."""

    home: Path = dataclasses.field(default_factory=_default_home)
    """Cluster home: database, store and job work dirs live below it by default."""
    cluster_id: str = "local"
    database_url: str = ""
    """SQLAlchemy URL; empty means a SQLite file ``<home>/records.sqlite``."""
    store_dir: Path | None = None
    """Collection store root; None means ``<home>/store``."""
    work_dir: Path | None = None
    """Where job work dirs are made; None means ``<home>/work`` (same filesystem as the store)."""
    max_cores: float = 0.0
    """Ceiling for the local dispatcher; 0 means all of this machine's cores."""
    max_ram: int = 0
    """Ceiling in bytes for the local dispatcher; 0 means 90% of this machine's RAM."""
    poll_interval: float = 0.1
    """Seconds between checks for changes made by other processes."""
    container_engine: str = ""
    """Docker Engine API to run images with (Docker or Podman): a URL such as
    ``unix:///run/podman/podman.sock``; empty finds one (``DOCKER_HOST``, Docker's socket,
    then Podman's); ``none`` runs without containers."""
    dispatcher: str = "local"
    """What runs jobs of one core or more: ``local`` (this machine) or ``slurm`` (sbatch,
    from ``cwl-crunch server``; jobs under one core, workflow runners, stay local)."""
    slurm_partition: str = ""
    """Partition for SLURM jobs without a partition hint; empty: SLURM's default."""
    slurm_options: str = ""
    """More sbatch options, shell-quoted (``--account=lab --qos=short``); they come
    last, so they override cwl-crunch's own."""
    isolation: str = "namespaces"
    """How jobs are kept from the cluster's own state and from outliving their end:
    ``namespaces`` (their own PID, mount and user namespaces; see docs/internals.md,
    "Isolation") or ``none``. A server refuses to start when namespaces do not work here
    unless this says ``none``; elsewhere jobs then run unisolated, saying so in their log."""
    residency: str = "travel"
    """What collections stored or made here are by default: ``travel`` (they may be
    read by peers they are sent to) or ``resident`` (they stay on this cluster unless a
    release rule lets a job's output go; see the README, "Data residency")."""
    api_url: str = ""
    api_token: str = ""
    """Token of the caller; inside a job, the job's own token (makes it the parent)."""
    blob_signing_key: str = ""
    """Secret key (32 characters or more) a server signs block locators with; empty
    means ``<home>/blob-signing.key``, made once. Set it to share one key between
    servers of one store."""
    blob_signature_ttl: float = 14 * 24 * 3600.0
    """Seconds a block locator signed for a token stays valid (see docs/internals.md)."""
    peers: dict[str, Peer] = dataclasses.field(default_factory=dict)
    """Clusters this one federates with, by cluster id: ``[peers.sitea]`` tables with
    ``url`` and ``token`` in the file, or a JSON object of the same in
    ``CWL_CRUNCH_PEERS``."""
    config: Path | None = None
    """The file this config was read from (informational)."""

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'records.sqlite'}"

    @property
    def store(self) -> Path:
        return self.store_dir or self.home / "store"

    @property
    def work(self) -> Path:
        return self.work_dir or self.home / "work"

    def environment(self, *keys: str) -> dict[str, str]:
        """The CWL_CRUNCH_* variables with which another process loads these keys as
        this config has them: the one place such variables are built (a server's
        dispatcher child, a SLURM job's worker, a job's own API URL and token). Paths
        are given resolved (``store_dir`` is where the store is, by default or not);
        unset optional values (None) are left out."""
        resolved: dict[str, Any] = {"database_url": self.database, "store_dir": self.store,
                                    "work_dir": self.work}
        environment = {}
        for key in keys:
            if key not in _FIELDS:
                raise ConfigError(f"no config key {key!r}")
            value = resolved[key] if key in resolved else getattr(self, key)
            if isinstance(value, dict):
                environment[env_name(key)] = json.dumps(
                    {name: {"url": peer.url, "token": peer.token}
                     for name, peer in value.items()})
            elif value is not None:
                environment[env_name(key)] = repr(value) if isinstance(value, float) \
                    else str(value)
        return environment

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed, validated like a loaded config."""
        return _validated(dataclasses.replace(self, **changes))


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def env_name(key: str) -> str:
    """The environment variable that sets config key ``key``."""
    return ENV_PREFIX + key.upper()
# Keys that locate the config file cannot be set inside it.
_NOT_IN_FILE = {"config", "home"}


def load_config(
    environ: Mapping[str, str] | None = None, **overrides: Any
) -> Config:
    """Read the config file and the environment; ``overrides`` win over both."""
    env = os.environ if environ is None else environ
    from_env = _env_values(env)
    home = Path(overrides.get("home") or from_env.get("home") or _default_home(env))
    if from_env.get("config") == "":
        del from_env["config"]
    path = Path(from_env["config"]) if "config" in from_env else home / "config.toml"
    values: dict[str, Any] = {}
    if path.exists() or "config" in from_env:
        values.update(_file_values(path))
        values["config"] = path
    values.update(from_env)
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["home"] = home
    return _validated(Config(**{k: _coerce(k, v, str(path)) for k, v in values.items()}))


def _env_values(env: Mapping[str, str]) -> dict[str, str]:
    values = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX):].lower()
        if key not in _FIELDS:
            known = ", ".join(ENV_PREFIX + k.upper() for k in sorted(_FIELDS))
            raise ConfigError(f"unknown environment variable {name} (known: {known})")
        values[key] = value
    return values


def _file_values(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    for key in data:
        if key in _NOT_IN_FILE:
            raise ConfigError(f"{path}: {key!r} cannot be set in the config file (it says "
                              f"where the file is); use CWL_CRUNCH_{key.upper()}")
        if key not in _FIELDS:
            raise ConfigError(f"{path}: unknown key {key!r}")
    return data


def _coerce(key: str, value: Any, source: str) -> Any:
    kind = _FIELDS[key].type
    try:
        if kind in ("Path", "Path | None"):
            return None if value in ("", None) else Path(value).expanduser()
        if kind in ("float", "int") and isinstance(value, bool):
            raise TypeError("expected a number, got a boolean")
        if kind == "float":
            return float(value)
        if kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise TypeError(f"expected a whole number, got {value}")
            return int(value)
        if kind == "dict[str, Peer]":
            return _peers(_json_object(value) if isinstance(value, str) else value)
        if kind == "str":
            if not isinstance(value, str):
                raise TypeError(f"expected a string, got {type(value).__name__}")
            return value
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: bad value for {key!r}: {error}") from None
    raise AssertionError(f"unhandled config field type {kind}")


def _json_object(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise TypeError("expected a table of peers by cluster id (in CWL_CRUNCH_PEERS: "
                        "a JSON object)") from None


def _peers(value: Any) -> dict[str, Peer]:
    """``{cluster_id: {url, token}}`` (a TOML table or parsed JSON) as Peers."""
    if not isinstance(value, dict):
        raise TypeError("expected a table of peers by cluster id")
    peers = {}
    for cluster_id, fields in value.items():
        if not isinstance(fields, dict):
            raise TypeError(f"peer {cluster_id!r}: expected a table with url and token")
        unknown = sorted(set(fields) - set(_PEER_KEYS))
        if unknown:
            raise TypeError(f"peer {cluster_id!r}: unknown key {unknown[0]!r} (known: url, "
                            "token)")
        missing = [key for key in _PEER_KEYS if not isinstance(fields.get(key), str)
                   or not fields[key]]
        if missing:
            raise TypeError(f"peer {cluster_id!r}: {missing[0]!r} must be a non-empty string")
        peers[str(cluster_id)] = Peer(str(cluster_id), fields["url"].rstrip("/"),
                                      fields["token"])
    return peers


def _validated(config: Config) -> Config:
    if not _CLUSTER_ID.match(config.cluster_id):
        raise ConfigError(
            f"cluster_id {config.cluster_id!r} must be 5 lowercase letters or digits"
        )
    if config.max_cores < 0 or config.max_ram < 0:
        raise ConfigError("max_cores and max_ram must not be negative")
    if config.poll_interval <= 0:
        raise ConfigError("poll_interval must be positive")
    if not 0 < config.blob_signature_ttl < 1 << 32:
        raise ConfigError("blob_signature_ttl must be a positive number of seconds")
    if config.dispatcher not in BACKENDS:
        raise ConfigError(f"dispatcher {config.dispatcher!r} is not one of "
                          f"{', '.join(sorted(BACKENDS))}")
    if config.isolation not in ISOLATIONS:
        raise ConfigError(f"isolation {config.isolation!r} is not one of "
                          f"{', '.join(ISOLATIONS)}")
    if config.residency not in RESIDENCY_VALUES:
        raise ConfigError(f"residency {config.residency!r} is not one of "
                          f"{', '.join(RESIDENCY_VALUES)}")
    for peer in config.peers.values():
        if not _CLUSTER_ID.match(peer.cluster_id) or peer.cluster_id == config.cluster_id:
            raise ConfigError(f"peers: {peer.cluster_id!r} must be another cluster's id "
                              "(5 lowercase letters or digits)")
        if not peer.url.startswith(("http://", "https://")):
            raise ConfigError(f"peers.{peer.cluster_id}.url {peer.url!r} must be an "
                              "http:// or https:// URL")
    try:
        shlex.split(config.slurm_options)
    except ValueError as error:
        raise ConfigError(f"slurm_options {config.slurm_options!r}: {error}") from None
    return config
