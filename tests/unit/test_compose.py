"""docker-compose.yml (and the files it points at) must agree with shared/settings.py.

There is no Docker engine here, so nothing is started: the compose file, the Dockerfile, the postgres
init script, the Prometheus and nginx configs are parsed and checked against the settings classes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shared.settings import SETTINGS_BY_SERVICE, InsecureSettings, ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICES = sorted(SETTINGS_BY_SERVICE)
KAFKA_BROKERS = ("kafka-1", "kafka-2", "kafka-3")
GENERIC_VARS = {"HUZHU_SERVICE", "HUZHU_PORT"}
TRUE_VALUES = {"true", "1", "yes", "on"}
FALSE_VALUES = {"false", "0", "no", "off"}

# ${VAR}, ${VAR:?message}, ${VAR?message}, ${VAR:-default}, ${VAR-default}
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[?-])(?P<arg>[^}]*))?\}")


# ---------------------------------------------------------------------------------------------- helpers


def _load_compose() -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), (
        "docker-compose.yml has no 'services' mapping"
    )
    return data


COMPOSE = _load_compose()


def _service(name: str) -> dict[str, Any]:
    services = COMPOSE["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}; it has {sorted(services)}"
    return services[name]


def _environment(name: str) -> dict[str, str]:
    """A compose service's environment as a dict (compose allows a mapping or a list of KEY=VALUE)."""
    env = _service(name).get("environment") or {}
    if isinstance(env, list):
        pairs = {}
        for item in env:
            key, sep, value = str(item).partition("=")
            assert sep, f"{name}: environment entry {item!r} has no '=' (a value taken from the host?)"
            pairs[key] = value
        return pairs
    return {str(k): "" if v is None else _scalar(v) for k, v in env.items()}


def _scalar(value: Any) -> str:
    # YAML turns an unquoted true into a bool; compose would pass it as "true".
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def placeholder(var: str) -> str:
    """A stand-in for a secret from the host: long enough for jwt_secret, never a development default."""
    return f"placeholder-{var.lower()}-0123456789abcdefghijklmnopqrstuvwxyz"


def _substitute(value: str) -> str:
    def repl(m: re.Match[str]) -> str:
        op = m.group("op") or ""
        if op.endswith("-"):  # a default: use it, as compose would with the variable unset
            return m.group("arg")
        return placeholder(m.group("name"))

    return INTERPOLATION.sub(repl, value.replace("$$", "\x00")).replace("\x00", "$")


def _resolved_env(name: str) -> dict[str, str]:
    return {k: _substitute(v) for k, v in _environment(name).items()}


def _prefix(cls: type[ServiceSettings]) -> str:
    prefix = cls.model_config.get("env_prefix")
    assert prefix, f"{cls.__name__} has no env_prefix"
    return str(prefix)


def _field_env(cls: type[ServiceSettings], field: str) -> str:
    return f"{_prefix(cls)}{field.upper()}"


def _ports(name: str) -> list[tuple[int, int]]:
    """(host, container) pairs of a compose service, short or long syntax."""
    pairs = []
    for entry in _service(name).get("ports") or []:
        if isinstance(entry, dict):
            pairs.append((int(entry["published"]), int(entry["target"])))
            continue
        spec = str(entry).split("/")[0]  # drop /tcp
        parts = spec.rsplit(":", 2)
        assert len(parts) >= 2, f"{name}: port {entry!r} publishes no fixed host port"
        pairs.append((int(parts[-2]), int(parts[-1])))
    return pairs


def _depends_on(name: str) -> dict[str, str]:
    deps = _service(name).get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {k: (v or {}).get("condition", "service_started") for k, v in deps.items()}


def _healthcheck_text(name: str) -> str:
    test = (_service(name).get("healthcheck") or {}).get("test")
    assert test, f"{name} has no healthcheck"
    return " ".join(test) if isinstance(test, list) else str(test)


def _clear_env(monkeypatch: pytest.MonkeyPatch, cls: type[ServiceSettings]) -> None:
    """Remove anything the developer's shell might give this settings class."""
    import os

    for key in list(os.environ):
        if key.upper().startswith(_prefix(cls)):
            monkeypatch.delenv(key)


# ---------------------------------------------------------------------------------------------- services


def test_the_four_services_exist() -> None:
    assert set(SERVICES) == {"enrollment", "claims", "payments", "notifications"}
    missing = [s for s in SERVICES if s not in COMPOSE["services"]]
    assert not missing, f"docker-compose.yml lacks services {missing}"


@pytest.mark.parametrize("name", SERVICES)
def test_settings_class_matches_its_service_name(name: str) -> None:
    cls = SETTINGS_BY_SERVICE[name]
    assert cls.service_name == name
    assert _prefix(cls) == f"{name.upper()}_"


