#!/usr/bin/env python3
"""zendmm's benchmark driver (`make bench`). Standard library only.

Runs every cell of the benchmark as a fresh process (the Makefile builds
target/bench/replay and target/release/libzendmm.so first), takes medians,
and writes a Markdown report and an SVG chart:

  trace replay   every trace in the trace directory, replayed by
                 target/bench/replay against zendmm, PHP 8.2's ZendMM, glibc,
                 jemalloc, mimalloc and tcmalloc
  end to end     real PHP (php8.2 -n) on bench/php/*.php: stock, zendmm
                 preloaded, and USE_ZEND_ALLOC=0 with each malloc preloaded;
                 hyperfine for wall time, /usr/bin/time for max RSS
  shutdown       shutdown_memory_manager(1, 0) with 10^3 and 10^6 live small
                 blocks in the same segments
  scale          one seeded alloc/realloc/free mix over 64 MiB and 4 GiB live

The method is ../shared/design/bench-method.md; bench/README.md says how to
run and read it. A progress line goes to stderr while it runs.
"""

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REPLAY = os.path.join(ROOT, "target", "bench", "replay")
ZENDMM_LIB = os.path.join(ROOT, "target", "release", "libzendmm.so")
PHP_DIR = os.path.join(HERE, "php")
LIBDIR = "/usr/lib/x86_64-linux-gnu"

ALLOCS = ["zendmm", "php", "glibc", "jemalloc", "mimalloc", "tcmalloc"]
PEERS = ALLOCS[1:]
LABEL = {
    "zendmm": "zendmm",
    "php": "ZendMM 8.2",
    "glibc": "glibc",
    "jemalloc": "jemalloc",
    "mimalloc": "mimalloc",
    "tcmalloc": "tcmalloc",
    "stock": "stock PHP (ZendMM 8.2)",
}
COLOR = {
    "zendmm": "#1f6feb",
    "php": "#6e7781",
    "glibc": "#bf8700",
    "jemalloc": "#8250df",
    "mimalloc": "#1a7f37",
    "tcmalloc": "#bf3989",
}
PRELOAD = {
    "jemalloc": LIBDIR + "/libjemalloc.so.2",
    "mimalloc": LIBDIR + "/libmimalloc.so.2",
    "tcmalloc": LIBDIR + "/libtcmalloc_minimal.so.4",
}
PACKAGES = [
    ("PHP 8.2 (libphp8.2.so)", "libphp8.2-embed"),
    ("PHP 8.2 CLI", "php8.2-cli"),
    ("glibc", "libc6"),
    ("jemalloc", "libjemalloc2"),
    ("mimalloc", "libmimalloc2.0"),
    ("tcmalloc", "libtcmalloc-minimal4"),
    ("hyperfine", "hyperfine"),
    ("GNU time", "time"),
    ("xz", "xz-utils"),
]

# The targets of issue #5.
T_TIME_VS_BEST = 1.00      # ns/event vs the fastest peer, every trace
T_TIME_GEOMEAN = 0.90      # geomean of ns/event vs ZendMM 8.2
T_RSS_FACTOR = 1.10        # peak RSS added vs the leanest peer ...
T_RSS_SLACK_KIB = 1024     # ... or the leanest peer plus 1 MiB, whichever is larger
T_E2E_WALL = 1.00
T_E2E_RSS = 1.05
T_SHUTDOWN = 1.5
T_SCALE = 1.25

SHUTDOWN_TOTAL = 1_000_000
SHUTDOWN_SIZE = 64
SCALE_SEED = 20240601

RED = '<span style="color:red">**MISSED**</span>'
NOT_MEASURED = '<span style="color:red">**NOT MEASURED**</span>'
MET = "met"


# ---------------------------------------------------------------------------
# Progress and processes
# ---------------------------------------------------------------------------

