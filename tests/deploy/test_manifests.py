"""The files in deploy/ are valid and agree with the code: Kubernetes schemas, flags, environment names, config.xml.

The manifests are validated offline in strict mode (unknown fields are errors) against the Kubernetes schemas that
kubernetes-validate ships, for one pinned Kubernetes version. Flags are checked against the real ``run`` command
(parsed by click, as the CLI would), environment names against the string constants of ``sync/``, and the
ConfigMap's config.xml is loaded by the real configuration loader.
"""

from __future__ import annotations

import ast
import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml
from kubernetes_validate.utils import all_versions

from sync.cli import app
from sync.config import load_settings
from sync.secrets import KeyStore

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
UNIT = DEPLOY / "systemd" / "presence-sync.service"
ENV_EXAMPLE = DEPLOY / "systemd" / "presence-sync.env.example"
KUSTOMIZATION = K8S / "kustomization.yaml"
K8S_VERSION = "1.34.0"  # a schema set kubernetes-validate ships (kubernetes-json-schema/v1.34.0-local-strict)
EXEC_PATH = "/opt/presence-sync/bin/presence-sync"
LIBPQ_ENV = {"PGPASSWORD"}  # read by libpq, not by presence-sync itself
OTHER_ENV = {"HOME"}  # where ~/.pgpass is looked up
RUN = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
Doc = dict[str, Any]


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p != KUSTOMIZATION)


def documents() -> list[tuple[str, Doc]]:
    out = []
    for path in manifest_files():
        for i, doc in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
            if doc is not None:
                out.append((f"{path.name}#{i}", doc))
    return out


DOCS = documents()


def one(kind: str) -> Doc:
    found = [d for _, d in DOCS if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container() -> Doc:
    containers = one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def option_value(args: list[str], flag: str) -> str:
    assert args.count(flag) == 1, f"{flag} should appear once in {args}"
    return args[args.index(flag) + 1]


def run_options() -> set[str]:
    """The long option names of ``presence-sync run``, read from the CLI itself (as tests/sync/cli/test_docs.py)."""
    return {o for p in RUN.params if p.param_type_name == "option" for o in (*p.opts, *p.secondary_opts)
            if o.startswith("--")}


def flags_in(args: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in args if a.startswith("--")]


def env_names_read_by_the_code() -> set[str]:
    """Every string constant in sync/ that is a whole PRESENCE_SYNC_* name (docstrings and f-strings aside)."""
    names: set[str] = set()
    for path in (ROOT / "sync").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.fullmatch(r"PRESENCE_SYNC_[A-Z0-9_]+", node.value):
                names.add(node.value)
    return names


def env_example() -> dict[str, str]:
    """KEY=VALUE lines of the env example, the commented-out ones (``#KEY=VALUE``) included."""
    out = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"#?([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def exec_start() -> list[str]:
    return shlex.split(unit()["Service"]["ExecStart"])


def secret_data(name: str) -> dict[str, str]:
    secret = next(d for _, d in DOCS if d["kind"] == "Secret" and d["metadata"]["name"] == name)
    return {**secret.get("data", {}), **secret.get("stringData", {})}


# --- Kubernetes schemas ------------------------------------------------------------------------------------------

def test_the_pinned_schema_version_is_shipped() -> None:
    assert K8S_VERSION in all_versions()


@pytest.mark.parametrize("name,doc", DOCS, ids=[n for n, _ in DOCS])
def test_manifest_validates_strictly(name: str, doc: Doc) -> None:
    assert kubernetes_validate.validate(doc, K8S_VERSION, strict=True) == "1.34", name


def test_strict_validation_refuses_an_unknown_field() -> None:
    doc = one("Deployment")
    bad = {**doc, "spec": {**doc["spec"], "replica": 3}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_kustomization_lists_every_file() -> None:
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text(encoding="utf-8"))
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources))
    assert sorted(resources) == [p.name for p in manifest_files()]
    namespaces = {d["metadata"].get("namespace") for _, d in DOCS if d["kind"] != "Namespace"}
    assert namespaces == {kustomization["namespace"]} == {one("Namespace")["metadata"]["name"]}


# --- the Deployment ----------------------------------------------------------------------------------------------

