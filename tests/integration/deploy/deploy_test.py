#!/usr/bin/env python3
"""deploy_test.py: checks deploy/ (Debian package, systemd units, Kubernetes
manifests, operating mixin) the way a user would meet them.

  deploy_test.py units ORRERY SRC          systemd-analyze verify of each unit in
                                           an installed root; every flag of the units
                                           and /etc/default files is one the binary takes
  deploy_test.py kubernetes ORRERY SRC     kubectl kustomize renders; every object
                                           passes its OpenAPI schema; every container
                                           flag is one the binary takes
  deploy_test.py mixin ORRERY SRC          promtool check rules + test rules (every
                                           alert tested); dashboards up to date
  deploy_test.py package ORRERY SRC [--deb FILE]
      lays out the package's files in a temporary root (from FILE with
      `dpkg-deb -x`, else as debian/orrery.install, orrery.dirs and rules put
      them, with ORRERY as usr/bin/orrery), starts a Prometheus 2.42 and each
      component with exactly the command line and environment its unit gives
      (ExecStart and EnvironmentFile parsed; paths moved into the root, listen
      ports replaced by free ones) against a filesystem bucket as the
      quickstart's, until /-/ready; then scrapes every /metrics and checks
      that each metric a rule or dashboard panel uses is exported. With
      --deb, also checks the .deb's files are the ones the staged layout has.
Tools come from PATH (promtool, prometheus, kubectl, node, systemd-analyze,
dpkg-deb). Exit 0: all checks passed; 1: a check failed (each is printed)."""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from portpick import free_port  # noqa: E402

COMPONENTS = ["sidecar", "store", "compact", "gateway"]
failures = []


def check(ok, what, detail=""):
    print(("ok   " if ok else "FAIL ") + what + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(what)
    return ok


def finish():
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


# ------------------------------------------------------------ unit parsing
def parse_unit(path):
    """[Service] keys of a unit file: {key: [values]} (continuations joined)."""
    keys, section, cont = {}, None, ""
    for raw in open(path):
        line = cont + raw.rstrip("\n")
        cont = ""
        if line.endswith("\\"):
            cont = line[:-1] + " "
            continue
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        if s.startswith("["):
            section = s.strip("[]")
            continue
        k, _, v = s.partition("=")
        keys.setdefault((section, k.strip()), []).append(v.strip())
    return keys


def parse_env_file(path):
    """KEY=VALUE assignments as systemd reads an EnvironmentFile: comments,
    single or double quotes, a backslash-newline continuing the line."""
    env, text = {}, open(path).read()
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\n":
            i += 1
        if i >= n:
            break
        if text[i] in "#;":
            while i < n and text[i] != "\n":
                i += 1
            continue
        j = text.find("=", i)
        nl = text.find("\n", i)
        if j < 0 or (0 <= nl < j):
            i = nl + 1 if nl >= 0 else n
            continue
        key = text[i:j].strip()
        i, val, quote = j + 1, [], None
        while i < n:
            c = text[i]
            if quote:
                if c == quote:
                    quote = None
                elif c == "\\" and i + 1 < n and text[i + 1] == "\n":
                    i += 1
                elif c == "\\" and quote == '"' and i + 1 < n:
                    i += 1
                    val.append(text[i])
                else:
                    val.append(c)
            elif c in "'\"":
                quote = c
            elif c == "\\" and i + 1 < n:
                i += 1
                if text[i] != "\n":
                    val.append(text[i])
            elif c == "\n":
                break
            else:
                val.append(c)
            i += 1
        env[key] = "".join(val).strip()
    return env


def expand_exec(execstart, env):
    """ExecStart's argv as systemd builds it: $VAR split at whitespace, ${VAR}
    as one word."""
    argv = []
    for w in shlex.split(execstart.lstrip("-@:+!")):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", w)
        if m:
            argv.extend(env.get(m.group(1), "").split())
            continue
        argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda x: env.get(x.group(1), ""), w))
    return argv


