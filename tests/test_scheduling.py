"""Checks of the shipped scheduling files: systemd units, cron entry, Kubernetes manifests.

Needs, besides the ``test`` extra (croniter, kubernetes-validate, PyYAML):

* ``systemd-analyze`` (Debian/Ubuntu package ``systemd``), used offline: no running
  systemd is needed;
* ``flock`` (package ``util-linux``).

A missing tool makes the tests that need it fail with the install step, never skip.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import importlib
import itertools
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.scheduling

REPO = Path(__file__).resolve().parent.parent
SERVICE = REPO / "systemd" / "idle-cull.service"
TIMER = REPO / "systemd" / "idle-cull.timer"
ENV_FILE = REPO / "systemd" / "idle-cull.env"
CRON_FILE = REPO / "cron" / "idle-cull.cron"
K8S_DIR = REPO / "cron" / "kubernetes" / "base"  # a kustomize base: tests/test_kustomize.py
KUBERNETES_DOC = REPO / "docs" / "how-to" / "kubernetes.md"
VERIFY_UNITS = REPO / "scripts" / "verify-units"
CONTAINERFILE = REPO / "Containerfile"
CONFIG_FILE = REPO / "config" / "idle-cull.toml"
INSTALLED_CONFIG = "/etc/idle-cull/idle-cull.toml"

# Where the shipped files expect the console script to be installed (a venv).
VENV_SCRIPT = "/opt/idle-cull/bin/idle-cull"
SECURITY_MAX_EXPOSURE = 2.0
# Oldest Kubernetes minor the manifests must validate against; the newest schema
# that kubernetes-validate ships is checked too.
K8S_MIN_VERSION = "1.30"

HEX_TOKEN = re.compile(r"\b[0-9a-fA-F]{32,}\b")


# --------------------------------------------------------------------------- helpers


def _tool(name: str, install: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")
    if path is None:
        pytest.fail(f"{name} not found; install it with: {install}")
    return path


def _systemd_analyze() -> str:
    return _tool("systemd-analyze", "apt-get install systemd")


def _module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        pytest.fail(
            f"Python module {name!r} missing; install the test extra: pip install -e '.[test]'"
        )


def _run(cmd: list[str], timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def _console_script() -> str:
    """The command the installed package provides, which the shipped files must run."""
    names = [
        e.name
        for e in metadata.entry_points(group="console_scripts")
        if e.value.startswith("idle_cull")
    ]
    assert names == ["idle-cull"], f"console scripts of the installed idle-cull: {names}"
    return names[0]


def _parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit file as {section: [(key, value), ...]}, keeping repeated keys."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"{path.name}: line continuations are not expected"
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"{path.name}: setting outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a key=value line: {line}"
        current.append((key.strip(), value.strip()))
    return sections


def _values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def _one(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> str:
    values = _values(unit, section, key)
    assert len(values) == 1, f"[{section}] {key}= expected once, found {values}"
    return values[0]


def _timespan_us(span: str) -> int:
    """A systemd time span in microseconds, as systemd itself parses it."""
    result = _run([_systemd_analyze(), "timespan", span], env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert result.returncode == 0, result.stderr
    match = re.search(r"^\s*(?:μs|us):\s*(\d+)$", result.stdout, flags=re.MULTILINE)
    assert match, f"could not parse `systemd-analyze timespan {span}`: {result.stdout!r}"
    return int(match.group(1))


def _security_score(unit: Path) -> float:
    result = _run(
        [_systemd_analyze(), "security", "--offline=yes", "--no-pager", str(unit)],
        env={**os.environ, "SYSTEMD_COLORS": "0", "LC_ALL": "C.UTF-8"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"systemd-analyze security complained:\n{result.stderr}"
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)\b", result.stdout)
    assert match, f"no overall exposure score in:\n{result.stdout}"
    return float(match.group(1))


def _min_gap(times: list[dt.datetime]) -> dt.timedelta:
    assert len(times) >= 2
    return min(b - a for a, b in itertools.pairwise(times))


def _cron_fire_times(expr: str, count: int = 2100) -> list[dt.datetime]:
    """The next `count` fire times of a 5-field cron expression (a week of 5-minute slots)."""
    croniter = _module("croniter").croniter
    it = croniter(expr, dt.datetime(2025, 1, 6, 0, 0))  # a Monday, no DST in play
    return [it.get_next(dt.datetime) for _ in range(count)]


def _validate_cron_expression(expr: str) -> None:
    fields = expr.split()
    assert len(fields) == 5, f"{expr!r}: a cron schedule has exactly 5 fields"
    # Only the syntax of classic (Vixie/cronie) cron and Kubernetes: croniter alone
    # would also take Quartz/Jenkins extensions (L, W, #, ?, H) that they reject.
    value = r"(?:[0-9]+|[A-Za-z]{3})"
    item = rf"(?:\*|{value}(?:-{value})?)(?:/[0-9]+)?"
    for field in fields:
        assert re.fullmatch(rf"{item}(?:,{item})*", field), f"{expr!r}: bad field {field!r}"
    croniter = _module("croniter").croniter
    assert croniter.is_valid(expr), f"{expr!r} is not a valid cron schedule"


# --------------------------------------------------------------------------- systemd


def _documented_pages() -> str:
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    return "\n".join(page.read_text(encoding="utf-8") for page in pages)


def test_units_pass_systemd_analyze_verify_from_a_checkout() -> None:
    """The documented check, ``./scripts/verify-units``, passes on the shipped units.

    Plain ``systemd-analyze verify`` fails in a checkout because ExecStart's program,
    /opt/idle-cull/bin/idle-cull, exists only once installed; the script checks copies
    with that one path pointed at /bin/true.
    """
    _systemd_analyze()
    assert "./scripts/verify-units" in _documented_pages(), "document the check"
    exec_lines = [
        line for line in SERVICE.read_text().splitlines() if line.startswith("ExecStart=")
    ]
    assert len(exec_lines) == 1
    assert exec_lines[0].startswith(f"ExecStart={VENV_SCRIPT} "), exec_lines[0]

    result = _run([str(VERIFY_UNITS)], cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    assert "pass systemd-analyze verify" in result.stdout


def test_verify_units_fails_on_a_bad_unit(tmp_path: Path) -> None:
    """Control for the test above: the script fails on what verify only warns about."""
    _systemd_analyze()
    shutil.copy(TIMER, tmp_path / TIMER.name)
    (tmp_path / SERVICE.name).write_text(
        SERVICE.read_text().replace("ProtectSystem=strict", "ProtectSystem=sstrict")
    )
    result = _run([str(VERIFY_UNITS), str(tmp_path)])
    assert result.returncode == 1, result
    assert "sstrict" in result.stderr
    shutil.copy(SERVICE, tmp_path / SERVICE.name)
    assert _run([str(VERIFY_UNITS), str(tmp_path)]).returncode == 0, "only the typo failed"


def test_plain_verify_fails_in_a_checkout_without_the_install() -> None:
    """Why the script exists: verify checks that ExecStart's program is there."""
    if Path(VENV_SCRIPT).exists():
        pytest.skip(f"{VENV_SCRIPT} is installed on this machine")
    result = _run(
        [_systemd_analyze(), "verify", "--man=no", "--generators=no", SERVICE.name, TIMER.name],
        cwd=SERVICE.parent,
    )
    assert result.returncode != 0
    assert VENV_SCRIPT in result.stdout + result.stderr


