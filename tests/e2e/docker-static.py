# Checks of docker/ that need no Docker engine (run by docker-static.test):
# compose.yml parses and refers only to things that exist, every ferry
# service's command line and config are accepted by the program it runs
# (--print-config), and the Dockerfile builds and tests with the README's
# scripts. Prints the plugins it could not check with, one per line.
import os
import re
import shlex
import subprocess
import sys

import yaml

SRC = os.environ["FERRY_SRCDIR"]
BIN = os.environ["FERRY_BINDIR"]
SCRATCH = sys.argv[1]
DOCKER = os.path.join(SRC, "docker")
BUILT = os.environ.get("FERRY_BUILT_PLUGINS", "").split()
PROGRAMS = ("ferry-producer", "ferry-aggregator", "ferry-validator")
HEALTH_URL = "http://127.0.0.1:9464/health"
problems = []


def bad(msg):
    problems.append(msg)


def interpolate(s):
    """compose's own interpolation for the strings we use: $$ is a literal $."""
    if re.search(r"\$(?!\$)\{?[A-Za-z_]", s.replace("$$", "")):
        bad(f"compose.yml: '{s}' needs a variable from the host environment")
    return s.replace("$$", "$")


def as_list(v):
    if v is None:
        return []
    if isinstance(v, str):
        return shlex.split(v)
    return [interpolate(str(x)) for x in v]


def env_of(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: interpolate(str(v)) for k, v in env.items()}


with open(os.path.join(DOCKER, "compose.yml"), encoding="utf-8") as f:
    compose = yaml.safe_load(f)
services = compose.get("services") or {}
volumes = compose.get("volumes") or {}
if not services:
    bad("compose.yml: no services")



def has_healthcheck(svc):
    """its own, or the one of an image built from docker/Dockerfile"""
    hc = svc.get("healthcheck")
    if hc is not None:
        return not hc.get("disable") and hc.get("test") not in (["NONE"], "NONE")
    build = svc.get("build") or {}
    if build.get("dockerfile") != "docker/Dockerfile" or build.get("target") is None:
        return False
    with open(os.path.join(DOCKER, "Dockerfile"), encoding="utf-8") as f:
        m = re.search(rf"^FROM\s+\S+\s+AS\s+{re.escape(build['target'])}\s*$(.*?)(?=^FROM\s|\Z)",
                      f.read(), re.M | re.S | re.I)
    return bool(m and re.search(r"^HEALTHCHECK\s+(?!NONE)", m.group(1), re.M))


# --- references: depends_on, profiles, volumes, build contexts -----------
stages = {}
for name, svc in services.items():
    profiles = set(svc.get("profiles") or [])
    deps = svc.get("depends_on") or {}
    for dep, how in (deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps)):
        if dep not in services:
            bad(f"{name}: depends_on unknown service '{dep}'")
            continue
        dprof = set(services[dep].get("profiles") or [])
        # run/up of a service enables its own profiles: its dependencies
        # must be enabled by each of them (or by none, i.e. always on)
        if dprof and (not profiles or not profiles <= dprof):
            bad(f"{name} (profiles {sorted(profiles)}) depends on {dep}, "
                f"enabled only by {sorted(dprof)}")
        cond = (how or {}).get("condition", "service_started")
        if cond == "service_healthy" and not has_healthcheck(services[dep]):
            bad(f"{name}: waits for {dep} to be healthy, but {dep} has no healthcheck")
    for vol in svc.get("volumes") or []:
        src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
        if src.startswith((".", "/")):
            if not os.path.exists(os.path.join(DOCKER, src)):
                bad(f"{name}: mounts {src}, which is not in the tree")
        elif src not in volumes:
            bad(f"{name}: named volume '{src}' is not declared under volumes:")
    build = svc.get("build")
    if build is None:
        if "image" not in svc:
            bad(f"{name}: neither image nor build")
        continue
    ctx = os.path.normpath(os.path.join(DOCKER, build.get("context", ".")))
    dockerfile = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
    if not os.path.isdir(ctx):
        bad(f"{name}: build context {build.get('context')} is not a directory")
        continue
    if not os.path.isfile(dockerfile):
        bad(f"{name}: no Dockerfile at {build.get('dockerfile')}")
        continue
    if dockerfile not in stages:
        with open(dockerfile, encoding="utf-8") as f:
            stages[dockerfile] = f.read()
    target = build.get("target")
    if target and not re.search(rf"^FROM\s+\S+\s+AS\s+{re.escape(target)}\s*$",
                                stages[dockerfile], re.M | re.I):
        bad(f"{name}: build target '{target}' is not a stage of {build.get('dockerfile')}")

profiles_used = {p for s in services.values() for p in s.get("profiles") or []}
for p in ("amqp", "kafka", "zmq", "check"):
    if p not in profiles_used:
        bad(f"compose.yml: no service in profile '{p}'")

