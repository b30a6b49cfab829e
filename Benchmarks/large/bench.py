#!/usr/bin/env python3
"""takeover-bridge against the OpenLDAP tools on the same server, in the same run.

Run through scripts/bench.sh (which installs what is missing and builds the release
binary). For each case (the --users case and the one ten times smaller) it

  1. generates the case with generate.py (cached in ROOT/tb-bench-N, reports refreshed
     when older than a day),
  2. loads it into a private slapd with `slapadd -q` (cached pristine copy of the
     database), on loopback only, as the non-root service account with a limits clause
     and the indexes a real deployment has,
  3. times, over --runs runs, medians:
       users    the bridge's user read vs `ldapsearch -E pr=N/noprompt`, same base,
                filter and attributes (taken from slapd's own log of the bridge's
                search), same bind DN, output to /dev/null
       reports  the bridge's reading of the reports folder
       plan     `plan` end to end: wall time and peak RSS (/usr/bin/time -v)
       apply    the first apply on a fresh copy of the directory vs `ldapmodify -f` of
                `plan --format ldif` on another fresh copy
       again    a second apply, with the server's own counters of add, modify, delete
                and modrdn operations read before and after (must not move)
  4. prints a table and writes ROOT/tb-bench-N/results.json.

The slapd process is a child of this script, stopped on every exit path.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GENERATOR = os.path.join(HERE, "generate.py")
SCHEMA_DIR = "/etc/ldap/schema"
TIMEOUT = 3600  # no single step may take longer; the script always ends
LEASE_RDN = "cn=takeover-bridge-lease,"  # the bridge's run lease (Lease.swift), not a binding group


def log(msg: str):
    print("bench: " + msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def find_tool(name: str) -> str:
    path = shutil.which(name) or ("/usr/sbin/" + name if os.path.exists("/usr/sbin/" + name) else None)
    if not path:
        raise BenchError("%s is not installed (scripts/bench.sh installs it)" % name)
    return path


def file_hash(*paths: str) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def sparse_copy(src: str, dst: str):
    """cp --sparse=always: an mdb file is mostly holes up to its maxsize."""
    run(["cp", "--sparse=always", src, dst])


def free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(cmd, *, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, ok=(0,), env=None, timeout=TIMEOUT):
    """Runs cmd; returns (seconds, CompletedProcess). Raises when the exit code is not in ok."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=stdout, stderr=stderr, env=env, timeout=timeout)
    dt = time.perf_counter() - t0
    if p.returncode not in ok:
        err = p.stderr.decode("utf-8", "replace") if isinstance(p.stderr, bytes) else ""
        raise BenchError("%s exited %d\n%s" % (" ".join(cmd[:4]), p.returncode, err[-3000:]))
    return dt, p


def run_rss(cmd, *, stdout=subprocess.DEVNULL, ok=(0,), env=None):
    """Runs cmd under /usr/bin/time -v; returns (seconds, max RSS in bytes, CPU seconds, CompletedProcess)."""
    with tempfile.NamedTemporaryFile("r", prefix="tb-bench-time-", suffix=".txt") as tf:
        dt, p = run(["/usr/bin/time", "-v", "-o", tf.name] + cmd, stdout=stdout, ok=ok, env=env)
        text = open(tf.name).read()
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    u = re.search(r"User time \(seconds\): ([0-9.]+)", text)
    k = re.search(r"System time \(seconds\): ([0-9.]+)", text)
    if not (m and u and k):
        raise BenchError("/usr/bin/time -v printed no maximum resident set size or CPU times")
    return dt, int(m.group(1)) * 1024, float(u.group(1)) + float(k.group(1)), p


# --------------------------------------------------------------------------- the case

def ensure_case(users: int, root: str, seed: int) -> str:
    out = os.path.join(root, "tb-bench-%d" % users)
    stamp_path = os.path.join(out, "generated.stamp")
    want = "%s seed=%d users=%d" % (file_hash(GENERATOR), seed, users)
    have = open(stamp_path).read().strip() if os.path.exists(stamp_path) else ""
    if have != want:
        log("generating the %d-user case into %s" % (users, out))
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.makedirs(out, mode=0o755)
        run([sys.executable, GENERATOR, "--users", str(users), "--seed", str(seed), "--out", out], stderr=None)
        with open(stamp_path, "w") as f:
            f.write(want + "\n")
        return out
    with open(os.path.join(out, "case.json")) as f:
        case = json.load(f)
    if time.time() - case["now"] > 86_400:
        # Report times follow the generation time; keep every device active.
        log("refreshing the reports of the %d-user case (generated %.1f days ago)"
            % (users, (time.time() - case["now"]) / 86_400))
        run([sys.executable, GENERATOR, "--users", str(users), "--seed", str(seed), "--out", out, "--only", "reports"],
            stderr=None)
    return out


# --------------------------------------------------------------------------- slapd

