#!/usr/bin/env bash
# test_docs_surface: the docs and the programs name the same things, both ways, read from the
# programs themselves so the test follows the code:
#
#  - fakes3: every flag in `fakes3 --help` and `fakes3 ctl --help` appears in docs/fakes3.md, and
#    every ctl command; every `--flag` docs/fakes3.md and docs/chaos.md mention exists in those
#    helps; every admin endpoint (/_fakes3/...) in fakes3/ and chaos/ sources is in docs/fakes3.md
#    and every one the docs name is in the sources.
#  - ltxctl: every command of `ltxctl --help` has its section in docs/ltxctl.md; every flag of
#    `ltxctl --help` and of each `ltxctl CMD --help` appears there (as -name or --name: ltxctl
#    takes either); every `--flag` docs/ltxctl.md mentions exists in some ltxctl help.
#  - the VFS: every environment variable and URI parameter of the settings table in vfs/config.c,
#    every LITESTREAM_* variable vfs/ reads with getenv, and every litestream_* pragma or function
#    named in vfs/extension.c appears in docs/vfs.md; every LITESTREAM_* variable and litestream_*
#    name docs/vfs.md mentions exists in the sources.
#
# Flags of other programs (curl, aws, cmake, the benchmarks, ...) are told apart by their
# paragraph: a `--flag` not in our helps is a finding unless its paragraph runs one of those.
# Each finding is printed; any finding fails the test.
set -euo pipefail
: "${LTXVFS_BUILD_DIR:?}" "${LTXVFS_SOURCE_DIR:?}"
B="$LTXVFS_BUILD_DIR"
S="$LTXVFS_SOURCE_DIR"
for f in "$B/fakes3" "$B/ltxctl"; do [ -x "$f" ] || { echo "FAIL: no $f" >&2; exit 1; }; done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

