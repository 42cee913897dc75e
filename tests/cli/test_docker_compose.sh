#!/usr/bin/env bash
# test_docker_compose: docker/ checked without a Docker engine.
#
#  - docker/compose.yaml is valid for Debian's docker-compose (`config -q`), by default and with
#    --profile minio; broken copies of it (an unknown key, bad YAML, a service depending on one
#    that does not exist) must fail the same check, so the check is known to bite.
#  - Which services run: by default (docker/.env: COMPOSE_PROFILES=fakes3) fakes3, writer, reader;
#    with --profile minio: minio, minio-init, writer, reader. Exactly one running service answers
#    as "s3"; writer and reader are resolved identically in both; the key pair and the bucket they
#    use are the ones each store is set up with.
#  - The Dockerfiles: every COPY source exists in the build context (the repository root) and is
#    not excluded by the Dockerfile's .dockerignore; every COPY --from names an earlier stage;
#    every folder the top-level CMakeLists.txt adds is copied where CMake runs; each compose build
#    names a Dockerfile that exists.
#  - The commands, run for real on this machine with the built binaries: the fakes3 service's
#    command line (the image's ENTRYPOINT plus the compose command, the address and data folder
#    moved to 127.0.0.1:0 and a scratch folder) starts; the image's HEALTHCHECK command passes
#    against it and fails once it is stopped; the writer's and the reader's compose commands
#    (app-wait, the C and Python examples) run against it.
set -euo pipefail
source "$(dirname "$0")/fakes3/lib.sh"
: "${LTXVFS_SOURCE_DIR:?}"
SRC="$LTXVFS_SOURCE_DIR"
D="$SRC/docker"
PY=/usr/bin/python3 # Debian's: python3-yaml comes with docker-compose
command -v docker-compose >/dev/null || fail "needs docker-compose (Debian: docker-compose; scripts/bootstrap.sh installs it)"
"$PY" -c 'import yaml' 2>/dev/null || fail "needs python3-yaml for $PY"

# --- compose: valid, and the check bites ------------------------------------------------------
dc() { docker-compose --project-directory "$1" -f "$1/compose.yaml" "${@:2}"; }
dc "$D" config -q 2>"$TMP/dc.err" || fail "docker-compose config -q fails" "$(cat "$TMP/dc.err")"
dc "$D" --profile minio config -q 2>"$TMP/dc.err" || fail "docker-compose --profile minio config -q fails" "$(cat "$TMP/dc.err")"
pass "docker/compose.yaml is valid for docker-compose $(docker-compose version --short), default and --profile minio"

broken() { # NAME SED-SCRIPT: a copy of docker/ with compose.yaml edited must fail config -q
    rm -rf "$TMP/broken" && cp -r "$D" "$TMP/broken"
    sed -i "$2" "$TMP/broken/compose.yaml"
    cmp -s "$D/compose.yaml" "$TMP/broken/compose.yaml" && fail "the edit '$1' changed nothing"
    if dc "$TMP/broken" config -q 2>/dev/null; then fail "docker-compose config -q accepts a compose file with $1"; fi
}
broken "an unknown service key" 's/^  writer:.*/&\n    restartt: always/'
broken "bad YAML" 's/^services:/services: [/'
broken "a dependency on an undefined service" 's/^      - minio$/      - minioo/'
broken "a port that is not a port" 's/127.0.0.1:9001:9001/127.0.0.1:9001:x9001/'
pass "docker-compose config -q rejects broken copies (unknown key, bad YAML, undefined dependency, bad port)"

# --- which services run, and what they share -------------------------------------------------
dc "$D" config >"$TMP/default.yaml" 2>"$TMP/dc.err" || fail "config" "$(cat "$TMP/dc.err")"
dc "$D" --profile minio config >"$TMP/minio.yaml" 2>"$TMP/dc.err" || fail "config" "$(cat "$TMP/dc.err")"
"$PY" - "$D/.env" "$TMP/default.yaml" "$TMP/minio.yaml" >"$TMP/profiles.out" 2>&1 <<'PY' ||
import re, sys, yaml
envfile, default_yaml, minio_yaml = sys.argv[1:]
env = dict(l.strip().split("=", 1) for l in open(envfile) if "=" in l and not l.startswith("#"))
def running(path, active):
    # compose's rule: a service runs when it has no profiles or one of them is active
    svcs = yaml.safe_load(open(path))["services"]
    return svcs, {n for n, s in svcs.items() if not s.get("profiles") or set(s["profiles"]) & active}
errors = []
def check(cond, msg):
    if not cond: errors.append(msg)
