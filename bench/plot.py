#!/usr/bin/env python3
"""Plots for Baton's benchmark and eval results (reads the JSON files Baton writes).

  python3 bench/plot.py niah  baton-eval/niah.json  niah.png    # accuracy heat map, lengths x depths, per method
  python3 bench/plot.py niah  baton-eval/video-niah.json video-niah.png  # the same for eval video-niah (frames x depths)
  python3 bench/plot.py ruler baton-eval/ruler.json ruler.png   # average RULER accuracy vs length, per method
  python3 bench/plot.py bench prefill.json          prefill.png [torch-prefill.json ...] # prefill time vs tokens, per method (log axes)
  python3 bench/plot.py video video.json            video.png     # time to first token per video case and method x ranks, stacked by part

Prefill JSON: {"device": ..., "preset": ..., "rows": [{"method", "gpus", "tokens", "median_s", "min_s", "max_s"}]}.
Needs matplotlib; without it the script says how to install it and exits without plotting.
"""
import json
import sys
from collections import defaultdict

USAGE = __doc__.split("\n\n")[1]


def load_pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")  # files only, no display needed
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        print("plot.py: matplotlib is not installed; skipping the plot.\n"
              "  install it with:  python3 -m pip install matplotlib   (or: apt-get install python3-matplotlib)\n"
              "  then rerun:       python3 " + " ".join(sys.argv))
        return None


def length_label(tokens):
    """8192 -> 8K; lengths within 1% of a multiple of 1024 (131000) get that label too."""
    k = round(tokens / 1024)
    return f"{k}K" if k > 0 and abs(tokens - k * 1024) <= tokens * 0.01 else str(tokens)