"$B/fakes3" --help >"$TMP/fakes3.help" 2>&1
"$B/fakes3" ctl --help >"$TMP/ctl.help" 2>&1
"$B/ltxctl" --help >"$TMP/ltxctl.help" 2>&1
cmds=$(sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p' "$TMP/ltxctl.help")
[ -n "$cmds" ] || { echo "FAIL: no commands in ltxctl --help" >&2; exit 1; }
for c in $cmds; do
    "$B/ltxctl" "$c" --help >"$TMP/ltxctl-$c.help" 2>&1 || true
done

/usr/bin/python3 - "$TMP" "$S" $cmds <<'PY'
import glob, os, re, sys

tmp, src, cmds = sys.argv[1], sys.argv[2], sys.argv[3:]
read = lambda p: open(p, encoding="utf-8").read()
findings, checked = [], 0

FLAG = re.compile(r"(?<![\w-])(--?[a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?![\w-])")

def help_flags(text):
    """Flags a help text defines: on its option lines (the first column, up to two spaces, e.g.
    '  -h, --help   ...', '  --listen ADDR:PORT  ...') and in its usage lines ('Usage: ...',
    a line that starts with the program's name, a continued '[...]' line)."""
    out = set()
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("-"):
            out.update(FLAG.findall(re.split(r"\s{2,}", s)[0]))
        elif (s.lower().startswith("usage:") or re.match(r"(ltxctl|fakes3)( |$)", s)
              or (line.startswith(" " * 10) and s.startswith("["))):
            out.update(FLAG.findall(s))
    return out

def name(flag):
    return flag.lstrip("-")

def in_doc(flag, doc, dashes):
    """flag appears in doc as -name / --name (dashes: which spellings count)."""
    pats = [re.escape(d + name(flag)) for d in dashes]
    return re.search(r"(?<![\w-])(?:%s)(?![\w-])" % "|".join(pats), doc) is not None

def finding(msg):
    findings.append(msg)

OTHER_TOOLS = re.compile(r"\bcurl\b|\baws\b|awscli|\bcmake\b|bench_|\brclone\b|\bs3cmd\b|\bnpm\b|"
                         r"\bdocker\b|\bboto3\b|\bgit\b|\bctest\b")

def doc_flags(doc):
    """(flag, paragraph) for every --flag a doc mentions."""
    for para in re.split(r"\n\s*\n", doc):
        for f in re.findall(r"(?<![\w-])(--[a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?![\w-])", para):
            yield f, para

# ---- fakes3 --------------------------------------------------------------------------------
fdoc = read(os.path.join(src, "docs/fakes3.md"))
cdoc = read(os.path.join(src, "docs/chaos.md"))
fhelp = help_flags(read(os.path.join(tmp, "fakes3.help")))
chelp = help_flags(read(os.path.join(tmp, "ctl.help")))
if len(fhelp) < 10 or len(chelp) < 5:
    finding(f"too few flags parsed from the fakes3 helps: {sorted(fhelp)} {sorted(chelp)}")
for f in sorted(fhelp | chelp):
    checked += 1
    if not in_doc(f, fdoc, ["--"] if f.startswith("--") else ["-"]):
        finding(f"docs/fakes3.md: no {f} (in fakes3{' ctl' if f in chelp - fhelp else ''} --help)")
ctl_cmds = set()
for line in read(os.path.join(tmp, "ctl.help")).splitlines():
    m = re.match(r"^  ([a-z]+(?: [a-z]+)?)(?: [A-Z\[].*?)?\s{2,}", line)
    if m and not line.strip().startswith("-"):
        ctl_cmds.add(m.group(1))
if not ctl_cmds:
    finding("no commands parsed from fakes3 ctl --help")
for c in sorted(ctl_cmds):
    checked += 1
    if f"fakes3 ctl {c}" not in fdoc:
        finding(f"docs/fakes3.md: no `fakes3 ctl {c}` (a command of fakes3 ctl --help)")
for docname, doc in (("docs/fakes3.md", fdoc), ("docs/chaos.md", cdoc)):
    for f, para in doc_flags(doc):
        checked += 1
        if f not in fhelp | chelp and not OTHER_TOOLS.search(para):
            finding(f"{docname}: {f} is not a flag of fakes3 --help or fakes3 ctl --help")
code_eps = set()
for p in glob.glob(os.path.join(src, "fakes3/*.c")) + glob.glob(os.path.join(src, "chaos/*.c")):
    code_eps.update(re.findall(r'"(/_fakes3/[a-z]+)', read(p)))
if not code_eps:
    finding("no /_fakes3/ endpoints found in fakes3/ and chaos/")
for e in sorted(code_eps):
    checked += 1
    if e not in fdoc:
        finding(f"docs/fakes3.md: no endpoint {e} (in the fakes3 sources)")
for e in sorted(set(re.findall(r"/_fakes3/[a-z]+", fdoc + cdoc))):
    checked += 1
    if e not in code_eps:
        finding(f"docs: endpoint {e} is not in the fakes3 sources")

# ---- ltxctl --------------------------------------------------------------------------------
ldoc = read(os.path.join(src, "docs/ltxctl.md"))
lhelp = help_flags(read(os.path.join(tmp, "ltxctl.help")))
per_cmd = {}
for c in cmds:
    checked += 1
    if not re.search(r"^#+ .*\b%s\b" % re.escape(c), ldoc, re.M) and f"`{c}" not in ldoc:
        finding(f"docs/ltxctl.md: no section or table entry for `ltxctl {c}`")
    if c in ("help", "version"):  # commands without flags of their own
        continue
    text = read(os.path.join(tmp, f"ltxctl-{c}.help"))
    if "Usage:" not in text:
        finding(f"ltxctl {c} --help prints no usage")
    per_cmd[c] = help_flags(text)
all_l = lhelp.union(*per_cmd.values())
if len(all_l) < 15:
    finding(f"too few flags parsed from the ltxctl helps: {sorted(all_l)}")
for c, flags in sorted(per_cmd.items()):
    for f in sorted(flags):
        checked += 1
        if not in_doc(f, ldoc, ["-", "--"]):
            finding(f"docs/ltxctl.md: no {f} (in ltxctl {c} --help)")
l_names = {name(f) for f in all_l}
for f, para in doc_flags(ldoc):
    checked += 1
    if name(f) not in l_names and not OTHER_TOOLS.search(para):
        finding(f"docs/ltxctl.md: {f} is not a flag of any ltxctl help")

# ---- the VFS -------------------------------------------------------------------------------
vdoc = read(os.path.join(src, "docs/vfs.md"))
conf = read(os.path.join(src, "vfs/config.c"))
table = re.search(r"settings\[\]\s*=\s*\{(.*?)\n\};", conf, re.S)
if not table:
    finding("vfs/config.c: the settings table was not found")
    table_text = ""
else:
    table_text = table.group(1)
rows = re.findall(r'\{\s*"(LITESTREAM_[A-Z0-9_]+)",\s*(NULL|"([a-z0-9_]+)")', table_text)
if len(rows) < 10:
    finding(f"vfs/config.c: only {len(rows)} settings parsed")
envs = {r[0] for r in rows}
uris = {r[2] for r in rows if r[2]}
vsrc = "".join(read(p) for p in glob.glob(os.path.join(src, "vfs/*.[ch]")))
envs |= set(re.findall(r'getenv\("(LITESTREAM_[A-Z0-9_]+)"\)', vsrc))
for e in sorted(envs):
    checked += 1
    if f"`{e}`" not in vdoc:
        finding(f"docs/vfs.md: no `{e}` (read by vfs/)")
for u in sorted(uris):
    checked += 1
    if f"`{u}`" not in vdoc:
        finding(f"docs/vfs.md: no URI parameter `{u}` (vfs/config.c)")
ext = read(os.path.join(src, "vfs/extension.c"))
sqlnames = set(re.findall(r'"(litestream_[a-z_]+)"', ext))
if len(sqlnames) < 5:
    finding(f"vfs/extension.c: only {sorted(sqlnames)} litestream_* names found")
for n in sorted(sqlnames):
    checked += 1
    if not re.search(r"`(?:PRAGMA )?%s\b" % re.escape(n), vdoc):
        finding(f"docs/vfs.md: no `{n}` (a pragma or function of vfs/extension.c)")
allsrc = vsrc + "".join(read(p) for p in glob.glob(os.path.join(src, "lib/*.[ch]")))
for e in sorted(set(re.findall(r"\bLITESTREAM_[A-Z0-9_]+\b", vdoc))):
    checked += 1
    if e not in allsrc:
        finding(f"docs/vfs.md: {e} is read nowhere in vfs/ or lib/")
for n in sorted(set(re.findall(r"`(?:PRAGMA |SELECT )?(litestream_[a-z_]+)", vdoc))):
    checked += 1
    if n not in sqlnames:
        finding(f"docs/vfs.md: {n} is not a pragma or function of vfs/extension.c")

# ---- the newcomer's pages: what they name must exist -------------------------------------------
for page in ("getting-started.md", "troubleshooting.md", "compatibility.md"):
    path = os.path.join(src, "docs", page)
    if not os.path.exists(path):
        finding(f"docs/{page} is missing")
        continue
    doc = read(path)
    for f, para in doc_flags(doc):
        checked += 1
        if f not in fhelp | chelp and name(f) not in l_names and not OTHER_TOOLS.search(para) \
                and not re.search(r"PYTHON_CONFIGURE_OPTS|\bpyenv\b", para):
            finding(f"docs/{page}: {f} is not a flag of fakes3, fakes3 ctl or ltxctl")
    for e in sorted(set(re.findall(r"\bLITESTREAM_[A-Z0-9_]+\b", doc))):
        checked += 1
        if e not in allsrc:
            finding(f"docs/{page}: {e} is read nowhere in vfs/ or lib/")
    for n in sorted(set(re.findall(r"\b(litestream_[a-z_]+)\b", doc))):
        checked += 1
        if n not in sqlnames:
            finding(f"docs/{page}: {n} is not a pragma or function of vfs/extension.c")

if os.environ.get("DOCS_SURFACE_VERBOSE"):
    print("fakes3:", sorted(fhelp), "\nctl:", sorted(chelp), sorted(ctl_cmds), "\nltxctl:",
          {c: sorted(v) for c, v in per_cmd.items()}, sorted(lhelp), "\nvfs:", sorted(envs),
          sorted(uris), sorted(sqlnames), "\nendpoints:", sorted(code_eps))
for f in dict.fromkeys(findings):
    print("FAIL: " + f, file=sys.stderr)
print(f"{checked} names checked, {len(findings)} missing or unknown")
sys.exit(1 if findings else 0)
PY
