"""Widget update latency: from a control change to the new figure in the FigureWidget (target ≤ 200 ms).

Run: python benchmarks/bench_widgets.py  (prints the median and worst of several updates per widget).
"""
import statistics
import time

import torch
import torch.nn.functional as F

from flatlab import widgets
from flatlab.data import mnist1d
from flatlab.models import MLP, rescale_layers


def measure(name, explorer, changes):
    _ = explorer.widget  # build the FigureWidget, as a displayed widget would
    times = []
    for change in changes:
        t0 = time.perf_counter()
        explorer.update(**change)
        times.append(1e3 * (time.perf_counter() - t0))
    print(f"{name:<28} median {statistics.median(times):6.1f} ms   worst {max(times):6.1f} ms   "
          f"({len(times)} updates; target ≤ 200 ms)")


def main():
    torch.set_num_threads(2)
    ex = widgets.landscape_explorer()
    measure("00 landscape explorer", ex, [dict(lr=v) for v in (0.05, 0.11, 0.3, 4.5, 0.09)] +
            [dict(start_x=v) for v in (-1.2, 0.0, 2.0)])
    ds = mnist1d(n_train=500)
    model = MLP(40, [128, 128], 10, seed=0)
    data = ds.train
    surfaces = widgets.slice_surfaces({"a": model, "a ×10": rescale_layers(model, 10.0)}, F.cross_entropy, data, n=41)
    measure("01 slice explorer", widgets.slice_explorer(surfaces),
            [dict(model="a ×10"), dict(normalized=False), dict(resolution=21), dict(model="a"), dict(resolution=41)])
    table = widgets.rescaling_table(model.double(), F.cross_entropy, (data[0].double(), data[1]), alphas=[0.1, 1, 10])
    measure("01 rescaling explorer", widgets.rescaling_explorer(table), [dict(alpha=a) for a in (0.1, 10.0, 1.0, 10.0)])


if __name__ == "__main__":
    main()
