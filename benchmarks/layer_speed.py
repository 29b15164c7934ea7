"""Layer speed: lstmkit's kernels against torch.nn.LSTM, side by side in one run.

Goals (CPU, float32; issues 2 and 3):

- the plain LSTM on lstmkit's auto backend no slower than torch.nn.LSTM at any shape;
- every variant (peephole, layer_norm, zoneout, recurrent_dropout) and the combination
  layer_norm + zoneout + recurrent_dropout, on the native kernel, at most 1.5 x the time
  of plain torch.nn.LSTM at the same shape (goal 1.2 x), forward+backward and forward;
- streaming, one step at batch 1 and H = 64: native faster than torch.nn.LSTM called on
  one step and than torch.nn.LSTMCell;
- every configuration also against the reference backend, and the fused backend (torch's
  op behind lstmkit's layer) against torch.nn.LSTM.

Timing: every candidate of a shape runs once per round, round after round (interleaved,
so a busy machine slows all alike), and the table shows each one's median over the rounds
as a ratio to plain torch.nn.LSTM and to the reference backend of the same configuration.
The reference backend, several times slower, runs in the first 3 rounds only.
"forward" is inference: evaluation mode under no_grad (zoneout at its expectation, no
dropout). "fwd+bwd" is a training step: training mode, masks drawn by the layer, forward
and backward. torch runs on one thread by default: on a busy 2-core machine that is the
fastest and the least noisy. --cpu-clock times the process's CPU time instead of the
wall clock: on one thread it leaves out the time other processes took the core, which
on a shared machine is most of the noise.

    python benchmarks/layer_speed.py               # the full grid, a few minutes
    python benchmarks/layer_speed.py --quick       # two shapes, fewer rounds
    python benchmarks/layer_speed.py --threads 2   # torch's intra-op threads
    python benchmarks/layer_speed.py --cpu-clock   # CPU time rather than wall time
    python benchmarks/layer_speed.py --threads default --busy
        # torch's default thread count, on a machine with other work: one competing torch
        # process (default threads) per core but one, started here, stopped at the end
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import torch

from lstmkit.kernels import native
from lstmkit.nn import LSTM

SHAPES = [(100, 1, 8, 32), (100, 32, 32, 64), (200, 16, 64, 128), (100, 64, 128, 256),
          (50, 64, 512, 512)]
QUICK_SHAPES = [SHAPES[0], SHAPES[2]]
REFERENCE_ROUNDS = 3

VARIANTS = {
    "peephole": dict(peephole=True),
    "layer_norm": dict(layer_norm=True),
    "zoneout": dict(zoneout=0.1),
    "recurrent_dropout": dict(recurrent_dropout=0.1),
    "ln+zoneout+rec_drop": dict(layer_norm=True, zoneout=0.1, recurrent_dropout=0.1),
}
MODES = ("forward", "fwd+bwd")


clock = time.perf_counter


def timed(run: Callable[[], object]) -> float:
    start = clock()
    run()
    return clock() - start


def interleaved_medians(candidates: dict, rounds: int, slow: frozenset = frozenset()) -> dict:
    """Median seconds of each candidate, run once per round in turn after one warm-up.

    The candidates named in slow run in the first REFERENCE_ROUNDS rounds only.
    """
    for run in candidates.values():
        run()
    times: dict = {name: [] for name in candidates}
    for round_ in range(rounds):
        for name, run in candidates.items():
            if name not in slow or round_ < REFERENCE_ROUNDS:
                times[name].append(timed(run))
    return {name: statistics.median(t) for name, t in times.items()}


def workload(layer: torch.nn.Module, x: torch.Tensor, mode: str) -> Callable[[], object]:
    def forward() -> None:
        layer.eval()
        with torch.no_grad():
            layer(x)

    def forward_backward() -> None:
        layer.train()
        output, _ = layer(x)
        output.sum().backward()

    return forward if mode == "forward" else forward_backward


def shape_rows(shape: tuple[int, int, int, int], rounds: int) -> list[tuple]:
    """(shape, config, backend, mode, seconds, seconds of torch, seconds of reference, ran).

    ran: the backend that actually ran (for auto, its choice).
    """
    T, B, I, H = shape
    torch.manual_seed(0)
    x = torch.randn(T, B, I)
    torch_lstm = torch.nn.LSTM(I, H)
    layers: dict[tuple[str, str], torch.nn.Module] = {}
    for backend in ("auto", "fused", "native", "reference"):
        layers["plain", backend] = LSTM(I, H, backend=backend)
        layers["plain", backend].load_state_dict(torch_lstm.state_dict())
    for name, options in VARIANTS.items():
        for backend in ("native", "reference"):
            layers[name, backend] = LSTM(I, H, backend=backend, **options)
    rows = []
    for mode in MODES:
        candidates = {("plain", "torch.nn.LSTM"): workload(torch_lstm, x, mode)}
        candidates.update({key: workload(layer, x, mode) for key, layer in layers.items()})
        slow = frozenset(key for key in candidates if key[1] == "reference")
        medians = interleaved_medians(candidates, rounds, slow)
        theirs = medians["plain", "torch.nn.LSTM"]
        for (config, backend), seconds in medians.items():
            if backend == "torch.nn.LSTM":
                continue
            reference = medians[config, "reference"]
            ran = layers[config, backend].last_backend
            rows.append((shape, config, backend, mode, seconds, theirs, reference, ran))
    return rows


def streaming_rows(rounds: int, steps: int) -> list[tuple[str, float]]:
    """Microseconds per step, batch 1, I = H = 64, inference (eval, no_grad)."""
    torch.manual_seed(0)
    size = 64
    x_t = torch.randn(1, size)
    torch_lstm = torch.nn.LSTM(size, size).eval()
    cell = torch.nn.LSTMCell(size, size).eval()
    plain = LSTM(size, size, backend="native").eval()
    plain.load_state_dict(torch_lstm.state_dict())
    variant = LSTM(size, size, layer_norm=True, zoneout=0.1, backend="native").eval()
    reference = LSTM(size, size, backend="reference").eval()
    reference.load_state_dict(torch_lstm.state_dict())
    state = (torch.zeros(1, 1, size), torch.zeros(1, 1, size))
    cell_state = (torch.zeros(1, size), torch.zeros(1, size))
    x_seq = x_t.unsqueeze(0)
    stream = native.Stream(plain.layer_weights())
    stream_state = (torch.zeros(1, 1, size), torch.zeros(1, 1, size))
    variant_stream = native.Stream(variant.layer_weights(), variant.zoneout)
    variant_state = (torch.zeros(1, 1, size), torch.zeros(1, 1, size))
    candidates = {
        "torch.nn.LSTMCell": lambda: cell(x_t, cell_state),
        "torch.nn.LSTM, one step": lambda: torch_lstm(x_seq, state),
        "lstmkit LSTM.step, native": lambda: plain.step(x_t, state),
        "lstmkit LSTM.step, reference": lambda: reference.step(x_t, state),
        "native.Stream": lambda: stream(x_t, stream_state),
        "native.Stream, layer_norm+zoneout": lambda: variant_stream(x_t, variant_state),
    }

    def repeated(run: Callable[[], object]) -> Callable[[], None]:
        def many() -> None:
            for _ in range(steps):
                run()
        return many

    with torch.no_grad():
        medians = interleaved_medians({k: repeated(v) for k, v in candidates.items()}, rounds,
                                      frozenset({"lstmkit LSTM.step, reference"}))
    return [(name, seconds / steps * 1e6) for name, seconds in medians.items()]


def print_table(rows: list[tuple], streaming: list[tuple[str, float]], header: str) -> None:
    print(header)
    print()
    print("time / plain torch.nn.LSTM at the same shape, and / the reference backend of the same")
    print("configuration (lower is faster); torch ms: plain torch.nn.LSTM's own median time;")
    print("auto (forward, fwd+bwd): the backend auto chose for each")
    print()
    line = "{:<18} {:<20} {:<20} {:>9} {:>8} {:>8}   {:>9} {:>8} {:>8}"
    print(line.format("T, B, I, H", "config", "backend", "fwd torch", "x torch", "x ref",
                      "f+b torch", "x torch", "x ref"))
    by_key: dict[tuple, dict[str, tuple]] = {}
    for shape, config, backend, mode, seconds, theirs, reference, ran in rows:
        by_key.setdefault((shape, config, backend), {})[mode] = (seconds, theirs, reference, ran)
    previous_shape = None
    for (shape, config, backend), modes in by_key.items():
        cells = []
        for mode in MODES:
            seconds, theirs, reference, _ = modes[mode]
            cells += [f"{theirs * 1e3:.2f}ms", f"{seconds / theirs:.2f}",
                      f"{seconds / reference:.2f}"]
        if backend == "auto":
            backend = f"auto ({', '.join(modes[mode][3] for mode in MODES)})"
        shown_shape = ", ".join(map(str, shape)) if shape != previous_shape else ""
        previous_shape = shape
        print(line.format(shown_shape, config, backend, *cells))
    print()
    print("plain config, native time / fused time (forward, fwd+bwd): the MEASURED table of")
    print("kernels/native/choice.py, from which auto picks native for the plain cell")
    for (shape, config, backend), modes in by_key.items():
        if (config, backend) == ("plain", "native"):
            fused = by_key[shape, "plain", "fused"]
            ratios = [modes[mode][0] / fused[mode][0] for mode in MODES]
            print(f"    {shape}: ({ratios[0]:.2f}, {ratios[1]:.2f}),")
    print()
    print("streaming: one step, batch 1, I = H = 64, inference")
    for name, microseconds in streaming:
        print(f"  {name:<36} {microseconds:8.1f} us/step")


COMPETITOR = """
import torch
a = torch.randn(384, 384)
while True:
    b = a @ a