@pytest.mark.parametrize("name", SERVICES)
def test_ports_match_settings_default_port(name: str) -> None:
    cls = SETTINGS_BY_SERVICE[name]
    ports = _ports(name)
    assert ports == [(cls.default_port, cls.default_port)], (
        f"{name}: ports {ports}, expected host == container == {cls.default_port}"
    )
    env = _environment(name)
    assert env.get(_field_env(cls, "port")) == str(cls.default_port), (
        f"{name}: {_field_env(cls, 'port')}={env.get(_field_env(cls, 'port'))!r}, expected {cls.default_port}"
    )
    assert env.get("HUZHU_PORT") == str(cls.default_port), f"{name}: HUZHU_PORT={env.get('HUZHU_PORT')!r}"


def test_service_ports_are_distinct() -> None:
    published = [host for name in COMPOSE["services"] for host, _ in _ports(name)]
    dupes = sorted({p for p in published if published.count(p) > 1})
    assert not dupes, f"host ports published twice: {dupes}"


@pytest.mark.parametrize("name", SERVICES)
def test_every_env_var_is_a_real_field_with_the_service_prefix(name: str) -> None:
    cls = SETTINGS_BY_SERVICE[name]
    prefix = _prefix(cls)
    env = _environment(name)
    assert env, f"{name} has no environment"
    foreign = [k for k in env if k not in GENERIC_VARS and not k.startswith(prefix)]
    assert not foreign, f"{name}: variables without the prefix {prefix}: {foreign}"
    unknown = [
        k for k in env if k.startswith(prefix) and k[len(prefix):].lower() not in cls.model_fields
    ]
    assert not unknown, f"{name}: variables naming no field of {cls.__name__}: {unknown}"


@pytest.mark.parametrize("name", SERVICES)
def test_secrets_database_and_kafka_are_set(name: str) -> None:
    cls = SETTINGS_BY_SERVICE[name]
    env = _environment(name)
    required = [*cls.secret_fields, "database_url", "kafka_bootstrap"]
    missing = [_field_env(cls, f) for f in required if not env.get(_field_env(cls, f))]
    assert not missing, f"{name}: not set in docker-compose.yml: {missing}"


@pytest.mark.parametrize("name", SERVICES)
def test_secrets_come_from_the_host_and_must_be_given(name: str) -> None:
    cls = SETTINGS_BY_SERVICE[name]
    env = _environment(name)
    for field in cls.secret_fields:
        value = env[_field_env(cls, field)]
        m = INTERPOLATION.fullmatch(value)
        assert m, f"{name}: {field} is written into docker-compose.yml ({value!r}), not taken from ${{...}}"
        assert (m.group("op") or "").endswith("?"), (
            f"{name}: {field} is {value!r}; use ${{VAR:?}} so compose refuses to start without it"
        )


@pytest.mark.parametrize("name", SERVICES)
def test_service_env_values(name: str) -> None:
    cls = SETTINGS_BY_SERVICE[name]
    env = _environment(name)
    assert env.get("HUZHU_SERVICE") == name, f"{name}: HUZHU_SERVICE={env.get('HUZHU_SERVICE')!r}"
    assert env.get(_field_env(cls, "host")) == "0.0.0.0", f"{name}: must listen on 0.0.0.0 in a container"
    assert env.get(_field_env(cls, "kafka_replication")) == "3", f"{name}: topics need replication 3"
    bootstrap = env[_field_env(cls, "kafka_bootstrap")].split(",")
    assert sorted(bootstrap) == [f"{b}:9092" for b in KAFKA_BROKERS], f"{name}: bootstrap {bootstrap}"
    url = _resolved_env(name)[_field_env(cls, "database_url")]
    assert url.startswith("postgresql+asyncpg://"), f"{name}: database_url {url!r} is not asyncpg"
    assert urlsplit(url).hostname == "postgres", f"{name}: database_url {url!r} is not on host postgres"


@pytest.mark.parametrize("name", SERVICES)
def test_kafka_idempotence_on_in_compose_off_by_default(name: str) -> None:
    cls = SETTINGS_BY_SERVICE[name]
    value = _environment(name).get(_field_env(cls, "kafka_enable_idempotence"), "")
    assert value.lower() in TRUE_VALUES, f"{name}: Apache Kafka takes the idempotent producer; got {value!r}"
    default = cls.model_fields["kafka_enable_idempotence"].default
    assert default is False, f"{cls.__name__}.kafka_enable_idempotence defaults to {default!r} (Tansu: False)"


@pytest.mark.parametrize("name", SERVICES)
def test_local_stack_is_false(name: str) -> None:
    cls = SETTINGS_BY_SERVICE[name]
    value = _environment(name).get(_field_env(cls, "local_stack"))
    assert value is not None and value.lower() in FALSE_VALUES, f"{name}: LOCAL_STACK={value!r}"