class Progress:
    """One line on stderr: step count, elapsed time, what runs now."""

    def __init__(self, total):
        self.total = max(total, 1)
        self.done = 0
        self.t0 = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.width = 0

    def show(self, what):
        el = int(time.monotonic() - self.t0)
        line = "[%3d/%d %3d%%] %2dm%02ds  %s" % (
            self.done, self.total, 100 * self.done // self.total, el // 60, el % 60, what)
        if self.tty:
            pad = max(self.width - len(line), 0)
            sys.stderr.write("\r" + line + " " * pad)
            self.width = len(line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def step(self, what):
        self.show(what)
        self.done += 1

    def note(self, text):
        if self.tty and self.width:
            sys.stderr.write("\n")
            self.width = 0
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def finish(self):
        self.done = self.total
        self.show("done")
        if self.tty:
            sys.stderr.write("\n")


# The one CPU the benchmark and every process it starts run on (None when
# `--no-pin` or a single CPU leaves the placement to the kernel).
PIN_CPU = None


def pin_cpu(enabled):
    """Pins this process, and so every process it starts, to the last CPU
    it may use: pinned runs spread less (figures in bench/README.md). The
    runner only waits while a measured process runs, so sharing its CPU
    costs that process nothing."""
    global PIN_CPU
    cpus = sorted(os.sched_getaffinity(0)) if enabled and hasattr(os, "sched_getaffinity") else []
    if len(cpus) > 1:
        PIN_CPU = cpus[-1]
        os.sched_setaffinity(0, {PIN_CPU})


def run(cmd, env=None, timeout=1800):
    return subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)


def parse_kv(line):
    out = {}
    for tok in line.split()[1:]:
        k, _, v = tok.partition("=")
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def replay(args, env_extra=None):
    """Runs target/bench/replay; returns (RESULT dicts, BREAKDOWN dicts, error)."""
    env = dict(os.environ)
    env["ZENDMM_LIB"] = ZENDMM_LIB
    env.pop("LD_PRELOAD", None)
    if env_extra:
        env.update(env_extra)
    try:
        p = run([REPLAY] + [str(a) for a in args], env=env)
    except subprocess.TimeoutExpired:
        return [], [], "timed out"
    results = [parse_kv(l) for l in p.stdout.splitlines() if l.startswith("RESULT ")]
    bd = [parse_kv(l) for l in p.stdout.splitlines() if l.startswith("BREAKDOWN ")]
    if p.returncode != 0 or not results:
        err = (p.stderr.strip().splitlines() or ["exit status %d" % p.returncode])[-1]
        if p.returncode < 0:
            err = "killed by signal %d; %s" % (-p.returncode, err)
        return [], [], err
    return results, bd, None


def median(xs):
    return statistics.median(xs) if xs else None


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------

def fx(r, digits=2):
    return "-" if r is None else ("%.*fx" % (digits, r))


def fnum(v, digits=1):
    if v is None:
        return "-"
    return "{:,.{d}f}".format(v, d=digits)


def fmib(kib):
    return "-" if kib is None else "%.1f" % (kib / 1024.0)


def status(ok):
    if ok is None:
        return NOT_MEASURED
    return MET if ok else RED


def md_table(header, rows, align=None):
    align = align or (["l"] + ["r"] * (len(header) - 1))
    sep = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


# ---------------------------------------------------------------------------
# Trace replay
# ---------------------------------------------------------------------------

def find_traces(args):
    d = args.traces or os.environ.get("TRACES")
    if not d:
        cand = os.path.normpath(os.path.join(ROOT, "..", "shared", "traces"))
        if os.path.isdir(cand):
            d = cand
    if not d or not os.path.isdir(d):
        return None, []
    files = []
    for f in sorted(os.listdir(d)):
        if f.endswith(".trace.xz") or f.endswith(".trace"):
            files.append(os.path.join(d, f))
    names = {}
    for f in files:  # a plain NAME.trace wins over NAME.trace.xz
        name = os.path.basename(f).split(".trace")[0]
        if name not in names or f.endswith(".trace"):
            names[name] = f
    traces = sorted(names.items(), key=lambda kv: os.path.getsize(kv[1]))
    if args.quick:
        traces = traces[:2]
    return d, traces


def plan_traces(args, traces, tmpdir, data, prog_tasks, replay_all=True):
    """Queues the trace cells (only the decompression unless `replay_all`);
    `data` collects the results."""
    runs = args.runs or (1 if args.quick else 7)
    data["runs"] = runs
    data["cells"] = {}
    data["errors"] = {}
    data["breakdown"] = {}
    plain = {}

    def decompress(name, path):
        def task():
            if path.endswith(".xz"):
                out = os.path.join(tmpdir, name + ".trace")
                with open(out, "wb") as fh:
                    p = subprocess.run(["xz", "-dc", "--", path], stdout=fh, stderr=subprocess.PIPE)
                if p.returncode != 0:
                    raise SystemExit("xz -dc %s failed: %s" % (path, p.stderr.decode().strip()))
                plain[name] = out
            else:
                plain[name] = path
            data.setdefault("plain", {})[name] = plain[name]
        return task

    for name, path in traces:
        prog_tasks.append(("traces: decompressing %s" % name, decompress(name, path)))

    for r in range(runs if replay_all else 0):
        for ti, (name, _) in enumerate(traces):
            # Rotate the order every run so no allocator always goes first.
            k = (r + ti) % len(ALLOCS)
            for alloc in ALLOCS[k:] + ALLOCS[:k]:
                def task(name=name, alloc=alloc):
                    if data["errors"].get((name, alloc)):
                        return
                    res, _, err = replay([alloc, plain[name]])
                    if err:
                        data["errors"][(name, alloc)] = err
                        return
                    data["cells"].setdefault((name, alloc), []).append(res[0])
                prog_tasks.append(("traces: %s on %s (run %d/%d)" % (name, LABEL[alloc], r + 1, runs), task))

    if args.breakdown and replay_all:
        for name, _ in traces:
            for alloc in ALLOCS:
                def task(name=name, alloc=alloc):
                    res, bd, err = replay(["--breakdown", alloc, plain[name]])
                    if err:
                        data["breakdown"][(name, alloc)] = err
                    else:
                        data["breakdown"][(name, alloc)] = bd
                prog_tasks.append(("breakdown: %s on %s" % (name, LABEL[alloc]), task))


def summarize_traces(traces, data):
    """Medians and ratios per trace; returns {trace: {alloc: {...}}}."""
    summary = {}
    for name, _ in traces:
        cells = {}
        for alloc in ALLOCS:
            rs = data["cells"].get((name, alloc), [])
            if not rs:
                cells[alloc] = {"error": data["errors"].get((name, alloc), "no result")}
                continue
            ns = [r["ns_per_event"] for r in rs]
            cells[alloc] = {
                "runs": len(rs),
                "events": rs[0]["events"],
                "ns": median(ns),
                "spread": (max(ns) - min(ns)) / median(ns) if len(ns) > 1 else None,
                "rss": median([r["rss_added_kib"] for r in rs]),
                "minflt": median([r["minflt"] for r in rs]),
                "own_peak": median([r["own_peak"] for r in rs]),
                "q_ms": median([r["q_ns"] for r in rs]) / 1e6,
            }
        ok = {a: c for a, c in cells.items() if "error" not in c}
        peers = [a for a in PEERS if a in ok]
        best = {
            "ns": min((ok[a]["ns"] for a in peers), default=None),
            "rss": min((ok[a]["rss"] for a in peers), default=None),
            "minflt": min((ok[a]["minflt"] for a in peers), default=None),
        }
        best_name = {
            k: min(peers, key=lambda a: ok[a][k]) if peers else None for k in ("ns", "rss", "minflt")
        }
        php = ok.get("php")
        for a, c in ok.items():
            for k in ("ns", "rss", "minflt"):
                c[k + "_vs_php"] = ratio(c[k], php[k]) if php else None
                c[k + "_vs_best"] = ratio(c[k], best[k])
        summary[name] = {"cells": cells, "best": best, "best_name": best_name}
    return summary


def trace_targets(summary):
    rows = []
    zs = []
    for name, s in summary.items():
        z = s["cells"].get("zendmm", {})
        if "error" in z or not z:
            rows.append(("ns/event on %s vs the fastest peer" % name, "failed: " + z.get("error", "?"),
                         "<= %.2fx" % T_TIME_VS_BEST, status(False)))
            rows.append(("peak RSS added on %s" % name, "failed", "", status(False)))
            continue
        r = z["ns_vs_best"]
        rows.append(("ns/event on %s vs the fastest peer (%s)" % (name, LABEL.get(s["best_name"]["ns"], "-")),
                     fx(r, 3), "<= %.2fx" % T_TIME_VS_BEST,
                     status(r <= T_TIME_VS_BEST if r is not None else None)))
        lean = s["best"]["rss"]
        if lean is None:
            rows.append(("peak RSS added on %s" % name, "-", "", status(None)))
        else:
            limit = max(T_RSS_FACTOR * lean, lean + T_RSS_SLACK_KIB)
            rows.append(("peak RSS added on %s vs the leanest peer (%s, %s MiB)"
                         % (name, LABEL[s["best_name"]["rss"]], fmib(lean)),
                         "%s MiB" % fmib(z["rss"]), "<= %s MiB" % fmib(limit), status(z["rss"] <= limit)))
        if z.get("ns_vs_php"):
            zs.append(z["ns_vs_php"])
    g = geomean(zs) if len(zs) == len(summary) else None
    rows.insert(0, ("ns/event vs ZendMM 8.2, geometric mean over %d traces" % len(summary), fx(g, 3),
                    "<= %.2fx" % T_TIME_GEOMEAN, status(g <= T_TIME_GEOMEAN if g is not None else None)))
    return rows, g


def trace_section(tdir, traces, data, summary, geo):
    out = ["## Trace replay", ""]
    out.append(
        "Each trace (`%s`) is parsed into memory first, then replayed by `target/bench/replay` "
        "through function pointers: `_emalloc`/`_efree`/`_erealloc`/`_ecalloc` for zendmm and PHP 8.2's "
        "ZendMM (`shutdown_memory_manager(1, 0)` at each `q`), `malloc`/`free`/`realloc`/`calloc` "
        "(`mi_*`, `tc_*`) for the others, which free every live block at `q` (timed too). The first and "
        "last byte of every block are written; a realloc must keep the first byte, a calloc must be zero. "
        "One process per cell, median of %d run%s. **ns/event** is the whole loop divided by the events; "
        "**RSS added** is the peak resident set during the loop minus the resident set just before it; "
        "**faults** are minor page faults in the loop; **own peak** is the allocator's own peak "
        "(`zend_memory_peak_usage(1)` for the request allocators, mimalloc's peak commit). "
        "Ratios: to ZendMM 8.2 (`xZendMM`) and to the best of the five peers (`xbest`; zendmm is not a peer)."
        % (tdir, data["runs"], "" if data["runs"] == 1 else "s"))
    out.append("")
    out.append("![ns/event and RSS ratios to ZendMM 8.2 per trace](ratios.svg)")
    out.append("")
    if geo is not None:
        out.append("zendmm's ns/event vs ZendMM 8.2, geometric mean over the traces: **%s**." % fx(geo))
        out.append("")
    for name, _ in traces:
        s = summary[name]
        cells = s["cells"]
        ev = next((c["events"] for c in cells.values() if "events" in c), None)
        out.append("### %s (%s events)" % (name, "{:,}".format(ev) if ev else "?"))
        out.append("")
        rows = []
        for a in ALLOCS:
            c = cells[a]
            if "error" in c:
                rows.append(["**%s**" % LABEL[a] if a == "zendmm" else LABEL[a],
                             '<span style="color:red">**FAILED**</span>: ' + c["error"].replace("|", "/")]
                            + [""] * 11)
                continue
            ns_best = fx(c["ns_vs_best"])
            rss_best = fx(c["rss_vs_best"])
            if a == "zendmm":
                if c["ns_vs_best"] is not None and c["ns_vs_best"] > T_TIME_VS_BEST:
                    ns_best = '<span style="color:red">%s</span>' % ns_best
                lean = s["best"]["rss"]
                if lean is not None and c["rss"] > max(T_RSS_FACTOR * lean, lean + T_RSS_SLACK_KIB):
                    rss_best = '<span style="color:red">%s</span>' % rss_best
            rows.append([
                "**%s**" % LABEL[a] if a == "zendmm" else LABEL[a],
                fnum(c["ns"], 2), fx(c["ns_vs_php"]), ns_best,
                "-" if c["spread"] is None else "%.0f%%" % (100 * c["spread"]),
                fmib(c["rss"]), fx(c["rss_vs_php"]), rss_best,
                fnum(c["minflt"], 0), fx(c["minflt_vs_php"]), fx(c["minflt_vs_best"]),
                "-" if not c["own_peak"] else fmib(c["own_peak"] / 1024.0),
                fnum(c["q_ms"], 2),
            ])
        out.append(md_table(["allocator", "ns/event", "xZendMM", "xbest", "spread", "RSS added MiB",
                             "xZendMM", "xbest", "faults", "xZendMM", "xbest", "own peak MiB",
                             "q ms"], rows))
        out.append("")
    out.append("`spread` is (max - min) / median of ns/event over the runs; `q ms` is the time spent "
               "at request ends (shutdown, or freeing every live block).")
    out.append("")
    return out


def breakdown_section(traces, data):
    if not data.get("breakdown"):
        return []
    out = ["## By-operation breakdown (diagnosis only)", ""]
    out.append("One run per cell with `replay --breakdown`: rdtsc around every event (the empty "
               "measurement's cost subtracted), grouped by kind and size class (small <= 3072 B, "
               "large <= 2093056 B, huge above; a free is classed by the size of the block it frees, "
               "a realloc by its new size). It slows every event: never compare it with the headline "
               "figures. ns per operation:")
    out.append("")
    for name, _ in traces:
        rows = {}
        counts = {}
        errs = []
        for a in ALLOCS:
            bd = data["breakdown"].get((name, a))
            if isinstance(bd, str):
                errs.append("%s: %s" % (LABEL[a], bd))
                continue
            for b in bd or []:
                key = (b["kind"], b["class"])
                rows.setdefault(key, {})[a] = b["ns_per_op"]
                counts[key] = b["count"]
        order = {"a": 0, "c": 1, "r": 2, "f": 3, "q": 4}
        corder = {"small": 0, "large": 1, "huge": 2, "-": 3}
        keys = sorted(rows, key=lambda k: (order.get(k[0], 9), corder.get(k[1], 9)))
        out.append("### %s" % name)
        out.append("")
        table = []
        for k in keys:
            table.append(["%s %s" % k, "{:,}".format(counts[k])]
                         + [fnum(rows[k].get(a), 1) for a in ALLOCS])
        out.append(md_table(["event", "count"] + [LABEL[a] for a in ALLOCS], table))
        if errs:
            out.append("")
            out.append("Failed: " + "; ".join(errs))
        out.append("")
    return out


# ---------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------

def php_bin():
    return shutil.which("php8.2") or "/usr/bin/php8.2"


def e2e_configs(php):
    """(key, label, env list for `env`), stock first."""
    return [
        ("stock", LABEL["stock"], []),
        ("zendmm", "zendmm (LD_PRELOAD)", ["LD_PRELOAD=" + ZENDMM_LIB]),
        ("glibc", "glibc (USE_ZEND_ALLOC=0)", ["USE_ZEND_ALLOC=0"]),
    ] + [(a, "%s (USE_ZEND_ALLOC=0, LD_PRELOAD)" % a, ["USE_ZEND_ALLOC=0", "LD_PRELOAD=" + PRELOAD[a]])
         for a in ("jemalloc", "mimalloc", "tcmalloc")]


def cmd_of(php, envs, script_args):
    base = [php, "-n"] + script_args
    return (["env"] + envs + base) if envs else base


def zendmm_active(php):
    """Is the preloaded zendmm really PHP's allocator? memory_get_usage(true)
    is a multiple of 2 MiB under PHP's ZendMM and not under zendmm's segments."""
    probe = ["-r", "echo memory_get_usage(true), ' ', memory_get_usage();"]
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "USE_ZEND_ALLOC")}
    stock = run([php, "-n"] + probe, env=env)
    pre = run(["env", "LD_PRELOAD=" + ZENDMM_LIB, php, "-n"] + probe, env=env)
    try:
        real = int(pre.stdout.split()[0])
    except (ValueError, IndexError):
        return False, "probe failed: %s" % (pre.stderr.strip() or pre.stdout.strip())
    msg = pre.stderr.strip().replace("\n", " ")
    if pre.returncode != 0:
        return False, "probe exited %d: %s" % (pre.returncode, msg)
    if real % 2097152 == 0 or pre.stdout.strip() == stock.stdout.strip():
        return False, ("memory_get_usage(true) = %d under the preload, as stock (%s)%s"
                       % (real, stock.stdout.strip(), (": " + msg) if msg else ""))
    return True, "memory_get_usage(true) = %d under the preload (stock: %s)" % (real, stock.stdout.split()[0])