def plot_niah(report, out, plt):
    """One heat map per method: x = context length, y = needle depth, colour = accuracy (%)."""
    lengths = report["lengths"]
    depths = report.get("depths") or sorted({c["depth"] for c in report["cells"]})
    methods = list(dict.fromkeys(c["method"] for c in report["cells"]))
    cell = {(c["method"], c["length"], c["depth"]): c["accuracy"] for c in report["cells"]}
    video = report.get("benchmark") == "video-niah"  # `baton eval video-niah`: lengths are frames
    width = 2.5 + (1.0 * len(lengths) + 0.8) * len(methods)
    fig, axes = plt.subplots(1, len(methods), figsize=(width, 0.55 * len(depths) + 2), squeeze=False, sharey=True)
    image = None
    for ax, method in zip(axes[0], methods):
        grid = [[cell.get((method, length, depth), float("nan")) for length in lengths] for depth in depths]
        image = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
        for y, row in enumerate(grid):
            for x, value in enumerate(row):
                if value == value:  # not NaN
                    ax.text(x, y, f"{value:.0f}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(lengths)), [str(n) if video else length_label(n) for n in lengths])
        ax.set_yticks(range(len(depths)), [f"{d * 100:.0f}%" for d in depths])
        ax.set_title(method)
    # One label under all panels: narrow panels would overlap theirs.
    fig.supxlabel("video length (frames)" if video else "context length (tokens)", y=-0.04)
    axes[0][0].set_ylabel(f"needle depth (% of {'video' if video else 'context'})")
    fig.colorbar(image, ax=axes[0].tolist(), label="accuracy (%)")
    fig.suptitle(f"{'Video NIAH' if video else 'Pass-key NIAH'}: {report['model']}")
    fig.savefig(out, dpi=150, bbox_inches="tight")


def plot_ruler(report, out, plt):
    """Average accuracy over the tasks run, per method, against context length."""
    lengths = report["lengths"]
    scores = defaultdict(list)
    for c in report["cells"]:
        scores[(c["method"], c["length"])].append(c["accuracy"])
    methods = list(dict.fromkeys(c["method"] for c in report["cells"]))
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in methods:
        points = [(n, sum(scores[(method, n)]) / len(scores[(method, n)])) for n in lengths if scores[(method, n)]]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=method)
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths, [length_label(n) for n in lengths])
    ax.set_ylim(0, 100)
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("RULER average accuracy (%)")
    tasks = sorted({c["task"] for c in report["cells"]})
    ax.set_title(f"RULER ({len(tasks)} tasks): {report['model']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.savefig(out, dpi=150, bbox_inches="tight")


def plot_bench(report, out, plt):
    """Prefill time against prompt tokens, one line per (method, gpus), min-max as error bars."""
    series = defaultdict(list)
    for row in report["rows"]:
        if row.get("skipped"):  # e.g. more GPUs asked for than were visible
            continue
        # Baton rows name their rank count; PyTorch baseline rows (bench/torch_prefill.py) have no method.
        method = row.get("method", "PyTorch sdpa")
        series[(method, row.get("gpus", row.get("ranks", 1)))].append(row)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (method, gpus), rows in sorted(series.items()):
        rows.sort(key=lambda r: r["tokens"])
        x = [r["tokens"] for r in rows]
        y = [r["median_s"] for r in rows]
        low = [r["median_s"] - r.get("min_s", r["median_s"]) for r in rows]
        high = [r.get("max_s", r["median_s"]) - r["median_s"] for r in rows]
        shared = any("shared" in str(r.get("device", "")) for r in rows)
        if method == "torch-sdpa":  # `baton bench prefill --baseline torch`
            label = "PyTorch + transformers, sdpa (1 GPU)"
        elif method == "PyTorch sdpa":
            label = f"{method} (1 GPU)"
        else:
            where = f"{gpus} ranks on one GPU" if shared else f"{gpus} GPU{'s' if gpus != 1 else ''}"
            label = f"Baton {method} ({where})"
        ax.errorbar(x, y, yerr=[low, high], marker="o", capsize=3, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    tokens = []
    for n in sorted({r["tokens"] for r in report["rows"]}):
        if not tokens or n > tokens[-1] * 1.02:  # 131000 and 131072 share the "128K" tick
            tokens.append(n)
    ax.set_xticks(tokens, [length_label(n) for n in tokens])
    from matplotlib import ticker
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlabel("prompt length (tokens)")
    ax.set_ylabel("prefill time (s, median; bars: min-max)")
    device = report.get("device", "")
    if "(" not in device:  # older reports say only "cuda"; a PyTorch row names the GPU
        named = [r["device"].split(" (PyTorch")[0] for r in report["rows"] if "(PyTorch" in str(r.get("device", ""))]
        device = f"{device} ({named[0]})" if named else device
    ax.set_title(f"Prefill: {report.get('preset', '')} on {device}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.savefig(out, dpi=150, bbox_inches="tight")


def plot_video(report, out, plt):
    """`baton bench video`: one group per (frames, resolution), one stacked bar per method and rank
    count: decode+preprocess, vision tower, exchange of visual embeddings, language-model prefill.
    On several ranks each part is its slowest rank's, so the stack can exceed the time to first
    token, which a black tick marks."""
    rows = [r for r in report["rows"] if not r.get("skipped")]
    cases = sorted({(r["resolution"], r["frames"]) for r in rows}, key=lambda c: (c[0], c[1]))
    # PyTorch first, then Baton's in the order it ran them (--methods, each on its rank counts).
    series = sorted(dict.fromkeys((r["method"], r.get("ranks", 1)) for r in rows), key=lambda s: s[0] != "torch-sdpa")
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(cases) * max(1, len(series) / 2)), 4.5))
    parts = [("preprocess_s", "decode + preprocess", "#bbbbbb"), ("vision_s", "vision tower", "#4c72b0"),
             ("exchange_s", "exchange", "#55a868"), ("prefill_s", "LM prefill", "#dd8452")]
    for m, (method, ranks) in enumerate(series):
        for c, case in enumerate(cases):
            row = next((r for r in rows if (r["method"], r.get("ranks", 1)) == (method, ranks)
                        and (r["resolution"], r["frames"]) == case), None)
            if row is None:
                continue
            x = c + (m - (len(series) - 1) / 2) * width
            bottom = 0.0
            for key, label, color in parts:
                ax.bar(x, row.get(key, 0), width, bottom=bottom, color=color, edgecolor="black",
                       hatch="//" if method == "torch-sdpa" else None,
                       label=label if m == len(series) - 1 and c == 0 else None)
                bottom += row.get(key, 0)
            if ranks > 1:
                ax.plot([x - width / 2, x + width / 2], [row["median_s"]] * 2, color="black", linewidth=2)
                ax.text(x, bottom, f"{method}\nx{ranks}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(cases)), [f"{f} frames\n{res}" for res, f in cases])
    ax.set_ylabel("time to first token (s, median)")
    names = " vs ".join("PyTorch (hatched)" if m == "torch-sdpa" else f"Baton {m}" + (f" x{n}" if n > 1 else "")
                        for m, n in series)
    ax.set_title(f"Video TTFT: {report.get('preset', '')} on {report.get('device', '')}: {names}", fontsize=9, wrap=True)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    fig.savefig(out, dpi=150, bbox_inches="tight")


PLOTS = {"niah": plot_niah, "ruler": plot_ruler, "bench": plot_bench, "video": plot_video}


def main(argv):
    if len(argv) < 4 or argv[1] not in PLOTS or (len(argv) > 4 and argv[1] != "bench"):
        print(USAGE, file=sys.stderr)
        return 2
    kind, source, out = argv[1:4]
    try:
        with open(source) as f:
            report = json.load(f)
        # `bench` takes more result files after OUT (e.g. bench/torch_prefill.py's JSON): one plot.
        for extra in argv[4:]:
            with open(extra) as f:
                report["rows"] += json.load(f)["rows"]
    except (OSError, json.JSONDecodeError, KeyError) as error:
        print(f"plot.py: cannot read {source} {' '.join(argv[4:])}: {error}", file=sys.stderr)
        return 1
    plt = load_pyplot()
    if plt is None:
        return 0
    try:
        PLOTS[kind](report, out, plt)
    except (KeyError, TypeError, ZeroDivisionError) as error:
        print(f"plot.py: {source} is not a Baton '{kind}' result ({type(error).__name__}: {error})", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