def test_verify_catches_a_bad_unit(tmp_path: Path) -> None:
    """Control for the test above: a broken unit does make verify complain."""
    bad = tmp_path / "bad.service"
    bad.write_text("[Service]\nType=oneshot\nProtectSystem=sstrict\nExecStart=/nonexistent/x\n")
    result = _run(
        [_systemd_analyze(), "verify", "--man=no", "--generators=no", bad.name], cwd=tmp_path
    )
    assert result.returncode != 0
    assert "sstrict" in result.stdout + result.stderr


def test_service_security_exposure_is_low() -> None:
    score = _security_score(SERVICE)
    assert score <= SECURITY_MAX_EXPOSURE, (
        f"systemd-analyze security: exposure {score} > {SECURITY_MAX_EXPOSURE}"
    )


def test_security_score_parse_can_fail(tmp_path: Path) -> None:
    """Control: an unhardened unit scores far above the limit, so the parse is real."""
    bare = tmp_path / "bare.service"
    bare.write_text("[Service]\nType=oneshot\nExecStart=/bin/true\n")
    assert _security_score(bare) > 5.0


def test_service_settings() -> None:
    unit = _parse_unit(SERVICE)
    assert "Install" not in unit, "the service is started by the timer, not enabled itself"
    assert _one(unit, "Service", "Type") == "oneshot"

    # The token: a credential, handed over as a file, never through the environment.
    cred_name, _, cred_path = _one(unit, "Service", "LoadCredential").partition(":")
    assert cred_path.startswith("/etc/idle-cull/"), cred_path
    exec_start = shlex.split(_one(unit, "Service", "ExecStart"))
    assert exec_start[0] == VENV_SCRIPT
    assert Path(exec_start[0]).name == _console_script()
    assert f"--api-token-file=${{CREDENTIALS_DIRECTORY}}/{cred_name}" in exec_start
    assert "$IDLE_CULL_ARGS" in exec_start, "flags must be settable from the EnvironmentFile"
    env_files = _values(unit, "Service", "EnvironmentFile")
    assert env_files == ["/etc/idle-cull/idle-cull.env"], env_files
    for env in _values(unit, "Service", "Environment"):
        assert "TOKEN" not in env.upper(), env

    expected = {
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native",
        "IPAddressDeny": "any",
    }
    for key, value in expected.items():
        assert _one(unit, "Service", key) == value, key
    families = set(_one(unit, "Service", "RestrictAddressFamilies").split())
    assert families <= {"AF_INET", "AF_INET6", "AF_UNIX"}, families
    assert "@system-service" in _values(unit, "Service", "SystemCallFilter")