def unit_command(root, comp):
    """(argv, env) of orrery-<comp>.service as installed under |root|."""
    u = parse_unit(os.path.join(root, "lib/systemd/system", f"orrery-{comp}.service"))
    env = {}
    for f in u.get(("Service", "EnvironmentFile"), []):
        env.update(parse_env_file(root + f.lstrip("-")))
    return expand_exec(u[("Service", "ExecStart")][0], env), env, u


# ------------------------------------------------------------ flags
def help_flags(orrery, comp):
    out = subprocess.run([orrery, comp, "--help"], capture_output=True, text=True, timeout=30)
    text = out.stdout + out.stderr
    flags = set()
    for m in re.finditer(r"--(\[no-\])?([a-z0-9][a-z0-9._-]*)", text):
        flags.add(m.group(2))
        if m.group(1):
            flags.add("no-" + m.group(2))
    return flags


def flag_names(words):
    return [w[2:].split("=", 1)[0] for w in words if w.startswith("--")]


def check_flags(orrery, where, comp, flags, cache={}):
    if comp not in cache:
        cache[comp] = help_flags(orrery, comp)
    known = cache[comp]
    check(len(known) > 5, f"`orrery {comp} --help` lists its flags", f"{len(known)} found")
    bad = sorted({f for f in flags if f not in known})
    check(not bad and flags, f"{where}: {len(flags)} flags of `orrery {comp}` all accepted",
          "unknown: " + ", ".join("--" + b for b in bad) if bad else "no flags found")


# ------------------------------------------------------------ root layout
def stage(src, orrery, root):
    """The package's files under |root|, as debian/orrery.install,
    orrery.dirs and rules (execute_after_dh_install) lay them out."""
    deb = os.path.join(src, "deploy/debian")
    os.makedirs(os.path.join(root, "usr/bin"), exist_ok=True)
    shutil.copy2(orrery, os.path.join(root, "usr/bin/orrery"))
    for line in open(os.path.join(deb, "orrery.install")):
        if line.strip() and not line.startswith("#"):
            f, d = line.split()
            os.makedirs(os.path.join(root, d), exist_ok=True)
            shutil.copy2(os.path.join(src, f), os.path.join(root, d, os.path.basename(f)))
    for line in open(os.path.join(deb, "orrery.dirs")):
        if line.strip():
            os.makedirs(os.path.join(root, line.strip()), exist_ok=True)
    rules = open(os.path.join(deb, "rules")).read()
    m = re.search(r"for c in ([a-z ]+); do \\\n\s*install -D -m 0644 (\S+)\$\$c (\S+)\$\$c", rules)
    assert m, "debian/rules: the /etc/default install loop changed; update stage()"
    for c in m.group(1).split():
        dst = os.path.join(root, m.group(3).replace("debian/orrery/", "") + c)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(src, m.group(2) + c), dst)


def tree(root):
    out = set()
    for d, dirs, files in os.walk(root):
        for x in dirs + files:
            out.add(os.path.relpath(os.path.join(d, x), root))
    return out


def systemd_root(root):
    """What systemd-analyze verify --root needs besides the package: the
    host's targets and /bin/kill (ExecReload)."""
    sd = os.path.join(root, "lib/systemd/system")
    for f in os.listdir("/lib/systemd/system"):
        if f.endswith(".target") and not os.path.exists(os.path.join(sd, f)):
            shutil.copy2(os.path.join("/lib/systemd/system", f), os.path.join(sd, f))
    os.makedirs(os.path.join(root, "bin"), exist_ok=True)
    if not os.path.exists(os.path.join(root, "bin/kill")):
        shutil.copy2(shutil.which("kill") or "/bin/kill", os.path.join(root, "bin/kill"))