def plan_e2e(args, data, prog_tasks):
    php = php_bin()
    scripts = sorted(f for f in os.listdir(PHP_DIR) if f.endswith(".php"))
    runs = args.runs or (1 if args.quick else 5)
    rss_runs = 1 if args.quick else 3
    data.update({"php": php, "scripts": scripts, "runs": runs, "rss_runs": rss_runs,
                 "wall": {}, "rss": {}, "output": {}, "errors": {}})
    configs = e2e_configs(php)

    def probe():
        data["zendmm_active"], data["zendmm_probe"] = zendmm_active(php)
        if not data["zendmm_active"]:
            prog.note("e2e: zendmm is not active under LD_PRELOAD (%s); its cells are skipped"
                      % data["zendmm_probe"])
    prog_tasks.append(("e2e: is zendmm active under LD_PRELOAD?", probe))

    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "USE_ZEND_ALLOC")}
    for script in scripts:
        path = os.path.join(PHP_DIR, script)
        name = script[:-4]
        for key, label, envs in configs:
            def rss_task(name=name, key=key, envs=envs, path=path):
                if key == "zendmm" and not data["zendmm_active"]:
                    return
                vals = []
                for _ in range(rss_runs):
                    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
                        p = run(["/usr/bin/time", "-f", "%M", "-o", tf.name] + cmd_of(php, envs, [path]),
                                env=env)
                        txt = tf.read().strip().splitlines()
                    if p.returncode != 0:
                        data["errors"][(name, key)] = "exit %d: %s" % (
                            p.returncode, (p.stderr.strip().splitlines() or ["?"])[-1])
                        return
                    data["output"][(name, key)] = p.stdout.strip()
                    vals.append(int(txt[-1]))
                data["rss"][(name, key)] = median(vals)
            prog_tasks.append(("e2e: %s max RSS, %s (%d run%s)" % (name, label, rss_runs,
                                                                    "" if rss_runs == 1 else "s"), rss_task))

        def wall_task(name=name, path=path):
            todo = [(k, l, e) for k, l, e in configs
                    if (k != "zendmm" or data["zendmm_active"]) and (name, k) not in data["errors"]]
            # Interleaved rounds: one run of every configuration per round,
            # in an order rotated each round, so a machine that slows down
            # or speeds up during the workload weighs on all of them alike
            # (hyperfine alone runs each command's runs back to back).
            # Round 0 is the warm-up.
            times = {k: [] for k, _, _ in todo}
            for r in range(runs + 1):
                shift = r % len(todo)
                for k, _, e in todo[shift:] + todo[:shift]:
                    if (name, k) in data["errors"]:
                        continue
                    with tempfile.NamedTemporaryFile("r", suffix=".json") as tf:
                        cmd = ["hyperfine", "-N", "--runs", "1", "--style", "none",
                               "--output", "null", "--export-json", tf.name,
                               "-n", k, " ".join(shlex.quote(x) for x in cmd_of(php, e, [path]))]
                        p = run(cmd, env=env, timeout=3600)
                        if p.returncode != 0:
                            data["errors"].setdefault((name, k), "hyperfine failed: %s" % (
                                (p.stderr.strip().splitlines() or ["?"])[-1]))
                            continue
                        res = json.load(tf)
                    if r > 0:
                        times[k].extend(res["results"][0]["times"])
            for k, ts in times.items():
                if not ts:
                    continue
                data["wall"][(name, k)] = {
                    "median": median(ts), "mean": statistics.mean(ts),
                    "stddev": statistics.stdev(ts) if len(ts) > 1 else None,
                    "min": min(ts), "max": max(ts)}
        prog_tasks.append(("e2e: %s wall time, %d commands x (1 + %d interleaved rounds)"
                           % (name, len(configs), runs), wall_task))


