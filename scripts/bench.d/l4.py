"""scripts/bench l4: mxgate's l4 relay against HAProxy (tcp mode) and direct.

Postfix smtp-source (one message per connection) drives, alternating in
one run, a direct smtp-sink, HAProxy and mxgate in front of two smtp-sinks;
mxgate-loadgen adds session-time percentiles and holds idle connections to
measure RSS. Everything listens on 127.0.0.1 only.
"""

import argparse
import os
import subprocess
import time
from pathlib import Path

import common
from common import HOST, BenchError, Procs, hold_rss, loadgen_sessions, log, median, start_sink

SUMMARY = "l4 relay: msgs/s and session times, direct vs HAProxy vs mxgate; mxgate RSS idle and at 5,000 idle conns"

GOAL_RATIO = 1.1  # mxgate msgs/s >= 1.1 x HAProxy msgs/s
GOAL_RSS_IDLE_MB = 20.0


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench l4",
        description="smtp-source -> {direct smtp-sink | HAProxy | mxgate l4} -> two smtp-sinks, "
        "alternating direct, haproxy, mxgate in each round. Prints msgs/s (median of the rounds), "
        "p50/p99 session time (mxgate-loadgen, median of the rounds), the ratios and mxgate's RSS "
        "idle and with --hold-count idle connections; writes bench-results/l4-<timestamp>.json.",
    )
    common.add_load_args(p, 20000, 2000, 5000, 5000, "idle connections")
    p.add_argument("--pause-s", type=float, default=0.5, help="pause between runs (default 0.5)")
    p.add_argument("--mxgate-log", default="warn", help="NODE.toml log level for mxgate (default warn; '' = its default)")
    p.add_argument("--no-mxgate", action="store_true", help="skip mxgate (develop the direct/HAProxy rows only)")
    p.add_argument("--no-build", action="store_true", help="use the existing target/release binaries")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, logs)")
    return p.parse_args(argv)


# --- the systems under test ---------------------------------------------------