# --- the Dockerfile: the README's scripts, and nothing it cannot COPY -----
dockerfile = os.path.join(DOCKER, "Dockerfile")
with open(dockerfile, encoding="utf-8") as f:
    df = f.read()
joined = re.sub(r"\\\n", " ", df)
stage_text = {}
for m in re.finditer(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$(.*?)(?=^FROM\s|\Z)", joined, re.M | re.S | re.I):
    stage_text[m.group(1)] = m.group(2)
for stage, needed in (("build", [r"RUN sh scripts/install-deps\.sh build\b", r"\bsh scripts/build\.sh\b",
                                 r"\bmake( -j\S+)? check\b", r"\bmake install DESTDIR=/staging\b"]),
                      ("runtime", [r"^COPY --from=build /staging/", r"^USER ferry$", r"^HEALTHCHECK\b"]),
                      ("check", [r"^RUN sh scripts/install-deps\.sh test\b",
                                 r'^CMD \["sh", "scripts/check\.sh"\]$'])):
    text = stage_text.get(stage)
    if text is None:
        bad(f"Dockerfile: no stage '{stage}'")
        continue
    for pat in needed:
        if not re.search(pat, text, re.M):
            bad(f"Dockerfile: stage {stage} lacks /{pat}/")
if not re.search(r"^FROM debian:12-slim AS", df, re.M):
    bad("Dockerfile: not based on debian:12-slim")
if not re.search(r"^HEALTHCHECK\b.*curl\b.*" + re.escape(HEALTH_URL), joined, re.M):
    bad(f"Dockerfile: HEALTHCHECK does not poll {HEALTH_URL} with curl")
for m in re.finditer(r"^COPY\s+(?!--from)(.*)$", joined, re.M):
    for src in m.group(1).split()[:-1]:
        if not os.path.exists(os.path.join(SRC, src)):
            bad(f"Dockerfile: COPY {src}: not in the tree")
# a few of hadolint's rules (no hadolint in Debian)
for m in re.finditer(r"^RUN\s+(.*)$", joined, re.M):
    run = m.group(1)
    if "apt-get install" in run and not re.search(r"apt-get install (-\S+ )*(-y|--yes)\b", run):
        bad(f"Dockerfile: apt-get install without -y: {run}")
    if "apt-get install" in run and "--no-install-recommends" not in run:
        bad(f"Dockerfile: apt-get install without --no-install-recommends: {run}")
    if re.search(r"apt-get update|install-deps\.sh", run) and "rm -rf /var/lib/apt/lists" not in run:
        bad(f"Dockerfile: RUN leaves the apt lists in the layer: {run}")
    if re.search(r"(^|&&\s*)cd\s", run) and not re.search(r"(^|&&\s*)cd\s+\S+\s*&&", run):
        bad(f"Dockerfile: a lone cd in RUN (use WORKDIR): {run}")
for m in re.finditer(r"^FROM\s+(\S+)", df, re.M):
    if m.group(1) in stage_text:
        continue  # an earlier stage of this file
    if ":" not in m.group(1) or m.group(1).endswith(":latest"):
        bad(f"Dockerfile: FROM {m.group(1)} has no pinned tag")
with open(os.path.join(SRC, "README.md"), encoding="utf-8") as f:
    readme = f.read()
for cmd in ("sh scripts/install-deps.sh build", "sh scripts/check.sh"):
    if cmd not in readme:
        bad(f"README.md no longer says '{cmd}', which the Dockerfile runs")
for script in ("scripts/install-deps.sh", "scripts/build.sh", "scripts/check.sh"):
    if not os.path.isfile(os.path.join(SRC, script)):
        bad(f"{script}: missing")

# --- compose.local.yml: compose.yml's brokers replaced, nothing else -----
with open(os.path.join(DOCKER, "compose.local.yml"), encoding="utf-8") as f:
    local = yaml.safe_load(f) or {}
local_services = local.get("services") or {}
local_volumes = set(volumes) | set(local.get("volumes") or {})
for name in ("rabbitmq", "kafka"):
    if "build" not in (local_services.get(name) or {}):
        bad(f"compose.local.yml: does not build a local {name} in place of the hub image")
for name, svc in local_services.items():
    if name not in services:
        bad(f"compose.local.yml: overrides '{name}', which compose.yml does not have")
        continue
    target = (svc.get("build") or {}).get("target")
    if target and not re.search(rf"^FROM\s+\S+\s+AS\s+{re.escape(target)}\s*$", df, re.M | re.I):
        bad(f"compose.local.yml: {name}: build target '{target}' is not a stage of docker/Dockerfile")
    if (svc.get("build") or {}).get("dockerfile", "docker/Dockerfile") != "docker/Dockerfile":
        bad(f"compose.local.yml: {name}: builds from another Dockerfile than docker/Dockerfile")
    for vol in svc.get("volumes") or []:
        src = vol.split(":")[0]
        if not src.startswith((".", "/")) and src not in local_volumes:
            bad(f"compose.local.yml: {name}: named volume '{src}' is not declared")
    mode = svc.get("network_mode", "")
    if mode.startswith("service:") and mode[8:] not in services:
        bad(f"compose.local.yml: {name}: network_mode names unknown service {mode[8:]}")

# --- the check service: CI's script against the compose brokers ----------
check = services.get("check", {})
cenv = env_of(check)
if as_list(check.get("command")) != ["sh", "scripts/check.sh"]:
    bad("check: does not run sh scripts/check.sh")
if cenv.get("FERRY_REQUIRE_ALL_TRANSPORTS") != "1":
    bad("check: FERRY_REQUIRE_ALL_TRANSPORTS is not 1")
for var, pat in (("FERRY_TEST_AMQP_URL", r"amqp://[^@]*@([^:/]+):(\d+)$"),
                 ("FERRY_TEST_KAFKA_BROKERS", r"([^:,]+):(\d+)$")):
    m = re.match(pat, cenv.get(var, ""))
    if not m:
        bad(f"check: {var} is '{cenv.get(var, '')}'")
    elif m.group(1) not in services or m.group(1) not in (check.get("depends_on") or {}):
        bad(f"check: {var} names {m.group(1)}, not a service it depends on")

# --- every ferry service, run as compose would, with --print-config ------
# Wrappers named like the programs add --print-config, so even a command
# that goes through `sh -c` is checked as it really runs.
wrapdir = os.path.join(SCRATCH, "bin")
os.makedirs(wrapdir, exist_ok=True)
for prog in PROGRAMS:
    path = os.path.join(wrapdir, prog)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f'#!/bin/sh\nexec "{BIN}/{prog}" "$@" --print-config\n')
    os.chmod(path, 0o755)

