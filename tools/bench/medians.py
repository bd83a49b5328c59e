#!/usr/bin/env python3
"""tools/bench/medians.py — medians of repeated netsys-bench runs.

Reads RAW, a file of "ROUND<TAB>JSON" lines as the run_*.sh scripts write
them, and prints one JSON line per workload: the median `value` with min and
max, medians of the --extra figures and the --params of the first run. A
--ratio TOP:BASE adds a line with the ratio of the two medians and the
median of the per-round ratios. --split FIELD keeps lines that share a
workload apart by FIELD (e.g. server): their group is then named
"workload@value" (in --ratio too), and each median line keeps the plain
workload and adds FIELD. Exits 1 (after a line saying so) when
FAILURES is not 0. Not for: running anything; the scripts do that.
"""
import argparse
import json
import statistics
import sys


def fmt(x):
    if isinstance(x, float):
        return round(x, 4) if abs(x) < 1000 else round(x, 1)
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raw")
    ap.add_argument("runs", type=int)
    ap.add_argument("failures", type=int)
    ap.add_argument("label")
    ap.add_argument("--extra", default="")
    ap.add_argument("--params", default="")
    ap.add_argument("--ratio", action="append", default=[])
    ap.add_argument("--split", default="")
    a = ap.parse_args()
    extra = [k for k in a.extra.split(",") if k]
    params = [k for k in a.params.split(",") if k]

    by_workload, order = {}, []
    with open(a.raw) as f:
        for text in f:
            rnd, line = text.rstrip("\n").split("\t", 1)
            rec = json.loads(line)
            if not rec.get("ok", True) or rec.get("value") is None:
                continue
            w = rec["workload"]
            if a.split and a.split in rec:
                w = "%s@%s" % (w, rec[a.split])
            if w not in by_workload:
                by_workload[w] = []
                order.append(w)
            by_workload[w].append((int(rnd), rec))

    medians = {}
    for w in order:
        recs = [rec for _, rec in by_workload[w]]
        values = [rec["value"] for rec in recs]
        first = recs[0]
        out = {"system": "netsys", "workload": first["workload"], "metric": first["metric"],
               "stat": "median", "runs": len(values), "value": fmt(statistics.median(values)),
               "unit": first["unit"], "min": fmt(min(values)), "max": fmt(max(values))}
        if a.split and a.split in first:
            out[a.split] = first[a.split]
        for key in extra:
            xs = [rec[key] for rec in recs if isinstance(rec.get(key), (int, float))]
            if xs:
                out[key] = fmt(statistics.median(xs))
        for key in params:
            if key in first:
                out[key] = first[key]
        medians[w] = statistics.median(values)
        print(json.dumps(out, separators=(",", ":")))

    for pair in a.ratio:
        top, base = pair.split(":", 1)
        if top not in medians or base not in medians or medians[base] <= 0:
            continue
        base_by_round = {rnd: rec["value"] for rnd, rec in by_workload[base]}
        paired = [rec["value"] / base_by_round[rnd] for rnd, rec in by_workload[top]
                  if base_by_round.get(rnd)]
        out = {"system": "netsys", "workload": top + "/" + base, "metric": "ratio",
               "stat": "median", "runs": len(paired),
               "value": fmt(medians[top] / medians[base]), "unit": "1",
               "paired_median": fmt(statistics.median(paired)) if paired else None,
               "paired_min": fmt(min(paired)) if paired else None,
               "paired_max": fmt(max(paired)) if paired else None}
        print(json.dumps(out, separators=(",", ":")))

    if a.failures:
        print(json.dumps({"system": "netsys", "workload": a.label, "failed_runs": a.failures,
                          "rounds": a.runs}, separators=(",", ":")))
        sys.exit(1)


if __name__ == "__main__":
    main()
