# lib.sh: what the ltxctl replica tests share (sourced by tests/cli/test_ltxctl_replica*.sh), on
# top of tests/cli/fakes3/lib.sh (a real fakes3 on a free port, pass/fail, the scratch folder $TMP).
#
#   LTXCTL, VEC (the LTX vectors), S3URL PREFIX (an s3:// URL for the fakes3 started by start_s3)
#   start_s3 [ARGS...]    fakes3 --bucket bkt (--memory unless --data-dir), AWS_* set for it
#   put_s3 DIR PREFIX     uploads the tree DIR (LLLL/<min>-<max>.ltx) under s3://bkt/PREFIX/ with
#                         aws s3 cp --recursive (an independent S3 client)
#   layout_file DIR NAME LEVEL...   copies vector NAME to the file replica DIR at LEVEL, under the
#                         name its header gives, with the mtime set to its header timestamp
#   run NAME CMD...       runs CMD, keeping stdout/stderr in $TMP/NAME.out/.err; sets $RC
#   has FILE TEXT / lacks FILE TEXT   assertions on a captured output

# shellcheck source=../fakes3/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../fakes3/lib.sh"

LTXCTL="$LTXVFS_BUILD_DIR/ltxctl"
[ -x "$LTXCTL" ] || fail "no executable $LTXCTL"
: "${LTXVFS_TESTDATA:?set LTXVFS_TESTDATA}"
VEC="$LTXVFS_TESTDATA/ltx"
LTXDIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

start_s3() {
    local a mem=--memory
    for a in "$@"; do [ "$a" != --data-dir ] || mem=; done
    start s3 $mem --bucket bkt "$@"
    export AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=$REGION
    unset AWS_ENDPOINT_URL AWS_PROFILE AWS_SESSION_TOKEN
    export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
    S3_ENDPOINT=$URL
}

S3URL() {
    echo "s3://bkt/$1?endpoint=$S3_ENDPOINT"
}

put_s3() {
    command -v aws >/dev/null || fail "needs awscli (aws)"
    aws --endpoint-url "$S3_ENDPOINT" s3 cp --recursive --only-show-errors "$1" "s3://bkt/$2/" \
        >"$TMP/aws.out" 2>&1 || fail "aws s3 cp --recursive $1 s3://bkt/$2/" "$(cat "$TMP/aws.out")"
}

# ltx_name FILE: "<min>-<max>.ltx" from the file's header; ltx_ts FILE: its timestamp in ms.
ltx_name() {
    python3 -c 'import struct,sys; b=open(sys.argv[1],"rb").read(100); m,x=struct.unpack(">QQ",b[16:32]); print("%016x-%016x.ltx"%(m,x))' "$1"
}
ltx_ts() {
    python3 -c 'import struct,sys; b=open(sys.argv[1],"rb").read(100); print(struct.unpack(">q",b[32:40])[0])' "$1"
}

# put_file DIR LEVEL FILE: FILE into the file replica DIR (ltx/<level>/), mtime = header time.
put_file() {
    local dir=$1 level=$2 f=$3 name ts
    name=$(ltx_name "$f")
    ts=$(ltx_ts "$f")
    mkdir -p "$dir/ltx/$level"
    cp "$f" "$dir/ltx/$level/$name"
    touch -d "@$((ts / 1000))" "$dir/ltx/$level/$name"
}

# put_tree DIR LEVEL FILE: FILE into an S3-shaped tree (DIR/<LLLL>/<name>) for put_s3.
put_tree() {
    local dir=$1 level=$2 f=$3 ll
    ll=$(printf '%04x' "$level")
    mkdir -p "$dir/$ll"
    cp "$f" "$dir/$ll/$(ltx_name "$f")"
}

run() {
    local name=$1
    shift
    RC=0
    "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" || RC=$?
}

has() {
    grep -qF -- "$2" "$TMP/$1" || fail "$1 lacks: $2" "$(cat "$TMP/$1")"
}
lacks() {
    ! grep -qF -- "$2" "$TMP/$1" || fail "$1 has: $2" "$(cat "$TMP/$1")"
}
rc_is() {
    [ "$RC" -eq "$1" ] || fail "$2: exit status $RC, want $1" "$(cat "$TMP/$3.out" "$TMP/$3.err" 2>/dev/null)"
}