def test_timer_settings_and_timeout_below_interval() -> None:
    timer = _parse_unit(TIMER)
    assert _one(timer, "Timer", "Persistent") == "true"
    assert _one(timer, "Timer", "Unit") == SERVICE.name
    assert "timers.target" in _values(timer, "Install", "WantedBy")
    on_calendar = _one(timer, "Timer", "OnCalendar")
    random_delay_us = _timespan_us(_one(timer, "Timer", "RandomizedDelaySec"))
    assert random_delay_us > 0

    result = _run(
        [_systemd_analyze(), "calendar", "--iterations=6", on_calendar],
        env={**os.environ, "TZ": "UTC", "LC_ALL": "C.UTF-8"},
    )
    assert result.returncode == 0, result.stderr
    stamps = re.findall(
        r"^\s*(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)",
        result.stdout,
        flags=re.MULTILINE,
    )
    assert len(stamps) == 6, result.stdout
    interval = _min_gap([dt.datetime.strptime(s, "%Y-%m-%d %H:%M:%S") for s in stamps])
    interval_us = int(interval.total_seconds()) * 1_000_000
    assert interval >= dt.timedelta(minutes=1), interval

    # A hung pass must be killed before the next one can be due, even when the
    # random delay makes two starts closer than the calendar interval.
    timeout_us = _timespan_us(_one(_parse_unit(SERVICE), "Service", "TimeoutStartSec"))
    assert timeout_us + random_delay_us <= interval_us


def test_environment_file_example() -> None:
    unit_args = shlex.split(_one(_parse_unit(SERVICE), "Service", "ExecStart"))
    keys = set()
    for raw in ENV_FILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        assert sep, line
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key), line
        assert "TOKEN" not in key.upper(), "the token never goes in the EnvironmentFile"
        assert not HEX_TOKEN.search(value), line
        keys.add(key)
        if key == "IDLE_CULL_ARGS":
            # systemd splits an unquoted $VAR on whitespace and does not unquote inside it.
            assert not set(value) & set("\"'\\$"), line
            assert "--api-token-file" not in value, "the unit passes the token file already"
    assert {"JUPYTERHUB_API_URL", "IDLE_CULL_ARGS"} <= keys
    assert "$IDLE_CULL_ARGS" in unit_args


# --------------------------------------------------------------------------- cron


def _cron_lines() -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """(environment assignments, [(schedule, user, command), ...]) of the cron.d file."""
    env: dict[str, str] = {}
    jobs: list[tuple[str, str, str]] = []
    for raw in CRON_FILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assignment = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)", line)
        if assignment:
            env[assignment.group(1)] = assignment.group(2).strip("\"'")
            continue
        job = re.fullmatch(r"(\S+\s+\S+\s+\S+\s+\S+\s+\S+)\s+(\S+)\s+(.+)", line)
        assert job, f"neither an assignment nor a cron.d job line: {line}"
        jobs.append((job.group(1), job.group(2), job.group(3)))
    return env, jobs


def test_cron_schedule_parses() -> None:
    _, jobs = _cron_lines()
    assert jobs, "no job line in the cron file"
    for schedule, user, _command in jobs:
        _validate_cron_expression(schedule)
        assert user not in {"root", "0"}, "run the culler as an unprivileged user"