@pytest.mark.parametrize("name", SERVICES)
def test_service_healthcheck_and_dependencies(name: str) -> None:
    port = SETTINGS_BY_SERVICE[name].default_port
    check = _healthcheck_text(name)
    assert f":{port}/readyz" in check, f"{name}: healthcheck {check!r} does not probe :{port}/readyz"
    deps = _depends_on(name)
    for dep in ("postgres", *KAFKA_BROKERS):
        assert deps.get(dep) == "service_healthy", f"{name}: depends_on {dep} is {deps.get(dep)!r}"


# ---------------------------------------------------------------------------------------------- image


@pytest.mark.parametrize("name", SERVICES)
def test_build_points_at_the_dockerfile(name: str) -> None:
    build = _service(name).get("build")
    assert isinstance(build, dict), f"{name}: build must be a mapping with context and dockerfile"
    context = (COMPOSE_FILE.parent / str(build.get("context", "."))).resolve()
    assert context == ROOT, f"{name}: build context {context} is not the repo root"
    dockerfile = context / str(build.get("dockerfile", "Dockerfile"))
    assert dockerfile == ROOT / "deploy" / "Dockerfile", f"{name}: builds from {dockerfile}"
    assert dockerfile.is_file(), f"{dockerfile} is missing"


def test_dockerfile() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    froms = [ln for ln in lines if ln.upper().startswith("FROM ")]
    assert froms and froms[-1].split()[1] == "python:3.11-slim", f"final stage is {froms}"
    users = [ln.split(None, 1)[1] for ln in lines if ln.upper().startswith("USER ")]
    assert users, "the image runs as root (no USER)"
    assert users[-1].split(":")[0] not in {"root", "0"}, f"the image runs as {users[-1]}"
    assert re.search(r"pip install[^\n]*\s\.(\s|$)", text), "project not installed with `pip install .`"
    expose = " ".join(ln for ln in lines if ln.upper().startswith("EXPOSE "))
    assert "8001-8004" in expose or all(str(p) in expose for p in range(8001, 8005)), f"EXPOSE: {expose!r}"
    healthcheck = " ".join(ln for ln in lines if ln.upper().startswith("HEALTHCHECK") or "urllib" in ln)
    assert "urllib" in healthcheck and "/healthz" in healthcheck, "HEALTHCHECK must probe /healthz"
    assert "HUZHU_PORT" in healthcheck, "HEALTHCHECK must use the service's port (HUZHU_PORT)"
    cmd = [ln for ln in lines if ln.upper().startswith("CMD")]
    assert cmd and "services.${HUZHU_SERVICE" in cmd[-1], f"CMD does not run services.$HUZHU_SERVICE: {cmd}"


# ---------------------------------------------------------------------------------------------- postgres


def test_postgres_16_with_init_script() -> None:
    pg = _service("postgres")
    assert str(pg.get("image", "")).startswith("postgres:16"), f"postgres image {pg.get('image')!r}"
    mounts = [str(v) for v in pg.get("volumes") or []]
    assert any(m.startswith("./deploy/postgres-init:/docker-entrypoint-initdb.d") for m in mounts), mounts
    assert (pg.get("healthcheck") or {}).get("test"), "postgres has no healthcheck"


@pytest.mark.parametrize("name", SERVICES)
def test_init_script_creates_the_service_database(name: str) -> None:
    cls = SETTINGS_BY_SERVICE[name]
    url = _resolved_env(name)[_field_env(cls, "database_url")]
    database = urlsplit(url).path.lstrip("/")
    assert database == name, f"{name}: database_url names database {database!r}"
    sql = (ROOT / "deploy" / "postgres-init" / "01-databases.sql").read_text()
    created = {m.lower() for m in re.findall(r"(?im)^\s*CREATE\s+DATABASE\s+\"?(\w+)\"?", sql)}
    assert database in created, f"01-databases.sql creates {sorted(created)}, not {database!r}"
    user = urlsplit(url).username
    assert user == _environment("postgres").get("POSTGRES_USER"), f"{name}: connects as {user!r}"


# ---------------------------------------------------------------------------------------------- kafka


