#!/usr/bin/env python3
"""The benchmarks' one copy of their statistics: median, p90 (nearest rank) and max.

As a command: numbers on stdin (one a line), the figure's label as the argument; prints
`LABEL over N trials: median M UNIT, p90 P UNIT, max X UNIT`. `--scale S` divides every number
by S first (e.g. 1000 for microseconds to milliseconds); `--unit U` (default ms).
"""

import math
import sys


def summary(values):
    """(median, p90, max) of a non-empty list; p90 is the nearest-rank 90th percentile."""
    v = sorted(values)
    n = len(v)
    med = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    p90 = v[max(0, math.ceil(0.9 * n) - 1)]
    return med, p90, v[-1]


def line(label, values, unit="ms", digits=1):
    if not values:
        return "%s: no measurements" % label
    med, p90, mx = summary(values)
    f = "%%.%df" % digits
    return ("%s over %d trials: median " + f + " %s, p90 " + f + " %s, max " + f + " %s") % (
        label, len(values), med, unit, p90, unit, mx, unit)


def main(argv):
    scale, unit, label = 1.0, "ms", []
    i = 0
    while i < len(argv):
        if argv[i] == "--scale":
            scale = float(argv[i + 1])
            i += 2
        elif argv[i] == "--unit":
            unit = argv[i + 1]
            i += 2
        else:
            label.append(argv[i])
            i += 1
    values = [float(x) / scale for x in sys.stdin.read().split()]
    if not values:
        print("bench: no measurements", file=sys.stderr)
        return 1
    print(line(" ".join(label), values, unit))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