def e2e_section(data):
    out = ["## End to end", ""]
    out.append(
        "Real PHP (`%s -n SCRIPT`) on the workloads in `bench/php/`: `cpu.php` (engine work in the "
        "spirit of `Zend/bench.php`), `graph.php` (an object/array graph built, indexed and sorted), "
        "`strings.php` (CSV, JSON, templates and a log built and parsed). Stock PHP (its own ZendMM), "
        "zendmm by `LD_PRELOAD`, and `USE_ZEND_ALLOC=0` (request memory from malloc) with glibc or "
        "with jemalloc, mimalloc or tcmalloc preloaded. Wall time: median of %d "
        "interleaved rounds, each timing every configuration once with `hyperfine -N --runs 1` in an "
        "order rotated every round (plus a warm-up round), so drift on a shared machine weighs on all "
        "configurations alike; max RSS: median of %d runs of "
        "`/usr/bin/time -f %%M`. Every configuration must print the same checksum line as stock."
        % (data["php"], data["runs"], data["rss_runs"]))
    out.append("")
    if not data.get("zendmm_active"):
        out.append('<span style="color:red">**zendmm not active**</span>: the preload has no effect on '
                   "this `php8.2` (%s), so its cells are not measured." % data.get("zendmm_probe", "?"))
        out.append("")
    for script in data["scripts"]:
        name = script[:-4]
        out.append("### %s" % script)
        out.append("")
        stock_w = data["wall"].get((name, "stock"), {}).get("median")
        stock_r = data["rss"].get((name, "stock"))
        peers = ["stock", "glibc", "jemalloc", "mimalloc", "tcmalloc"]
        best_w = min((data["wall"][(name, k)]["median"] for k in peers if (name, k) in data["wall"]),
                     default=None)
        best_r = min((data["rss"][(name, k)] for k in peers if (name, k) in data["rss"]), default=None)
        rows = []
        for key, label, _ in e2e_configs(data["php"]):
            if key == "zendmm" and not data.get("zendmm_active"):
                rows.append(["**%s**" % label, '<span style="color:red">zendmm not active</span>',
                             "", "", "", "", "", "", ""])
                continue
            if (name, key) in data["errors"]:
                rows.append([label, '<span style="color:red">**FAILED**</span>: '
                             + data["errors"][(name, key)].replace("|", "/")] + [""] * 7)
                continue
            w = data["wall"].get((name, key), {})
            r = data["rss"].get((name, key))
            same = data["output"].get((name, key)) == data["output"].get((name, "stock"))
            wr, rr = ratio(w.get("median"), stock_w), ratio(r, stock_r)
            wcell, rcell = fx(wr, 3), fx(rr, 3)
            if key == "zendmm":
                if wr is not None and wr > T_E2E_WALL:
                    wcell = '<span style="color:red">%s</span>' % wcell
                if rr is not None and rr > T_E2E_RSS:
                    rcell = '<span style="color:red">%s</span>' % rcell
            rows.append([
                "**%s**" % label if key == "zendmm" else label,
                fnum(w.get("median"), 3),
                "-" if w.get("stddev") is None else fnum(w["stddev"], 3),
                wcell, fx(ratio(w.get("median"), best_w)),
                fmib(r), rcell, fx(ratio(r, best_r)),
                "same" if same else '<span style="color:red">**DIFFERS**</span>',
            ])
        out.append(md_table(["configuration", "wall s", "stddev", "xstock", "xbest", "max RSS MiB",
                             "xstock", "xbest", "output"], rows))
        out.append("")
    return out


def e2e_targets(data):
    rows = []
    for script in data["scripts"]:
        name = script[:-4]
        if not data.get("zendmm_active"):
            rows.append(("end to end %s: wall time vs stock PHP" % script, "zendmm not active",
                         "<= %.2fx" % T_E2E_WALL, status(None)))
            rows.append(("end to end %s: max RSS vs stock PHP" % script, "zendmm not active",
                         "<= %.2fx" % T_E2E_RSS, status(None)))
            continue
        if (name, "zendmm") in data["errors"]:
            rows.append(("end to end %s" % script, "failed", "", status(False)))
            continue
        w = ratio(data["wall"].get((name, "zendmm"), {}).get("median"),
                  data["wall"].get((name, "stock"), {}).get("median"))
        r = ratio(data["rss"].get((name, "zendmm")), data["rss"].get((name, "stock")))
        same = data["output"].get((name, "zendmm")) == data["output"].get((name, "stock"))
        rows.append(("end to end %s: wall time vs stock PHP" % script, fx(w, 3), "<= %.2fx" % T_E2E_WALL,
                     status(w <= T_E2E_WALL and same if w is not None else None)))
        rows.append(("end to end %s: max RSS vs stock PHP" % script, fx(r, 3), "<= %.2fx" % T_E2E_RSS,
                     status(r <= T_E2E_RSS and same if r is not None else None)))
    return rows


# ---------------------------------------------------------------------------
# Request shutdown
# ---------------------------------------------------------------------------