@pytest.mark.parametrize(
    "expr", ["*/5 * * * * *", "61 * * * *", "* * * *", "0 0 L * *", "H/5 * * * *", "0 0 ? * MON#2"]
)
def test_cron_validator_rejects_bad_schedules(expr: str) -> None:
    with pytest.raises(AssertionError):
        _validate_cron_expression(expr)


def test_cron_entry_locks_logs_and_reads_token_file() -> None:
    env, jobs = _cron_lines()
    assert "JUPYTERHUB_API_URL" in env
    assert not any("TOKEN" in key.upper() and key != "JUPYTERHUB_API_TOKEN_FILE" for key in env)
    for _schedule, _user, command in jobs:
        assert "%" not in command, "cron turns an unescaped % into a newline"
        assert not HEX_TOKEN.search(command)
        argv = shlex.split(command)
        assert argv[:2] == ["flock", "-n"], "the pass must not overlap a running one"
        assert VENV_SCRIPT in argv
        assert Path(VENV_SCRIPT).name == _console_script()
        assert any(a.startswith("--api-token-file=/") for a in argv), argv
        assert re.search(r">>\s*/\S+\.log\s+2>&1\s*$", command), "output must go to a log"


# What a comment may say the pass writes, and the flag that makes it write that.
OUTPUT_FLAGS = {"report": "--report", "metrics": "--metrics-file"}


def _comment_sentences(path: Path) -> list[str]:
    """The comment text of a shipped file, as sentences (comments wrap mid-sentence)."""
    text = " ".join(
        line.strip().lstrip("#").strip()
        for line in path.read_text().splitlines()
        if line.strip().startswith("#")
    )
    return [s for s in re.split(r"(?<=\.)\s+", text) if s]


def _broken_output_promises(path: Path, argv: list[str]) -> list[str]:
    """Sentences that mention a report or metrics while the command line does not ask
    for them and the sentence does not name the flag that would (an instruction)."""
    broken = []
    for sentence in _comment_sentences(path):
        for word, flag in OUTPUT_FLAGS.items():
            mentioned = re.search(rf"\b{word}\b", sentence, flags=re.IGNORECASE)
            asked = any(a == flag or a.startswith(f"{flag}=") for a in argv)
            if mentioned and not asked and flag not in sentence:
                broken.append(f"{path.name}: {sentence!r} (no {flag} on the line)")
    return broken


def test_comments_promise_only_the_output_the_command_line_asks_for() -> None:
    """Issue 23: the cron file's comment promised a report that its line did not request."""
    _, jobs = _cron_lines()
    (container,) = _the("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    shipped = {
        CRON_FILE: shlex.split(jobs[0][2]),
        SERVICE: shlex.split(_one(_parse_unit(SERVICE), "Service", "ExecStart")),
        K8S_DIR / "cronjob.yaml": [*container["command"], *container["args"]],
    }
    broken = [b for path, argv in shipped.items() for b in _broken_output_promises(path, argv)]
    assert not broken, "\n".join(broken)


def test_output_promise_check_can_fail(tmp_path: Path) -> None:
    """Control: the sentence issue 23 found is caught, and an instruction is not."""
    cron = tmp_path / "idle-cull.cron"
    cron.write_text("# The report (stdout) and the logs (stderr) are appended to the log.\n")
    assert _broken_output_promises(cron, ["idle-cull", "--config=x"])
    assert not _broken_output_promises(cron, ["idle-cull", "--report=text"])
    cron.write_text("# Add --report=text to append\n# the report too.\n")
    assert not _broken_output_promises(cron, ["idle-cull"])


