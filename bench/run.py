#!/usr/bin/env python3
"""Benchmark driver and aggregator (scripts/bench.sh runs it after installing and building).

For each broker setting it starts one `kepm-devagent serve`, reads its ready line, runs every
peer program in alternating rounds (round 1: every peer, round 2: every peer, ...), each
printing one JSON result line (bench/src/lib.rs describes it), then the extras (RSS with the
broker down, time to the first PUBACK), and writes BENCHMARKS.md.

The mosquitto_pub peer lives here: `mosquitto_pub -l` fed chunks of 10,000 lines, one process
per chunk, its CPU and peak RSS from os.wait4 (the children's own rusage).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import select
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MESSAGE = (
    "Scanned /var/lib/app/config/settings.json: 0 issues, 12 keys checked, policy strict, "
    "duration 3 ms, status OK ...."
)
CHUNK = 10_000
PEER_TIMEOUT = 600


@dataclass
class Setting:
    key: str
    title: str
    args: list[str]


SETTINGS = [
    Setting("sub-rm20", "Subscriber on, Receive Maximum 20 (Mosquitto's default)", []),
    Setting("sub-rm65535", "Subscriber on, Receive Maximum 65,535", ["--receive-maximum", "0"]),
    Setting("nosub-rm20", "No subscriber, Receive Maximum 20", ["--no-capture"]),
    Setting("nosub-rm65535", "No subscriber, Receive Maximum 65,535",
            ["--no-capture", "--receive-maximum", "0"]),
]
QUICK_SETTINGS = ["sub-rm20", "nosub-rm65535"]


@dataclass
class Peer:
    key: str
    label: str
    argv: list[str] = field(default_factory=list)  # empty: run in the driver (mosquitto_pub)


def peers(args: argparse.Namespace) -> list[Peer]:
    b = Path(args.bin_dir)
    r = Path(args.rust_bin_dir)
    py, node = args.python, args.node
    pyp, nodep = str(REPO / "bench/python/peer.py"), str(REPO / "bench/node/peer.js")
    return [
        Peer("kepmlog-rust", "kepmlog Rust `info`", [str(r / "bench-kepmlog")]),
        Peer("kepmlog-rust-spool", "kepmlog Rust `info`, spool on", [str(r / "bench-kepmlog"), "spool"]),
        Peer("kepmlog-c", "kepmlog C `kepmlog_log`", [str(b / "bench-c")]),
        Peer("kepmlog-go", "kepmlog Go `Info`", [str(b / "bench-go")]),
        Peer("kepmlog-python", "kepmlog Python `Logger.info`", [py, pyp, "direct"]),
        Peer("kepmlog-python-logging", "kepmlog Python `logging` + handler", [py, pyp, "logging"]),
        Peer("kepmlog-node", "kepmlog Node `logger.info`", [node, nodep, "kepmlog"]),
        Peer("rumqttc", "raw rumqttc 0.25 loop (Rust)", [str(r / "bench-rumqttc")]),
        Peer("paho", "paho-mqtt 2 (Python)", [py, pyp, "paho"]),
        Peer("mqttjs", "mqtt.js 5 (Node)", [node, nodep, "mqttjs"]),
        Peer("mosquitto_pub", "`mosquitto_pub -l` (C, libmosquitto)"),
    ]


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class DevAgent:
    """`kepm-devagent serve`: the ready line is read byte by byte, the rest of its stdout (one
    line per captured message) goes to /dev/null through `cat`."""

    def __init__(self, path: str, args: list[str], logdir: Path, name: str):
        self.stderr = open(logdir / f"devagent-{name}.log", "w")
        self.proc = subprocess.Popen(
            # --deny-visible: Mosquitto's own TLS listener, no relay in front of it.
            [path, "serve", "--deny-visible", "--allow", "KeeperLogger", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
            env=dict(os.environ, TMPDIR="/tmp"),
        )
        fd = self.proc.stdout.fileno()
        line = b""
        deadline = time.monotonic() + 30
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.close()
                raise RuntimeError(f"kepm-devagent {' '.join(args)}: no ready line in 30 s")
            b = os.read(fd, 1)
            if not b:
                raise RuntimeError(f"kepm-devagent exited: see {self.stderr.name}")
            line += b
        self.ready = json.loads(line)
        self.drain = subprocess.Popen(["cat"], stdin=self.proc.stdout, stdout=subprocess.DEVNULL)
        self.proc.stdout.close()

    def close(self) -> None:
        try:
            self.proc.stdin.write(b"quit\n")
            self.proc.stdin.flush()
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        if getattr(self, "drain", None):
            self.drain.wait(timeout=30)
        self.stderr.close()


def envelope(message: str) -> str:
    return json.dumps({
        "Id": str(uuid.uuid4()), "Version": 1, "RespondToTopic": None,
        "MetaData": {"MessageType": 4, "LogLevel": 1, "Source": "BenchTool", "Category": "Bench",
                     "Message": message, "CorrelationId": "", "Context": ""},
    }, separators=(",", ":"))


def peer_env(ready: dict, n: int) -> dict:
    return dict(
        os.environ, TMPDIR="/tmp", KEPMLOG_BENCH_HOST=ready["broker_host"],
        KEPMLOG_BENCH_PORT=str(ready["broker_port"]), KEPMLOG_BENCH_CA=ready["ca"],
        KEPMLOG_BENCH_N=str(n), KEPMLOG_BENCH_MESSAGE=MESSAGE,
    )


def last_json(text: str) -> dict | None:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def run_program(argv: list[str], env: dict, logf) -> dict:
    try:
        p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=PEER_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {PEER_TIMEOUT} s"}
    if p.stderr:
        logf.write(f"--- {' '.join(argv)} (exit {p.returncode}) stderr:\n{p.stderr[-4000:]}\n")
    res = last_json(p.stdout) or {"error": f"no result line (exit {p.returncode}): {p.stderr[-300:]}"}
    if p.returncode != 0 and "error" not in res:
        res["error"] = f"exit {p.returncode}"
    return res


def mosquitto_pub_argv(ready: dict, client_id: str) -> list[str]:
    return ["mosquitto_pub", "-h", ready["broker_host"], "-p", str(ready["broker_port"]),
            # --insecure skips only the name check: the agent's certificate names
            # "Localhost", not 127.0.0.1; the chain is still verified against --cafile.
            "--cafile", ready["ca"], "--insecure", "-V", "mqttv5", "-q", "1", "-t", "KeeperLogger",
            "-i", client_id]


def run_mosquitto_pub(ready: dict, n: int, logf) -> dict:
    """`mosquitto_pub -l`, one process per chunk of 10,000 lines (each exits 0 once its last
    PUBACK arrived: counted as acknowledged). CPU: each child's rusage (os.wait4). Peak RSS:
    /usr/bin/time's %M for the process it forks: ru_maxrss of a child of this (large) driver
    would include the driver's, which Linux carries over fork + exec."""
    lines = [envelope(MESSAGE) for _ in range(n)]
    chunks = ["\n".join(lines[i:i + CHUNK]).encode() + b"\n" for i in range(0, n, CHUNK)]
    sizes = [len(lines[i:i + CHUNK]) for i in range(0, n, CHUNK)]
    del lines
    acked, cpu, maxrss, errors = 0, 0.0, 0, []
    t0 = time.perf_counter()
    for k, (data, size) in enumerate(zip(chunks, sizes)):
        with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss:
            p = subprocess.Popen(
                ["/usr/bin/time", "-f", "%M", "-o", rss.name]
                + mosquitto_pub_argv(ready, f"bench-job_mosquittopub_{os.getpid()}_{k}") + ["-l"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err,
            )
            try:
                p.stdin.write(data)
                p.stdin.close()
            except BrokenPipeError:
                pass
            _, status, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            cpu += ru.ru_utime + ru.ru_stime
            try:
                maxrss = max(maxrss, int(rss.read().split()[-1]))
            except (ValueError, IndexError):
                pass
            if p.returncode == 0:
                acked += size
            else:
                err.seek(0)
                text = err.read().decode(errors="replace").strip()
                errors.append(f"chunk {k}: exit {p.returncode}: {text[-200:]}")
                logf.write(f"--- mosquitto_pub chunk {k}: exit {p.returncode}: {text}\n")
    secs = time.perf_counter() - t0
    res = {"peer": "mosquitto_pub", "n": n, "acked": acked, "secs": secs, "cpu_us": int(cpu * 1e6),
           "maxrss_kb": maxrss, "processes": len(chunks)}
    if errors:
        res["error"] = "; ".join(errors[:3])
    return res


# -- aggregation ---------------------------------------------------------------------------

def med(xs):
    return statistics.median(xs) if xs else None


def fmt_int(x) -> str:
    return "–" if x is None else f"{x:,.0f}"


def fmt_us(ns) -> str:
    if ns is None:
        return "–"
    us = ns / 1000
    return f"{us:.1f}" if us < 100 else f"{us:,.0f}"


@dataclass
class Summary:
    rate: float | None = None
    rate_min: float | None = None
    rate_max: float | None = None
    cpu: float | None = None  # µs per record
    p50: float | None = None
    p99: float | None = None
    p999: float | None = None
    rss_mb: float | None = None
    worst_acked: int | None = None
    n: int = 0
    rounds: int = 0
    errors: list[str] = field(default_factory=list)


def summarize(results: list[dict], n: int) -> Summary:
    s = Summary(n=n, rounds=len(results))
    ok = [r for r in results if r.get("secs")]
    for i, r in enumerate(results):
        if r.get("error"):
            s.errors.append(f"round {i + 1}: {r['error']}")
    if not ok:
        return s
    rates = [r["acked"] / r["secs"] for r in ok]
    s.rate, s.rate_min, s.rate_max = med(rates), min(rates), max(rates)
    s.cpu = med([r["cpu_us"] / r["n"] for r in ok])
    if all("p50_ns" in r for r in ok):
        s.p50 = med([r["p50_ns"] for r in ok])
        s.p99 = med([r["p99_ns"] for r in ok])
        s.p999 = med([r["p999_ns"] for r in ok])
    s.rss_mb = max(r["maxrss_kb"] for r in ok) / 1024
    s.worst_acked = min(r.get("acked", 0) for r in results) if len(ok) == len(results) else 0
    return s


def ratio(a, b) -> str:
    return "–" if a is None or not b else f"{a / b:.2f}"


def setting_table(peer_list: list[Peer], sums: dict[str, Summary]) -> list[str]:
    base = sums.get("rumqttc")
    out = [
        "| peer | records/s median (min–max) | vs rumqttc | CPU µs/record | CPU vs rumqttc "
        "| call p50 / p99 / p99.9 µs | peak RSS MB | delivered/N |",
        "|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for p in peer_list:
        s = sums.get(p.key)
        if s is None:
            continue
        if s.rate is None:
            rate = "failed"
        elif s.rounds > 1:
            rate = f"{fmt_int(s.rate)} ({fmt_int(s.rate_min)}–{fmt_int(s.rate_max)})"
        else:
            rate = fmt_int(s.rate)
        lat = "n/a (separate process)" if p.key == "mosquitto_pub" else (
            f"{fmt_us(s.p50)} / {fmt_us(s.p99)} / {fmt_us(s.p999)}")
        delivered = f"{fmt_int(s.worst_acked)}/{fmt_int(s.n)}"
        if s.worst_acked is not None and s.worst_acked < s.n:
            delivered = f"**{delivered}** (worst round)"
        out.append(
            f"| {p.label} | {rate} | {ratio(s.rate, base and base.rate)} "
            f"| {'–' if s.cpu is None else f'{s.cpu:.1f}'} | {ratio(s.cpu, base and base.cpu)} "
            f"| {lat} | {'–' if s.rss_mb is None else f'{s.rss_mb:.0f}'} | {delivered} |"
        )
        notes += [f"- {p.label}, {e}" for e in s.errors]
    if notes:
        out += ["", "Failures and losses:", *notes]
    return out


# -- extras --------------------------------------------------------------------------------

def extra_down(args, env: dict, logf) -> dict:
    res = run_program([str(Path(args.rust_bin_dir) / "bench-kepmlog"), "down"],
                      dict(env, KEPMLOG_BENCH_DOWN_N=str(args.down_n)), logf)
    return res


def timed_process(argv: list[str], env: dict, logf) -> tuple[float, float, int]:
    """Runs one process to its end: (wall ms from spawn to exit, its CPU ms user + system
    from os.wait4, exit status)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - t0) * 1e3
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or err:
        logf.write(f"--- {' '.join(argv)} (exit {proc.returncode}):\n{out[-2000:]!r}\n{err[-2000:]!r}\n")
    return wall, (ru.ru_utime + ru.ru_stime) * 1e3, proc.returncode


def extra_startup(args, ready: dict, env: dict, logf) -> dict:
    """Alternating runs, one record each: bench-kepmlog startup (in process: Logger::new ->
    connected, -> first PUBACK), then three one-record job tools timed from outside (wall
    spawn -> exit and CPU): kepmlog Rust (`bench-kepmlog tool`), the guide's paho recipe
    (bench/python/one_record.py), both finding the broker through Plugin Settings, and
    `mosquitto_pub -m` (broker given)."""
    res: dict[str, list] = {k: [] for k in (
        "k_connected", "k_inproc", "k_wall", "k_cpu", "p_wall", "p_cpu", "m_wall", "m_cpu")}
    errors: list[str] = []
    exe = str(Path(args.rust_bin_dir) / "bench-kepmlog")
    payload = envelope(MESSAGE)
    tool_env = dict(env, KEEPER_JOB_ID="bench-job")
    api = f"--keeper-api-base={ready['api_base']}"
    for i in range(args.startup_runs):
        r = run_program([exe, "startup"], env, logf)
        if "ms" in r and not r.get("error"):
            res["k_inproc"].append(r["ms"])
            res["k_connected"].append(r["connected_ms"])
        else:
            errors.append(f"kepmlog startup run {i + 1}: {r.get('error')}")
        tools = [
            ("k", "kepmlog tool", [exe, "tool", api]),
            ("p", "paho recipe", [args.python, str(REPO / "bench/python/one_record.py"), api]),
            ("m", "mosquitto_pub", mosquitto_pub_argv(ready, f"bench-job_mosquittopub1_{os.getpid()}_{i}")
             + ["-m", payload]),
        ]
        for key, name, argv in tools:
            time.sleep(0.2)
            wall, cpu, code = timed_process(argv, tool_env, logf)
            if code == 0:
                res[f"{key}_wall"].append(wall)
                res[f"{key}_cpu"].append(cpu)
            else:
                errors.append(f"{name} run {i + 1}: exit {code} (see target/bench/logs/peers.log)")
        time.sleep(0.2)
    res["errors"] = errors
    return res


def fmt_ms(xs: list[float]) -> str:
    if not xs:
        return "failed"
    return f"{med(xs):.1f} ({min(xs):.1f}–{max(xs):.1f})"


# -- report --------------------------------------------------------------------------------

def sh(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def versions(args) -> str:
    mqttjs = "?"
    try:
        mqttjs = json.loads((Path(args.node_path) / "mqtt/package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        pass
    paho = sh([args.python, "-c", "import paho.mqtt; print(paho.mqtt.__version__)"])
    pyver = sh([args.python, "-c", "import platform; print(platform.python_version())"])
    mosq = "?"
    for line in sh(["mosquitto_pub", "--help"]).splitlines():
        if line.startswith("mosquitto_pub version"):
            mosq = line.split()[2]
    return (f"{sh(['rustc', '--version'])}; Python {pyver}, paho-mqtt {paho}; Node "
            f"{sh([args.node, '--version'])}, mqtt.js {mqttjs}; {sh(['go', 'version'])}; "
            f"Mosquitto and mosquitto_pub {mosq}")


def git_commit() -> str:
    head = sh(["git", "-C", str(REPO), "log", "-1", "--format=%h %s"])
    dirty = sh(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    return head + (" (plus uncommitted changes)" if dirty else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="10,000 records, 1 round, 2 settings, short extras (smoke test)")
    ap.add_argument("--out", help="report file (default BENCHMARKS.md; quick: target/bench/BENCHMARKS-quick.md)")
    ap.add_argument("--settings", help="comma-separated: " + ",".join(s.key for s in SETTINGS))
    ap.add_argument("--peers", help="comma-separated peer keys (default: all)")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--no-extras", action="store_true", help="skip broker-down RSS and startup")
    ap.add_argument("--extras-only", action="store_true",
                    help="only broker-down RSS and startup (no throughput settings)")
    ap.add_argument("--devagent", required=True)
    ap.add_argument("--bin-dir", required=True, help="bench-c, bench-go")
    ap.add_argument("--rust-bin-dir", required=True, help="bench-kepmlog, bench-rumqttc")
    ap.add_argument("--python", required=True, help="venv python with kepmlog and paho-mqtt")
    ap.add_argument("--node", default="node")
    ap.add_argument("--node-path", required=True, help="node_modules with kepmlog and mqtt")
    args = ap.parse_args()

    n = int(os.environ.get("KEPMLOG_BENCH_N", "").replace("_", "") or (10_000 if args.quick else 100_000))
    rounds = args.rounds or (1 if args.quick else 3)
    keys = args.settings.split(",") if args.settings else (
        QUICK_SETTINGS if args.quick else [s.key for s in SETTINGS])
    settings = [s for s in SETTINGS if s.key in keys]
    if len(settings) != len(keys):
        ap.error(f"unknown setting in {keys}")
    if args.extras_only:
        if args.no_extras:
            ap.error("--extras-only and --no-extras exclude each other")
        settings = []
    all_peers = peers(args)
    peer_list = [p for p in all_peers if not args.peers or p.key in args.peers.split(",")]
    args.down_n = 200_000 if args.quick else 1_000_000
    args.startup_runs = 3 if args.quick else 10
    out = Path(args.out) if args.out else (
        REPO / "target/bench/BENCHMARKS-quick.md" if args.quick else REPO / "BENCHMARKS.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    os.environ["NODE_PATH"] = args.node_path
    logdir = REPO / "target/bench/logs"
    logdir.mkdir(parents=True, exist_ok=True)
    logf = open(logdir / "peers.log", "w")

    started = time.monotonic()
    started_at = datetime.datetime.now(datetime.timezone.utc)
    load_start = os.getloadavg()
    results: dict[str, dict[str, list[dict]]] = {}
    loads: dict[str, tuple] = {}
    for st in settings:
        log(f"== {st.title} ({n:,} records x {rounds} round(s))")
        loads[st.key] = os.getloadavg()
        agent = DevAgent(args.devagent, st.args, logdir, st.key)
        try:
            env = peer_env(agent.ready, n)
            per = results.setdefault(st.key, {})
            for rnd in range(rounds):
                for p in peer_list:
                    logf.write(f"=== {st.key} round {rnd + 1} {p.key}\n")
                    r = run_mosquitto_pub(agent.ready, n, logf) if not p.argv else run_program(p.argv, env, logf)
                    per.setdefault(p.key, []).append(r)
                    rate = f"{r['acked'] / r['secs']:,.0f}/s" if r.get("secs") else "-"
                    cpu = f"{r['cpu_us'] / r['n']:.1f} µs/rec" if r.get("secs") else ""
                    log(f"  round {rnd + 1} {p.key:<24} {rate:>12} {cpu:>14}"
                        f"  acked {r.get('acked', 0):,}/{n:,}" + (f"  ERROR {r['error']}" if r.get("error") else ""))
                    time.sleep(0.5)
        finally:
            agent.close()

    extras = {}
    if not args.no_extras:
        log("== extras: RSS with the broker down; Logger::new to the first PUBACK")
        agent = DevAgent(args.devagent, ["--no-broker"], logdir, "no-broker")
        try:
            extras["down"] = extra_down(args, peer_env(agent.ready, n), logf)
        finally:
            agent.close()
        agent = DevAgent(args.devagent, [], logdir, "startup")
        try:
            extras["startup"] = extra_startup(args, agent.ready, peer_env(agent.ready, n), logf)
        finally:
            agent.close()
    elapsed = time.monotonic() - started
    load_end = os.getloadavg()
    logf.close()

    # -- write the report -------------------------------------------------------------------
    sums = {st.key: {k: summarize(v, n) for k, v in results[st.key].items()} for st in settings}
    payload_bytes = len(envelope(MESSAGE).encode())
    md = [
        "# Benchmarks",
        "",
        f"Written by `scripts/bench.sh{' --quick' if args.quick else ''}` on "
        f"{started_at:%Y-%m-%d %H:%M} UTC; the run took {elapsed / 60:.1f} min. Regenerate "
        "with the same command; nothing here is edited by hand.",
        "",
        f"- **Machine:** {os.cpu_count()} CPUs ({cpu_model()}), "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"{platform.system()} {platform.release()}. Shared: load average "
        f"{load_start[0]:.2f} at the start, {load_end[0]:.2f} at the end "
        "(per setting below); other builds may have run meanwhile.",
        f"- **Commit:** {git_commit()}",
        f"- **Tools:** {versions(args)}",
        f"- **Workload:** {n:,} records per peer and round, {rounds} alternating round(s) (round 1: "
        f"every peer in the order below, then round 2, ...); each record a {payload_bytes}-byte "
        "KeeperLogger JSON envelope (fresh UUID) around the same message, QoS 1, TLS "
        "(verified against the devagent's CA), MQTT v5, to the devagent's Mosquitto on loopback.",
        "- **records/s:** acknowledged records / seconds from the first log or publish call to "
        "the last acknowledgement (kepmlog: `flush` returning OK); median of the rounds "
        "(min–max). Every peer connects first (kepmlog: one warm-up record, flushed) so the "
        "window holds no connection setup, except mosquitto_pub, whose processes connect inside it.",
        "- **CPU µs/record:** user + system CPU of the peer's whole process (all threads: for "
        "kepmlog that includes its worker) over the same window, from getrusage inside the "
        "peer, / N. mosquitto_pub: its processes' own rusage, startup and TLS handshakes included.",
        "- **call p50 / p99 / p99.9:** every log or publish call timed alone with a monotonic "
        "clock (timer overhead included, ~20–60 ns); median of the rounds. Raw peers build the "
        "envelope (UUID + JSON) inside the timed call, as kepmlog does.",
        "- **peak RSS:** VmHWM of the peer process, read by the peer at the end (largest "
        "round; ru_maxrss would include the driver's, which Linux carries over fork + exec); "
        "mosquitto_pub: `/usr/bin/time`'s %M. **delivered/N:** acknowledged records of the "
        "worst round.",
        "- **Peers:** kepmlog peers set the queue capacity to N so the burst fits (with the "
        "default 65,536 and `Block` the caller would wait for room past that). raw rumqttc: "
        "`AsyncClient` with a 1,000-request channel, the event loop polled in a task on a "
        "current-thread runtime, `publish().await` per record. paho-mqtt: `loop_start()`, "
        "`publish(qos=1)`, its default 20 in flight, waits when 60,000 are unacknowledged. "
        "mqtt.js: `UniqueMessageIdProvider`, yields to the event loop every 1,000 publishes. "
        f"mosquitto_pub: `-l -q 1 -V mqttv5 --cafile`, {CHUNK:,} lines per process, "
        "acknowledged = lines of the processes that exited 0.",
        "- **Subscriber:** on = the devagent's capture subscriber receives every record (the "
        "broker forwards it, and the devagent prints it, on the same 2 cores); off = "
        "`--no-capture`, PUBACK 0x10 \"no matching subscribers\". Receive Maximum: the "
        "broker's `max_inflight_messages` announced in CONNACK (clients that honour it: "
        "rumqttc and so kepmlog, libmosquitto; paho-mqtt and mqtt.js do not read it).",
        "",
    ]
    # Headline table.
    md += ["## Headline: kepmlog from Rust vs the raw rumqttc loop", "",
           "| setting | kepmlog records/s | rumqttc records/s | ratio | kepmlog CPU µs/rec "
           "| rumqttc CPU µs/rec | CPU ratio |", "|---|---|---|---|---|---|---|"]
    for st in settings:
        k, r = sums[st.key].get("kepmlog-rust"), sums[st.key].get("rumqttc")
        if k and r:
            md.append(f"| {st.title} | {fmt_int(k.rate)} | {fmt_int(r.rate)} | {ratio(k.rate, r.rate)} "
                      f"| {'–' if k.cpu is None else f'{k.cpu:.1f}'} | {'–' if r.cpu is None else f'{r.cpu:.1f}'} "
                      f"| {ratio(k.cpu, r.cpu)} |")
    md.append("")
    for st in settings:
        la = loads[st.key]
        md += [f"## {st.title}", "",
               f"`kepm-devagent serve {' '.join(['--allow', 'KeeperLogger', *st.args])}`"
               f"; load average {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f} when it started.", ""]
        md += setting_table(peer_list, sums[st.key])
        md.append("")
    if extras:
        md += ["## Broker down: RSS of kepmlog (Rust) while logging into the void", ""]
        d = extras["down"]
        if d.get("rss_kb"):
            md += ["Nothing listens on the broker port (devagent `--no-broker`); default options "
                   f"(queue {d.get('queue_capacity', 0):,} records, overflow `Drop`).", "",
                   "| log calls | RSS MB |", "|---|---|"]
            md += [f"| {c:,} | {kb / 1024:.1f} |" for c, kb in d["rss_kb"] if kb is not None]
            md += ["", f"{d.get('accepted', 0):,} accepted (the queue), {d.get('dropped', 0):,} "
                   f"dropped and counted; log call p50 {fmt_us(d.get('p50_ns'))} µs, p99 "
                   f"{fmt_us(d.get('p99_ns'))} µs; {d['n']:,} calls in {d['secs']:.2f} s.", ""]
        else:
            md += [f"failed: {d.get('error')}", ""]
        s = extras["startup"]
        md += ["## Time to the first PUBACK", "",
               f"Median (min–max) of {args.startup_runs} alternating runs against a default "
               "devagent (subscriber on, Receive Maximum 20), one record each.", "",
               "| what | ms |", "|---|---|",
               f"| kepmlog Rust: `Logger::new` → connected (CONNACK), in process | {fmt_ms(s['k_connected'])} |",
               f"| kepmlog Rust: `Logger::new` → `info` → `flush` OK (first PUBACK), in process | {fmt_ms(s['k_inproc'])} |",
               "", "A job tool that logs one record and exits, timed from outside: wall from spawn to "
               "exit, and the process's CPU (user + system, os.wait4). kepmlog and the paho recipe "
               "read `--keeper-api-base` and ask Plugin Settings for the broker, as the agent's "
               "tools do; mosquitto_pub is given the broker.", "",
               "| tool | wall ms | CPU ms | wall vs kepmlog |", "|---|---|---|---|",
               f"| kepmlog Rust (`bench-kepmlog tool`: `Logger::new`, `info`, `shutdown`) "
               f"| {fmt_ms(s['k_wall'])} | {fmt_ms(s['k_cpu'])} | 1.00 |",
               f"| the vendor guide's recipe: Python urllib + paho-mqtt 2 (`bench/python/one_record.py`) "
               f"| {fmt_ms(s['p_wall'])} | {fmt_ms(s['p_cpu'])} | {ratio(med(s['p_wall']), med(s['k_wall']))} |",
               f"| `mosquitto_pub -q 1 -m` (C, libmosquitto) "
               f"| {fmt_ms(s['m_wall'])} | {fmt_ms(s['m_cpu'])} | {ratio(med(s['m_wall']), med(s['k_wall']))} |",
               ""]
        md += [f"- {e}" for e in s["errors"]] + ([""] if s["errors"] else [])
    out.write_text("\n".join(md).rstrip() + "\n")
    log(f"wrote {out} in {elapsed / 60:.1f} min")
    # The headline on stdout too.
    for st in settings:
        k, r = sums[st.key].get("kepmlog-rust"), sums[st.key].get("rumqttc")
        if k and r:
            print(f"{st.title}: kepmlog {fmt_int(k.rate)}/s vs rumqttc {fmt_int(r.rate)}/s "
                  f"(x{ratio(k.rate, r.rate)}); CPU {k.cpu or 0:.1f} vs {r.cpu or 0:.1f} µs/record "
                  f"(x{ratio(k.cpu, r.cpu)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