def plan_shutdown(args, data, prog_tasks):
    runs = args.runs or (1 if args.quick else 3)
    reps = 5 if args.quick else 11
    data.update({"runs": runs, "reps": reps, "cells": {}, "errors": {}})
    for r in range(runs):
        for alloc in ("zendmm", "php"):
            for live in (1000, SHUTDOWN_TOTAL):
                def task(alloc=alloc, live=live):
                    res, _, err = replay(["--shutdown", alloc, live, SHUTDOWN_TOTAL, SHUTDOWN_SIZE, reps])
                    if err:
                        data["errors"][(alloc, live)] = err
                    else:
                        data["cells"].setdefault((alloc, live), []).append(res[0])
                prog_tasks.append(("shutdown: %s, %s live blocks (run %d/%d)"
                                   % (LABEL[alloc], "{:,}".format(live), r + 1, runs), task))


def shutdown_summary(data):
    s = {}
    for alloc in ("zendmm", "php"):
        for live in (1000, SHUTDOWN_TOTAL):
            rs = data["cells"].get((alloc, live), [])
            if rs:
                s[(alloc, live)] = {"us": median([r["median_ns"] for r in rs]) / 1000.0,
                                    "segments": rs[0]["segments"], "real": rs[0]["real_usage"],
                                    "live": rs[0]["live"]}
    return s


def shutdown_section(data, s):
    out = ["## Request shutdown", ""]
    out.append(
        "`replay --shutdown`: %s blocks of %d B are allocated, then all but LIVE of them, evenly "
        "spread, are freed, so both cases hold the same segments; then `shutdown_memory_manager(1, 0)` "
        "is timed. Median of %d shutdowns per process, median of %d process%s. PHP 8.2's ZendMM is "
        "shown for comparison (its 2 MiB chunks are counted in real usage; it keeps some chunks cached "
        "across requests, which makes its figure noisy)."
        % ("{:,}".format(SHUTDOWN_TOTAL), SHUTDOWN_SIZE, data["reps"], data["runs"],
           "" if data["runs"] == 1 else "es"))
    out.append("")
    rows = []
    for alloc in ("zendmm", "php"):
        a, b = s.get((alloc, 1000)), s.get((alloc, SHUTDOWN_TOTAL))
        err = data["errors"].get((alloc, 1000)) or data["errors"].get((alloc, SHUTDOWN_TOTAL))
        if err or not a or not b:
            rows.append([LABEL[alloc], '<span style="color:red">**FAILED**</span>: %s' % (err or "?"),
                         "", "", "", "", ""])
            continue
        rr = ratio(b["us"], a["us"])
        cell = fx(rr)
        if alloc == "zendmm" and rr is not None and rr > T_SHUTDOWN:
            cell = '<span style="color:red">%s</span>' % cell
        segs = ("%d / %d" % (a["segments"], b["segments"])) if alloc == "zendmm" else "-"
        rows.append(["**%s**" % LABEL[alloc] if alloc == "zendmm" else LABEL[alloc], segs,
                     "%s / %s" % (fmib(a["real"] / 1024.0), fmib(b["real"] / 1024.0)),
                     fnum(a["us"], 1), fnum(b["us"], 1), cell])
    out.append(md_table(["allocator", "segments (10^3 / 10^6 live)", "real usage MiB",
                         "10^3 live: us", "10^6 live: us", "10^6 / 10^3"], rows))
    out.append("")
    return out


def shutdown_targets(s):
    a, b = s.get(("zendmm", 1000)), s.get(("zendmm", SHUTDOWN_TOTAL))
    if not a or not b:
        return [("shutdown: 10^6 live blocks vs 10^3", "failed", "<= %.2fx" % T_SHUTDOWN, status(False))]
    r = ratio(b["us"], a["us"])
    return [("shutdown: 10^6 live blocks vs 10^3 in the same segments", fx(r, 3), "<= %.2fx" % T_SHUTDOWN,
             status(r <= T_SHUTDOWN))]



# ---------------------------------------------------------------------------
# Protection overhead
# ---------------------------------------------------------------------------

T_PROTECT = 1.01


def plan_protect(args, traces, data, prog_tasks, tdata):
    """zendmm on every trace with ZENDMM_PROTECT=1 and =0, interleaved."""
    runs = args.runs or (1 if args.quick else 7)
    data.update({"runs": runs, "cells": {}, "errors": {}})
    for r in range(runs):
        for name, _ in traces:
            order = ("1", "0") if r % 2 == 0 else ("0", "1")
            for mode in order:
                def task(name=name, mode=mode):
                    path = tdata.get("plain", {}).get(name)
                    res, _, err = replay(["zendmm", path], {"ZENDMM_PROTECT": mode})
                    if err:
                        data["errors"][(name, mode)] = err
                    else:
                        data["cells"].setdefault((name, mode), []).append(res[0]["ns_per_event"])
                prog_tasks.append(("protection: %s with ZENDMM_PROTECT=%s (run %d/%d)"
                                   % (name, mode, r + 1, runs), task))


def protect_summary(traces, data):
    s = {}
    for name, _ in traces:
        on, off = data["cells"].get((name, "1")), data["cells"].get((name, "0"))
        if on and off:
            s[name] = (min(on), min(off), ratio(min(on), min(off)))
    return s


def protect_section(data, s):
    out = ["## Cost of heap protection", ""]
    out.append(
        "zendmm alone on every trace with `ZENDMM_PROTECT=1` (the default: overflow check at free, "
        "links XORed with a per-heap key and checked when followed) and `ZENDMM_PROTECT=0`, "
        "alternating, %d runs each; the fastest run of each is compared, which is the figure least "
        "disturbed by other load on a shared machine. Safe unlinking, boundary-tag checks on the "
        "slow paths, the fastcache's double-free tag and the request epoch stay on in both modes."
        % data["runs"])
    out.append("")
    rows = []
    for name, (on, off, r) in s.items():
        cell = fx(r, 3)
        if r is not None and r > T_PROTECT:
            cell = '<span style="color:red">%s</span>' % cell
        rows.append([name, fnum(off, 2), fnum(on, 2), cell])
    g = geomean([v[2] for v in s.values()])
    rows.append(["**geometric mean**", "", "", fx(g, 3)])
    out.append(md_table(["trace", "protection off: ns/event", "on: ns/event", "on / off"], rows))
    out.append("")
    return out


def protect_targets(s):
    g = geomean([v[2] for v in s.values()])
    if g is None:
        return [("protection overhead (geomean over traces)", "failed", "<= %.2fx" % T_PROTECT,
                 status(False))]
    return [("protection overhead (geomean over traces)", fx(g, 3), "<= %.2fx" % T_PROTECT,
             status(g <= T_PROTECT))]

# ---------------------------------------------------------------------------
# Scale
# ---------------------------------------------------------------------------