d_svcs, d_run = running(default_yaml, set(env.get("COMPOSE_PROFILES", "").split(",")) - {""})
m_svcs, m_run = running(minio_yaml, {"minio"})  # --profile replaces COMPOSE_PROFILES
check(d_run == {"fakes3", "writer", "reader"}, f"default runs {sorted(d_run)}")
check(m_run == {"minio", "minio-init", "writer", "reader"}, f"--profile minio runs {sorted(m_run)}")
def s3_alias(svcs, run):
    return [n for n in run if "s3" in ((svcs[n].get("networks") or {}).get("default") or {}).get("aliases", [])]
check(s3_alias(d_svcs, d_run) == ["fakes3"], f"default: services answering as s3: {s3_alias(d_svcs, d_run)}")
check(s3_alias(m_svcs, m_run) == ["minio"], f"minio: services answering as s3: {s3_alias(m_svcs, m_run)}")
for n in ("writer", "reader"):
    check(d_svcs[n] == m_svcs[n], f"{n} differs between the profiles")
w = d_svcs["writer"]["environment"]
check(w == d_svcs["reader"]["environment"], "writer and reader environments differ")
m = re.match(r"s3://([^/]+)/\S+\?endpoint=http://s3:9000$", w.get("LITESTREAM_REPLICA_URL", ""))
check(m is not None, f"LITESTREAM_REPLICA_URL {w.get('LITESTREAM_REPLICA_URL')} is not s3://BUCKET/PATH?endpoint=http://s3:9000")
bucket = m.group(1) if m else None
keys = (w.get("AWS_ACCESS_KEY_ID"), w.get("AWS_SECRET_ACCESS_KEY"))
f = d_svcs["fakes3"]
check((f["environment"].get("FAKES3_ACCESS_KEY"), f["environment"].get("FAKES3_SECRET_KEY")) == keys, "fakes3's key pair is not the app's")
fc = f.get("command") or []
check("--bucket" in fc and fc[fc.index("--bucket") + 1] == bucket, f"fakes3 does not create bucket {bucket}: {fc}")
me = m_svcs["minio"]["environment"]
check((me.get("MINIO_ROOT_USER"), me.get("MINIO_ROOT_PASSWORD")) == keys, "MinIO's key pair is not the app's")
init = " ".join(m_svcs["minio-init"].get("command") or [])
check(re.search(r"mc mb\b.*\bstore/" + re.escape(str(bucket)) + r"\b", init) is not None, f"minio-init does not create bucket {bucket}: {init}")
check("minio" in (m_svcs["minio-init"].get("depends_on") or {}), "minio-init does not depend on minio")
for n, s in list(d_svcs.items()) + list(m_svcs.items()):
    for p in s.get("ports") or []:
        ip = p.get("host_ip") if isinstance(p, dict) else str(p).split(":")[0]
        check(ip == "127.0.0.1", f"{n} publishes {p} beyond 127.0.0.1")
print("\n".join(errors) if errors else "ok")
sys.exit(1 if errors else 0)
PY
    fail "the services of each profile" "$(cat "$TMP/profiles.out")"
pass "default: fakes3, writer, reader; --profile minio: minio, minio-init, writer, reader; one store as s3, same app services, key pair and bucket"

