"""The Docker deployment, checked without a Docker engine: docker-compose.yml, the Dockerfile and the
worker's seccomp profile, parsed and held to what issue 6 asks (see deploy/README.md)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SECCOMP_DOCKER_KEYS = {"defaultAction", "defaultErrnoRet", "architectures", "archMap", "syscalls",
                       "flags", "listenerPath", "listenerMetadata"}
SECCOMP_ACTIONS = {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
                   "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"}
SECCOMP_OPS = {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
               "SCMP_CMP_MASKED_EQ"}
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "clang", "libc6-dev", "python3-dev", "cmake")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def command_of(service: dict) -> list[str]:
    cmd = service.get("command")
    return cmd.split() if isinstance(cmd, str) else list(cmd or [])


def security_opts(service: dict) -> dict[str, str]:
    opts = {}
    for opt in service.get("security_opt", []):
        key, sep, value = opt.partition("=")
        if not sep:
            key, _, value = opt.partition(":")
        opts[key] = value
    return opts


def seccomp_path(services) -> Path:
    return ROOT / security_opts(services["worker"])["seccomp"]


def seccomp_profile(services) -> dict:
    return json.loads(seccomp_path(services).read_text())


def syscall_actions(profile: dict) -> dict[str, tuple[str, list]]:
    """name -> (action, args) for every rule (a later rule does not override an earlier one here:
    the tests below require each name to appear once)."""
    found: dict[str, tuple[str, list]] = {}
    for rule in profile["syscalls"]:
        names = rule.get("names") or ([rule["name"]] if "name" in rule else [])
        for name in names:
            assert name not in found, f"{name} has more than one rule"
            found[name] = (rule["action"], rule.get("args") or [])
    return found


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile as stages, each a list of logical instructions (continuations joined)."""
    stages: list[list[str]] = []
    logical = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        logical += line[:-1] + " " if line.endswith("\\") else line
        if line.endswith("\\"):
            continue
        if logical.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(logical)
        logical = ""
    return stages


# ---- services and their order ----

def test_the_four_services_exist(services):
    assert {"postgres", "migrate", "web", "worker"} <= set(services)


def test_postgres_has_a_named_volume_and_a_pg_isready_healthcheck(compose, services):
    pg = services["postgres"]
    named = [v.split(":", 1)[0] for v in pg["volumes"] if not v.startswith((".", "/", "~"))]
    assert named and all(name in compose.get("volumes", {}) for name in named)
    assert any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"])
    test = " ".join(pg["healthcheck"]["test"])
    assert "pg_isready" in test


