#!/usr/bin/python3
"""Turns bench/run_server_bench.sh's results into tables and a plot.

    plot_server_bench.py RESULTS.jsonl PLOT.png PERFORMANCE.md

Writes the plot (steps/s and p99 latency against sessions; needs Debian's
python3-matplotlib, skipped with a warning without it) and replaces the text
between the server-bench markers in PERFORMANCE.md with the tables.
"""

import datetime
import json
import os
import statistics
import sys

START = "<!-- server-bench:start -->"
END = "<!-- server-bench:end -->"


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def errors_text(errors):
    return ", ".join(f"{code} {n}" for code, n in sorted(errors.items())) or "none"


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    results_path, plot_path, doc_path = sys.argv[1:]
    rows = [json.loads(line) for line in open(results_path) if line.strip()]
    sweep = [r for r in rows if r["label"] == "sweep"]
    by = {(r["model"], r["chunk"], r["sessions"]): r for r in sweep}

    out = []
    out.append(f"Measured {datetime.date.today()} on {cpu_name()}, {os.cpu_count()} cores, "
               "server and load generator on the same cores, loopback, stream mode, "
               "closed loop (each session sends its next message when the answer "
               "arrives). Default server settings (`--max-batch 64`, "
               "`--max-queue-delay 100` us, one worker per core) unless stated.\n")
    out.append("| model | chunk | sessions | steps/s | requests/s | p50 ms | p99 ms | mean batch | errors |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in sweep:
        lat = r["latency_ms"]
        out.append(f"| {r['model']} | {r['chunk']} | {r['sessions']} | {r['steps_per_s']:,.0f} | "
                   f"{r['requests_per_s']:,.0f} | {lat['p50']:.2f} | {lat['p99']:.2f} | "
                   f"{r['batch_size_mean']:.1f} | {errors_text(r['errors'])} |")
    ratio_runs = [r for r in rows if r["label"] == "ratio"]
    if ratio_runs:
        def med(model, key):
            vals = [r[key] for r in ratio_runs if r["model"] == model]
            return statistics.median(vals) if vals else 0.0
        big, tiny = med("bench_lstm", "steps_per_s"), med("tiny", "steps_per_s")
        runs = ", ".join(f"{r['steps_per_s']:,.0f}" for r in ratio_runs)
        out.append("")
        out.append(f"At 64 sessions, one step per message, medians of "
                   f"{len(ratio_runs) // 2} alternating rounds: the benchmark-shape model runs "
                   f"{big:,.0f} steps/s, **{big / tiny:.2f}x** the 1x1 model's {tiny:,.0f}, "
                   f"with a mean batch of **{med('bench_lstm', 'batch_size_mean'):.1f}** "
                   f"chunks per engine call (runs, alternating benchmark shape and 1x1: {runs}).")

    lone = {}
    for label in {r["label"] for r in rows if r["label"].startswith("lone_")}:
        runs = [r for r in rows if r["label"] == label]
        # Medians over the alternating rounds.
        lone[label] = {
            "latency_ms": {k: statistics.median(r["latency_ms"][k] for r in runs)
                           for k in ("p50", "p90", "p99")},
            "steps_per_s": statistics.median(r["steps_per_s"] for r in runs),
            "runs": len(runs),
        }
    if lone:
        out.append("")
        out.append("A lone client (benchmark-shape model, 1 session, 1 step per message; "
                   "medians of alternating runs):")
        out.append("")
        out.append("| server | runs | p50 ms | p90 ms | p99 ms | steps/s |")
        out.append("|---|---:|---:|---:|---:|---:|")
        names = {"lone_nobatch": "`--max-batch 1` (no batching)",
                 "lone_delay0": "`--max-queue-delay 0`",
                 "lone_default": "defaults (`--max-queue-delay 100`, `--batch-peer-window 1000`)",
                 "lone_always": "`--batch-peer-window -1` (always waits the delay)"}
        for key in ["lone_nobatch", "lone_delay0", "lone_default", "lone_always"]:
            if key in lone:
                r = lone[key]
                lat = r["latency_ms"]
                out.append(f"| {names[key]} | {r['runs']} | {lat['p50']:.3f} | {lat['p90']:.3f} | "
                           f"{lat['p99']:.3f} | {r['steps_per_s']:,.0f} |")

    over = [r for r in rows if r["label"] == "overload"]
    health = [r for r in rows if r["label"] == "overload_health"]
    if over:
        r = over[0]
        lat = r["latency_ms"]
        out.append("")
        out.append(f"Overload (256 sessions, 10 steps a message, `--max-queued-steps 64`): "
                   f"{r['steps_per_s']:,.0f} steps/s served, errors: {errors_text(r['errors'])}; "
                   f"latency of the served requests p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms, "
                   f"max {lat['max']:.2f} ms.")
        if health:
            out.append(f"Health checks during it, once a second (ms): {health[0]['health_ms']}.")
    out.append("")
    out.append("![steps/s and p99 latency against sessions](img/server_bench.png)")
    table = "\n".join(out)

    doc = open(doc_path).read() if os.path.exists(doc_path) else ""
    block = f"{START}\n{table}\n{END}"
    if START in doc and END in doc:
        doc = doc[:doc.index(START)] + block + doc[doc.index(END) + len(END):]
    else:
        doc += "\n## Server under load (`bench/run_server_bench.sh`)\n\n" + block + "\n"
    with open(doc_path, "w") as f:
        f.write(doc)

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_server_bench: matplotlib missing (apt-get install python3-matplotlib); "
              "no plot", file=sys.stderr)
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"bench_lstm": "-", "bench_lstm_bf16": "-.", "bench_lstm_int8": ":", "tiny": "--"}
    for model in styles:
        for chunk in [1, 10]:
            pts = sorted((r["sessions"], r) for r in sweep
                         if r["model"] == model and r["chunk"] == chunk)
            if not pts:
                continue
            xs = [p[0] for p in pts]
            label = f"{model}, chunk {chunk}"
            style = styles[model]
            ax1.plot(xs, [p[1]["steps_per_s"] for p in pts], style, marker="o", label=label)
            ax2.plot(xs, [p[1]["latency_ms"]["p99"] for p in pts], style, marker="o", label=label)
    for ax, title, ylabel in [(ax1, "throughput", "steps/s"),
                              (ax2, "p99 latency", "ms")]:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent sessions")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    ax1.set_yscale("log")
    ax2.set_yscale("log")
    ax1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(plot_path, dpi=110)


if __name__ == "__main__":
    main()