# --- Dockerfiles -------------------------------------------------------------------------------
subdirs=$(sed -n 's/^[[:space:]]*add_subdirectory(\([^ )]*\).*/\1/p' "$SRC/CMakeLists.txt")
[ -n "$subdirs" ] || fail "no add_subdirectory in $SRC/CMakeLists.txt"
for df in "$D"/Dockerfile.*; do
    case $df in *.dockerignore) continue ;; esac
    name=$(basename "$df")
    ign="$df.dockerignore"
    [ -f "$ign" ] || fail "$name has no $name.dockerignore (the context is the whole repository)"
    stages=" "
    copies=0
    while read -r line; do
        set -- $line
        case ${1^^} in
        FROM)
            as=${3:-}
            [ "${as^^}" = AS ] && stages+="$4 "
            ;;
        COPY | ADD)
            shift
            from=
            while [ "${1:-}" != "${1#--}" ]; do
                case $1 in --from=*) from=${1#--from=} ;; esac
                shift
            done
            [ $# -ge 2 ] || fail "$name: $line: no source"
            srcs=("${@:1:$#-1}")
            if [ -n "$from" ]; then
                case "$stages" in *" $from "*) ;; *) fail "$name: COPY --from=$from: no such earlier stage" ;; esac
                continue
            fi
            for s in "${srcs[@]}"; do
                [ -e "$SRC/$s" ] || fail "$name: COPY source $s does not exist in the build context"
                # the context sent is what the .dockerignore re-includes (it starts with '*')
                top=${s%%/*}
                grep -qxF -e "!$s" -e "!$top" "$ign" || fail "$name: COPY $s is excluded by $(basename "$ign")"
                copies=$((copies + 1))
            done
            ;;
        esac
    done < <(sed -e :a -e '/\\$/N; s/\\\n//; ta' "$df" | grep -E '^\s*(FROM|COPY|ADD)\s')
    [ "$(head -n1 "$ign")" = "*" ] || grep -qx '\*' "$ign" || fail "$(basename "$ign") does not start from '*'"
    if grep -q 'cmake -S' "$df"; then
        for sd in $subdirs; do
            grep -qE "^COPY $sd $sd\$" "$df" || fail "$name runs CMake but does not COPY $sd/ (added by CMakeLists.txt)"
        done
    fi
    grep -qE '^FROM debian:12-slim' "$df" || fail "$name is not based on debian:12-slim"
    grep -qE '^USER [a-z]' "$df" || fail "$name does not run as a named non-root user"
    pass "$name: $copies COPY sources exist and are in the context; stages resolve; every CMake folder copied; non-root on debian:12-slim"
done
for df in $(sed -n 's/^ *dockerfile: *//p' "$D/compose.yaml"); do
    [ -f "$SRC/$df" ] || fail "compose.yaml builds with $df, which does not exist"
done
grep -q '^VOLUME \["/data"\]' "$D/Dockerfile.fakes3" || fail "Dockerfile.fakes3 declares no /data volume"

# --- the commands, run here --------------------------------------------------------------------
# fakes3: the image's ENTRYPOINT (JSON form) and the compose command, with the address and the
# data folder moved onto this machine; the environment of the compose service.
read -r -a cmdline < <("$PY" - "$D/Dockerfile.fakes3" "$TMP/default.yaml" "$TMP/data" <<'PY'
import json, re, sys, yaml
df, compose, data = sys.argv[1:]
ep = json.loads(re.search(r'^ENTRYPOINT (\[.*\])$', open(df).read(), re.M).group(1))
cmd = ep + (yaml.safe_load(open(compose))["services"]["fakes3"].get("command") or [])
print(" ".join({"0.0.0.0:9000": "127.0.0.1:0", "/data": data}.get(a, a) for a in cmd))
PY
)
[ "${cmdline[0]}" = fakes3 ] || fail "the fakes3 ENTRYPOINT does not run fakes3: ${cmdline[*]}"
mkdir -p "$TMP/data"
fenv=$("$PY" -c 'import sys, yaml; e = yaml.safe_load(open(sys.argv[1]))["services"]["fakes3"]["environment"]; print(e["FAKES3_ACCESS_KEY"], e["FAKES3_SECRET_KEY"])' "$TMP/default.yaml")
read -r FKEY FSECRET <<<"$fenv"
env FAKES3_ACCESS_KEY="$FKEY" FAKES3_SECRET_KEY="$FSECRET" "$FAKES3" "${cmdline[@]:1}" >"$TMP/svc.out" 2>"$TMP/svc.err" &
svc_pid=$!
PIDS+=("$svc_pid")
for _ in $(seq 200); do grep -q 'listening on' "$TMP/svc.out" && break; sleep 0.05; done
grep -q 'listening on' "$TMP/svc.out" || fail "the fakes3 service's command line does not start" "$(cat "$TMP/svc.err")"
SVC_URL=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$TMP/svc.out")
pass "the fakes3 service's command line starts: $(head -n1 "$TMP/svc.out")"

# the HEALTHCHECK command (exec form), with the image's environment and the real endpoint
health=$("$PY" -c 'import json, re, sys; print(" ".join(json.loads(re.search(r"^HEALTHCHECK .*CMD (\[.*\])$", open(sys.argv[1]).read(), re.M).group(1))))' "$D/Dockerfile.fakes3")
read -r -a hc <<<"$health"
[ "${hc[0]}" = fakes3 ] || fail "the HEALTHCHECK does not run fakes3: $health"
hrun() { env FAKES3_ACCESS_KEY="$FKEY" FAKES3_SECRET_KEY="$FSECRET" FAKES3_ENDPOINT="$SVC_URL" "$FAKES3" "${hc[@]:1}"; }
hrun >"$TMP/health.out" 2>&1 || fail "the HEALTHCHECK command fails against a running fakes3" "$(cat "$TMP/health.out")"
grep -q '^ok' "$TMP/health.out" || fail "the HEALTHCHECK's answer" "$(cat "$TMP/health.out")"
pass "the HEALTHCHECK command ($health) passes: $(cat "$TMP/health.out")"

# writer and reader: their compose commands with the app image's PATH (app-wait, ltxctl,
# litestream-example, python3) made of the built binaries, the store's name and the image's
# examples folder replaced by this machine's
mkdir -p "$TMP/bin"
cc -O2 -o "$TMP/bin/litestream-example" "$SRC/examples/c/litestream_example.c" $(pkg-config --cflags --libs sqlite3) ||
    fail "the C example does not build"
ln -s "$D/app-wait.sh" "$TMP/bin/app-wait"
ln -s "$LTXVFS_BUILD_DIR/ltxctl" "$TMP/bin/ltxctl"
ln -s /usr/bin/python3 "$TMP/bin/python3"
if [ -n "${LTXVFS_PRELOAD:-}" ]; then
    # a sanitized extension: the runtime preloaded into the two programs that load it (not into
    # ltxctl, which carries its own)
    mv "$TMP/bin/litestream-example" "$TMP/litestream-example"
    rm "$TMP/bin/python3"
    for p in "litestream-example $TMP/litestream-example" "python3 /usr/bin/python3"; do
        set -- $p
        printf '#!/bin/sh\nLD_PRELOAD=%s ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" exec %s "$@"\n' \
            "$LTXVFS_PRELOAD" "$2" >"$TMP/bin/$1"
        chmod +x "$TMP/bin/$1"
    done
fi
service() { # NAME: the service's command with its environment, here; stdout in $TMP/NAME.out
    "$PY" - "$TMP/default.yaml" "$1" "$SVC_URL" "$SRC/examples" "$TMP/$1.cmd" "$TMP/$1.env" <<'PY'
import sys, yaml
compose, name, url, examples, cmdf, envf = sys.argv[1:]
s = yaml.safe_load(open(compose))["services"][name]
# compose turns $$ into $ when it runs a command (its config output keeps $$)
sub = lambda v: str(v).replace("$$", "$").replace("http://s3:9000", url).replace("/opt/ltxvfs/examples", examples)
open(cmdf, "w").write("\0".join(sub(a) for a in s["command"]))
open(envf, "w").write("\0".join(f"{k}={sub(v)}" for k, v in s["environment"].items()))
PY
    local cmd envs
    mapfile -d '' cmd <"$TMP/$1.cmd"
    mapfile -d '' envs <"$TMP/$1.env"
    env -i PATH="$TMP/bin:/usr/bin:/bin" TMPDIR="$TMP" LTXVFS_EXTENSION="$LTXVFS_BUILD_DIR/litestream-vfs" \
        "${envs[@]}" ${2:+timeout "$2"} "${cmd[@]}" >"$TMP/$1.out" 2>"$TMP/$1.err"
}
service writer || fail "the writer service's command failed" "$(cat "$TMP/writer.out" "$TMP/writer.err")"
for i in 1 2 3; do
    grep -qx "docker-$i: 5 notes durable at TXID $(printf '%016x' $((2 * i)))" "$TMP/writer.out" ||
        fail "the writer service's round $i" "$(cat "$TMP/writer.out")"
done
pass "the writer service's command (app-wait, the C example, three rounds) writes TXIDs 1 to 6"
rc=0
service reader 4 || rc=$?
[ "$rc" = 124 ] || fail "the reader service's loop ended by itself (status $rc)" "$(cat "$TMP/reader.err")"
grep -qx 'txid 0000000000000006' "$TMP/reader.out" || fail "the reader service's output" "$(cat "$TMP/reader.out" "$TMP/reader.err")"
grep -qx '15|docker-3|note 5 from docker-3' "$TMP/reader.out" || fail "the reader does not see the last note" "$(cat "$TMP/reader.out")"
[ "$(grep -c '^time travel to .*: \(3\|8\|13\) notes$' "$TMP/reader.out")" -ge 3 ] ||
    fail "the reader's time travel" "$(cat "$TMP/reader.out")"
pass "the reader service's command (app-wait, the Python example, in a loop) reads all 15 notes and travels to each mark"

stop "$svc_pid"
rc=0
hrun >"$TMP/health.out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "the HEALTHCHECK command passes with fakes3 stopped"
pass "the HEALTHCHECK command fails (status $rc) once fakes3 is stopped"
echo "$passed passed, 0 failed"