# ------------------------------------------------------------ modes
def mode_units(orrery, src):
    with tempfile.TemporaryDirectory() as root:
        stage(src, orrery, root)
        systemd_root(root)
        for c in COMPONENTS:
            unit = f"/lib/systemd/system/orrery-{c}.service"
            r = subprocess.run(["systemd-analyze", "verify", f"--root={root}", unit],
                               capture_output=True, text=True, timeout=60)
            out = (r.stdout + r.stderr).strip()
            check(r.returncode == 0 and not out, f"systemd-analyze verify orrery-{c}.service", out)
            argv, env, u = unit_command(root, c)
            check(argv[:2] == ["/usr/bin/orrery", c], f"orrery-{c}.service runs `orrery {c}`", argv[:2])
            for k, want in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                            ("PrivateTmp", "yes"), ("Restart", "on-failure")]:
                check(u.get(("Service", k)) == [want], f"orrery-{c}.service: {k}={want}",
                      u.get(("Service", k)))
            rw = u.get(("Service", "ReadWritePaths"), [])
            check(len(rw) <= 1 and all(len(x.split()) == 1 for x in rw),
                  f"orrery-{c}.service: at most one ReadWritePaths", rw)
            words = argv[2:]
            # Commented examples in the default file are flags users will
            # uncomment: they are checked too.
            dflt = root + u[("Service", "EnvironmentFile")][0]
            for line in open(dflt):
                if line.lstrip().startswith("#"):
                    words += re.findall(r"--[a-z][a-z0-9._-]*[a-z0-9]", line)
            check_flags(orrery, f"orrery-{c}.service + /etc/default/orrery-{c}", c, flag_names(words))
            data = [w.split("=", 1)[1] for w in argv if w.startswith(("--data-dir=", "--tsdb.path="))]
            check(data == rw, f"orrery-{c}.service: ReadWritePaths is its data directory", (data, rw))
    finish()


def render_kustomize(src):
    r = subprocess.run(["kubectl", "kustomize", os.path.join(src, "deploy/kubernetes")],
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, "kubectl kustomize deploy/kubernetes", r.stderr[-2000:])
    return [d for d in yaml.safe_load_all(r.stdout) if d] if r.returncode == 0 else []


def mode_kubernetes(orrery, src):
    objs = render_kustomize(src)
    kinds = sorted({o["kind"] for o in objs})
    check({"StatefulSet", "Deployment", "Service", "Secret", "ConfigMap"} <= set(kinds),
          "kustomization renders the workloads", kinds)
    vdir = os.path.join(src, "deploy/kubernetes/validate")
    r = subprocess.run(["node", os.path.join(vdir, "validate.mjs")], input=json.dumps(objs),
                       capture_output=True, text=True, timeout=120, cwd=vdir)
    print(r.stdout + r.stderr)
    if "Cannot find package" in r.stderr:
        print("kubernetes-models is not installed: scripts/bootstrap.sh runs npm ci in "
              "deploy/kubernetes/validate", file=sys.stderr)
    check(r.returncode == 0 and f"{len(objs)} of {len(objs)} objects valid" in r.stdout,
          "every object passes its Kubernetes OpenAPI schema")
    # A schema violation must be caught (the validator is not a no-op).
    bad = json.loads(json.dumps(objs))
    for o in bad:
        if o["kind"] == "Deployment":
            o["spec"]["replicas"] = "two"
    r2 = subprocess.run(["node", os.path.join(vdir, "validate.mjs")], input=json.dumps(bad),
                        capture_output=True, text=True, timeout=120, cwd=vdir)
    check(r2.returncode == 1 and "replicas must be integer" in r2.stdout,
          "the validator refuses a Deployment with replicas: \"two\"", r2.stdout[-500:])
    seen = set()
    for o in objs:
        spec = o.get("spec", {}).get("template", {}).get("spec", {})
        for ctr in spec.get("containers", []):
            if not ctr.get("image", "").split("/")[-1].startswith("orrery"):
                continue
            args = ctr.get("args", [])
            comp = args[0] if args else ""
            check(comp in COMPONENTS, f"{o['kind']}/{o['metadata']['name']}: runs an orrery component", comp)
            seen.add(comp)
            check_flags(orrery, f"{o['kind']}/{o['metadata']['name']} container {ctr['name']}", comp,
                        flag_names(args[1:]))
            for p in ("livenessProbe", "readinessProbe"):
                path = ctr.get(p, {}).get("httpGet", {}).get("path")
                want = "/-/healthy" if p == "livenessProbe" else "/-/ready"
                check(path == want, f"{o['metadata']['name']}/{ctr['name']}: {p} on {want}", path)
            req = ctr.get("resources", {}).get("requests", {})
            check("cpu" in req and "memory" in req, f"{o['metadata']['name']}/{ctr['name']}: resource requests", req)
    check(seen == set(COMPONENTS), "every component is deployed", sorted(seen))
    # Each store shard's relabel config exists for each replica.
    for o in objs:
        if o["kind"] == "StatefulSet" and o["metadata"]["name"].endswith("orrery-store"):
            n = o["spec"]["replicas"]
            cms = [c for c in objs if c["kind"] == "ConfigMap" and c["metadata"]["name"].endswith("store-shards")]
            keys = set(cms[0]["data"]) if cms else set()
            want = {f"{o['metadata']['name']}-{i}.yml" for i in range(n)}
            check(keys == want, f"one hashmod relabel config per store replica ({n})", sorted(keys))
            for k in sorted(keys):
                rules = yaml.safe_load(cms[0]["data"][k])
                mods = {r.get("modulus") for r in rules if r.get("action") == "hashmod"}
                check(mods == {n}, f"{k}: hashmod modulus equals replicas", mods)
    finish()