def start_haproxy(procs: Procs, work: Path, sinks: list[int], nofile: int) -> tuple[int, subprocess.Popen, int]:
    port = common.free_port()
    # Two fds per relayed connection, plus headroom for checks and listeners.
    maxconn = max(1000, min(20000, (nofile - 1000) // 2))
    servers = "\n".join(
        f"    server sink{i + 1} {HOST}:{p} check inter 1000" for i, p in enumerate(sinks)
    )
    cfg = work / "haproxy.cfg"
    cfg.write_text(
        f"""global
    maxconn {maxconn}

defaults
    mode tcp
    maxconn {maxconn}
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend smtp
    bind {HOST}:{port}
    default_backend sinks

backend sinks
    balance roundrobin
{servers}
"""
    )
    proc = procs.start("haproxy", ["haproxy", "-db", "-f", str(cfg)])
    common.wait_tcp(procs, "haproxy", proc, port)
    return port, proc, maxconn


def start_mxgate(procs: Procs, work: Path, binary: Path, sinks: list[int], level: str) -> tuple[int, int, subprocess.Popen]:
    port = common.free_port()
    servers = "".join(
        f'\n[[pool.server]]\nname = "sink{i + 1}"\naddress = "{HOST}:{p}"\nmax_conn = 0\n'
        for i, p in enumerate(sinks)
    )
    policy = f"""[[pool]]
name = "sinks"
balance = "roundrobin"
check = {{ interval_ms = 1000 }}
{servers}
[[listener]]
name = "l4"
bind = "{HOST}:{port}"
mode = "l4"
pool = "sinks"
send_proxy = "none"
# Every load client is 127.0.0.1: no per-client cap (HAProxy has none here).
max_connections_per_client = 0

[relay]
domains = ["example.test"]
"""
    mport, proc = common.start_mxgate(procs, work, binary, policy, port, level, len(sinks))
    return port, mport, proc


# --- load -------------------------------------------------------------------------


def smtp_source(procs: Procs, a, port: int, messages: int) -> float:
    """One smtp-source run; returns msgs/s on the monotonic clock."""
    return common.smtp_source(procs, a, port, messages)[0]


# --- the run ------------------------------------------------------------------------


def versions() -> dict:
    return common.versions({
        "haproxy": ["haproxy", "-v"],
        "postfix": ["dpkg-query", "-W", "-f", "${Version}\n", "postfix"],
    })


def run(a, procs: Procs, release: Path, work: Path, nofile: int) -> dict:
    loadgen = release / "mxgate-loadgen"
    sinks, sink_procs = [], []
    for i in range(2):
        port, proc = start_sink(procs, f"sink{i + 1}")
        sinks.append(port)
        sink_procs.append(proc)
    hport, hproc, hmaxconn = start_haproxy(procs, work, sinks, nofile)
    targets = {"direct": sinks[0], "haproxy": hport}
    pids = {"haproxy": hproc.pid}
    result: dict = {"haproxy_maxconn": hmaxconn, "nofile": nofile}
    if not a.no_mxgate:
        mport, metrics_port, mproc = start_mxgate(procs, work, release / "mxgate", sinks, a.mxgate_log)
        targets["mxgate"] = mport
        pids["mxgate"] = mproc.pid
        time.sleep(1.0)
        result["mxgate_rss_idle_kb"] = common.rss_kb(mproc.pid)
    result["haproxy_rss_idle_kb"] = common.rss_kb(hproc.pid)
    result["threads"] = {name: common.proc_status(pid, "Threads") for name, pid in pids.items()}
    log(f"ports: sinks {sinks}, " + ", ".join(f"{k} {v}" for k, v in targets.items()))

    if a.warmup:
        for name, port in targets.items():
            log(f"warm-up: {a.warmup} messages to {name}")
            smtp_source(procs, a, port, a.warmup)

    rounds = []
    for r in range(a.rounds):
        rnd: dict = {"msgs_per_s": {}, "loadgen": {}}
        for name, port in targets.items():
            time.sleep(a.pause_s)
            before = _mx_sessions(metrics_port) if name == "mxgate" else None
            rate = smtp_source(procs, a, port, a.messages)
            if before is not None:
                rnd["mxgate_backend_sessions"] = _mx_sessions(metrics_port) - before
            rnd["msgs_per_s"][name] = round(rate, 1)
            log(f"round {r + 1}/{a.rounds} smtp-source {name:<8} {rate:9.1f} msgs/s")
        for name, port in targets.items():
            time.sleep(a.pause_s)
            res = loadgen_sessions(procs, a, loadgen, port)
            rnd["loadgen"][name] = res
            log(f"round {r + 1}/{a.rounds} loadgen     {name:<8} p50 {res['p50_ms']} ms, "
                f"p99 {res['p99_ms']} ms, {res['msgs_per_s']} msgs/s, {res['failed']} failed")
        rounds.append(rnd)
    result["rounds"] = rounds

    for name in pids:
        log(f"holding {a.hold_count} idle connections through {name}")
        result[f"{name}_hold"] = hold_rss(procs, a, loadgen, targets[name], pids[name], name)
    return result


def _mx_sessions(metrics_port: int) -> float:
    return common.mxgate_metric(metrics_port, "mxgate_backend_sessions_total")


def summarize(a, raw: dict) -> dict:
    rows = {}
    for name in raw["rounds"][0]["msgs_per_s"]:
        rates = [r["msgs_per_s"][name] for r in raw["rounds"]]
        lat = [r["loadgen"][name] for r in raw["rounds"]]
        rows[name] = {
            "msgs_per_s": round(median(rates), 1),
            "msgs_per_s_best": max(rates),
            "msgs_per_s_runs": rates,
            "p50_ms": round(median([x["p50_ms"] for x in lat]), 3),
            "p99_ms": round(median([x["p99_ms"] for x in lat]), 3),
            "loadgen_failed": sum(x["failed"] for x in lat),
        }
    s: dict = {"rows": rows}
    if "haproxy" in rows and rows["direct"]["msgs_per_s"]:
        s["haproxy_over_direct"] = round(rows["haproxy"]["msgs_per_s"] / rows["direct"]["msgs_per_s"], 3)
    if "mxgate" in rows and rows["haproxy"]["msgs_per_s"]:
        s["mxgate_over_haproxy"] = round(rows["mxgate"]["msgs_per_s"] / rows["haproxy"]["msgs_per_s"], 3)
        s["mxgate_over_direct"] = round(rows["mxgate"]["msgs_per_s"] / rows["direct"]["msgs_per_s"], 3)
    for who in ("mxgate", "haproxy"):
        if f"{who}_rss_idle_kb" in raw:
            s[f"{who}_rss_idle_mb"] = round(raw[f"{who}_rss_idle_kb"] / 1024, 2)
        if f"{who}_hold" in raw:
            h = raw[f"{who}_hold"]
            s[f"{who}_rss_hold_mb"] = round(h["rss_kb"] / 1024, 2)
            s[f"{who}_hold_held"] = h["held"]
    if "mxgate" in rows:
        s["mxgate_backend_sessions_per_run"] = [r.get("mxgate_backend_sessions") for r in raw["rounds"]]
    if "mxgate_over_haproxy" in s:
        s["goal_ratio_met"] = s["mxgate_over_haproxy"] >= GOAL_RATIO
    if "mxgate_rss_idle_mb" in s:
        s["goal_rss_idle_met"] = s["mxgate_rss_idle_mb"] <= GOAL_RSS_IDLE_MB
    return s


def print_report(a, s: dict, raw: dict, path: Path) -> None:
    ok = lambda met: "met" if met else "NOT MET"  # noqa: E731
    print()
    print(f"l4: smtp-source {a.messages} msgs x {a.size} B, {a.sessions} parallel sessions, one message per "
          f"connection; {a.rounds} alternating rounds, msgs/s = median of rounds")
    print(f"    session times: mxgate-loadgen {a.lat_count} sessions, {a.lat_concurrency} concurrent "
          f"(connect .. 221), median of rounds; {os.cpu_count()} cores, all on 127.0.0.1")
    print()
    print(f"  {'target':<8} {'msgs/s':>9} {'best':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in s["rows"].items():
        print(f"  {name:<8} {r['msgs_per_s']:>9.0f} {r['msgs_per_s_best']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}")
    print()
    if "mxgate_over_haproxy" in s:
        print(f"  mxgate/haproxy   {s['mxgate_over_haproxy']:.2f}x   goal >= {GOAL_RATIO:.1f}x   "
              f"{ok(s['goal_ratio_met'])}")
    if "haproxy_over_direct" in s:
        print(f"  haproxy/direct   {s['haproxy_over_direct']:.2f}x   (issue measured 0.61x)")
    if "mxgate_over_direct" in s:
        print(f"  mxgate/direct    {s['mxgate_over_direct']:.2f}x")
    if "mxgate_backend_sessions_per_run" in s:
        runs = ", ".join(f"{x:.0f}" if x is not None else "?" for x in s["mxgate_backend_sessions_per_run"])
        print(f"  mxgate_backend_sessions_total per run: {runs} (of {a.messages})")
    if "mxgate_rss_idle_mb" in s:
        print(f"  mxgate RSS idle  {s['mxgate_rss_idle_mb']:.1f} MB   goal <= {GOAL_RSS_IDLE_MB:.0f} MB   "
              f"{ok(s['goal_rss_idle_met'])}")
    if "mxgate_rss_hold_mb" in s:
        print(f"  mxgate RSS @{a.hold_count} idle conns  {s['mxgate_rss_hold_mb']:.1f} MB   "
              f"({s['mxgate_hold_held']} held, through to smtp-sink)")
    if "haproxy_rss_idle_mb" in s:
        hold = f", @{a.hold_count} idle conns {s['haproxy_rss_hold_mb']:.1f} MB ({s['haproxy_hold_held']} held)" \
            if "haproxy_rss_hold_mb" in s else ""
        print(f"  haproxy RSS idle {s['haproxy_rss_idle_mb']:.1f} MB{hold}   (for comparison)")
    print("  threads: " + ", ".join(f"{k} {v}" for k, v in raw["threads"].items())
          + "; load generators single-threaded")
    print(f"\n  results: {path.relative_to(common.ROOT)}")


def main(argv: list[str]) -> int:
    a = parse(argv)
    if a.rounds < 1:
        raise SystemExit("scripts/bench l4: --rounds must be at least 1")
    nofile = common.raise_nofile()
    need = 2 * a.hold_count + 200
    if nofile < need:
        log(f"warning: open-files limit {nofile} < {need}; the hold step may fail")

    def finish(raw, release):
        summary = summarize(a, raw)
        data = {
            "bench": "l4",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": versions(),
            "params": vars(a),
            "goals": {"mxgate_over_haproxy_min": GOAL_RATIO, "mxgate_rss_idle_mb_max": GOAL_RSS_IDLE_MB},
            "summary": summary,
            "raw": raw,
        }
        path = common.write_results("l4", data)
        print_report(a, summary, raw, path)

    return common.drive(
        "l4",
        ["mxgate-loadgen"] if a.no_mxgate else ["mxgate", "mxgate-loadgen"],
        a,
        lambda procs, release, work: run(a, procs, release, work, nofile),
        finish,
    )
