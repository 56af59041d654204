#!/usr/bin/env python3
"""The figures of scripts/bench.sh (see BENCHMARKS.md).

  bench-report.py record ...   one run's figures (server count, the generator's own output,
                               /usr/bin/time -v) as one JSON line
  bench-report.py open ...     the open-model run's figures as JSON
  bench-report.py render ...   the Markdown report from the JSON lines
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from datetime import datetime, timezone

# The targets for the record: (label, kind, generator, conns, target, sense).
TARGETS = [
    ("req/s vs wrk at 5000", "ratio", "wrk", 5000, 0.80, ">="),
    ("req/s vs wrk at 100", "ratio", "wrk", 100, 0.90, ">="),
    ("req/s vs stock goose at 5000", "ratio", "goose", 5000, 3.0, ">="),
    ("req/s vs oha at 5000", "ratio", "oha", 5000, 1.3, ">="),
    ("peak RSS per virtual user (KB) at 5000", "rss", None, 5000, 24.0, "<="),
    ("time until 5000 users run (s)", "startup", None, 5000, 0.5, "<"),
]


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def gnu_time(path):
    """Peak RSS (KB), CPU seconds and CPU % from `/usr/bin/time -v`."""
    text = read(path)

    def num(label):
        m = re.search(re.escape(label) + r":\s*([0-9.]+)", text)
        return float(m.group(1)) if m else None

    user, system = num("User time (seconds)"), num("System time (seconds)")
    return {
        "rss_kb": num("Maximum resident set size (kbytes)"),
        "cpu_s": (user or 0) + (system or 0) if user is not None else None,
        "cpu_pct": num("Percent of CPU this job got"),
    }


def wrk_ms(value):
    m = re.match(r"([0-9.]+)(us|ms|s|m)$", value)
    if not m:
        return None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]
    return float(m.group(1)) * scale


def parse_wrk(d):
    text = read(os.path.join(d, "out.txt"))
    out = {}
    for q, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s*" + q + r"%\s+(\S+)", text, re.M)
        out[key] = wrk_ms(m.group(1)) if m else None
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    out["errors"] = errors
    out["startup_s"] = None  # wrk does not say when its connections all run
    return out


def parse_oha(d):
    try:
        j = json.loads(read(os.path.join(d, "oha.json")))
    except ValueError:
        return {"p50_ms": None, "p99_ms": None, "errors": None, "startup_s": None}
    pct = j.get("latencyPercentiles") or {}
    ms = lambda v: None if v is None else v * 1000.0  # oha's JSON is in seconds
    return {
        "p50_ms": ms(pct.get("p50")),
        "p99_ms": ms(pct.get("p99")),
        # Requests cut off by the end of `-z` are not failures.
        "errors": sum(v for k, v in (j.get("errorDistribution") or {}).items() if "deadline" not in k),
        "startup_s": None,  # oha does not say when its connections all run
    }


def goose_value(v):
    """goose's report values: a number (ms) or an object holding one."""
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dict):
        for k in ("value", "v", "0"):
            if k in v:
                return goose_value(v[k])
        for x in v.values():
            r = goose_value(x)
            if r is not None:
                return r
    if isinstance(v, str):
        m = re.match(r"\s*([0-9.]+)", v)
        return float(m.group(1)) if m else None
    return None


def find_dicts(node, key):
    if isinstance(node, dict):
        if key in node:
            yield node
        for v in node.values():
            yield from find_dicts(v, key)
    elif isinstance(node, list):
        for v in node:
            yield from find_dicts(v, key)


def parse_goose(d, start):
    out = {"p50_ms": None, "p99_ms": None, "errors": None, "startup_s": None}
    try:
        j = json.loads(read(os.path.join(d, "goose.json")))
    except ValueError:
        j = None
    if j is not None:
        rows = list(find_dicts(j, "percentile_50"))
        agg = [r for r in rows if "aggregat" in str(r.get("name", "")).lower()] or rows
        if agg:
            out["p50_ms"] = goose_value(agg[0].get("percentile_50"))
            out["p99_ms"] = goose_value(agg[0].get("percentile_99"))
    # "All N users launched" on goose's stdout, timestamped by bench.sh.
    for line in read(os.path.join(d, "out.txt")).splitlines():
        ts, _, rest = line.partition(" ")
        if re.search(r"All \d+ users launched", rest) or re.search(r"\d+ of \d+ users launched", rest):
            out["startup_s"] = float(ts) - start
            break
    return out