unchecked = set()
checked = 0
for name, svc in services.items():
    entry, cmd = as_list(svc.get("entrypoint")), as_list(svc.get("command"))
    argv = entry + cmd
    prog = next((a for a in argv for p in PROGRAMS if re.search(rf"(^|\s){p}(\s|$)", a)), None)
    if prog is None:
        continue
    env = env_of(svc)
    mounts = {}
    for vol in svc.get("volumes") or []:
        parts = vol.split(":") if isinstance(vol, str) else [vol["source"], vol["target"]]
        mounts[parts[1]] = os.path.normpath(os.path.join(DOCKER, parts[0]))
    conf = env.get("FERRY_CONFIG")
    if conf not in mounts:
        bad(f"{name}: FERRY_CONFIG={conf} is not a file compose mounts")
        continue
    if not os.path.isfile(mounts[conf]):
        continue  # reported above
    env["FERRY_CONFIG"] = mounts[conf]
    with open(mounts[conf], encoding="utf-8") as f:
        m = re.search(r"^plugin\s*=\s*(\S+)", f.read(), re.M)
    plugin = m.group(1) if m else "zmq"
    if plugin not in BUILT:
        unchecked.add(plugin)
        continue
    hc = svc.get("healthcheck") or {}
    listen = env.get("FERRY_HTTP_LISTEN")
    if not hc.get("disable") and (not listen or not HEALTH_URL.startswith(
            "http://127.0.0.1:" + listen.rsplit(":", 1)[-1] + "/")):
        bad(f"{name}: the image's HEALTHCHECK polls {HEALTH_URL}, "
            f"but FERRY_HTTP_LISTEN is {listen}")
    runenv = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_") or
              k in ("FERRY_PLUGIN_PATH", "FERRY_BINDIR", "FERRY_SRCDIR")}
    runenv.update(env)
    runenv["PATH"] = wrapdir + os.pathsep + os.environ.get("PATH", "")
    runenv["HOSTNAME"] = "replica1"
    r = subprocess.run(argv, env=runenv, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=60, check=False)
    if r.returncode != 0:
        bad(f"{name}: {' '.join(argv)} with {os.path.basename(mounts[conf])}: "
            f"exit {r.returncode}: {r.stderr.strip()}")
        continue
    if not re.search(rf"^plugin = {re.escape(plugin)}\b", r.stdout, re.M):
        bad(f"{name}: --print-config does not show plugin = {plugin}")
    # Once the programs serve HTTP, the consumers must really listen there.
    if listen and re.search(r"^\[http\]", r.stdout, re.M) and \
            not re.search(rf"^listen = {re.escape(listen)}\b", r.stdout, re.M):
        bad(f"{name}: [http] listen is not {listen} in --print-config")
    checked += 1

if checked == 0 and not unchecked:
    bad("compose.yml: no ferry service found to check")
for p in problems:
    print(f"FAIL: {p}", file=sys.stderr)
print(f"# {checked} ferry services accepted by their programs", file=sys.stderr)
for p in sorted(unchecked):
    print(p)
sys.exit(1 if problems else 0)
