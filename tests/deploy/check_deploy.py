#!/usr/bin/python3
"""Offline checks of deploy/: the compose file, the Prometheus config, the
Grafana dashboard, the Kubernetes manifests and the Envoy config in them.

What is checked: every file parses; Prometheus's config passes
`promtool check config`; the config files handed to lstm-server (the
image's and the Kubernetes ConfigMap's) are accepted by
`lstm-server --config FILE --print-config`; the compose file's services,
volumes, mounted files and the scrape target agree with each other; every
Kubernetes object has apiVersion/kind/name; selectors match pod labels;
probes and Services name ports the containers have; ConfigMaps, the
StatefulSet's governing Service and the HPA's target exist; the grace
period outlasts lstm-server's shutdown_grace; Envoy routes by a ring hash
of x-session-id to the headless Service with gRPC health checks; the
kustomizations name files that exist; every metric of the dashboard is a
documented one (docs/OPERATIONS.md).

What is not checked (no cluster, no Docker engine, no Envoy binary here):
the Kubernetes objects against the API server's full OpenAPI schemas,
kustomize's rendering, Envoy's own validation of its config, and that the
stack runs (deploy/smoke-test.sh runs the image).

  check_deploy.py REPO_ROOT LSTM_SERVER
Exits 77 (skipped) when python3-yaml or promtool is missing.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("SKIPPED: python3-yaml is not installed (tools/install-deps.sh)")
    sys.exit(77)

root, server = sys.argv[1], sys.argv[2]
deploy = os.path.join(root, "deploy")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def server_accepts(toml_text, what):
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(toml_text)
        name = f.name
    try:
        r = subprocess.run([server, "--config", name, "--print-config"],
                           capture_output=True, text=True)
        check(r.returncode == 0, f"{what}: lstm-server refuses it: {r.stderr.strip()}")
        return r.stdout
    finally:
        os.unlink(name)


def toml_value(printed, key):
    m = re.search(rf"^{key} = (.*)$", printed, re.M)
    return m.group(1).split("#")[0].strip().strip('"') if m else None


# Prometheus.
promtool = "/usr/bin/promtool"
if not os.path.exists(promtool):
    print("SKIPPED: promtool is not installed (Debian package prometheus)")
    sys.exit(77)
r = subprocess.run([promtool, "check", "config", os.path.join(deploy, "prometheus.yml")],
                   capture_output=True, text=True)
check(r.returncode == 0, f"promtool check config: {r.stdout}{r.stderr}")

# The image's config file.
with open(os.path.join(deploy, "container.toml")) as f:
    container = server_accepts(f.read(), "deploy/container.toml")
metrics_port = (toml_value(container, "metrics_listen") or ":").rsplit(":", 1)[1]

# Compose.
compose = load_all(os.path.join(deploy, "compose.yaml"))[0]
services = compose.get("services", {})
check({"lstm-server", "prometheus"} <= set(services), "compose: needs lstm-server and prometheus")
declared_volumes = set((compose.get("volumes") or {}).keys())
for name, svc in services.items():
    check("image" in svc, f"compose: service {name} has no image")
    for port in svc.get("ports", []):
        check(re.fullmatch(r"(\d+\.\d+\.\d+\.\d+:)?\d+:\d+", str(port)) is not None,
              f"compose: {name}: port {port!r} is not [ip:]host:container")
    for mount in svc.get("volumes", []):
        source = mount.split(":")[0]
        if source.startswith((".", "/")):
            check(os.path.exists(os.path.join(deploy, source)),
                  f"compose: {name} mounts {source}, which does not exist")
        else:
            check(source in declared_volumes, f"compose: {name} uses undeclared volume {source}")
    for dep in svc.get("depends_on", []):
        check(dep in services, f"compose: {name} depends on unknown {dep}")
build = services.get("lstm-server", {}).get("build", {})
check(os.path.exists(os.path.join(deploy, build.get("context", "."), build.get("dockerfile", "Dockerfile"))),
      "compose: lstm-server's build names a Dockerfile that does not exist")
prom = load_all(os.path.join(deploy, "prometheus.yml"))[0]
targets = [t for sc in prom["scrape_configs"] for s in sc.get("static_configs", []) for t in s["targets"]]
check(f"lstm-server:{metrics_port}" in targets,
      f"prometheus.yml does not scrape lstm-server:{metrics_port} (container.toml's metrics_listen)")

# Grafana: every metric is documented.
with open(os.path.join(root, "docs", "OPERATIONS.md")) as f:
    documented = set(re.findall(r"`((?:lstmserve|process)_[a-z_]+)`", f.read()))
with open(os.path.join(deploy, "grafana", "lstmserve.json")) as f:
    dashboard = json.load(f)
check(len(dashboard.get("panels", [])) >= 5, "grafana: too few panels")
for panel in dashboard["panels"]:
    for target in panel.get("targets", []):
        for metric in re.findall(r"\b((?:lstmserve|process)_[a-z_]+)", target["expr"]):
            base = re.sub(r"_(bucket|sum|count)$", "", metric)
            check(metric in documented or base in documented,
                  f"grafana: panel {panel['title']!r} uses undocumented metric {metric}")

# Kubernetes.
base_dir = os.path.join(deploy, "k8s", "base")
objects = []
kustomization = load_all(os.path.join(base_dir, "kustomization.yaml"))[0]
for res in kustomization["resources"]:
    path = os.path.join(base_dir, res)
    check(os.path.exists(path), f"k8s: base resource {res} does not exist")
    if os.path.exists(path):
        objects += [(res, d) for d in load_all(path)]
overlay_dir = os.path.join(deploy, "k8s", "overlays", "example")
overlay = load_all(os.path.join(overlay_dir, "kustomization.yaml"))[0]
for res in overlay.get("resources", []) + [p["path"] for p in overlay.get("patches", [])]:
    check(os.path.exists(os.path.join(overlay_dir, res)), f"k8s: overlay names missing {res}")

by_kind = {}
for source, obj in objects:
    for key in ("apiVersion", "kind", "metadata"):
        check(key in obj, f"k8s: {source}: an object has no {key}")
    name = obj.get("metadata", {}).get("name")
    check(bool(name), f"k8s: {source}: an object has no name")
    by_kind.setdefault(obj.get("kind"), {})[name] = obj

workloads = {**by_kind.get("StatefulSet", {}), **by_kind.get("Deployment", {})}
pod_labels = []
for name, w in workloads.items():
    spec = w["spec"]
    labels = spec["template"]["metadata"]["labels"]
    pod_labels.append((name, labels, spec["template"]["spec"]))
    match = spec["selector"]["matchLabels"]
    check(all(labels.get(k) == v for k, v in match.items()),
          f"k8s: {name}: selector {match} does not match its pod labels {labels}")
    ports = {}
    for c in spec["template"]["spec"]["containers"]:
        for p in c.get("ports", []):
            ports[p.get("name")] = p["containerPort"]
            ports[p["containerPort"]] = p["containerPort"]
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if probe in c:
                kind_probe = next(k for k in ("grpc", "tcpSocket", "httpGet") if k in c[probe])
                check(c[probe][kind_probe]["port"] in ports,
                      f"k8s: {name}: {probe} uses port {c[probe][kind_probe]['port']} the container lacks")
    for v in spec["template"]["spec"].get("volumes", []):
        if "configMap" in v:
            check(v["configMap"]["name"] in by_kind.get("ConfigMap", {}),
                  f"k8s: {name}: ConfigMap {v['configMap']['name']} is not defined")
    if w["kind"] == "StatefulSet":
        gov = by_kind.get("Service", {}).get(spec["serviceName"])
        check(gov is not None and gov["spec"].get("clusterIP") == "None",
              f"k8s: {name}: serviceName {spec['serviceName']} is not a headless Service")


def selects_pods(selector, what):
    check(any(all(labels.get(k) == v for k, v in selector.items()) for _, labels, _ in pod_labels),
          f"k8s: {what}: selector {selector} matches no pod")


for name, svc in by_kind.get("Service", {}).items():
    selects_pods(svc["spec"]["selector"], f"Service {name}")
    for p in svc["spec"]["ports"]:
        target = p.get("targetPort", p["port"])
        check(any(target in [q.get("name") for c in ps["containers"] for q in c.get("ports", [])] or
                  target in [q["containerPort"] for c in ps["containers"] for q in c.get("ports", [])]
                  for _, labels, ps in pod_labels
                  if all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())),
              f"k8s: Service {name}: targetPort {target} is not a port of its pods")
for name, pdb in by_kind.get("PodDisruptionBudget", {}).items():
    selects_pods(pdb["spec"]["selector"]["matchLabels"], f"PodDisruptionBudget {name}")
for name, np in by_kind.get("NetworkPolicy", {}).items():
    selects_pods(np["spec"]["podSelector"]["matchLabels"], f"NetworkPolicy {name}")
for name, hpa in by_kind.get("HorizontalPodAutoscaler", {}).items():
    ref = hpa["spec"]["scaleTargetRef"]
    check(ref["name"] in by_kind.get(ref["kind"], {}), f"k8s: HPA {name}: no {ref['kind']} {ref['name']}")
    check(hpa["spec"]["minReplicas"] >= 2, f"k8s: HPA {name}: fewer than 2 replicas")

# The servers' config and the grace period.
cm = by_kind["ConfigMap"]["lstm-server-config"]
printed = server_accepts(cm["data"]["lstm-server.toml"], "k8s ConfigMap lstm-server-config")
grace = float(toml_value(printed, "shutdown_grace") or 5)
sts = by_kind["StatefulSet"]["lstm-server"]
check(sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > grace + 10,
      "k8s: terminationGracePeriodSeconds must outlast shutdown_grace and the last checkpoint")
check(any(m["mountPath"] == toml_value(printed, "state_dir")
          for c in sts["spec"]["template"]["spec"]["containers"] for m in c.get("volumeMounts", [])),
      "k8s: the state volume is not mounted at the config's state_dir")

# Envoy: ring hash on x-session-id, gRPC health checks, the headless Service.
envoy = yaml.safe_load(by_kind["ConfigMap"]["lstm-server-envoy"]["data"]["envoy.yaml"])
cluster = envoy["static_resources"]["clusters"][0]
check(cluster["lb_policy"] == "RING_HASH", "envoy: the cluster is not RING_HASH")
check(cluster["health_checks"][0]["grpc_health_check"]["service_name"] == "lstmserve.v1.LstmServe",
      "envoy: no gRPC health check of lstmserve.v1.LstmServe")
address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
check(address["address"] in by_kind["Service"] and
      by_kind["Service"][address["address"]]["spec"].get("clusterIP") == "None",
      "envoy: the cluster does not resolve the headless Service of the pods")
check(address["port_value"] == 50051, "envoy: the cluster's port is not the servers' 50051")
hcm = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
route = hcm["route_config"]["virtual_hosts"][0]["routes"][0]["route"]
check({"header": {"header_name": "x-session-id"}} in route["hash_policy"],
      "envoy: the route does not hash on x-session-id")

if failures:
    for f in failures:
        print("FAIL:", f)
    sys.exit(1)
print(f"deploy checks passed: compose ({len(services)} services), prometheus, grafana "
      f"({len(dashboard['panels'])} panels), {len(objects)} Kubernetes objects, envoy")