def parse_gauntlet(d):
    out = {"p50_ms": None, "p99_ms": None, "errors": None, "startup_s": None, "post_load_s": None}
    try:
        s = json.loads(read(os.path.join(d, "run", "summary.json")))
    except ValueError:
        return out
    basis = s["load"].get("latency_basis") or "raw"
    lat = s["total"]["latency_us"].get(basis) or s["total"]["latency_us"]["raw"]
    out["p50_ms"] = lat["p50"] / 1000.0
    out["p99_ms"] = lat["p99"] / 1000.0
    out["errors"] = s["total"]["errors"]
    out["gauntlet_rps"] = s["total"].get("rps")
    # Grading and reports after the load: the run's end minus the load's end.
    load_end = s["load"]["started_at_s"] + s["load"]["duration_s"]
    out["post_load_s"] = s["run"]["duration_s"] - load_end
    # Users events (`-vv` diagnostics): the first with the full count, from LoadStarted.
    users = s["load"].get("users_peak")
    started, all_at = None, None
    for line in read(os.path.join(d, "err.txt")).splitlines():
        m = re.search(r"at_s=([0-9.]+)", line)
        if not m:
            continue
        if started is None and "LoadStarted" in line:
            started = float(m.group(1))
        c = re.search(r"count=(\d+)", line)
        if c and started is not None and users and int(c.group(1)) >= users:
            all_at = float(m.group(1))
            break
    if started is not None and all_at is not None:
        out["startup_s"] = all_at - started
    return out


def cmd_record(a):
    window = float(a.t1) - float(a.t0)
    served = int(a.count1) - int(a.count0)
    start = float(read(os.path.join(a.dir, "start")).strip() or 0)
    rec = {
        "gen": a.gen,
        "conns": int(a.conns),
        "round": int(a.round),
        "served": served,
        "window_s": round(window, 3),
        "rps": served / window if window > 0 else None,
    }
    rec.update(gnu_time(os.path.join(a.dir, "time.txt")))
    parse = {
        "wrk": lambda: parse_wrk(a.dir),
        "oha": lambda: parse_oha(a.dir),
        "goose": lambda: parse_goose(a.dir, start),
        "gauntlet": lambda: parse_gauntlet(a.dir),
    }[a.gen]
    rec.update(parse())
    print(json.dumps(rec))


def cmd_open(a):
    out = parse_gauntlet(a.dir)
    out.update(gnu_time(os.path.join(a.dir, "time.txt")))
    out["rate"] = float(a.rate)
    print(json.dumps(out))


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else None


def fmt(v, digits=0):
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}"


def machine():
    cpu = "unknown"
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "commit": rev or "unknown",
    }