def test_cron_command_runs_and_does_not_overlap(tmp_path: Path) -> None:
    """Run the shipped command line with its paths moved into tmp_path and a stub culler."""
    _tool("flock", "apt-get install util-linux")
    env, jobs = _cron_lines()
    assert len(jobs) == 1
    command = jobs[0][2]
    argv = shlex.split(command)
    lock_path = argv[argv.index(VENV_SCRIPT) - 1]
    token_path = next(a for a in argv if a.startswith("--api-token-file=")).partition("=")[2]
    log_path = re.search(r">>\s*(\S+)", command).group(1)  # type: ignore[union-attr]

    stub = tmp_path / "idle-cull"
    stub.write_text(
        "#!/bin/sh\n"
        'echo "ran $*" >> "$STUB_CALLS"\n'
        'for a in "$@"; do case "$a" in --api-token-file=*) cat "${a#*=}" >> "$STUB_CALLS";; esac; done\n'
        'echo "report to stdout url=$JUPYTERHUB_API_URL"\n'
        'echo "log to stderr" >&2\n'
    )
    stub.chmod(0o755)
    calls = tmp_path / "calls"
    token = tmp_path / "api-token"
    token.write_text("not-a-real-token\n")
    log = tmp_path / "idle-cull.log"
    lock = tmp_path / "idle-cull.lock"
    for old, new in [(VENV_SCRIPT, stub), (lock_path, lock), (token_path, token), (log_path, log)]:
        assert command.count(old) == 1, old
        command = command.replace(old, str(new))

    run_env = {**env, "STUB_CALLS": str(calls), "HOME": str(tmp_path)}
    shell = env.get("SHELL", "/bin/sh")
    first = _run([shell, "-c", command], env=run_env)
    assert first.returncode == 0, first
    assert (first.stdout, first.stderr) == ("", ""), "all output must go to the log"
    assert calls.read_text().splitlines()[1] == "not-a-real-token"
    logged = log.read_text()
    assert f"url={env['JUPYTERHUB_API_URL']}" in logged
    assert "log to stderr" in logged

    # While another pass holds the lock, a new one must give up at once.
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            second = _run([shell, "-c", command], env=run_env, timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail("the cron command waited for the lock instead of giving up (flock -n)")
    assert second.returncode == 75, second
    assert calls.read_text().count("ran ") == 1, "the stub ran while the lock was held"


# --------------------------------------------------------------------------- Kubernetes


def _manifests() -> list[tuple[Path, dict[str, Any]]]:
    yaml = _module("yaml")
    docs: list[tuple[Path, dict[str, Any]]] = []
    files = sorted(K8S_DIR.glob("*.yaml")) + sorted(K8S_DIR.glob("*.yml"))
    # kustomization.yaml is kustomize's, not a Kubernetes object.
    files = [path for path in files if path.name != "kustomization.yaml"]
    assert files, f"no manifests in {K8S_DIR}"
    for path in files:
        with path.open() as fh:
            docs.extend((path, doc) for doc in yaml.safe_load_all(fh) if doc is not None)
    return docs


def _the(kind: str) -> dict[str, Any]:
    found = [doc for _, doc in _manifests() if doc.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _k8s_versions() -> list[str]:
    utils = _module("kubernetes_validate.utils")
    return [K8S_MIN_VERSION, ".".join(utils.latest_version().split(".")[:2])]


def test_manifests_validate_against_kubernetes_schema() -> None:
    kv = _module("kubernetes_validate")
    kinds = []
    for path, doc in _manifests():
        kinds.append(doc.get("kind"))
        for version in _k8s_versions():
            try:
                kv.validate(doc, version, strict=True)
            except Exception as exc:  # ValidationError, SchemaNotFoundError, ...
                message = getattr(exc, "message", exc)
                pytest.fail(f"{path.name} ({doc.get('kind')}) invalid for {version}: {message}")
    assert {"CronJob", "Secret", "NetworkPolicy"} <= set(kinds), kinds


def test_schema_validation_can_fail() -> None:
    """Control: strict validation rejects a misspelt field and a wrong type."""
    kv = _module("kubernetes_validate")
    typo = _the("CronJob")
    typo["spec"]["concurrencypolicy"] = typo["spec"].pop("concurrencyPolicy")
    wrong_type = _the("CronJob")
    wrong_type["spec"]["jobTemplate"]["spec"]["backoffLimit"] = "none"
    for doc in (typo, wrong_type):
        with pytest.raises(kv.ValidationError):
            kv.validate(doc, K8S_MIN_VERSION, strict=True)


def test_cronjob_policy() -> None:
    cronjob = _the("CronJob")
    spec = cronjob["spec"]
    _validate_cron_expression(spec["schedule"])
    interval = _min_gap(_cron_fire_times(spec["schedule"])).total_seconds()

    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] < interval
    job = spec["jobTemplate"]["spec"]
    assert 0 < job["activeDeadlineSeconds"] < interval
    assert isinstance(job["backoffLimit"], int)
    assert 0 <= job["backoffLimit"] <= 2

    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    pod_sc = pod["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] > 0
    assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault"

    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc.get("privileged", False) is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert not sc["capabilities"].get("add")
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][part]), part
    image = container["image"]
    assert ":" in image.rsplit("/", 1)[-1], "pin the image tag"
    assert not image.endswith(":latest")
    assert container["command"] == [_console_script()]