def test_migrate_runs_grader_db_upgrade_once_after_postgres_is_healthy(services):
    migrate = services["migrate"]
    assert command_of(migrate) == ["grader", "db", "upgrade"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate.get("restart", "no") == "no"


@pytest.mark.parametrize("name", ["web", "worker"])
def test_web_and_worker_wait_for_the_migration_to_complete(services, name):
    depends = services[name]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["postgres"]["condition"] == "service_healthy"


def test_web_serves_without_in_process_workers(services):
    cmd = command_of(services["web"])
    assert cmd[:2] == ["grader", "serve"]
    assert "--workers" in cmd and cmd[cmd.index("--workers") + 1] == "0"


def test_web_has_a_healthcheck(services):
    web = services["web"]
    if "healthcheck" in web:
        assert not web["healthcheck"].get("disable") and web["healthcheck"].get("test")
    else:  # inherited from the image
        assert any(i.upper().startswith("HEALTHCHECK ") for i in dockerfile_stages()[-1])


def test_worker_runs_grader_worker_and_can_be_scaled(services):
    worker = services["worker"]
    cmd = worker["command"]
    script = cmd[2] if cmd[:2] == ["sh", "-c"] else " ".join(cmd)
    assert re.search(r"^(exec )?grader worker\b", script, re.MULTILINE)
    # replicas share the host's uid space: each must get its own sandbox slot range
    assert "--first-index" in script
    # `--scale worker=N` is refused for services with a fixed name or a fixed host port
    assert "container_name" not in worker
    assert not worker.get("ports")


def test_every_line_of_the_compose_file_explains_itself():
    """Each line has a comment, or a comment line right above it, or sits inside a list or block
    whose opening key is explained that way."""
    missing = []
    previous = ""
    parents: list[tuple[int, bool]] = []  # (indent, explained) of the enclosing keys
    for number, line in enumerate(COMPOSE.read_text().splitlines(), start=1):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        explained = "#" in stripped or previous.startswith("#")
        previous = stripped or previous
        if not stripped or stripped.startswith("#"):
            continue
        while parents and parents[-1][0] >= indent:
            parents.pop()
        explained = explained or (bool(parents) and parents[-1][1])
        if stripped.split(" #")[0].endswith((":", "|")):
            parents.append((indent, explained))
            continue  # a key (or block scalar) that only opens a block
        if not explained:
            missing.append(f"{number}: {stripped}")
    assert not missing, "lines without a comment:\n" + "\n".join(missing)


# ---- the worker's privileges ----

def test_no_service_is_privileged(services):
    for name, service in services.items():
        assert not service.get("privileged"), name
        assert "ALL" not in [c.upper() for c in service.get("cap_add", [])], name
        assert security_opts(service).get("seccomp") != "unconfined", name


def test_worker_gets_only_what_bubblewrap_needs(services):
    opts = security_opts(services["worker"])
    assert opts["apparmor"] == "unconfined"
    assert opts["systempaths"] == "unconfined"
    assert opts["seccomp"].endswith(".json")
    assert services["worker"].get("cap_drop") == ["ALL"]
    # added capabilities are a reviewed list (each explained in docker-compose.yml and deploy/README.md)
    allowed = {"SYS_ADMIN", "SETUID", "SETGID", "SETPCAP", "CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL"}
    assert set(services["worker"].get("cap_add", [])) <= allowed
    assert {"SYS_PTRACE", "SYS_MODULE", "NET_ADMIN", "SYS_RAWIO", "BPF", "PERFMON"}.isdisjoint(
        services["worker"].get("cap_add", []))


def test_worker_has_memory_and_pids_limits(services):
    worker = services["worker"]
    assert worker["mem_limit"] and worker["pids_limit"] > 0
    assert worker.get("memswap_limit", worker["mem_limit"]) == worker["mem_limit"]


def test_worker_and_database_are_not_reachable_from_outside(compose, services):
    for name in ("postgres", "worker"):
        assert not services[name].get("ports"), name
        assert services[name]["networks"] == ["backend"], name
    assert compose["networks"]["backend"]["internal"] is True


def test_web_process_has_no_privileges(services):
    web = services["web"]
    assert web.get("cap_drop") == ["ALL"] and not web.get("cap_add")
    assert str(web.get("user", "")).split(":")[0] not in ("", "0", "root")


def test_the_database_password_is_only_in_each_services_environment(services):
    for name, service in services.items():
        assert "POSTGRES_PASSWORD" not in " ".join(command_of(service)), name
        assert "DATABASE_URL" not in " ".join(command_of(service)), name
        for value in (service.get("environment") or {}).values():
            # interpolated from .env at `up` time, never a literal in the repo
            if "PASSWORD" in str(value) or re.search(r"://[^:/@]+:[^@]+@", str(value)):
                assert "${POSTGRES_PASSWORD" in str(value), (name, value)
    worker_env = services["worker"]["environment"]
    assert "POSTGRES_PASSWORD" not in worker_env  # the worker gets the URL, not the server's own secret
    text = DOCKERFILE.read_text()
    assert "PASSWORD" not in text.upper().replace("POSTGRES_PASSWORD IN .ENV", "")
    assert "DATABASE_URL" not in text


# ---- the seccomp profile ----

def test_seccomp_profile_is_docker_format(services):
    path = seccomp_path(services)
    assert path.is_file() and path.is_relative_to(ROOT / "deploy")
    profile = seccomp_profile(services)
    assert set(profile) <= SECCOMP_DOCKER_KEYS
    assert profile["defaultAction"] in SECCOMP_ACTIONS
    assert profile.get("architectures") or profile.get("archMap")
    for entry in profile.get("archMap", []):
        assert entry["architecture"].startswith("SCMP_ARCH_")
    for rule in profile["syscalls"]:
        assert set(rule) <= {"names", "name", "action", "args", "errnoRet", "comment", "includes",
                             "excludes"}
        assert rule["action"] in SECCOMP_ACTIONS
        assert all(isinstance(n, str) and re.fullmatch(r"[a-z0-9_]+", n) for n in rule["names"])
        for arg in rule.get("args") or []:
            assert set(arg) <= {"index", "value", "valueTwo", "op"} and arg["op"] in SECCOMP_OPS


def test_seccomp_profile_allows_bubblewrap_and_denies_the_dangerous_rest(services):
    profile = seccomp_profile(services)
    actions = syscall_actions(profile)
    for name in ("mount", "umount2", "pivot_root", "unshare", "clone", "clone3", "setns",
                 "sethostname", "seccomp", "setresuid", "execve", "socket", "futex", "mmap"):
        action, args = actions[name]
        assert action == "SCMP_ACT_ALLOW" and not args, name  # clone/unshare with any namespace flag
    assert profile["defaultAction"] in ("SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS")
    for name in ("bpf", "ptrace", "kexec_load", "kexec_file_load", "init_module", "finit_module",
                 "delete_module", "perf_event_open", "process_vm_readv", "process_vm_writev", "keyctl",
                 "add_key", "request_key", "open_by_handle_at", "name_to_handle_at", "reboot", "swapon",
                 "swapoff", "syslog", "acct", "settimeofday", "clock_settime", "iopl", "ioperm",
                 "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "lookup_dcookie",
                 "quotactl", "mbind", "move_pages"):
        action = actions.get(name, (profile["defaultAction"], []))[0]
        assert action != "SCMP_ACT_ALLOW", name


def test_seccomp_json_is_generated_from_the_commented_lists():
    result = subprocess.run([sys.executable, str(ROOT / "deploy" / "seccomp_profile.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# ---- the Dockerfile ----

def test_dockerfile_is_multi_stage_on_slim_python():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    for stage in stages:
        image = stage[0].split()[1]
        assert re.fullmatch(r"python:3\.11-slim(-bookworm)?", image), image


def test_final_stage_installs_bubblewrap_and_no_build_tools():
    final = " ".join(dockerfile_stages()[-1])
    assert re.search(r"apt-get install[^&]*\bbubblewrap\b", final)
    words = set(re.findall(r"[\w.+-]+", final))
    assert not words & set(BUILD_TOOLS), words & set(BUILD_TOOLS)
    assert "pip install" not in final  # everything was built in the build stage


def test_project_is_installed_not_editable():
    build = " ".join(" ".join(stage) for stage in dockerfile_stages()[:-1])
    assert re.search(r"pip install (--\S+ )*\.(\s|$)", build)
    assert "-e ." not in build and "--editable" not in build


def test_final_stage_runs_as_a_non_root_user_with_a_healthcheck():
    final = dockerfile_stages()[-1]
    users = [i.split()[1] for i in final if i.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    health = [i for i in final if i.upper().startswith("HEALTHCHECK ")]
    assert health and "/healthz" in health[-1]


def test_dockerignore_keeps_state_and_secrets_out_of_the_image():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", "data", ".env"):
        assert entry in ignored
