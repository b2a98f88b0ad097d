"""docs/kubernetes/: the manifests checked offline.

- Schema: every object against the Kubernetes API's own generated models
  (python3-kubernetes: each field name known at its place, each value of its
  type), no cluster needed.
- kubectl: `kubectl kustomize` builds the kustomization (no server at all);
  `kubectl apply --dry-run=client --validate=false` on each file, given a
  kubeconfig that points at a loopback server answering only API discovery
  (kubectl maps kind to resource through it) and 404 to the GET of the live
  object: what kubectl decodes, maps and would send. Schema validation by
  kubectl (--validate=true) needs the server's OpenAPI document: the models
  above do that part.
- The manifests against the moat.conf they mount: ports, probe paths, the
  spool emptyDir, shutdown_grace, the mounted files, proxy_protocol and the
  Service; then `moat -t` and a message through moat on that config with
  its paths moved into a temp dir laid out as kubelet lays a ConfigMap.
"""

import glob
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import urllib.request

import pytest
import yaml

from moatlib import REPO, MOAT_BIN, SMTPClient, free_port, run_moat_t
from test_config_watch import KubeletVolume

K8S = os.path.join(REPO, "docs", "kubernetes")
KUBECTL = shutil.which("kubectl")


def load(name):
    with open(os.path.join(K8S, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def one(name, kind):
    [obj] = [d for d in load(name) if d.get("kind") == kind]
    return obj


def parse_conf(text):
    """moat.conf: key = value, '#' comments (at the start or after a blank)."""
    out = {}
    for line in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            k, _, v = line.partition("=")
            assert k.strip() not in out, "key twice: " + k
            out[k.strip()] = v.strip()
    return out


@pytest.fixture(scope="module")
def m():
    """The objects: cm, conf (moat.conf parsed), dep, pod, ctr, svc, svc_pp, pdb."""
    o = {"cm": one("configmap.yaml", "ConfigMap"), "dep": one("deployment.yaml", "Deployment"),
         "svc": one("service.yaml", "Service"), "svc_pp": one("service-proxy-protocol.yaml", "Service"),
         "pdb": one("pdb.yaml", "PodDisruptionBudget")}
    o["conf"] = parse_conf(o["cm"]["data"]["moat.conf"])
    o["pod"] = o["dep"]["spec"]["template"]
    [o["ctr"]] = o["pod"]["spec"]["containers"]
    return o


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def container_port(ctr, ref):
    """A port by number or by name."""
    for p in ctr["ports"]:
        if ref in (p["containerPort"], p.get("name")):
            return p["containerPort"]
    raise AssertionError("no container port %r" % (ref,))


# ------------------------------------------------------------------- schema

MODELS = {("v1", "ConfigMap"): "V1ConfigMap", ("apps/v1", "Deployment"): "V1Deployment",
          ("v1", "Service"): "V1Service", ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget"}


def check_type(value, t, where, errors):
    import kubernetes.client as kc
    if t == "object":
        return
    if t.startswith("list["):
        if not isinstance(value, list):
            errors.append("%s: a list expected" % where)
            return
        for i, v in enumerate(value):
            check_type(v, t[5:-1], "%s[%d]" % (where, i), errors)
    elif t.startswith("dict("):
        vt = t[5:-1].split(", ", 1)[1]
        if not isinstance(value, dict):
            errors.append("%s: a map expected" % where)
            return
        for k, v in value.items():
            check_type(v, vt, "%s.%s" % (where, k), errors)
    elif t in ("str", "datetime"):
        if not isinstance(value, str):
            errors.append("%s: a string expected, not %r" % (where, value))
    elif t == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append("%s: an integer expected, not %r" % (where, value))
    elif t == "bool":
        if not isinstance(value, bool):
            errors.append("%s: true or false expected, not %r" % (where, value))
    else:
        model = getattr(kc, t)
        if not isinstance(value, dict):
            errors.append("%s: an object (%s) expected" % (where, t))
            return
        by_json = {j: a for a, j in model.attribute_map.items()}
        for k, v in value.items():
            if k not in by_json:
                errors.append("%s: unknown field %r in %s" % (where, k, t))
            else:
                check_type(v, model.openapi_types[by_json[k]], "%s.%s" % (where, k), errors)


@pytest.mark.parametrize("name", ["configmap.yaml", "deployment.yaml", "service.yaml",
                                  "service-proxy-protocol.yaml", "pdb.yaml"])
def test_schema(name):
    pytest.importorskip("kubernetes", reason="python3-kubernetes (in the Makefile's DEBS)")
    for obj in load(name):
        model = MODELS.get((obj.get("apiVersion"), obj.get("kind")))
        assert model, "%s: %s/%s is not one of ours" % (name, obj.get("apiVersion"), obj.get("kind"))
        errors = []
        check_type(obj, model, obj["kind"], errors)
        assert not errors, errors


def test_schema_check_finds_a_misplaced_field():
    """The check itself: a field one level off, or of the wrong type, is caught."""
    pytest.importorskip("kubernetes")
    dep = one("deployment.yaml", "Deployment")
    dep["spec"]["template"]["spec"]["readOnlyRootFilesystem"] = True   # belongs to a container
    dep["spec"]["replicas"] = "2"
    errors = []
    check_type(dep, "V1Deployment", "Deployment", errors)
    assert any("readOnlyRootFilesystem" in e for e in errors) and any("replicas" in e for e in errors), errors


# ------------------------------------------------------------------ kubectl

RESOURCES = {"v1": [("configmaps", "ConfigMap"), ("services", "Service")],
             "apps/v1": [("deployments", "Deployment")],
             "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget")]}


class Discovery(http.server.BaseHTTPRequestHandler):
    """API discovery only; every object is not found (so apply would create it)."""

    def log_message(self, *a):
        pass

    def send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?")[0]
        gv = {"/api/v1": "v1"}
        gv.update({"/apis/" + g: g for g in RESOURCES if "/" in g})
        if path == "/version":
            self.send(200, {"major": "1", "minor": "28", "gitVersion": "v1.28.0"})
        elif path == "/api":
            self.send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        elif path == "/apis":
            groups = [{"name": g.split("/")[0], "versions": [{"groupVersion": g, "version": "v1"}],
                       "preferredVersion": {"groupVersion": g, "version": "v1"}} for g in RESOURCES if "/" in g]
            self.send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        elif path in gv:
            res = [{"name": n, "singularName": "", "namespaced": True, "kind": k,
                    "verbs": ["create", "get", "list", "patch", "update", "delete"]}
                   for n, k in RESOURCES[gv[path]]]
            self.send(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv[path],
                            "resources": res})
        else:
            self.send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                            "code": 404, "message": "not found"})


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory):
    assert KUBECTL, "kubectl not installed (Debian's kubernetes-client, in the Makefile's DEBS)"
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Discovery)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    d = tmp_path_factory.mktemp("kube")
    cfg = d / "config"
    cfg.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "offline",
        "clusters": [{"name": "offline", "cluster": {"server": "http://127.0.0.1:%d" % srv.server_port}}],
        "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "nobody",
                                                      "namespace": "mail"}}],
        "users": [{"name": "nobody", "user": {}}]}))
    yield {"KUBECONFIG": str(cfg), "HOME": str(d), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    srv.shutdown()


def kubectl(env, *args):
    return subprocess.run([KUBECTL] + list(args), capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("name", ["configmap.yaml", "deployment.yaml", "service.yaml",
                                  "service-proxy-protocol.yaml", "pdb.yaml"])
def test_kubectl_apply_dry_run(kubeconfig, name):
    r = kubectl(kubeconfig, "apply", "--dry-run=client", "--validate=false", "-o", "json",
                "-f", os.path.join(K8S, name))
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    items = got["items"] if got.get("kind") == "List" else [got]
    [want] = load(name)
    [obj] = items
    assert (obj["kind"], obj["metadata"]["name"]) == (want["kind"], want["metadata"]["name"])
    assert obj["spec" if "spec" in want else "data"] == want["spec" if "spec" in want else "data"]


def test_kubectl_apply_dry_run_kustomization(kubeconfig):
    r = kubectl(kubeconfig, "apply", "--dry-run=client", "--validate=false", "-k", K8S)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split("\n")) == sorted(["", "configmap/moat created (dry run)",
                                                   "service/moat created (dry run)",
                                                   "deployment.apps/moat created (dry run)",
                                                   "poddisruptionbudget.policy/moat created (dry run)"]), r.stdout


def test_kubectl_dry_run_refuses_an_unknown_kind(kubeconfig, tmp_path):
    """What the offline run does check: a kind the API does not have."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: apps/v1\nkind: Deploymnet\nmetadata:\n  name: x\n")
    r = kubectl(kubeconfig, "apply", "--dry-run=client", "--validate=false", "-f", str(bad))
    assert r.returncode != 0 and "Deploymnet" in r.stderr, r


def test_kubectl_kustomize():
    assert KUBECTL, "kubectl not installed (Debian's kubernetes-client, in the Makefile's DEBS)"
    r = subprocess.run([KUBECTL, "kustomize", K8S], capture_output=True, text=True, timeout=60,
                       env={"HOME": "/nonexistent", "PATH": os.environ.get("PATH", "")})
    assert r.returncode == 0, r.stderr
    built = sorted((d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(r.stdout) if d)
    [k] = load("kustomization.yaml")
    want = sorted((d["kind"], d["metadata"]["name"]) for f in k["resources"] for d in load(f))
    assert built == want == sorted([("ConfigMap", "moat"), ("Deployment", "moat"), ("Service", "moat"),
                                    ("PodDisruptionBudget", "moat")])
    # every manifest is either in it or the other Service
    files = {os.path.basename(f) for f in glob.glob(os.path.join(K8S, "*.yaml"))}
    assert files == set(k["resources"]) | {"kustomization.yaml", "service-proxy-protocol.yaml"}


# ------------------------------------------------- manifests against moat.conf

def test_ports_match(m):
    ctr, conf = m["ctr"], m["conf"]
    listen = {port_of(a) for a in conf["listen"].replace(",", " ").split()}
    assert container_port(ctr, "smtp") in listen
    for svc in (m["svc"], m["svc_pp"]):
        [p] = svc["spec"]["ports"]
        assert p["port"] == 25
        assert container_port(ctr, p["targetPort"]) in listen
        assert svc["spec"]["selector"].items() <= m["pod"]["metadata"]["labels"].items()


def test_probes_on_metrics_listen(m):
    ctr, conf = m["ctr"], m["conf"]
    mport = port_of(conf["metrics_listen"])
    assert mport == 9125 and container_port(ctr, "metrics") == mport
    live, ready = ctr["livenessProbe"]["httpGet"], ctr["readinessProbe"]["httpGet"]
    assert (live["path"], ready["path"]) == ("/healthz", "/readyz")
    assert container_port(ctr, live["port"]) == container_port(ctr, ready["port"]) == mport
    ann = m["pod"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and int(ann["prometheus.io/port"]) == mport
    assert ann["prometheus.io/path"] == "/metrics"
    assert not conf["metrics_listen"].startswith("127."), "probes come from the node, not the pod"


def test_spool_and_root_filesystem(m):
    ctr, conf, pod = m["ctr"], m["conf"], m["pod"]
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    [mnt] = [x for x in ctr["volumeMounts"] if x["mountPath"] == conf["spool_dir"]]
    assert "emptyDir" in vols[mnt["name"]] and not mnt.get("readOnly")
    sc = ctr["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] != 0
    # nothing else is written: the log goes to the container's stderr
    assert conf["log"] == "stderr"


def test_grace_covers_shutdown_grace(m):
    grace = m["pod"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= int(m["conf"]["shutdown_grace"]) + 10


def test_mounted_files_are_the_configmap_keys(m):
    ctr, conf, pod, cm = m["ctr"], m["conf"], m["pod"], m["cm"]
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    [mnt] = [x for x in ctr["volumeMounts"] if vols[x["name"]].get("configMap", {}).get("name") == "moat"]
    assert mnt.get("readOnly") and "subPath" not in mnt, "a subPath mount is never updated by kubelet"
    assert ctr["args"] == ["-c", mnt["mountPath"] + "/moat.conf"]
    named = [conf[k] for k in ("rules", "local_recipients", "tls_cert", "tls_key", "backend_tls_ca")
             if conf.get(k)]
    assert named, "the ConfigMap's rules are used"
    for path in named:
        for p in path.replace(",", " ").split():
            assert os.path.dirname(p) == mnt["mountPath"], p
            assert os.path.basename(p) in cm["data"], "%s is not a key of the ConfigMap" % p
    assert conf["config_watch"] == "yes"


def test_replicas_spread_and_budget(m):
    dep, pdb, pod = m["dep"], m["pdb"], m["pod"]
    assert dep["spec"]["replicas"] >= 2
    [host] = [c for c in pod["spec"]["topologySpreadConstraints"] if c["topologyKey"] == "kubernetes.io/hostname"]
    assert host["whenUnsatisfiable"] == "DoNotSchedule"
    assert host["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert 1 <= pdb["spec"]["minAvailable"] < dep["spec"]["replicas"]
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_proxy_protocol_matches_the_service(m):
    """service.yaml (in the kustomization) keeps the address by its traffic policy:
    no PROXY header comes, so proxy_protocol = no; the other Service needs yes and says so."""
    assert m["svc"]["spec"]["externalTrafficPolicy"] == "Local"
    assert not any("proxy" in a for a in m["svc"]["metadata"].get("annotations", {}))
    assert m["conf"]["proxy_protocol"] == "no"
    anns = m["svc_pp"]["metadata"]["annotations"]
    assert anns.get("service.beta.kubernetes.io/aws-load-balancer-proxy-protocol") == "*"
    with open(os.path.join(K8S, "service-proxy-protocol.yaml")) as f:
        assert "set proxy_protocol = yes" in f.read()


# ------------------------------------------------------ moat on that config

def localised(m, root, backend_port, spool):
    """The ConfigMap's moat.conf with its paths under root and its addresses on loopback."""
    conf = m["cm"]["data"]["moat.conf"].replace("/etc/moat/", root + "/")
    sub = {"listen": "127.0.0.1:0", "backend": "127.0.0.1:%d" % backend_port, "spool_dir": spool,
           "metrics_listen": "127.0.0.1:%d" % free_port()}
    for k, v in sub.items():
        conf, n = re.subn(r"(?m)^(\s*%s\s*=).*$" % k, r"\g<1> " + v, conf)
        assert n == 1, k
    return conf


def configmap_volume(m, tmp_path, backend, dns):
    if not os.path.isfile(MOAT_BIN):
        pytest.skip("moat not built")
    vol = KubeletVolume(tmp_path / "etc-moat")
    spool = tmp_path / "spool"
    spool.mkdir()
    conf = localised(m, vol.root, backend.port, str(spool))
    # as root (the suite in CI), moat refuses to stay root without a user
    conf += "dns_servers = %s\n" % dns.servers
    if os.geteuid() == 0:
        conf += "run_as_root = yes\n"
    data = dict(m["cm"]["data"])
    data["moat.conf"] = conf
    vol.write(data)
    return vol


def test_moat_t_accepts_the_configmap(m, tmp_path, backend, dns):
    vol = configmap_volume(m, tmp_path, backend, dns)
    r = run_moat_t(vol.path("moat.conf"))
    out = r.stdout.decode() + r.stderr.decode()
    assert r.returncode == 0, out
    assert "configuration OK" in out and "moat.rules:" in out, out


def test_a_message_through_moat_on_the_configmap(m, tmp_path, backend, dns):
    """The ConfigMap's moat (workers = 2, the built-in rules) relays a message,
    and answers the probes' paths on metrics_listen's port."""
    from moatlib import Moat
    vol = configmap_volume(m, tmp_path, backend, dns)
    mo = Moat({}, tmp_path)
    mo.conf_path = vol.path("moat.conf")
    try:
        mo.start()
        mo.logs.wait_count(lambda l: l.get("event") == "ready", 2, what="both workers")
        with SMTPClient(mo.port) as c:
            c.ehlo()
            r = c.transaction("someone@example.org", ["postmaster@example.com"], b"Subject: k8s\r\n\r\nx\r\n")
            assert r.code == 250, r
        backend.wait_stored(1)
        # the probes' paths, on metrics_listen's port
        with open(vol.path("moat.conf")) as f:
            conf = parse_conf(f.read())
        for probe in ("livenessProbe", "readinessProbe"):
            url = "http://%s%s" % (conf["metrics_listen"], m["ctr"][probe]["httpGet"]["path"])
            with urllib.request.urlopen(url, timeout=10) as resp:
                assert resp.status == 200, (url, resp.status)
    finally:
        assert mo.stop() == 0
        assert not mo.sanitizer_errors(), mo.sanitizer_errors()