def version(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        text = (r.stdout + r.stderr).strip().splitlines()
        return text[0] if text else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def cmd_render(a):
    recs = [json.loads(line) for line in read(a.results).splitlines() if line.strip()]
    smoke = a.smoke == "1"
    m = machine()
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    p = print
    title = "Benchmark" + (" (SMOKE RUN, NOT A MEASUREMENT)" if smoke else "")
    p(f"# {title}: {now}")
    p()
    if smoke:
        p("> **Smoke run, not a measurement**: it checks that the harness works end to end.")
        p("> The window is short, the rounds few and/or the machine busy; the figures below")
        p("> say nothing about the generators. See BENCHMARKS.md for a real run.")
        p()
    p(f"- Machine: {m['nproc']} CPUs, {m['cpu']}, kernel {m['kernel']}")
    p(f"- gauntlet commit {m['commit']}; server on CPU {a.server_cpu}, generator on CPU {a.load_cpu} (taskset)")
    p(f"- Window: {a.secs} s counted by the server after {a.warmup} s of warm-up; {a.runs} round(s), "
      f"generators alternating (order rotated every round)")
    p(f"- Generators: wrk ({version(['wrk', '-v'])}), oha ({version(['oha', '--version'])}), "
      "stock goose 0.19 (bench/goose-stock), gauntlet (release, closed model, no think time)")
    p()
    p("| generator | conns | req/s (server, median) | spread (min-max) | p50 ms | p99 ms | peak RSS MiB | RSS/conn KB | CPU % | CPU s | all running s | grade+reports s | errors | runs |")
    p("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    med = {}
    for n in [int(x) for x in a.conns.split()]:
        for g in a.generators.split():
            rs = [r for r in recs if r["gen"] == g and r["conns"] == n]
            if not rs:
                continue
            rps = median([r["rps"] for r in rs])
            sp = spread([r["rps"] for r in rs])
            rss = median([r.get("rss_kb") for r in rs])
            row = {
                "rps": rps,
                "rss_kb": rss,
                "startup_s": median([r.get("startup_s") for r in rs]),
            }
            med[(g, n)] = row
            p("| " + " | ".join([
                g,
                str(n),
                fmt(rps),
                f"{fmt(sp[0])}-{fmt(sp[1])}" if sp else "n/a",
                fmt(median([r.get("p50_ms") for r in rs]), 2),
                fmt(median([r.get("p99_ms") for r in rs]), 2),
                fmt(rss / 1024 if rss else None, 1),
                fmt(rss / n if rss else None, 1),
                fmt(median([r.get("cpu_pct") for r in rs])),
                fmt(median([r.get("cpu_s") for r in rs]), 1),
                fmt(row["startup_s"], 3),
                fmt(median([r.get("post_load_s") for r in rs]), 3),
                fmt(median([r.get("errors") for r in rs])),
                str(len(rs)),
            ]) + " |")
    p()
    p("## Targets")
    p()
    p("| target | measured | target | measured / target | met |")
    p("|---|---:|---:|---:|---|")
    for label, kind, other, n, target, sense in TARGETS:
        mine = med.get(("gauntlet", n))
        value = None
        if kind == "ratio":
            ref = med.get((other, n))
            if mine and ref and mine["rps"] and ref["rps"]:
                value = mine["rps"] / ref["rps"]
        elif kind == "rss" and mine and mine["rss_kb"]:
            value = mine["rss_kb"] / n
        elif kind == "startup" and mine:
            value = mine["startup_s"]
        if value is None:
            p(f"| {label} | n/a | {sense} {target:g} | n/a | not measured |")
            continue
        met = {">=": value >= target, "<=": value <= target, "<": value < target}[sense]
        p(f"| {label} | {value:.2f} | {sense} {target:g} | {value / target:.2f} | {'yes' if met else 'NO'} |")
    p()
    if a.open:
        o = json.loads(read(a.open))
        ok = o.get("p50_ms") is not None and 20.0 <= o["p50_ms"] <= 22.0
        p("## Open model: fixed arrival rate, 20 ms endpoint")
        p()
        p("| rate /s | p50 ms | p99 ms | p50 in 20-22 ms | errors | peak RSS MiB | grade+reports s |")
        p("|---:|---:|---:|---|---:|---:|---:|")
        rss = o.get("rss_kb")
        p(f"| {fmt(o['rate'])} | {fmt(o.get('p50_ms'), 2)} | {fmt(o.get('p99_ms'), 2)} | {'yes' if ok else 'NO'} | "
          f"{fmt(o.get('errors'))} | {fmt(rss / 1024 if rss else None, 1)} | {fmt(o.get('post_load_s'), 3)} |")
        p()
    p("Columns: see BENCHMARKS.md. n/a: the tool does not report it.")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    for k in ("gen", "conns", "round", "count0", "t0", "count1", "t1", "dir"):
        r.add_argument("--" + k, required=True)
    o = sub.add_parser("open")
    o.add_argument("--rate", required=True)
    o.add_argument("--dir", required=True)
    d = sub.add_parser("render")
    for k in ("results", "secs", "warmup", "runs", "conns", "generators", "server-cpu", "load-cpu", "smoke"):
        d.add_argument("--" + k, required=True)
    d.add_argument("--open")
    a = ap.parse_args()
    {"record": cmd_record, "open": cmd_open, "render": cmd_render}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