def mem_available_mib():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def plan_scale(args, data, prog_tasks):
    # 5 runs, as the traces: a timed loop of a quarter second is at the
    # mercy of the host, and with 3 the ratio moved 1.17x-1.29x between
    # two runs of one build (the peers' 4 GiB figures up to 25%).
    runs = args.runs or (1 if args.quick else 5)
    small, big = 64, (1024 if args.quick else 4096)
    ops = 1_000_000 if args.quick else 4_000_000
    data.update({"runs": runs, "small": small, "big": big, "ops": ops, "cells": {}, "errors": {},
                 "skipped": None})
    for r in range(runs):
        for alloc in ALLOCS:
            for live in (small, big):
                def task(alloc=alloc, live=live):
                    if data["errors"].get((alloc, live)):
                        return
                    if live == big and mem_available_mib() < big * 1.6 + 1024:
                        data["skipped"] = "only %d MiB available" % mem_available_mib()
                        data["errors"][(alloc, live)] = "skipped: " + data["skipped"]
                        return
                    res, _, err = replay(["--scale", alloc, live, ops, SCALE_SEED])
                    if err:
                        data["errors"][(alloc, live)] = err
                    else:
                        data["cells"].setdefault((alloc, live), []).append(res[0])
                prog_tasks.append(("scale: %s, %d MiB live (run %d/%d)" % (LABEL[alloc], live, r + 1, runs),
                                   task))


def scale_summary(data):
    s = {}
    for alloc in ALLOCS:
        for live in (data["small"], data["big"]):
            rs = data["cells"].get((alloc, live), [])
            if rs:
                s[(alloc, live)] = {"ns": median([r["ns_per_op"] for r in rs]),
                                    "minflt": median([r["minflt"] for r in rs]),
                                    "rss": median([r["max_rss_kib"] for r in rs]),
                                    "pages": median([r["young_pages"] for r in rs]),
                                    "regions": median([r["young_regions"] for r in rs]),
                                    "sampled": rs[0]["young_sampled"],
                                    "blocks": rs[0]["old_blocks"], "bytes": rs[0]["live_bytes"]}
    return s


def scale_section(data, s):
    small, big = data["small"], data["big"]
    out = ["## Scale", ""]
    out.append(
        "`replay --scale` (seed %d): a long-lived heap is built (blocks of 8 B to 1 MiB, 70%% of them "
        "<= 256 B, every page written, then a random fifth freed to leave holes) until about LIVE bytes "
        "are live; then %s timed calls: 95%% of steps work on 4,096 slots of temporaries (allocate an "
        "empty slot, else realloc 1 in 4 and free 3 in 4; 8 B to 64 KiB), 5%% replace a random "
        "long-lived block (free, then allocate a fresh size). The same seed gives the same sequence "
        "of sizes for both heaps. First and last bytes written, realloc checked. ns per call, median "
        "of %d run%s. The peers show how much of the growth the machine itself imposes (cache and TLB "
        "misses on a bigger heap). **Temporaries' spread**: the distinct 4 KiB pages and 2 MiB regions "
        "that the last %s temporaries landed in (median over the runs); a heap that scatters "
        "them over more memory pays more of those misses. **Peak RSS**: the process's maximum resident "
        "set (`ru_maxrss`), build and timed loop together, median over the runs."
        % (SCALE_SEED, "{:,}".format(data["ops"]), data["runs"], "" if data["runs"] == 1 else "s",
           "{:,}".format(max([v["sampled"] for v in s.values()] or [0]))))
    out.append("")
    if data.get("skipped"):
        out.append('<span style="color:red">**%d MiB case skipped**</span>: %s.' % (big, data["skipped"]))
        out.append("")
    rows = []
    for alloc in ALLOCS:
        a, b = s.get((alloc, small)), s.get((alloc, big))
        if not a or not b:
            err = data["errors"].get((alloc, small)) or data["errors"].get((alloc, big)) or "?"
            rows.append(["**%s**" % LABEL[alloc] if alloc == "zendmm" else LABEL[alloc],
                         '<span style="color:red">**FAILED**</span>: ' + err.replace("|", "/"),
                         "", "", "", "", "", "", "", "", ""])
            continue
        rr = ratio(b["ns"], a["ns"])
        cell = fx(rr)
        if alloc == "zendmm" and rr > T_SCALE:
            cell = '<span style="color:red">%s</span>' % cell
        rows.append(["**%s**" % LABEL[alloc] if alloc == "zendmm" else LABEL[alloc],
                     fnum(a["ns"], 1), fnum(b["ns"], 1), cell,
                     fnum(a["minflt"], 0), fnum(b["minflt"], 0),
                     fmib(a["rss"]), fmib(b["rss"]),
                     "%s / %s" % (fnum(a["pages"], 0), fnum(a["regions"], 0)),
                     "%s / %s" % (fnum(b["pages"], 0), fnum(b["regions"], 0)),
                     "%s / %s" % ("{:,}".format(a["blocks"]), "{:,}".format(b["blocks"]))])
    big_label = "%d GiB" % (big // 1024) if big % 1024 == 0 else "%d MiB" % big
    out.append(md_table(["allocator", "%d MiB: ns/call" % small, "%s: ns/call" % big_label,
                         "ratio", "faults %d MiB" % small, "faults %s" % big_label,
                         "peak RSS MiB (%d MiB)" % small, "peak RSS MiB (%s)" % big_label,
                         "spread %d MiB: pages / regions" % small,
                         "spread %s: pages / regions" % big_label, "long-lived blocks"], rows))
    out.append("")
    return out


def scale_targets(data, s):
    a, b = s.get(("zendmm", data["small"])), s.get(("zendmm", data["big"]))
    big = "%d GiB" % (data["big"] // 1024) if data["big"] % 1024 == 0 else "%d MiB" % data["big"]
    if not a or not b:
        return [("scale: ns/call with %s live vs %d MiB" % (big, data["small"]), "failed",
                 "<= %.2fx" % T_SCALE, status(False))]
    r = ratio(b["ns"], a["ns"])
    return [("scale: ns/call with %s live vs %d MiB" % (big, data["small"]), fx(r, 3), "<= %.2fx" % T_SCALE,
             status(r <= T_SCALE))]


# ---------------------------------------------------------------------------
# SVG chart
# ---------------------------------------------------------------------------

def svg_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_svg(path, summary, traces, subtitle):
    """Two panels (ns/event, peak RSS added), grouped bars per trace and their
    geometric mean: each allocator's ratio to ZendMM 8.2, a dashed line at
    1.0. zendmm's bar turns red where it misses its target."""
    allocs = ["zendmm", "glibc", "jemalloc", "mimalloc", "tcmalloc"]
    groups = [name for name, _ in traces]
    gnames = groups + ["geomean"]
    panels = [("ns per event, ratio to ZendMM 8.2 (lower is better)", "ns"),
              ("peak RSS added, ratio to ZendMM 8.2 (lower is better)", "rss")]
    bw, bstep = 15, 18                    # bar width, bar pitch
    left, right, top = 50, 20, 96
    ph, gap = 220, 75                     # plot height, room between plots
    width = max(800, left + right + (bstep * len(allocs) + 40) * len(gnames))
    gw = (width - left - right) / float(len(gnames))
    height = top + len(panels) * (ph + gap) - 20
    cap = 3.0
    miss_fill = "#d1242f"
    el = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
          'font-family="sans-serif" font-size="11">' % (width, height, width, height),
          '<rect width="100%" height="100%" fill="white"/>',
          '<text x="%d" y="20" font-size="15" font-weight="bold">zendmm vs its peers: trace replay</text>'
          % left,
          '<text x="%d" y="36" font-size="10" fill="#57606a">%s</text>' % (left, svg_escape(subtitle))]
    lx = left
    for a in allocs:
        el.append('<rect x="%d" y="48" width="10" height="10" fill="%s"/>' % (lx, COLOR[a]))
        el.append('<text x="%d" y="57">%s</text>' % (lx + 14, svg_escape(LABEL[a])))
        lx += 14 + 7 * len(LABEL[a]) + 14
    el.append('<rect x="%d" y="48" width="10" height="10" fill="%s" stroke="black"/>' % (lx, miss_fill))
    el.append('<text x="%d" y="57">zendmm, target missed</text>' % (lx + 14))
    lx = left
    el.append('<line x1="%d" x2="%d" y1="71" y2="71" stroke="black" stroke-dasharray="4 3"/>' % (lx, lx + 22))
    el.append('<text x="%d" y="75">ZendMM 8.2 = 1.0</text>' % (lx + 26))
    lx += 26 + 7 * 16 + 14
    el.append('<line x1="%d" x2="%d" y1="71" y2="71" stroke="%s" stroke-width="2"/>' % (lx, lx + 22, miss_fill))
    el.append('<text x="%d" y="75">zendmm\'s target for the geometric mean of ns/event: %.2fx ZendMM 8.2</text>'
              % (lx + 26, T_TIME_GEOMEAN))

    for pi, (title, key) in enumerate(panels):
        y0 = top + pi * (ph + gap) + 20       # plot top
        yb = y0 + ph                          # baseline (ratio 0)
        vals = []
        bars = {}
        for g in gnames:
            for a in allocs:
                if g == "geomean":
                    v = geomean([summary[n]["cells"].get(a, {}).get(key + "_vs_php") for n in groups])
                    miss = a == "zendmm" and key == "ns" and (v is None or v > T_TIME_GEOMEAN)
                else:
                    c = summary[g]["cells"].get(a, {})
                    v = c.get(key + "_vs_php")
                    miss = False
                    if a == "zendmm":
                        if "error" in c or not c:
                            miss = True
                        elif key == "ns":
                            miss = c["ns_vs_best"] is not None and c["ns_vs_best"] > T_TIME_VS_BEST
                        else:
                            lean = summary[g]["best"]["rss"]
                            miss = lean is not None and c["rss"] > max(T_RSS_FACTOR * lean,
                                                                       lean + T_RSS_SLACK_KIB)
                bars[(g, a)] = (v, miss)
                if v:
                    vals.append(v)
        vmax = min(cap, max(vals + [1.2]) * 1.12)
        vmax = math.ceil(vmax * 4) / 4.0

        def ypos(v):
            return yb - ph * min(v, vmax) / vmax

        el.append('<text x="%d" y="%d" font-size="12" font-weight="bold">%s</text>'
                  % (left, y0 - 10, svg_escape(title)))
        step = 0.25 if vmax <= 1.5 else 0.5
        t = 0.0
        while t <= vmax + 1e-9:
            y = ypos(t)
            el.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eaeef2"/>'
                      % (left, width - right, y, y))
            el.append('<text x="%d" y="%.1f" text-anchor="end" fill="#57606a">%.2f</text>' % (left - 6, y + 4, t))
            t += step
        for gi, g in enumerate(gnames):
            gx = left + gi * gw + (gw - bstep * len(allocs)) / 2.0
            for ai, a in enumerate(allocs):
                v, miss = bars[(g, a)]
                x = gx + ai * bstep
                if v is None:
                    el.append('<text x="%.1f" y="%d" fill="%s" font-size="10">x</text>' % (x + 4, yb - 3, miss_fill))
                    continue
                y = ypos(v)
                fill = miss_fill if miss else COLOR[a]
                stroke = ' stroke="black"' if miss else ""
                el.append('<rect x="%.1f" y="%.1f" width="%d" height="%.1f" fill="%s"%s><title>%s, %s: %.2fx'
                          '</title></rect>' % (x, y, bw, yb - y, fill, stroke, svg_escape(LABEL[a]), g, v))
                label = "%.2f" % v if v < 10 else "%.0f" % v
                if v > vmax:   # clipped: the value goes inside the bar, in white
                    el.append('<text x="%.1f" y="%.1f" font-size="8" fill="white" text-anchor="end" '
                              'transform="rotate(-90 %.1f %.1f)">%s</text>'
                              % (x + 11, y + 4, x + 11, y + 4, label))
                else:
                    el.append('<text x="%.1f" y="%.1f" font-size="8" transform="rotate(-90 %.1f %.1f)">%s</text>'
                              % (x + 11, y - 3, x + 11, y - 3, label))
            if g == "geomean" and key == "ns":
                yt = ypos(T_TIME_GEOMEAN)
                el.append('<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>'
                          % (gx - 8, gx + bw + 8, yt, yt, miss_fill))
            el.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                      % (gx + bstep * len(allocs) / 2.0, yb + 15, svg_escape(g)))
        y1 = ypos(1.0)
        el.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="black" stroke-dasharray="4 3"/>'
                  % (left, width - right, y1, y1))
        el.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="black"/>' % (left, width - right, yb, yb))
    el.append("</svg>")
    with open(path, "w") as fh:
        fh.write("\n".join(el) + "\n")


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def sh(cmd):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              shell=isinstance(cmd, str)).stdout.strip()
    except OSError:
        return ""