def test_kafka_is_kraft_without_zookeeper() -> None:
    for name, svc in COMPOSE["services"].items():
        assert "zookeeper" not in name.lower(), f"service {name!r} is ZooKeeper"
        assert "zookeeper" not in str(svc.get("image", "")).lower(), f"{name} uses {svc.get('image')}"
    voters = set()
    node_ids = []
    cluster_ids = set()
    for broker in KAFKA_BROKERS:
        svc = _service(broker)
        env = _environment(broker)
        assert svc.get("image") == "apache/kafka:3.9.0", f"{broker}: image {svc.get('image')!r}"
        zk = [k for k in env if "ZOOKEEPER" in k]
        assert not zk, f"{broker}: ZooKeeper settings {zk}"
        roles = set(env.get("KAFKA_PROCESS_ROLES", "").split(","))
        assert {"broker", "controller"} <= roles, f"{broker}: process roles {roles}"
        voters.add(env.get("KAFKA_CONTROLLER_QUORUM_VOTERS"))
        node_ids.append(env.get("KAFKA_NODE_ID"))
        cluster_ids.add(env.get("CLUSTER_ID"))
        assert env.get("KAFKA_ADVERTISED_LISTENERS") == f"PLAINTEXT://{broker}:9092", (
            f"{broker}: advertised {env.get('KAFKA_ADVERTISED_LISTENERS')!r}"
        )
        assert env.get("KAFKA_DEFAULT_REPLICATION_FACTOR") == "3", f"{broker}: default replication"
        assert env.get("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR") == "3", f"{broker}: offsets replication"
        assert env.get("KAFKA_MIN_INSYNC_REPLICAS") == "2", f"{broker}: min ISR"
        assert (svc.get("healthcheck") or {}).get("test"), f"{broker} has no healthcheck"
        assert svc.get("volumes"), f"{broker} keeps its log in the container (no volume)"
    assert len(voters) == 1, f"brokers disagree on the controller quorum: {voters}"
    quorum = voters.pop() or ""
    assert sorted(v.split("@")[1] for v in quorum.split(",")) == [f"{b}:9093" for b in KAFKA_BROKERS], quorum
    assert sorted(node_ids) == ["1", "2", "3"], f"node ids {node_ids}"
    assert len(cluster_ids) == 1 and None not in cluster_ids, f"cluster ids {cluster_ids}"


# ---------------------------------------------------------------------------------------- monitoring, proxy


def test_prometheus_scrapes_all_four_services() -> None:
    prom = _service("prometheus")
    mounts = [str(v) for v in prom.get("volumes") or []]
    assert any(m.startswith("./deploy/prometheus.yml:") for m in mounts), f"prometheus mounts {mounts}"
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    scraped = set()
    for job in config.get("scrape_configs") or []:
        assert job.get("metrics_path", "/metrics") == "/metrics", f"job {job.get('job_name')}"
        for static in job.get("static_configs") or []:
            scraped.update(static.get("targets") or [])
    expected = {f"{name}:{SETTINGS_BY_SERVICE[name].default_port}" for name in SERVICES}
    assert expected <= scraped, f"prometheus does not scrape {sorted(expected - scraped)}"
    assert "grafana" in COMPOSE["services"], "no grafana service"


def test_proxy_routes_each_service() -> None:
    proxy = _service("proxy")
    assert "nginx" in str(proxy.get("image", "")), f"proxy image {proxy.get('image')!r}"
    mounts = [str(v) for v in proxy.get("volumes") or []]
    assert any(m.startswith("./deploy/nginx.conf:") for m in mounts), f"proxy mounts {mounts}"
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    for name in SERVICES:
        port = SETTINGS_BY_SERVICE[name].default_port
        block = re.search(rf"location\s+/{name}/\s*\{{(?P<body>[^}}]*)\}}", conf)
        assert block, f"nginx.conf has no location /{name}/"
        assert f"http://{name}:{port}" in block.group("body"), f"/{name}/ is not proxied to {name}:{port}"


def test_named_volumes_are_declared() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    used = set()
    for svc in COMPOSE["services"].values():
        for v in svc.get("volumes") or []:
            source = str(v).split(":")[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used, "no named volumes for data"
    assert used <= declared, f"volumes used but not declared: {sorted(used - declared)}"
    for name in ("postgres", *KAFKA_BROKERS, "prometheus", "grafana"):
        assert any(not str(v).startswith((".", "/")) for v in _service(name).get("volumes") or []), (
            f"{name} has no named data volume"
        )


# ---------------------------------------------------------------------------------------------- settings


@pytest.mark.parametrize("name", SERVICES)
def test_settings_without_secrets_refuse_outside_local_stack(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = SETTINGS_BY_SERVICE[name]
    _clear_env(monkeypatch, cls)
    with pytest.raises(InsecureSettings):
        cls(local_stack=False)


@pytest.mark.parametrize("name", SERVICES)
def test_settings_from_compose_environment(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cls = SETTINGS_BY_SERVICE[name]
    _clear_env(monkeypatch, cls)
    env = _resolved_env(name)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = cls()
    assert settings.local_stack is False
    assert settings.port == cls.default_port
    assert settings.host == "0.0.0.0"
    assert settings.kafka_enable_idempotence is True
    assert settings.kafka_replication == 3
    assert settings.database_url == env[_field_env(cls, "database_url")]
    assert settings.kafka_bootstrap == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
    for field in cls.secret_fields:
        assert getattr(settings, field) == env[_field_env(cls, field)], f"{name}: {field} not read"