"""


@contextlib.contextmanager
def competing_work(busy: bool) -> Iterator[int]:
    """With ``busy``, one CPU-bound torch process (torch's default threads) per core but
    one runs for the duration; yields how many."""
    count = max((os.cpu_count() or 1) - 1, 1) if busy else 0
    processes = [subprocess.Popen([sys.executable, "-c", COMPETITOR]) for _ in range(count)]
    try:
        if processes:
            time.sleep(2)  # started and computing before the first timing
        yield count
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def thread_count(text: str) -> int:
    """--threads: a number, or "default" for torch's own choice (one per core)."""
    return torch.get_num_threads() if text == "default" else int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two shapes, fewer rounds")
    parser.add_argument("--threads", type=thread_count, default=1,
                        help="torch intra-op threads, or 'default' (torch's own count)")
    parser.add_argument("--busy", action="store_true",
                        help="run beside competing torch processes (one per core but one)")
    parser.add_argument("--rounds", type=int, help="timed rounds per candidate (default 7)")
    parser.add_argument("--cpu-clock", action="store_true",
                        help="time the process's CPU time, not the wall clock")
    args = parser.parse_args()
    global clock
    if args.cpu_clock:
        clock = time.process_time
    torch.set_num_threads(args.threads)
    rounds = args.rounds or (3 if args.quick else 7)
    reason = native.unavailable_reason()
    if reason is not None:
        raise SystemExit(f"the native kernel is unavailable: {reason}")
    rows = []
    with competing_work(args.busy) as competitors:
        for shape in QUICK_SHAPES if args.quick else SHAPES:
            rows += shape_rows(shape, rounds)
        streaming = streaming_rows(rounds, steps=200 if args.quick else 1000)
    header = (f"lstmkit layer speed: CPU ({torch.backends.cpu.get_cpu_capability()}), float32, "
              f"torch {torch.__version__}, {args.threads} thread(s), median of {rounds} "
              f"interleaved rounds, {'CPU' if args.cpu_clock else 'wall'} time, "
              f"{competitors} competing torch process(es)")
    print_table(rows, streaming, header)


if __name__ == "__main__":
    main()