def machine_info():
    lscpu = sh(["lscpu"])
    model = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines() if l.startswith("Model name")), "?")
    mem = "?"
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem = "%.1f GiB" % (int(line.split()[1]) / 1048576.0)
    info = {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory": mem,
        "kernel": platform.release(),
        "os": sh(". /etc/os-release && echo \"$PRETTY_NAME\""),
        "hypervisor": next((l.split(":", 1)[1].strip() for l in lscpu.splitlines()
                            if l.startswith("Hypervisor vendor")), None),
    }
    ver = {}
    for label, pkg in PACKAGES:
        v = sh(["dpkg-query", "-W", "-f=${Version}", pkg])
        ver[label] = "%s %s" % (pkg, v) if v else "%s (not installed)" % pkg
    rev = sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    # The report's own files are rewritten before this runs: not a change.
    dirty = sh(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "--", ".",
                ":!bench/RESULTS.md", ":!bench/ratios.svg"])
    cargo_ver = "?"
    try:
        for line in open(os.path.join(ROOT, "Cargo.toml")):
            if line.startswith("version"):
                cargo_ver = line.split("=")[1].strip().strip('"')
                break
    except OSError:
        pass
    ver["zendmm"] = "%s (git %s%s)" % (cargo_ver, rev or "?", ", with uncommitted changes" if dirty else "")
    ver["rustc"] = sh(["rustc", "--version"]) or "?"
    return info, ver


def loadavg():
    try:
        return open("/proc/loadavg").read().split()[:3]
    except OSError:
        return ["?"] * 3