def test_cronjob_token_comes_from_the_secret() -> None:
    cronjob = _the("CronJob")
    secret = _the("Secret")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    # No token in plain text anywhere in the CronJob.
    assert not HEX_TOKEN.search(repr(cronjob))
    for env in container.get("env", []):
        if "TOKEN" in env["name"] and env["name"] != "JUPYTERHUB_API_TOKEN_FILE":
            assert "value" not in env, f"{env['name']} set in plain text"
    assert not any(a.startswith("--api-token=") for a in container.get("args", []))

    # --api-token-file points at a key of the Secret, mounted read-only and
    # readable by the non-root user (group-owned through fsGroup).
    token_file = next(
        a.partition("=")[2] for a in container["args"] if a.startswith("--api-token-file=")
    )
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = [m for m in container["volumeMounts"] if "secret" in volumes[m["name"]]]
    (mount,) = mounts
    assert mount["readOnly"] is True
    secret_volume = volumes[mount["name"]]["secret"]
    assert secret_volume["secretName"] == secret["metadata"]["name"]
    items = {i["path"]: i["key"] for i in secret_volume["items"]}
    rel = os.path.relpath(token_file, mount["mountPath"])
    assert rel in items, (token_file, mount["mountPath"], items)
    assert items[rel] in secret.get("stringData", {}) | secret.get("data", {})
    mode = secret_volume["defaultMode"]
    assert mode & 0o040, f"group cannot read the token: {oct(mode)}"
    assert not mode & 0o007, f"others can read the token: {oct(mode)}"
    assert pod["securityContext"]["fsGroup"] > 0

    # The example Secret holds a placeholder, not something that looks like a token.
    for value in secret.get("stringData", {}).values():
        assert not HEX_TOKEN.search(value)