class Slapd:
    """A private slapd for one case: conf built like scripts/test-slapd.sh builds its own
    (same schemas plus this repository's schema/*.schema, mdb, a non-root service account
    that reads everything and writes only under ou=bindings, unlimited limits for it), the
    indexes a deployment has, and cn=Monitor readable by the rootdn for the write counters."""

    def __init__(self, case_dir: str, base: str, bind_dn: str, nosync: bool):
        self.case_dir = case_dir
        self.dir = os.path.join(case_dir, "slapd")
        self.db = os.path.join(self.dir, "db")
        self.pristine = os.path.join(self.dir, "pristine")
        self.conf = os.path.join(self.dir, "slapd.conf")
        self.log = os.path.join(self.dir, "slapd.log")
        self.base = base
        self.bind_dn = bind_dn
        self.bind_pw_file = os.path.join(case_dir, "bind.pw")
        self.root_dn = "cn=admin," + base
        self.root_pw_file = os.path.join(self.dir, "root.pw")
        self.nosync = nosync
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.uri = ""

    def conf_text(self, loglevel: str) -> str:
        lines = ["# generated by Benchmarks/large/bench.py, like scripts/test-slapd.sh"]
        for s in ("core", "cosine", "nis", "inetorgperson"):
            lines.append("include %s/%s.schema" % (SCHEMA_DIR, s))
        schema = os.path.join(REPO, "schema")
        if os.path.isdir(schema):
            for name in sorted(os.listdir(schema)):
                if name.endswith(".schema"):
                    lines.append("include " + os.path.join(schema, name))
        root_hash = self.root_hash()
        lines.append("""pidfile {d}/slapd.pid
argsfile {d}/slapd.args
loglevel {loglevel}
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload back_monitor
sizelimit 500

database mdb
suffix "{base}"
rootdn "{root}"
rootpw {root_hash}
directory {db}
maxsize 8589934592
{nosync}
index objectClass eq
index uid,cn,member,memberUid,uniqueMember eq
index localUserAccount eq

{access}
database monitor
access to *
    by dn.exact="{root}" read
    by * none
""".format(d=self.dir, loglevel=loglevel, base=self.base, root=self.root_dn, root_hash=root_hash, db=self.db,
           nosync="dbnosync" if self.nosync else "# dbnosync off: every write waits for the disk",
           access=self.access_rules()))
        return "\n".join(lines)

    def access_rules(self) -> str:
        """The service account's limits and the access rules, shared with
        scripts/test-slapd.sh: scripts/slapd-access.conf with the base and bind DN."""
        with open(os.path.join(REPO, "scripts", "slapd-access.conf")) as f:
            text = f.read()
        return text.replace("@BASE@", self.base).replace("@BIND_DN@", self.bind_dn)

    def root_hash(self) -> str:
        if not os.path.exists(self.root_pw_file):
            os.makedirs(self.dir, exist_ok=True)
            pw = base64.urlsafe_b64encode(os.urandom(18)).decode()
            fd = os.open(self.root_pw_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(pw)
        pw = open(self.root_pw_file).read()
        # Deterministic salt from the password: the conf text (and so the cache key) stays stable.
        salt = hashlib.sha256(pw.encode()).digest()[:8]
        return "{SSHA}" + base64.b64encode(hashlib.sha1(pw.encode() + salt).digest() + salt).decode()

    def write_conf(self, loglevel: str = "none"):
        os.makedirs(self.dir, exist_ok=True)
        with open(self.conf, "w") as f:
            f.write(self.conf_text(loglevel))
        os.chmod(self.conf, 0o600)

    def load(self):
        """The pristine database: slapadd -q of directory.ldif, cached by the LDIF and conf."""
        ldif = os.path.join(self.case_dir, "directory.ldif")
        self.write_conf()
        key = file_hash(ldif, self.conf)
        stamp = os.path.join(self.pristine, "loaded.stamp")
        if os.path.exists(stamp) and open(stamp).read().strip() == key:
            return None
        for d in (self.db, self.pristine):
            if os.path.isdir(d):
                shutil.rmtree(d)
            os.makedirs(d)
        log("slapadd -q %s" % ldif)
        dt, _ = run([find_tool("slapadd"), "-q", "-f", self.conf, "-l", ldif])
        log("loaded in %.1f s" % dt)
        for name in os.listdir(self.db):
            if name.endswith(".mdb") and name != "lock.mdb":
                sparse_copy(os.path.join(self.db, name), os.path.join(self.pristine, name))
        with open(stamp, "w") as f:
            f.write(key + "\n")
        return dt

    def restore(self):
        """Back to the pristine database (server stopped): an identical copy of the directory."""
        assert self.proc is None
        for name in os.listdir(self.db):
            os.unlink(os.path.join(self.db, name))
        for name in os.listdir(self.pristine):
            if name.endswith(".mdb") and name != "lock.mdb":
                sparse_copy(os.path.join(self.pristine, name), os.path.join(self.db, name))

    def start(self, loglevel: str = "none"):
        assert self.proc is None
        self.write_conf(loglevel)
        if not self.port:
            self.port = free_port()
        self.uri = "ldap://127.0.0.1:%d/" % self.port
        logf = open(self.log, "ab")
        for _ in range(3):
            self.proc = subprocess.Popen([find_tool("slapd"), "-d", "0" if loglevel == "none" else loglevel,
                                          "-h", self.uri, "-f", self.conf],
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
            deadline = time.time() + 30
            while time.time() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                        logf.close()
                        return
                except OSError:
                    time.sleep(0.01)
            self.stop()
            self.port = free_port()
            self.uri = "ldap://127.0.0.1:%d/" % self.port
        logf.close()
        raise BenchError("slapd did not start; see %s" % self.log)

    def stop(self):
        p = self.proc
        if p is None:
            return
        self.proc = None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def ldap_args(self, root=False):
        if root:
            return ["-x", "-H", self.uri, "-D", self.root_dn, "-y", self.root_pw_file]
        return ["-x", "-H", self.uri, "-D", self.bind_dn, "-y", self.bind_pw_file]

    def write_counters(self) -> dict:
        """Completed add/modify/delete/modrdn operations since slapd started (cn=Monitor)."""
        _, p = run([find_tool("ldapsearch")] + self.ldap_args(root=True) +
                   ["-LLL", "-o", "ldif-wrap=no", "-b", "cn=Operations,cn=Monitor", "-s", "one",
                    "(objectClass=*)", "monitorOpCompleted"], stdout=subprocess.PIPE)
        out = {}
        dn = None
        for line in p.stdout.decode().splitlines():
            if line.startswith("dn: "):
                dn = line[4:].split(",")[0].split("=")[1].lower()
            elif line.startswith("monitorOpCompleted: ") and dn:
                out[dn] = int(line.split(": ")[1])
        missing = {"add", "modify", "delete", "modrdn"} - out.keys()
        if missing:
            raise BenchError("cn=Monitor does not count %s" % ", ".join(sorted(missing)))
        return {k: out[k] for k in ("add", "modify", "delete", "modrdn")}

    def dump(self, base: str) -> dict:
        """dn -> {attribute: sorted values} of a subtree, user attributes only, for comparison."""
        _, p = run([find_tool("ldapsearch")] + self.ldap_args(root=True) +
                   ["-LLL", "-o", "ldif-wrap=no", "-b", base, "(objectClass=*)"], stdout=subprocess.PIPE)
        entries = {}
        cur = None
        for line in p.stdout.decode("utf-8").splitlines():
            if not line:
                cur = None
                continue
            attr, sep, value = line.partition(":")
            if value.startswith(":"):
                value = base64.b64decode(value[1:].strip()).decode("utf-8")
            else:
                value = value.strip()
            if attr == "dn":
                cur = {}
                entries[value.lower()] = cur
            elif cur is not None:
                cur.setdefault(attr.lower(), []).append(value)
        for e in entries.values():
            for k in e:
                e[k].sort()
        return {dn: e for dn, e in entries.items() if not dn.startswith(LEASE_RDN)}


# --------------------------------------------------------------------------- the bridge

class Bridge:
    def __init__(self, binary: str, case_dir: str):
        self.binary = binary
        self.case_dir = case_dir
        self.config = os.path.join(case_dir, "config.toml")
        self.state = os.path.join(case_dir, "state")

    def write_config(self, uri: str):
        run([sys.executable, GENERATOR, "--out", self.case_dir, "--only", "config", "--uri", uri,
             "--base", json.load(open(os.path.join(self.case_dir, "case.json")))["base"]])
        # A reports folder over the default [devices] max_reports_size (512 MiB; the
        # million-user case holds about 2.2 GiB) gets the limit a deployment of that size
        # would set: twice what the folder holds, in whole MiB.
        folder = os.path.join(self.case_dir, "reports")
        total = sum(e.stat().st_size for e in os.scandir(folder) if e.is_file())
        if total > 512 * 2**20:
            text = open(self.config).read()
            limit = '[devices]\nmax_reports_size = "%dMiB"\n' % (2 * total // 2**20 + 1)
            with open(self.config, "w") as f:
                f.write(text.replace("[devices]\n", limit, 1))

    def reset_state(self):
        if os.path.isdir(self.state):
            shutil.rmtree(self.state)
        os.makedirs(self.state, mode=0o700)

    def cmd(self, *args: str) -> list[str]:
        return [self.binary, "-c", self.config] + list(args)

    @staticmethod
    def env():
        e = dict(os.environ)
        e.pop("TAKEOVER_BRIDGE_CONFIG", None)
        return e


def logfmt_pairs(text: str) -> list[dict]:
    """Every logfmt line of text as a dict."""
    out = []
    pat = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')
    for line in text.splitlines():
        pairs = {}
        for k, v in pat.findall(line):
            if v.startswith('"'):
                v = v[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            pairs[k] = v
        if pairs:
            out.append(pairs)
    return out


def seconds(value: str) -> float | None:
    """A timing value as the bridge logs it: '0.891', '891ms', '0.891s'."""
    m = re.fullmatch(r"([0-9.]+)\s*(ms|s|us)?", value.strip())
    if not m:
        return None
    n = float(m.group(1))
    return n / 1000 if m.group(2) == "ms" else n / 1e6 if m.group(2) == "us" else n


def bridge_timing(stderr: str, names: tuple[str, ...]) -> float | None:
    """The first of `names` found as a timing key in the bridge's logfmt diagnostics, in
    seconds (a key ending in _ms holds milliseconds)."""
    for pairs in logfmt_pairs(stderr):
        for n in names:
            if n in pairs:
                s = seconds(pairs[n])
                if s is not None:
                    return s / 1000 if n.endswith("_ms") and not pairs[n].endswith("s") else s
    return None


LOG_LINE = re.compile(r'^([0-9a-f]{8})\.([0-9a-f]{8}) \S+ conn=(\d+) op=(\d+) '
                      r'(?:SRCH base="((?:[^"\\]|\\.)*)"|SEARCH RESULT .*?nentries=(\d+))', re.M)


def search_span(log_text: str, base: str) -> tuple[float, int] | None:
    """From slapd's stats log: seconds from the first request of the paged search of `base`
    to its last result, and the entries returned. The server's view of one client's read,
    the same for the bridge and for ldapsearch."""
    ops = {}
    first = last = None
    entries = 0
    for m in LOG_LINE.finditer(log_text):
        ts = int(m.group(1), 16) + int(m.group(2), 16) / 1e9
        key = (m.group(3), m.group(4))
        if m.group(5) is not None:
            if m.group(5).lower() == base.lower():
                ops[key] = True
                first = ts if first is None else min(first, ts)
        elif key in ops:
            last = ts if last is None else max(last, ts)
            entries += int(m.group(6))
    if first is None or last is None:
        return None
    return last - first, entries


USERS_TIMING_KEYS = ("users_ms", "read_users_ms", "users_seconds", "users_s")
REPORTS_TIMING_KEYS = ("reports_ms", "read_reports_ms", "reports_seconds", "reports_s")


WRITE_LINE = re.compile(r'^([0-9a-f]{8})\.([0-9a-f]{8}) \S+ conn=(\d+) op=(\d+) '
                        r'(?:(ADD|MOD|DEL|MODRDN) dn="([^"]{0,40})|RESULT tag=(\d+) err=(\d+))', re.M)


def write_span(log_text: str) -> tuple[float, int, int] | None:
    """From slapd's stats log: seconds from the first write request (add, modify, delete,
    modrdn) to the last write's result, the number of writes, and how many failed. The
    bridge's lease entry is not a write of the plan: left out."""
    ops = set()
    first = last = None
    n = failed = 0
    for m in WRITE_LINE.finditer(log_text):
        ts = int(m.group(1), 16) + int(m.group(2), 16) / 1e9
        key = (m.group(3), m.group(4))
        if m.group(5):
            if m.group(6).lower().startswith(LEASE_RDN):
                continue
            ops.add(key)
            first = ts if first is None else min(first, ts)
        elif key in ops and m.group(7) in ("103", "105", "107", "109"):
            last = ts if last is None else max(last, ts)
            n += 1
            failed += m.group(8) != "0"
    if first is None or last is None:
        return None
    return last - first, n, failed


def phase_timings(stderr: str) -> dict:
    """Every *_ms key of the bridge's "run finished" summary line, in seconds."""
    out = {}
    for pairs in logfmt_pairs(stderr):
        if pairs.get("msg") != "run finished":
            continue
        for k, v in pairs.items():
            if k.endswith("_ms"):
                try:
                    out[k] = float(v) / 1000
                except ValueError:
                    pass
    return out


def paged_search_cmd(ldapsearch: str, slapd: "Slapd", search: dict, page_size: int) -> list:
    """ldapsearch with the bridge's bind DN, paging and request (base, scope, filter,
    attributes), output to /dev/null by `run`."""
    return ([ldapsearch] + slapd.ldap_args() + ["-E", "pr=%d/noprompt" % page_size, "-b", search["base"],
                                                "-s", search["scope"], search["filter"]] + search["attrs"])


def count_entries(cmd) -> int:
    """The entries an ldapsearch command returns (its LDIF streamed, never held whole)."""
    n = 0
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as p:
        for line in p.stdout:
            if line.startswith(b"dn: "):
                n += 1
    if p.returncode != 0:
        raise BenchError("%s exited %d" % (" ".join(cmd[:4]), p.returncode))
    return n


def plan_json_facts(path: str) -> dict:
    """summary, conflict kinds and the number of errors of `plan --format json`, read line
    by line (one array element per line): a million-user plan is too big to load whole."""
    facts = {"summary": None, "kinds": {}, "errors": 0}
    section = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith('  "summary": '):
                facts["summary"] = json.loads(line[len('  "summary": '):].rstrip().rstrip(","))
                continue
            m = re.match(r'  "(\w+)": \[$', line)
            if m:
                section = m.group(1)
                continue
            if line.startswith("  ]") or line.startswith('  "'):
                section = None
                continue
            if section == "conflicts":
                kind = json.loads(line.strip().rstrip(",")).get("kind")
                facts["kinds"][kind] = facts["kinds"].get(kind, 0) + 1
            elif section == "errors":
                facts["errors"] += 1
    return facts


def parse_user_search(log_text: str, base: str) -> dict:
    """The bridge's user search as slapd logged it (loglevel stats): base, scope, filter,
    attributes. The ldapsearch leg repeats exactly this request."""
    searches = {}
    for m in re.finditer(r'conn=(\d+) op=(\d+) SRCH base="([^"]*)" scope=(\d) deref=\d filter="((?:[^"\\]|\\.)*)"', log_text):
        searches[(m.group(1), m.group(2))] = {"base": m.group(3), "scope": int(m.group(4)), "filter": m.group(5),
                                              "attrs": []}
    for m in re.finditer(r"conn=(\d+) op=(\d+) SRCH attr=(.*)", log_text):
        key = (m.group(1), m.group(2))
        if key in searches:
            searches[key]["attrs"] += m.group(3).split()
    for s in searches.values():
        if s["base"].lower() == base.lower():
            s["scope"] = {0: "base", 1: "one", 2: "sub", 3: "children"}[s["scope"]]
            return s
    raise BenchError("slapd logged no search of %s by the bridge" % base)


class LogWindow:
    """The part of slapd's log written while a block runs."""

    def __init__(self, slapd: "Slapd"):
        self.path = slapd.log

    def __enter__(self):
        self.offset = os.path.getsize(self.path)
        return self

    def __exit__(self, *exc):
        time.sleep(0.05)  # slapd logs the last result just after sending it
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            self.text = f.read().decode("utf-8", "replace")
        return False


# --------------------------------------------------------------------------- legs

def med(xs):
    return statistics.median(xs) if xs else None


def results_name(args) -> str:
    return "results-sync.json" if args.sync else "results.json"


def wait_for_idle(limit: float, max_wait: float) -> float:
    """Waits (at most max_wait seconds) until the 1-minute load average is below limit:
    other work on a 2-core machine shows up directly in every figure. Returns the wait."""
    t0 = time.time()
    if os.getloadavg()[0] < limit or max_wait <= 0:
        return 0.0
    log("waiting up to %d s for the load average (%.2f) to fall below %.1f" % (max_wait, os.getloadavg()[0], limit))
    while time.time() - t0 < max_wait and os.getloadavg()[0] >= limit:
        time.sleep(5)
    if os.getloadavg()[0] >= limit:
        log("still busy (load average %.2f); measuring anyway" % os.getloadavg()[0])
    return time.time() - t0


def bench_case(users: int, args, binary: str) -> dict:
    case_dir = ensure_case(users, args.root, args.seed)
    idle_wait = wait_for_idle(args.idle_load, args.idle_wait)
    case = json.load(open(os.path.join(case_dir, "case.json")))
    slapd = Slapd(case_dir, case["base"], case["bindDN"], nosync=not args.sync)
    bridge = Bridge(binary, case_dir)
    people = "ou=people," + case["base"]
    res = {"users": users, "case": case, "runs": args.runs, "raw": {}, "dbnosync": not args.sync,
           "loadavgBefore": os.getloadavg(), "idleWaitSeconds": idle_wait}
    raw = res["raw"]
    ldapsearch = find_tool("ldapsearch")
    ldapmodify = find_tool("ldapmodify")
    ok_plan = (0, 2, 3)  # 3: conflicts present (the case has deliberate ones)
    try:
        res["slapaddSeconds"] = slapd.load()
        slapd.restore()
        open(slapd.log, "w").close()

        # --- 1: reading the users, slapd logging operations (stats) for both clients.
        slapd.start(loglevel="stats")
        bridge.write_config(slapd.uri)
        bridge.reset_state()
        # `plan` as an admin runs it: the default text report (to a file, not a terminal).
        plan_cmd = bridge.cmd("plan", "--output", os.path.join(case_dir, "plan.txt"))
        log("%d users: reading users (bridge plan vs ldapsearch), %d runs" % (users, args.runs))
        with LogWindow(slapd) as w:
            run(plan_cmd, ok=ok_plan, env=bridge.env())  # warm-up; shows what the bridge asks for
        # ldapsearch repeats the bridge's own user and device searches (the "read" the
        # plan target is measured against), exactly as slapd logged them.
        search = parse_user_search(w.text, people)
        res["userSearch"] = search
        ls_cmd = paged_search_cmd(ldapsearch, slapd, search, args.page_size)
        res["ldapsearchCommand"] = " ".join(ls_cmd)
        devsearch = parse_user_search(w.text, "ou=devices," + case["base"])
        res["deviceSearch"] = devsearch
        ld_cmd = paged_search_cmd(ldapsearch, slapd, devsearch, args.page_size)
        res["ldapsearchDevicesCommand"] = " ".join(ld_cmd)
        for cmd, what, want in ((ls_cmd, "users", case["users"]), (ld_cmd, "devices", case["devices"])):
            n = count_entries(cmd)
            if n != want:
                raise BenchError("ldapsearch returned %d entries under %s, the case has %d" % (n, what, want))
        for key in ("ldapsearch", "ldapsearchDevices", "ldapsearchRead", "ldapsearchSpan", "bridgeUsersSpan",
                    "bridgeUsers"):
            raw[key] = []
        for r in range(args.runs):
            with LogWindow(slapd) as w:
                dt, _ = run(ls_cmd)
            raw["ldapsearch"].append(dt)
            dd, _ = run(ld_cmd)
            raw["ldapsearchDevices"].append(dd)
            raw["ldapsearchRead"].append(dt + dd)
            span = search_span(w.text, people)
            if not span or span[1] != case["users"]:
                raise BenchError("slapd's log does not show ldapsearch reading %d users: %r" % (case["users"], span))
            raw["ldapsearchSpan"].append(span[0])
            with LogWindow(slapd) as w:
                _, p = run(plan_cmd, ok=ok_plan, env=bridge.env())
            span = search_span(w.text, people)
            if not span or span[1] != case["users"]:
                raise BenchError("slapd's log does not show the bridge reading %d users: %r" % (case["users"], span))
            raw["bridgeUsersSpan"].append(span[0])
            u = bridge_timing(p.stderr.decode("utf-8", "replace"), USERS_TIMING_KEYS)
            if u is not None:
                raw["bridgeUsers"].append(u)
        slapd.stop()

        # --- 2-3: plan end to end (and the reports read inside it), slapd logging nothing.
        slapd.start()
        bridge.write_config(slapd.uri)
        log("%d users: plan end to end, %d runs" % (users, args.runs))
        for key in ("bridgeReports", "planWall", "planRSS", "planCPU"):
            raw[key] = []
        raw["planPhases"] = []
        for r in range(args.runs):
            dt, rss, cpu, p = run_rss(plan_cmd, ok=ok_plan, env=bridge.env())
            raw["planCPU"].append(cpu)
            err = p.stderr.decode("utf-8", "replace")
            raw["planWall"].append(dt)
            raw["planRSS"].append(rss)
            raw["planPhases"].append(phase_timings(err))
            rp = bridge_timing(err, REPORTS_TIMING_KEYS)
            if rp is not None:
                raw["bridgeReports"].append(rp)
            if r == 0:
                res["planStderrTail"] = err[-3000:]
        res["planExit"] = p.returncode
        plan_json = os.path.join(case_dir, "plan.json")
        dt, _ = run(bridge.cmd("plan", "--format", "json", "--output", plan_json), ok=ok_plan, env=bridge.env())
        res["planJsonWall"] = dt
        res["planJsonBytes"] = os.path.getsize(plan_json)
        facts = plan_json_facts(plan_json)
        res["planSummary"] = facts["summary"]
        res["planConflictKinds"] = facts["kinds"]
        res["planErrors"] = facts["errors"]
        # --- 4-5: apply vs ldapmodify on identical copies; a second apply writes nothing.
        ldif = os.path.join(case_dir, "changes.ldif")
        run(bridge.cmd("plan", "--format", "ldif", "--output", ldif), ok=ok_plan, env=bridge.env())
        res["ldifBytes"] = os.path.getsize(ldif)
        with open(ldif, "rb") as f:
            text = f.read()
        res["ldifOperations"] = text.count(b"\nchangetype: ") + (1 if text.startswith(b"changetype: ") else 0)
        del text
        log("%d users: apply vs ldapmodify -f (%d operations), %d runs" % (users, res["ldifOperations"], args.runs))
        for key in ("apply", "applyWriteSpan", "ldapmodify", "ldapmodifyWriteSpan", "applyAgain",
                    "applyAgainWrites", "applyWrites", "applyLeaseWrites", "ldapmodifyWrites", "applyFailed",
                    "ldapmodifyFailed", "planApplied"):
            raw[key] = []
        raw["applyPhases"] = []
        for r in range(args.runs):
            # slapd logs operations (stats) for both writers: the write phase is read from its log.
            slapd.stop()
            slapd.restore()
            slapd.start(loglevel="stats")
            bridge.reset_state()
            c0 = slapd.write_counters()
            with LogWindow(slapd) as w:
                dt, p = run(bridge.cmd("apply"), ok=(0, 3), env=bridge.env())
            raw["apply"].append(dt)
            err = p.stderr.decode("utf-8", "replace")
            raw["applyPhases"].append(phase_timings(err))
            span = write_span(w.text)
            if span:
                raw["applyWriteSpan"].append(span[0])
                raw["applyFailed"].append(span[2])
            c1 = slapd.write_counters()
            # The run's lease (cn=takeover-bridge-lease under ou=bindings) is taken and given
            # back with a write each: counted apart, and left out of the subtree comparison.
            lease = len(re.findall(r'^\S+ \S+ conn=\d+ op=\d+ (?:ADD|MOD|DEL) dn="%s' % re.escape(LEASE_RDN), w.text,
                                   re.M | re.I))
            raw["applyLeaseWrites"].append(lease)
            raw["applyWrites"].append(sum(c1.values()) - sum(c0.values()) - lease)
            dt, p = run(bridge.cmd("apply"), ok=(0, 3), env=bridge.env())
            c2 = slapd.write_counters()
            raw["applyAgain"].append(dt)
            raw["applyAgainWrites"].append({k: c2[k] - c1[k] for k in c2})
            # `plan` of that same tree (its bindings written) on the same server, as an admin
            # runs it the next morning: what a second apply is compared with. The first plan
            # read a tree without bindings from a slapd logging nothing.
            dt, _ = run(plan_cmd, ok=ok_plan, env=bridge.env())
            raw["planApplied"].append(dt)
            if r == 0:
                res["applyStderrTail"] = err[-3000:]
                res["applyAgainStderrTail"] = p.stderr.decode("utf-8", "replace")[-3000:]
                after_bridge = slapd.dump("ou=bindings," + slapd.base)
            slapd.stop()
            slapd.restore()
            slapd.start(loglevel="stats")
            c0 = slapd.write_counters()
            with LogWindow(slapd) as w:
                dt, _ = run([ldapmodify] + slapd.ldap_args() + ["-f", ldif])
            raw["ldapmodify"].append(dt)
            span = write_span(w.text)
            if span:
                raw["ldapmodifyWriteSpan"].append(span[0])
                raw["ldapmodifyFailed"].append(span[2])
            c1 = slapd.write_counters()
            raw["ldapmodifyWrites"].append(sum(c1.values()) - sum(c0.values()))
            if r == 0:
                after_ldapmodify = slapd.dump("ou=bindings," + slapd.base)
                res["sameBindings"] = after_bridge == after_ldapmodify
                res["bindingEntries"] = len(after_bridge)
                if not res["sameBindings"]:
                    a, b = set(after_bridge), set(after_ldapmodify)
                    diff = sorted(a ^ b) or sorted(dn for dn in a if after_bridge[dn] != after_ldapmodify[dn])
                    res["sameBindingsDiff"] = diff[:5]
                del after_bridge, after_ldapmodify
    finally:
        slapd.stop()
    res["loadavgAfter"] = os.getloadavg()
    m = {k: med(v) for k, v in raw.items() if v and not isinstance(v[0], dict)}
    m["applyFailedMax"] = max(raw.get("applyFailed") or [0])
    m["ldapmodifyFailedMax"] = max(raw.get("ldapmodifyFailed") or [0])
    m["applyAgainWritesMax"] = (max(sum(d.values()) for d in raw["applyAgainWrites"])
                                if raw.get("applyAgainWrites") else None)
    for key in ("planPhases", "applyPhases"):
        names = sorted({k for d in raw.get(key, []) for k in d})
        m[key] = {k: med([d[k] for d in raw[key] if k in d]) for k in names}
    res["median"] = m
    with open(os.path.join(case_dir, results_name(args)), "w") as f:
        json.dump(res, f, indent=2, sort_keys=True)
    return res


# --------------------------------------------------------------------------- table

def fmt_s(x):
    return "-" if x is None else ("%.2f s" % x if x >= 0.1 else "%.0f ms" % (x * 1000))


def fmt_n(x):
    return "-" if x is None else "%d" % x


def fmt_mb(x):
    return "-" if x is None else "%.0f MB" % (x / 1e6)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt_x(x):
    return "-" if x is None else "%.2fx" % x


def verdict(value, limit):
    if value is None:
        return "not measured"
    return "met" if value <= limit else "MISSED by %.0f%%" % ((value / limit - 1) * 100)


def machine() -> str:
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = 0
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        mem = 0
    return "%d cores, %s, %.1f GiB" % (os.cpu_count() or 0, model, mem / 2**30)


def environment() -> dict:
    """What the figures came from."""
    def out(cmd):
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            return p.stdout.decode("utf-8", "replace").strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    return {"machine": machine(), "kernel": os.uname().release, "slapd": out([find_tool("slapd"), "-VV"]),
            "swift": out(["swift", "--version"]),
            "commit": out(["git", "-C", REPO, "describe", "--always", "--dirty", "--abbrev=12"]),
            "debian": open("/etc/debian_version").read().strip() if os.path.exists("/etc/debian_version") else "?"}


# Issue 13's targets by case size: the peak RSS of `plan` (bytes); the ratio targets hold
# at these sizes (a case of another size shows its figures without a verdict).
RSS_LIMITS = {100_000: 400e6, 1_000_000: 3e9}
PLAN_VS_READ = 1.6           # plan wall <= 1.6x ldapsearch of the users and devices
APPLY_VS_LDAPMODIFY = 0.7    # apply wall <= plan wall + 0.7x ldapmodify -f
NOOP_VS_PLAN = 1.1           # second apply wall <= 1.1x plan wall
USER_READ = 1.05             # bridge's user search <= 1.05x ldapsearch's (server log; issue 7)
WRITES_ONLY = 0.8            # bridge's write phase <= 0.8x ldapmodify's (server log; issue 7)


PHASES = ("connect_ms", "users_ms", "devices_ms", "bindings_ms", "reports_ms", "plan_ms", "render_ms", "write_ms",
          "duration_ms")


def phase_order(keys) -> list:
    """The summary line's timings in the order of a run (the reports are read while the
    directory answers), any other *_ms key after them."""
    return [k for k in PHASES if k in keys] + sorted(k for k in keys if k not in PHASES)


def table(small: dict | None, big: dict, args) -> tuple[str, str]:
    cols = ([small] if small else []) + [big]
    head = ["%s users" % format(c["users"], ",") for c in cols]
    rows = []

    def row(label, values, extra=""):
        rows.append([label] + values + ([extra] if extra else []))

    def val(c, key):
        return c["median"].get(key)

    def growth(key):
        if not small:
            return ""
        g = ratio(val(big, key), val(small, key))
        return "growth %s" % fmt_x(g)

    def targeted(c):
        return c["users"] in RSS_LIMITS

    def verdicts(values, limits):
        """One verdict per column that has a target, e.g. "100,000: met; 1,000,000: MISSED by 3%"."""
        out = []
        for c, v, lim in zip(cols, values, limits):
            if lim is None:
                continue
            out.append("%s: %s" % (format(c["users"], ","), verdict(v, lim)))
        return "; ".join(out) if out else "no target at these sizes"

    def ratio_verdicts(values, limit):
        return verdicts(values, [limit if targeted(c) else None for c in cols])

    ls = [val(c, "ldapsearch") for c in cols]
    ld = [val(c, "ldapsearchDevices") for c in cols]
    lr = [val(c, "ldapsearchRead") for c in cols]
    phases = [c["median"].get("planPhases") or {} for c in cols]
    row("1 users: ldapsearch pr=%d (process)" % args.page_size, [fmt_s(x) for x in ls], growth("ldapsearch"))
    row("  devices: ldapsearch pr=%d (process)" % args.page_size, [fmt_s(x) for x in ld], growth("ldapsearchDevices"))
    row("  users + devices: ldapsearch (the read)", [fmt_s(x) for x in lr], growth("ldapsearchRead"))
    def server_spans(what, bridge_key, tool, tool_key, label, limit):
        """The bridge's and the tool's spans in slapd's log, and their ratio against `limit`."""
        ours = [val(c, bridge_key) for c in cols]
        theirs = [val(c, tool_key) for c in cols]
        row("  server log: bridge %s" % what, [fmt_s(x) for x in ours], growth(bridge_key))
        row("  server log: %s %s" % (tool, what), [fmt_s(x) for x in theirs], growth(tool_key))
        r = [ratio(a, b) for a, b in zip(ours, theirs)]
        row("  ratio, %s (target <= %gx)" % (label, limit), [fmt_x(x) for x in r], ratio_verdicts(r, limit))

    server_spans("user search", "bridgeUsersSpan", "ldapsearch", "ldapsearchSpan", "server log", USER_READ)
    pw = [val(c, "planWall") for c in cols]
    r3 = [ratio(a, b) for a, b in zip(pw, lr)]
    row("2 plan: wall", [fmt_s(x) for x in pw], growth("planWall"))
    row("  plan / the read (target <= %.1fx)" % PLAN_VS_READ, [fmt_x(x) for x in r3], ratio_verdicts(r3, PLAN_VS_READ))
    row("  CPU time (user + system)", [fmt_s(val(c, "planCPU")) for c in cols], growth("planCPU"))
    pr = [val(c, "planRSS") for c in cols]
    row("  peak RSS (target %s)" % ", ".join("<= %s at %s" % (fmt_mb(v), format(k, ",")) for k, v in sorted(RSS_LIMITS.items())),
        [fmt_mb(x) for x in pr], verdicts(pr, [RSS_LIMITS.get(c["users"]) for c in cols]))
    for k in phase_order({k for d in phases for k in d}):
        row("  bridge's own %s" % k, [fmt_s(d.get(k)) for d in phases])
    ap = [val(c, "apply") for c in cols]
    lm = [val(c, "ldapmodify") for c in cols]
    row("3 apply: bridge, whole run", [fmt_s(x) for x in ap], growth("apply"))
    row("  ldapmodify -f, whole run", [fmt_s(x) for x in lm], growth("ldapmodify"))
    bound = [None if p is None or m is None else p + APPLY_VS_LDAPMODIFY * m for p, m in zip(pw, lm)]
    r4 = [ratio(a, b) for a, b in zip(ap, bound)]
    row("  apply / (plan + %.1fx ldapmodify) (target <= 1)" % APPLY_VS_LDAPMODIFY, [fmt_x(x) for x in r4],
        ratio_verdicts(r4, 1.0))
    aphases = [c["median"].get("applyPhases") or {} for c in cols]
    for k in phase_order({k for d in aphases for k in d}):
        row("  bridge's own %s" % k, [fmt_s(d.get(k)) for d in aphases])
    server_spans("writes", "applyWriteSpan", "ldapmodify", "ldapmodifyWriteSpan", "writes only", WRITES_ONLY)
    row("  operations written", ["%s / %s" % (fmt_n(val(c, "applyWrites")), fmt_n(val(c, "ldapmodifyWrites")))
                                 for c in cols], "bridge / ldapmodify (cn=Monitor; the bridge's lease writes apart)")
    row("  lease writes", [fmt_n(val(c, "applyLeaseWrites")) for c in cols], "taking and giving back the run's lease")
    row("  operations refused", ["%s / %s" % (fmt_n(val(c, "applyFailedMax")), fmt_n(val(c, "ldapmodifyFailedMax")))
                                 for c in cols], "bridge / ldapmodify (server log)")
    row("  same bindings subtree after", ["yes" if c.get("sameBindings") else "NO" for c in cols])
    aa = [val(c, "applyAgain") for c in cols]
    pa = [val(c, "planApplied") for c in cols]
    r5 = [ratio(a, b) for a, b in zip(aa, pa)]
    row("4 apply again: wall", [fmt_s(x) for x in aa], growth("applyAgain"))
    row("  plan of the same tree (bindings written), same server", [fmt_s(x) for x in pa], growth("planApplied"))
    row("  apply again / that plan (target <= %.1fx)" % NOOP_VS_PLAN, [fmt_x(x) for x in r5],
        ratio_verdicts(r5, NOOP_VS_PLAN))
    row("  apply again / the first plan (tree without bindings)", [fmt_x(ratio(a, b)) for a, b in zip(aa, pw)])
    row("  writes (target 0)", [str(val(c, "applyAgainWritesMax")) for c in cols],
        "met" if all(val(c, "applyAgainWritesMax") == 0 for c in cols) else "MISSED")
    if small:
        scale = big["users"] / small["users"]
        gread = ratio(val(big, "ldapsearchRead"), val(small, "ldapsearchRead"))
        row("5 growth %gx users: the read (ldapsearch)" % scale, ["", fmt_x(gread)], "the limit for the two below")
        for key, label in (("planWall", "plan"), ("apply", "apply")):
            g = ratio(val(big, key), val(small, key))
            row("  growth %s (target <= the read's)" % label, ["", fmt_x(g)],
                "not measured" if gread is None else verdict(g, gread))
    title = ("takeover-bridge benchmark: medians of %d runs; %s; slapd %s"
             % (args.runs, machine(), "dbnosync (both sides)" if not args.sync else "synchronous writes (both sides)"))
    load = "load average (1 min) before each case: %s" % ", ".join("%.2f" % c["loadavgBefore"][0] for c in cols)
    widths = [max(len(r[i]) if i < len(r) else 0 for r in rows + [[""] + head]) for i in range(len(cols) + 2)]
    out = [title, load]
    out.append("  ".join(["".ljust(widths[0])] + [h.rjust(widths[i + 1]) for i, h in enumerate(head)]))
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [r[i + 1].rjust(widths[i + 1]) for i in range(len(cols))]
        if len(r) > len(cols) + 1:
            cells.append(r[-1])
        out.append("  ".join(cells))
    md = [title + "; " + load, "", "| | " + " | ".join(head) + " | |", "| --- |" + " ---: |" * len(cols) + " --- |"]
    for r in rows:
        label = r[0].strip()
        md.append("| %s | %s | %s |" % (("&nbsp;&nbsp;" + label) if r[0].startswith(" ") else label,
                                         " | ".join(r[1:len(cols) + 1]), r[len(cols) + 1] if len(r) > len(cols) + 1 else ""))
    return "\n".join(out), "\n".join(md)


def main(argv=None):
    p = argparse.ArgumentParser(description="takeover-bridge vs ldapsearch/ldapmodify benchmark")
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--no-small", action="store_true", help="skip the case ten times smaller")
    p.add_argument("--root", default=tempfile.gettempdir(), help="cache folder parent (default /tmp)")
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument("--page-size", type=int, default=1000)
    p.add_argument("--sync", action="store_true", help="slapd without dbnosync (every write waits for the disk)")
    p.add_argument("--idle-load", type=float, default=1.0,
                   help="before each case, wait for the 1-minute load average to fall below this")
    p.add_argument("--idle-wait", type=float, default=600, help="wait at most this many seconds (0: do not wait)")
    p.add_argument("--binary", default=os.path.join(REPO, ".build", "release", "takeover-bridge"))
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    if not os.path.exists(args.binary):
        raise BenchError("%s does not exist (swift build -c release)" % args.binary)

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    small = None
    if not args.no_small and args.users >= 100:
        small = bench_case(args.users // 10, args, args.binary)
    big = bench_case(args.users, args, args.binary)
    big["environment"] = environment()
    with open(os.path.join(args.root, "tb-bench-%d" % args.users, results_name(args)), "w") as f:
        json.dump(big, f, indent=2, sort_keys=True)
    text, md = table(small, big, args)
    print(text)
    folder = os.path.join(args.root, "tb-bench-%d" % args.users)
    suffix = "-sync" if args.sync else ""
    with open(os.path.join(folder, "table%s.txt" % suffix), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(folder, "table%s.md" % suffix), "w") as f:
        f.write(md + "\n")
    log("table: %s/table%s.txt and .md; every run: %s in each case folder" % (folder, suffix, results_name(args)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log(str(e))
        sys.exit(1)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