def write_report(outdir, args, started, finished, load0, load1, sections, targets):
    info, ver = machine_info()
    out = ["# zendmm benchmark results", ""]
    out.append("Generated by `%s` on %s (%s); regenerated on every run, do not edit by hand. "
               "How to run and read it: `bench/README.md`."
               % ("python3 bench/run.py " + " ".join(sys.argv[1:]) if sys.argv[1:] else "make bench",
                  started.strftime("%Y-%m-%d %H:%M %Z").strip(),
                  "took %dm%02ds" % divmod(int((finished - started).total_seconds()), 60)))
    out.append("")
    if args.quick:
        out.append("**Quick run** (`--quick`): one run per cell, the smallest traces, a smaller scale "
                   "case. For development only; the figures are not medians.")
        out.append("")
    out.append("## Machine")
    out.append("")
    out.append("- CPU: %s, %s cores%s" % (info["cpu"], info["cores"],
                                          (" (%s guest)" % info["hypervisor"]) if info["hypervisor"] else ""))
    out.append("- Memory: %s" % info["memory"])
    out.append("- OS: %s, kernel %s" % (info["os"] or "?", info["kernel"]))
    out.append("- Load average (1, 5, 15 min) at start: %s; at end: %s. A busy machine moves absolute "
               "times by 10-30%%; compare ratios." % (" ".join(load0), " ".join(load1)))
    out.append("- The benchmark and every process it starts (replays, hyperfine and the PHP it runs): %s."
               % ("all on CPU %d (`--no-pin` lets the kernel place them)" % PIN_CPU
                  if PIN_CPU is not None else "placed by the kernel"))
    for k, v in ver.items():
        out.append("- %s: %s" % (k, v))
    out.append("")
    out.append("## Targets")
    out.append("")
    if targets:
        missed = sum(1 for t in targets if t[3] != MET)
        out.append("%d of %d checks met%s." % (len(targets) - missed, len(targets),
                                               "" if not missed else "; %d not met (in red)" % missed))
        out.append("")
        out.append(md_table(["target", "zendmm", "limit", "status"], targets, ["l", "r", "r", "l"]))
    else:
        out.append("No section with targets was run.")
    out.append("")
    for s in sections:
        out.extend(s)
    with open(os.path.join(outdir, "RESULTS.md"), "w") as fh:
        fh.write("\n".join(out).rstrip() + "\n")


# ---------------------------------------------------------------------------

prog = None


def main():
    global prog
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="one run per cell, the two smallest traces, 1 GiB scale case (development)")
    ap.add_argument("--breakdown", action="store_true",
                    help="also run the by-operation breakdown of every trace (diagnosis)")
    ap.add_argument("--only", action="append", default=[],
                    help="traces, protect, e2e, shutdown, scale (repeatable or comma-separated)")
    ap.add_argument("--runs", type=int, help="runs per cell (default: 7 traces and protect, 5 e2e/scale, 3 shutdown)")
    ap.add_argument("--no-pin", action="store_true",
                    help="let the kernel place measured processes (default: all on one CPU)")
    ap.add_argument("--traces", help="trace directory (default: $TRACES, else ../shared/traces)")
    ap.add_argument("--out", help="output directory (default: bench/ for a full run, "
                    "target/bench/<quick|partial>/ otherwise)")
    args = ap.parse_args()
    pin_cpu(not args.no_pin)

    only = set()
    for o in args.only:
        only.update(x.strip() for x in o.split(",") if x.strip())
    known = {"traces", "protect", "e2e", "shutdown", "scale"}
    if only - known:
        ap.error("--only takes %s" % ", ".join(sorted(known)))
    parts = [p for p in ("traces", "protect", "e2e", "shutdown", "scale") if not only or p in only]

    for f in (REPLAY, ZENDMM_LIB):
        if not os.path.exists(f):
            sys.exit("bench: %s is missing; run `make bench` (it builds it)" % f)

    if args.out:
        outdir = args.out
    elif args.quick:
        outdir = os.path.join(ROOT, "target", "bench", "quick")
    elif only:
        outdir = os.path.join(ROOT, "target", "bench", "partial")
    else:
        outdir = HERE
    os.makedirs(outdir, exist_ok=True)

    started = datetime.datetime.now().astimezone()
    load0 = loadavg()
    tasks = []
    tdata, edata, sdata, cdata, pdata = {}, {}, {}, {}, {}
    traces = []
    tdir = None
    tmp = tempfile.TemporaryDirectory(prefix="zendmm-bench-")
    if "traces" in parts or "protect" in parts:
        tdir, traces = find_traces(args)
        if not traces:
            sys.stderr.write("bench: no traces found (give TRACES=dir or --traces DIR); skipping trace replay\n")
            parts = [p for p in parts if p not in ("traces", "protect")]
        else:
            plan_traces(args, traces, tmp.name, tdata, tasks, replay_all="traces" in parts)
            if "protect" in parts:
                plan_protect(args, traces, pdata, tasks, tdata)
    if "e2e" in parts:
        plan_e2e(args, edata, tasks)
    if "shutdown" in parts:
        plan_shutdown(args, sdata, tasks)
    if "scale" in parts:
        plan_scale(args, cdata, tasks)

    prog = Progress(len(tasks))
    try:
        for what, task in tasks:
            prog.step(what)
            task()
    finally:
        tmp.cleanup()
    prog.finish()
    finished = datetime.datetime.now().astimezone()

    sections, targets = [], []
    raw = {"started": started.isoformat(), "args": sys.argv[1:]}
    if "traces" in parts:
        summary = summarize_traces(traces, tdata)
        rows, geo = trace_targets(summary)
        targets += rows
        sections.append(trace_section(tdir, traces, tdata, summary, geo))
        sections.append(breakdown_section(traces, tdata))
        write_svg(os.path.join(outdir, "ratios.svg"), summary, traces,
                  "%s; median of %d run%s per cell; %s. Bars above the top are clipped, their value inside."
                  % (started.strftime("%Y-%m-%d"), tdata["runs"], "" if tdata["runs"] == 1 else "s",
                     "quick run" if args.quick else "partial run" if only else "make bench"))
        raw["traces"] = {"%s/%s" % k: v for k, v in tdata["cells"].items()}
        raw["trace_errors"] = {"%s/%s" % k: v for k, v in tdata["errors"].items()}
    if "protect" in parts:
        ps = protect_summary(traces, pdata)
        targets += protect_targets(ps)
        sections.append(protect_section(pdata, ps))
        raw["protect"] = {"%s/%s" % k: v for k, v in pdata["cells"].items()}
    if "e2e" in parts:
        targets += e2e_targets(edata)
        sections.append(e2e_section(edata))
        raw["e2e"] = {"wall": {"%s/%s" % k: v for k, v in edata["wall"].items()},
                      "rss": {"%s/%s" % k: v for k, v in edata["rss"].items()},
                      "errors": {"%s/%s" % k: v for k, v in edata["errors"].items()},
                      "zendmm_active": edata.get("zendmm_active"), "probe": edata.get("zendmm_probe")}
    if "shutdown" in parts:
        ss = shutdown_summary(sdata)
        targets += shutdown_targets(ss)
        sections.append(shutdown_section(sdata, ss))
        raw["shutdown"] = {"%s/%s" % k: v for k, v in sdata["cells"].items()}
    if "scale" in parts:
        cs = scale_summary(cdata)
        targets += scale_targets(cdata, cs)
        sections.append(scale_section(cdata, cs))
        raw["scale"] = {"%s/%s" % k: v for k, v in cdata["cells"].items()}

    write_report(outdir, args, started, finished, load0, loadavg(), sections, targets)
    rawdir = os.path.join(ROOT, "target", "bench")
    os.makedirs(rawdir, exist_ok=True)
    with open(os.path.join(rawdir, "raw.json"), "w") as fh:
        json.dump(raw, fh, indent=1, default=str)
    missed = [t for t in targets if t[3] != MET]
    sys.stderr.write("bench: wrote %s%s; %d of %d target checks met\n" % (
        os.path.join(os.path.relpath(outdir, os.getcwd()), "RESULTS.md"),
        " and ratios.svg" if "traces" in parts else "", len(targets) - len(missed), len(targets)))
    # Missed targets are the report's news, not the benchmark's failure.
    return 0


if __name__ == "__main__":
    sys.exit(main())