def mode_mixin(orrery, src):
    mx = os.path.join(src, "deploy/mixin")
    r = subprocess.run(["promtool", "check", "rules", os.path.join(mx, "alerts.yml"),
                        os.path.join(mx, "rules.yml")], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "promtool check rules alerts.yml rules.yml", r.stdout + r.stderr)
    tfiles = sorted(os.path.join(mx, "tests", f) for f in os.listdir(os.path.join(mx, "tests"))
                    if f.endswith("_test.yml"))
    r = subprocess.run(["promtool", "test", "rules"] + tfiles, capture_output=True, text=True, timeout=120)
    check(r.returncode == 0 and tfiles, "promtool test rules " + " ".join(os.path.basename(f) for f in tfiles),
          r.stdout + r.stderr)
    # Every alert has a test where it fires and one where it does not.
    alerts = [x["alert"] for g in yaml.safe_load(open(os.path.join(mx, "alerts.yml")))["groups"]
              for x in g["rules"] if "alert" in x]
    tests = [t for f in tfiles for t in yaml.safe_load(open(f))["tests"]]
    for a in alerts:
        cases = [c for t in tests for c in t.get("alert_rule_test", []) if c["alertname"] == a]
        check(any(c.get("exp_alerts") for c in cases) and any(not c.get("exp_alerts") for c in cases),
              f"alert {a}: tested firing and not firing", len(cases))
    check(len(alerts) >= 8, "the issue's eight alerts are there", alerts)
    r = subprocess.run([sys.executable, os.path.join(mx, "dashboards.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "dashboards/*.json are what dashboards.py writes", r.stderr)
    for f in sorted(os.listdir(os.path.join(mx, "dashboards"))):
        d = json.load(open(os.path.join(mx, "dashboards", f)))
        n = sum(len(p.get("targets", [])) for p in d["panels"])
        check(n > 0 and d.get("uid", "").startswith("orrery-"), f"dashboard {f}: {n} queries")
    finish()


# ------------------------------------------------------------ metric names
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                "group_left", "group_right", "inf", "nan", "atan2", "le"}


def promql_metrics(expr):
    """Metric names an expression selects (not functions, keywords, labels)."""
    e = re.sub(r'"(\\.|[^"\\])*"|\'(\\.|[^\'\\])*\'', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        if m.group(2) or m.group(1).lower() in PROMQL_WORDS:
            continue
        names.add(m.group(1))
    return names


def used_metrics(src):
    """{metric: [where]} over the rules and the dashboards; recorded names
    are resolved to their definitions."""
    mx = os.path.join(src, "deploy/mixin")
    recorded, used = {}, {}
    for f in ("rules.yml", "alerts.yml"):
        for g in yaml.safe_load(open(os.path.join(mx, f)))["groups"]:
            for r in g["rules"]:
                if "record" in r:
                    recorded[r["record"]] = r["expr"]
                for n in promql_metrics(r["expr"]):
                    used.setdefault(n, []).append(f"{f}:{r.get('alert') or r.get('record')}")
    for f in sorted(os.listdir(os.path.join(mx, "dashboards"))):
        d = json.load(open(os.path.join(mx, "dashboards", f)))
        comp = d["uid"].replace("orrery-", "")
        for p in d["panels"]:
            for t in p.get("targets", []):
                for n in promql_metrics(t["expr"]):
                    used.setdefault(n, []).append(f"{f}[{comp}]:{p['title']}")
    for r in recorded:
        used.pop(r, None)
    return used


def exported(text):
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


# ------------------------------------------------------------ package
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_at(ms):
    v = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(CROCKFORD[(v >> (5 * i)) & 31] for i in range(25, -1, -1))


def seed_bucket(bucket, work):
    """One 1-hour block (5 series) in the filesystem bucket, as a sidecar
    uploads it (meta.json's thanos section), two days old, so the compactor
    (past its consistency delay) groups it and the store serves it."""
    now = int(time.time())
    t0 = (now - 2 * 86400) // 7200 * 7200
    om = os.path.join(work, "seed.om")
    with open(om, "w") as f:
        f.write("# TYPE deploy_seed gauge\n")
        for ts in range(t0, t0 + 3600, 60):
            for i in range(5):
                f.write(f'deploy_seed{{series="{i}"}} {ts % 97 + i} {ts}\n')
        f.write("# EOF\n")
    out = os.path.join(work, "seed-blocks")
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", om, out], check=True,
                   capture_output=True, timeout=120)
    (old,) = [d for d in os.listdir(out) if len(d) == 26]
    new = ulid_at((now - 2 * 86400) * 1000)
    meta = json.load(open(os.path.join(out, old, "meta.json")))
    meta["ulid"] = new
    meta["compaction"]["sources"] = [new]
    meta["thanos"] = {"labels": {"cluster": "test", "replica": "a"}, "downsample": {"resolution": 0},
                      "source": "sidecar"}
    json.dump(meta, open(os.path.join(out, old, "meta.json"), "w"))
    os.makedirs(bucket, exist_ok=True)
    shutil.move(os.path.join(out, old), os.path.join(bucket, new))
    return new, t0


def metric_value(url, name):
    try:
        txt = http_get(url + "/metrics")[1]
    except Exception:
        return None
    m = re.search(r"^" + re.escape(name) + r"(?:\{\})? (\S+)$", txt, re.M)
    return float(m.group(1)) if m else None


def wait_metric(url, name, want, what, secs=60):
    end, v = time.time() + secs, None
    while time.time() < end:
        v = metric_value(url, name)
        if v is not None and v >= want:
            break
        time.sleep(0.3)
    return check(v is not None and v >= want, what, f"{name} = {v}")


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def wait_ready(url, proc, name, log, secs=90):
    end = time.time() + secs
    while time.time() < end:
        if proc.poll() is not None:
            print(open(log).read()[-3000:], file=sys.stderr)
            return check(False, f"{name}: reaches /-/ready", f"exited with {proc.returncode}")
        try:
            if http_get(url, 2)[0] == 200:
                return check(True, f"{name}: reaches /-/ready")
        except Exception:
            pass
        time.sleep(0.2)
    return check(False, f"{name}: reaches /-/ready", f"not ready after {secs} s; log {log}")


def mode_package(orrery, src, deb):
    procs = []
    work = tempfile.mkdtemp(prefix="orrery-deploy-")
    root = os.path.join(work, "root")
    try:
        if deb:
            subprocess.run(["dpkg-deb", "-x", deb, root], check=True, timeout=120)
            staged = os.path.join(work, "staged")
            stage(src, orrery, staged)
            have = {p for p in tree(root) if not p.startswith("usr/share/doc")}
            want = {p for p in tree(staged) if not p.startswith("usr/share/doc")}
            check(have == want, "the .deb holds exactly the files of the staged layout",
                  f"only in .deb: {sorted(have - want)}; only staged: {sorted(want - have)}")
            print(f"root from {deb}")
        else:
            stage(src, orrery, root)
        # Paths of the installed system move into the root; listen ports
        # become free ones (old port -> new port, applied to the configs).
        def in_root(v):
            return re.sub(r"(?<![\w/])(/(?:etc|var|usr|lib)/)", lambda m: root + m.group(1), v)
        cmds, ports = {}, {}
        for c in COMPONENTS:
            argv, env, _ = unit_command(root, c)
            cmds[c] = (argv, env)
            for w in argv:
                m = re.match(r"--(http|grpc)-address=.*:(\d+)$", w)
                if m and m.group(2) not in ports:
                    ports[m.group(2)] = str(free_port())
        def fix(w):
            m = re.match(r"(--(?:http|grpc)-address=)(.*):(\d+)$", w)
            if m:
                return f"{m.group(1)}127.0.0.1:{ports[m.group(3)]}"
            return in_root(w)
        for f in os.listdir(os.path.join(root, "etc/orrery")):
            p = os.path.join(root, "etc/orrery", f)
            t = in_root(open(p).read())
            t = re.sub(r"127\.0\.0\.1:(\d+)", lambda m: "127.0.0.1:" + ports.get(m.group(1), m.group(1)), t)
            open(p, "w").write(t)
        logs = os.path.join(work, "logs")
        os.makedirs(logs)
        bcfg = yaml.safe_load(open(os.path.join(root, "etc/orrery/bucket.yml")))
        check(bcfg["type"] == "FILESYSTEM" and bcfg["config"]["directory"].startswith(root),
              "bucket.yml: a filesystem bucket (moved into the root)", bcfg)
        seed_id, seed_t0 = seed_bucket(bcfg["config"]["directory"], work)
        print("seeded block", seed_id)

        # Prometheus 2.42 beside the sidecar, on the TSDB path the unit names.
        sargv = cmds["sidecar"][0]
        tsdb = [fix(w).split("=", 1)[1] for w in sargv if w.startswith("--tsdb.path=")][0]
        prom_port = free_port()
        os.makedirs(tsdb, exist_ok=True)
        pcfg = os.path.join(work, "prometheus.yml")
        with open(pcfg, "w") as f:
            f.write("global: {scrape_interval: 5s, external_labels: {cluster: test, replica: a}}\n"
                    "scrape_configs:\n  - job_name: prometheus\n"
                    f"    static_configs: [{{targets: ['127.0.0.1:{prom_port}']}}]\n")
        plog = os.path.join(logs, "prometheus.log")
        p = subprocess.Popen(["prometheus", f"--config.file={pcfg}", f"--storage.tsdb.path={tsdb}",
                              f"--web.listen-address=127.0.0.1:{prom_port}",
                              "--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h"],
                             stdout=open(plog, "w"), stderr=subprocess.STDOUT)
        procs.append(p)
        if not wait_ready(f"http://127.0.0.1:{prom_port}/-/ready", p, "prometheus", plog):
            finish()

        http = {}
        for c in COMPONENTS:
            argv, env = cmds[c]
            argv = [fix(w) for w in argv]
            argv = [f"--prometheus.url=http://127.0.0.1:{prom_port}" if w.startswith("--prometheus.url=") else w
                    for w in argv]
            argv[0] = in_root(argv[0])
            check(argv[0] == os.path.join(root, "usr/bin/orrery"), f"{c}: runs the installed binary", argv[0])
            print(f"{c}: " + " ".join(shlex.quote(a) for a in argv))
            addr = [w.split("=", 1)[1] for w in argv if w.startswith("--http-address=")][0]
            http[c] = f"http://{addr}"
            log = os.path.join(logs, f"{c}.log")
            penv = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **env}
            pr = subprocess.Popen(argv, env=penv, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                  cwd="/")
            procs.append(pr)
            wait_ready(f"{http[c]}/-/ready", pr, c, log)
        if failures:
            finish()

        # The gateway found the sidecar and the store through endpoints.yml.
        wait_metric(http["gateway"], "thanos_store_nodes_grpc_connections", 2,
                    "gateway: both endpoints of /etc/orrery/endpoints.yml answer Info")
        wait_metric(http["store"], "thanos_bucket_store_blocks_loaded", 1, "store: loads the bucket's block")
        wait_metric(http["compact"], "thanos_compact_iterations_total", 1,
                    "compact: completes a run over the bucket")
        q = urllib.parse.urlencode({"query": "count(deploy_seed)", "time": str(seed_t0 + 1800)})
        st, body = http_get(f"{http['gateway']}/api/v1/query?{q}")
        check(st == 200 and '"value":[' in body and '"5"' in body,
              "gateway: the seeded block's 5 series, through the store", body[:300])
        # A global gateway stacked on this one (as regional gateways are):
        # its Info calls are gRPC the gateway serves, so its gRPC metrics exist.
        gport, ggrpc = free_port(), free_port()
        gargv = [os.path.join(root, "usr/bin/orrery"), "gateway", f"--http-address=127.0.0.1:{gport}",
                 f"--grpc-address=127.0.0.1:{ggrpc}",
                 "--endpoint=" + [w.split("=", 1)[1] for w in [fix(x) for x in cmds["gateway"][0]]
                                  if w.startswith("--grpc-address=")][0]]
        glog = os.path.join(logs, "global-gateway.log")
        gp = subprocess.Popen(gargv, stdout=open(glog, "w"), stderr=subprocess.STDOUT)
        procs.append(gp)
        wait_ready(f"http://127.0.0.1:{gport}/-/ready", gp, "global gateway", glog)
        wait_metric(f"http://127.0.0.1:{gport}", "thanos_store_nodes_grpc_connections", 1,
                    "global gateway: the regional gateway answers Info")

        have = {c: exported(http_get(f"{http[c]}/metrics")[1]) for c in COMPONENTS}
        for c in COMPONENTS:
            rss = metric_value(http[c], "process_resident_memory_bytes")
            print(f"{c}: idle RSS {rss / 2**20:.1f} MiB" if rss else f"{c}: no RSS")
        allm = set().union(*have.values())
        used = used_metrics(src)
        check(len(used) >= 25, f"{len(used)} metric names found in rules and dashboards", sorted(used))
        for n in sorted(used):
            comps = {w.split("[")[1].split("]")[0] for w in used[n] if "[" in w}
            missing = [c for c in comps if n not in have[c]]
            ok = n in allm and not missing
            check(ok, f"metric {n} is exported" + (f" by {', '.join(sorted(comps))}" if comps else ""),
                  f"used by {used[n]}; missing in {missing or 'every component'}")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not failures:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work} (logs in {work}/logs)", file=sys.stderr)
    finish()


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    mode, orrery, src = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
    deb = None
    if "--deb" in sys.argv:
        deb = os.path.abspath(sys.argv[sys.argv.index("--deb") + 1])
    {"units": lambda: mode_units(orrery, src),
     "kubernetes": lambda: mode_kubernetes(orrery, src),
     "mixin": lambda: mode_mixin(orrery, src),
     "package": lambda: mode_package(orrery, src, deb)}[mode]()


if __name__ == "__main__":
    main()