def test_containerfile_matches_cronjob() -> None:
    """The image runs the console script as the non-root UID/GID the CronJob expects."""
    text = CONTAINERFILE.read_text()
    instructions = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    users = [line.split(None, 1)[1] for line in instructions if line.upper().startswith("USER ")]
    assert users, "the image must not run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit(), "USER must be numeric for runAsNonRoot"
    assert int(uid) > 0
    pod = _the("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert int(uid) == pod["securityContext"]["runAsUser"]
    assert gid.isdigit()
    assert int(gid) == pod["securityContext"]["runAsGroup"]
    entrypoints = [line for line in instructions if line.upper().startswith("ENTRYPOINT ")]
    assert entrypoints[-1] == f'ENTRYPOINT ["{_console_script()}"]'
    assert "pip install" in text
    assert f"PATH={Path(VENV_SCRIPT).parent}:" in text


# --------------------------------------------------------------------------- all three


def _env_file_settings() -> dict[str, str]:
    settings = {}
    for raw in ENV_FILE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            settings[key] = value.strip("\"'")
    return settings


def test_shipped_command_lines_are_accepted_by_the_cli(tmp_path: Path) -> None:
    """Each scheduler's command line, run through the installed console script.

    The hub URL is pointed at a closed port on 127.0.0.1, so a pass whose flags and
    settings parse ends with exit status 3 (hub unreachable); 2 would be a usage error.
    """
    script = shutil.which(_console_script(), path=str(Path(sys.executable).parent))
    if script is None:
        pytest.fail("the idle-cull console script is not installed: pip install -e '.[test]'")
    token = tmp_path / "api-token"
    token.write_text("not-a-real-token\n")

    # systemd: ExecStart with the credential directory and $IDLE_CULL_ARGS expanded.
    unit = _parse_unit(SERVICE)
    cred_name = _one(unit, "Service", "LoadCredential").partition(":")[0]
    (tmp_path / "credentials").mkdir()
    shutil.copy(token, tmp_path / "credentials" / cred_name)
    env_settings = _env_file_settings()
    systemd_argv: list[str] = []
    for arg in shlex.split(_one(unit, "Service", "ExecStart"))[1:]:
        if arg == "$IDLE_CULL_ARGS":
            systemd_argv += env_settings.get("IDLE_CULL_ARGS", "").split()
        else:
            systemd_argv.append(
                _local_config(arg).replace(
                    "${CREDENTIALS_DIRECTORY}", str(tmp_path / "credentials")
                )
            )

    # cron: the arguments after the script, up to the redirection.
    cron_env, jobs = _cron_lines()
    argv = shlex.split(jobs[0][2])
    cron_argv = argv[argv.index(VENV_SCRIPT) + 1 : argv.index(">>")]
    cron_argv = [
        f"--api-token-file={token}" if a.startswith("--api-token-file=") else _local_config(a)
        for a in cron_argv
    ]

    # Kubernetes: the container's args and plain env values.
    (container,) = _the("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    k8s_argv = [
        f"--api-token-file={token}" if a.startswith("--api-token-file=") else _local_config(a)
        for a in container["args"]
    ]
    k8s_env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}

    for url in (
        env_settings["JUPYTERHUB_API_URL"],
        cron_env["JUPYTERHUB_API_URL"],
        k8s_env["JUPYTERHUB_API_URL"],
    ):
        assert re.fullmatch(r"https?://[^/\s]+(/\S*)?/hub/api", url), url

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        unreachable = f"http://127.0.0.1:{closed.getsockname()[1]}/hub/api"
        base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
        runs = {
            "systemd": (systemd_argv, {**env_settings, **base_env}),
            "cron": (cron_argv, {**cron_env, **base_env}),
            "kubernetes": (k8s_argv, {**k8s_env, **base_env}),
        }
        procs = {}
        for name, (args, settings) in runs.items():
            env = {k: v for k, v in settings.items() if k != "IDLE_CULL_ARGS"}
            env["JUPYTERHUB_API_URL"] = unreachable
            procs[name] = subprocess.Popen(
                [script, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        results = {name: (proc, *proc.communicate(timeout=120)) for name, proc in procs.items()}
    for name, (proc, _out, err) in results.items():
        assert proc.returncode == 3, f"{name}: {runs[name][0]} exited {proc.returncode}:\n{err}"


# --------------------------------------------------------------------------- the config file


def _local_config(arg: str) -> str:
    """``--config=<where a scheduler reads it>`` -> the repository's copy of that file."""
    if arg.startswith("--config="):
        return f"--config={CONFIG_FILE}"
    return arg


def _config_arg(argv: list[str]) -> str:
    (path,) = [a.partition("=")[2] for a in argv if a.startswith("--config=")]
    return path


def test_every_scheduler_reads_the_shipped_config_file() -> None:
    unit_argv = shlex.split(_one(_parse_unit(SERVICE), "Service", "ExecStart"))
    assert _config_arg(unit_argv) == INSTALLED_CONFIG
    _, jobs = _cron_lines()
    assert _config_arg(shlex.split(jobs[0][2])) == INSTALLED_CONFIG
    for install_steps in (SERVICE.read_text(), CRON_FILE.read_text()):
        assert INSTALLED_CONFIG in install_steps
        assert "config/idle-cull.toml" in install_steps

    # Kubernetes: --config names a key of the ConfigMap volume, mounted read-only.
    pod = _the("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    path = _config_arg(container["args"])
    volumes = {v["name"]: v for v in pod["volumes"]}
    (mount,) = [m for m in container["volumeMounts"] if "configMap" in volumes[m["name"]]]
    assert mount["readOnly"] is True
    config_map = volumes[mount["name"]]["configMap"]
    items = {i["path"]: i["key"] for i in config_map["items"]}
    key = items[os.path.relpath(path, mount["mountPath"])]
    # The documented command creates that ConfigMap, with that key, from the shipped file
    # (without kustomize; tests/test_kustomize.py checks the generated one).
    command = f"create configmap {config_map['name']} --from-file={key}=config/idle-cull.toml"
    assert command in (K8S_DIR / "cronjob.yaml").read_text()
    assert command in KUBERNETES_DOC.read_text()


def test_shipped_config_file_is_valid_and_sets_the_timeout() -> None:
    import click  # noqa: PLC0415 - the CLI's own parsing, as a pass would do it

    from idle_cull.command.cli import cli  # noqa: PLC0415
    from idle_cull.command.config_file import defaults_from, read_config_file  # noqa: PLC0415

    kind, values = read_config_file(CONFIG_FILE)
    assert kind == "toml"
    assert defaults_from(click.Context(cli), values, str(CONFIG_FILE)) == {"timeout": 600.0}
    assert not HEX_TOKEN.search(CONFIG_FILE.read_text())