def test_deployment_shape() -> None:
    spec = one("Deployment")["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 1
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["enableServiceLinks"] is False  # no injected PRESENCE_SYNC_*_PORT variables from a Service
    spread = pod["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in spread] == ["kubernetes.io/hostname"]


def test_probes_annotations_and_the_metrics_port_agree() -> None:
    c = container()
    args = c["args"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    port = ports["metrics"]
    assert int(option_value(args, "--metrics-port")) == port == 9464
    assert option_value(args, "--metrics-host") == "0.0.0.0"  # the kubelet probes from outside the pod
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c[probe]["httpGet"]
        assert get["path"] == path
        assert get["port"] in ("metrics", port)
    annotations = one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"
    service = one("Service")["spec"]
    assert [p["targetPort"] for p in service["ports"]] in (["metrics"], [port])


def test_container_is_hardened() -> None:
    c = container()
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    assert set(c["resources"]["requests"]) == set(c["resources"]["limits"]) == {"cpu", "memory"}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/etc/presence-sync"]["readOnly"] is True
    for path in ("/var/lib/presence-sync/out", "/var/lib/presence-sync/state"):  # writable, on an emptyDir
        mount = max((m for m in mounts if path.startswith(m + "/")), key=len)
        volume = next(v for v in one("Deployment")["spec"]["template"]["spec"]["volumes"]
                      if v["name"] == mounts[mount]["name"])
        assert "emptyDir" in volume and not mounts[mount].get("readOnly")


def test_selectors_match_the_pod_labels() -> None:
    deployment = one("Deployment")["spec"]
    labels = deployment["template"]["metadata"]["labels"]
    selectors = {
        "Deployment": deployment["selector"]["matchLabels"],
        "PodDisruptionBudget": one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        "Service": one("Service")["spec"]["selector"],
        **{f"spread {i}": c["labelSelector"]["matchLabels"]
           for i, c in enumerate(deployment["template"]["spec"]["topologySpreadConstraints"])},
    }
    for who, selector in selectors.items():
        assert selector and selector.items() <= labels.items(), who
    pdb = one("PodDisruptionBudget")["spec"]
    assert pdb.get("maxUnavailable") == 1 or pdb.get("minAvailable") == 2


def test_every_referenced_configmap_and_secret_exists() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    wanted: list[tuple[str, str, str]] = []  # (kind, name, key)
    for env in container().get("env", []):
        source = env.get("valueFrom", {})
        if "secretKeyRef" in source:
            wanted.append(("Secret", source["secretKeyRef"]["name"], source["secretKeyRef"]["key"]))
        if "configMapKeyRef" in source:
            wanted.append(("ConfigMap", source["configMapKeyRef"]["name"], source["configMapKeyRef"]["key"]))
    for volume in pod["volumes"]:
        sources = volume.get("projected", {}).get("sources", []) + [
            {k: volume[k]} for k in ("configMap", "secret") if k in volume]
        for src in sources:
            for field, kind, name_key in (("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName")):
                if field in src:
                    ref = src[field]
                    name = ref.get(name_key) or ref["name"]
                    wanted += [(kind, name, item["key"]) for item in ref.get("items", [])] or [(kind, name, "")]
    assert wanted
    defined = {(d["kind"], d["metadata"]["name"]): {**d.get("data", {}), **d.get("stringData", {})}
               for _, d in DOCS if d["kind"] in ("ConfigMap", "Secret")}
    for kind, name, key in wanted:
        assert (kind, name) in defined, f"{kind} {name} is referenced but not in deploy/kubernetes"
        assert not key or key in defined[(kind, name)], f"{kind} {name} has no key {key!r}"


def test_every_replica_writes_one_shared_output_folder() -> None:
    """The whole-folder CSVs hold every account only when the replicas share --out: a ReadWriteMany claim."""
    c = container()
    out_dir = c["args"][c["args"].index("--out") + 1]
    mount = max((m for m in c["volumeMounts"] if out_dir == m["mountPath"] or out_dir.startswith(m["mountPath"] + "/")),
                key=lambda m: len(m["mountPath"]))
    volume = next(v for v in one("Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    claim = volume["persistentVolumeClaim"]["claimName"]
    pvc = next(d for _, d in DOCS if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == claim)
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    state = c["args"][c["args"].index("--state-dir") + 1]
    assert not state.startswith(out_dir), "each replica keeps its own state directory"


def test_the_key_file_is_where_the_secret_is_mounted() -> None:
    c = container()
    env = {e["name"]: e.get("value") for e in c["env"]}
    key_file = env["PRESENCE_SYNC_KEY_FILE"]
    mount = next(m for m in c["volumeMounts"] if key_file.startswith(m["mountPath"] + "/"))
    volume = next(v for v in one("Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    paths = [item["path"] for src in volume["projected"]["sources"] if "secret" in src
             for item in src["secret"]["items"]]
    assert key_file == f"{mount['mountPath']}/{paths[0]}" and paths == ["key/secret.key"]
    modes = [volume["projected"]["defaultMode"]] + [item["mode"] for src in volume["projected"]["sources"]
                                                    for item in src.get("secret", {}).get("items", [])]
    assert all(m & 0o022 == 0 for m in modes), "a key file writable by group or others is refused"


# --- flags and environment names ---------------------------------------------------------------------------------

def test_container_runs_presence_sync_run_with_real_flags() -> None:
    c = container()
    assert c["command"] == ["presence-sync"] and c["args"][0] == "run"
    unknown = set(flags_in(c["args"])) - run_options()
    assert not unknown, f"presence-sync run has no {sorted(unknown)}"
    params = RUN.make_context("run", list(c["args"][1:])).params  # parsed and converted as the CLI does
    assert params["interval"] == 1.0 and params["metrics_port"] == 9464 and params["log_format"] == "json"


def test_systemd_exec_start_uses_real_flags() -> None:
    argv = exec_start()
    assert argv[0] == EXEC_PATH and argv[1] == "run"
    unknown = set(flags_in(argv)) - run_options()
    assert not unknown, f"presence-sync run has no {sorted(unknown)}"
    params = RUN.make_context("run", argv[2:]).params
    assert params["interval"] == 5.0 and params["metrics_port"] == 9464 and params["log_format"] == "json"


def test_the_cli_help_names_every_flag_used() -> None:
    help_text = subprocess.run([sys.executable, "-m", "sync.cli", "run", "--help"], capture_output=True,
                               text=True, check=True, cwd=ROOT, env={**os.environ, "COLUMNS": "200"}).stdout
    for flag in set(flags_in(container()["args"])) | set(flags_in(exec_start())):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text), flag


def test_environment_names_are_read_by_the_code() -> None:
    code = env_names_read_by_the_code()
    assert {"PRESENCE_SYNC_STORE", "PRESENCE_SYNC_KEY_FILE"} <= code
    used = {e["name"] for e in container()["env"]} | set(env_example())
    assert {"PRESENCE_SYNC_STORE", "PRESENCE_SYNC_KEY_FILE", "PGPASSWORD"} <= used
    for name in used:
        assert name in code or name in LIBPQ_ENV | OTHER_ENV, f"nothing in sync/ reads {name}"


def test_no_secret_in_clear() -> None:
    data = secret_data("presence-sync")
    assert "REPLACE" in data["secret.key"] and "REPLACE" in data["pgpassword"]
    examples = env_example()
    for url in (data["store-url"], examples["PRESENCE_SYNC_STORE"]):
        assert re.fullmatch(r"postgresql://[\w.-]+@[\w.-]+:\d+/\w+", url), f"{url}: no password in the URL"
    assert "PGPASSWORD" not in unit()["Service"].get("Environment", "")
    env_lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    assert not [line for line in env_lines if line.startswith("PGPASSWORD=")]
    config = one("ConfigMap")["data"]["config.xml"]
    values = re.findall(r'Encrypted(?:Secret|Password)="([^"]*)"', config)
    assert values and all(v.startswith("ps1:REPLACE") for v in values)


def test_configmap_config_loads(tmp_path: Path) -> None:
    """The ConfigMap's config.xml, its placeholders replaced by values encrypted with a fresh key, loads cleanly."""
    key_dir = tmp_path / "key"
    keys = KeyStore(key_dir, {})
    text = re.sub(r'ps1:REPLACE[^"]*', lambda _: keys.encrypt("a-placeholder-value"),
                  one("ConfigMap")["data"]["config.xml"])
    path = tmp_path / "config.xml"
    path.write_text(text, encoding="utf-8")
    env = {"PRESENCE_SYNC_STATE_DIR": str(tmp_path / "state"), "HOME": str(tmp_path),
           "PRESENCE_SYNC_KEY_FILE": str(key_dir / "secret.key"),
           "PRESENCE_SYNC_STORE": secret_data("presence-sync")["store-url"]}
    settings, warnings = load_settings(path, {}, env=env, dotenv_path=tmp_path / "no.env")
    assert not warnings, [str(w) for w in warnings]
    assert [a.id for a in settings.active_accounts] == ["contoso.com", "fabrikam.com"]
    assert settings.store is not None and settings.lease_ttl == 6 and settings.lease_renew == 2


# --- systemd -----------------------------------------------------------------------------------------------------

def test_systemd_unit_parses() -> None:
    parser = unit()
    assert {"Unit", "Service", "Install"} <= set(parser.sections())
    service = parser["Service"]
    assert service["Type"] in ("simple", "exec")
    assert service["User"] == "presence-sync"
    assert service["KillSignal"] == "SIGTERM"
    assert service["Restart"] == "on-failure"
    assert int(service["TimeoutStopSec"]) == 30
    assert service["EnvironmentFile"] == "-/etc/presence-sync/presence-sync.env"
    for hardening in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert service[hardening] == "yes", hardening
    assert service["ProtectSystem"] == "strict"
    argv = exec_start()
    state_dirs = {f"/var/lib/{d}" for d in service["StateDirectory"].split()}
    for flag in ("--state-dir", "--out"):  # writable under ProtectSystem=strict
        assert option_value(argv, flag) in state_dirs, flag
    assert parser["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """``systemd-analyze verify`` (when systemd is installed) reports nothing; the real path is not on this machine."""
    analyze = shutil.which("systemd-analyze")
    text = UNIT.read_text(encoding="utf-8")
    assert text.count(EXEC_PATH) == 1
    if analyze is None:  # no systemd here: the configparser test above is the check
        assert unit()["Service"]["ExecStart"].startswith(EXEC_PATH + " run ")
        return
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(EXEC_PATH, sys.executable), encoding="utf-8")
    done = subprocess.run([analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=30)
    ours = [line for line in (done.stdout + done.stderr).splitlines() if UNIT.name in line]
    assert done.returncode == 0 and not ours, done.stdout + done.stderr
