"""What the rendered chart must say, beyond the Kubernetes schemas: scripts/check-chart.sh runs
this on `helm template` of the default values and of k8s/values-production.yaml."""

import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
SERVICES = ("bundler", "paymaster", "gateway")


def load(path):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def component(doc):
    return doc["metadata"]["labels"].get("app.kubernetes.io/component")


def fail(message):
    sys.exit(f"check_chart_manifests: {message}")


def check_workloads(objects, where):
    for (kind, name), doc in objects.items():
        if kind not in ("Deployment", "StatefulSet"):
            continue
        pod = doc["spec"]["template"]["spec"]
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            fail(f"{where}: {name} may run as root")
        if pod.get("automountServiceAccountToken") is not False:
            fail(f"{where}: {name} mounts a service account token it never uses")
        for c in pod["containers"]:
            sc = c.get("securityContext", {})
            if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
                    and sc.get("capabilities", {}).get("drop") == ["ALL"]):
                fail(f"{where}: {name}/{c['name']} lacks the restricted securityContext")
            if not c.get("resources", {}).get("requests"):
                fail(f"{where}: {name}/{c['name']} requests no resources")
            if component(doc) in SERVICES:
                if c["livenessProbe"]["httpGet"]["path"] != "/health":
                    fail(f"{where}: {name} liveness is not /health")
                if c["readinessProbe"]["httpGet"]["path"] != "/ready":
                    fail(f"{where}: {name} readiness is not /ready")
        # The gateway's provider key has no lease: one pod at a time (the bundler's keys are
        # leased in Redis, checked in check_bundler_replicas).
        if component(doc) == "gateway" and doc["spec"].get("strategy", {}).get("type") != "Recreate":
            fail(f"{where}: {name} could run two pods with one signing key during a rollout")


def check_admin_is_private(objects, where):
    services = [d for (k, _), d in objects.items() if k == "Service" and component(d) == "paymaster"]
    public = [s for s in services if not s["metadata"]["name"].endswith("-admin")]
    admin = [s for s in services if s["metadata"]["name"].endswith("-admin")]
    if len(public) != 1 or len(admin) != 1:
        fail(f"{where}: expected one public and one admin paymaster Service")
    if [p["targetPort"] for p in public[0]["spec"]["ports"]] != ["http"]:
        fail(f"{where}: the public paymaster Service routes more than the JSON-RPC port")
    if admin[0]["spec"]["type"] != "ClusterIP":
        fail(f"{where}: the admin Service is reachable from outside the cluster")
    policy = next(d for (k, _), d in objects.items() if k == "NetworkPolicy" and component(d) == "paymaster")
    admin_rules = [r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "admin"]
    if len(admin_rules) != 1 or "from" not in admin_rules[0]:
        fail(f"{where}: the admin port is open to every pod")


def check_redis_is_private(objects, where):
    policies = [d for (k, _), d in objects.items() if k == "NetworkPolicy" and component(d) == "redis"]
    if not policies:
        fail(f"{where}: the internal Redis has no NetworkPolicy")
    peers = policies[0]["spec"]["ingress"][0]["from"]
    allowed = {tuple(e["values"]) for p in peers for e in p["podSelector"]["matchExpressions"]
               if e["key"] == "app.kubernetes.io/component"}
    if allowed != {SERVICES}:
        fail(f"{where}: Redis admits {allowed}, not only the services")


def check_dashboard_metrics(objects, where):
    board = next(d for (k, _), d in objects.items() if k == "ConfigMap" and component(d) == "dashboard")
    exprs = [t["expr"] for p in json.loads(board["data"]["tora.json"])["panels"] for t in p.get("targets", [])]
    names = set(re.findall(r"\b((?:rpc|bundler|paymaster|gateway)_[a-z_]+)\b", " ".join(exprs)))
    sources = " ".join(p.read_text() for p in ROOT.glob("*/src/**/*.rs"))
    missing = sorted(n for n in names if f'"{n}"' not in sources)
    if missing:
        fail(f"{where}: the dashboard charts metrics no service records: {missing}")


def main(default_path, production_path):
    default, production = load(default_path), load(production_path)
    for where, objects in (("default", default), ("production", production)):
        check_workloads(objects, where)
        check_admin_is_private(objects, where)
        check_dashboard_metrics(objects, where)
    check_redis_is_private(default, "default")
    if not any(k == "StatefulSet" for k, _ in default) or not any(k == "Secret" for k, _ in default):
        fail("default: the embedded Redis or the key Secret is missing")
    if any(k in ("StatefulSet", "Secret") for k, _ in production):
        fail("production: renders a Redis or a Secret although both are external")
    gateway = next(d for (k, _), d in production.items() if k == "Deployment" and component(d) == "gateway")
    pod = gateway["spec"]["template"]["spec"]
    if pod["containers"][0]["resources"]["limits"].get("nvidia.com/gpu") != 1 or not pod.get("tolerations"):
        fail("production: the gateway asks for no GPU")
    if not any(k == "ServiceMonitor" for k, _ in production):
        fail("production: no ServiceMonitor")
    check_bundler_replicas(default, production)


def check_bundler_replicas(default, production):
    """Replicas share the pool through Redis: every bundler pod names it, the production one
    scales and rolls, and one without Redis could only be recreated."""
    for where, objects in (("default", default), ("production", production)):
        bundler = next(d for (k, _), d in objects.items() if k == "Deployment" and component(d) == "bundler")
        env = {e["name"] for e in bundler["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        if "TORA_BUNDLER_REDIS_URL" not in env:
            fail(f"{where}: the bundler is not given the shared Redis")
        if bundler["spec"]["strategy"]["type"] != "RollingUpdate":
            fail(f"{where}: the bundler on Redis is recreated instead of rolled")
    if not any(k == "HorizontalPodAutoscaler" and d["spec"]["scaleTargetRef"]["name"].endswith("bundler")
               for (k, _), d in production.items()):
        fail("production: the bundler does not autoscale")


if __name__ == "__main__":
    main(*sys.argv[1:3])
