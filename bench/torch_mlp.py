#!/usr/bin/python3
"""PyTorch reference for fitd's benchmark (bench/run.sh runs it; see bench/README.md).

Trains the same models as bench/bench_core.c and prints one RESULT line of
key=value pairs on stdout (progress goes to stderr):

  fashion  Dense 512 relu -> Dropout 0.2 -> Dense 256 relu -> Dropout 0.2 ->
           Dense 10 softmax, L2 1e-4 on the kernels added to the loss as Keras
           does (l2 * sum(w^2)), Adam 1e-3 (Keras' epsilon 1e-7), batch 128,
           shuffled every epoch, sparse categorical crossentropy; test accuracy
           on the 10k test images.
  digits   Dense 64 relu (kernel l2 0.001) -> Dropout 0.2 -> Dense 10 softmax,
           SGD 0.01, batch 32 on tests/fixtures/digits.csv.

--config picks the threading, which must be fixed before torch (and the
OpenBLAS it loads) starts, so the script sets the environment itself:
  t1           torch.set_num_threads(1), OPENBLAS_NUM_THREADS=1
  omp-passive  torch.set_num_threads(2), OMP_WAIT_POLICY=PASSIVE, OpenBLAS 2
  openblas     torch.set_num_threads(1), OPENBLAS_NUM_THREADS=2 (BLAS gets the threads)
  default      torch.set_num_threads(2), no environment changes (for comparison)
"""
import argparse
import gzip
import os
import resource
import statistics
import struct
import sys
import time

CONFIGS = {
    "t1": (1, {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}),
    "omp-passive": (2, {"OPENBLAS_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}),
    "openblas": (1, {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "1"}),
    "default": (2, {}),
}


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("task", choices=["fashion", "digits"])
    ap.add_argument("--config", choices=sorted(CONFIGS), default="t1")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--csv", default="tests/fixtures/digits.csv")
    ap.add_argument("--seed", type=int, default=1)
    return ap.parse_args()


args = parse_args()
TORCH_THREADS, ENV = CONFIGS[args.config]
os.environ.update(ENV)

import numpy as np  # noqa: E402  (after the environment is set)
import torch  # noqa: E402
from torch import nn  # noqa: E402


def read_idx(path):
    """IDX (gzipped) -> numpy array of its declared shape (ubyte only: all we need)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not a ubyte IDX file")
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion(folder):
    def images(name):
        a = read_idx(os.path.join(folder, name))
        return torch.from_numpy(a.reshape(a.shape[0], -1).astype(np.float32) / 255.0)

    def labels(name):
        return torch.from_numpy(read_idx(os.path.join(folder, name)).astype(np.int64))

    return (images("train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz"),
            images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz"))


def load_digits(path):
    a = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)
    # Raw pixels 0..16, as bench_core.c reads them.
    return torch.from_numpy(a[:, :-1]), torch.from_numpy(a[:, -1].astype(np.int64))


def mlp(widths, rate):
    layers = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers += [nn.ReLU(), nn.Dropout(rate)]
    # The softmax lives in CrossEntropyLoss (log-softmax + NLL), PyTorch's fast path.
    return nn.Sequential(*layers)


def train(model, kernels, l2, opt, x, y, batch, epochs, label):
    """Keras-style fit: reshuffle each epoch, last batch partial. Returns the epochs'
    wall seconds and process CPU seconds."""
    lossf = nn.CrossEntropyLoss()
    n = x.shape[0]
    times, cpu = [], []
    for ep in range(1, epochs + 1):
        model.train()
        t0, c0 = time.perf_counter(), time.process_time()
        perm = torch.randperm(n)
        xs, ys = x[perm], y[perm]
        total = 0.0
        for i in range(0, n, batch):
            xb, yb = xs[i : i + batch], ys[i : i + batch]
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(xb), yb)
            if l2:
                loss = loss + l2 * sum((w * w).sum() for w in kernels)
            loss.backward()
            opt.step()
            total += loss.item() * xb.shape[0]
        dt = time.perf_counter() - t0
        times.append(dt)
        cpu.append(time.process_time() - c0)
        print(f"torch {label} epoch {ep}: loss {total / n:.4f} {dt * 1000:.1f} ms",
              file=sys.stderr, flush=True)
    return times, cpu


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(dim=1) == y).float().mean().item()


def main():
    torch.set_num_threads(TORCH_THREADS)
    torch.manual_seed(args.seed)
    if args.task == "fashion":
        xtr, ytr, xte, yte = load_fashion(args.data)
        model = mlp([784, 512, 256, 10], 0.2)
        l2, batch, lr = 1e-4, 128, 1e-3
        opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-7)
    else:
        xtr, ytr = load_digits(args.csv)
        xte, yte = xtr, ytr
        model = mlp([64, 64, 10], 0.2)
        l2, batch, lr = 1e-3, 32, 1e-2
        opt = torch.optim.SGD(model.parameters(), lr=lr)
    # Keras' L2 here: fashion on every kernel, digits on the first kernel only.
    linears = [m for m in model if isinstance(m, nn.Linear)]
    kernels = [m.weight for m in (linears if args.task == "fashion" else linears[:1])]
    times, cpu = train(model, kernels, l2, opt, xtr, ytr, batch, args.epochs, args.task)
    timed = times[1:] if len(times) > 1 else times
    med = statistics.median(timed)
    cpu_med = statistics.median(cpu[1:] if len(cpu) > 1 else cpu)
    acc = accuracy(model, xte, yte)
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"RESULT impl=torch task={args.task} config={args.config} threads="
          f"{TORCH_THREADS} blas_threads={os.environ.get('OPENBLAS_NUM_THREADS', 'default')} "
          f"epochs={len(times)} epoch_ms={med * 1000:.1f} cpu_epoch_ms={cpu_med * 1000:.1f} "
          f"samples_per_s={xtr.shape[0] / med:.0f} peak_rss_kb={rss_kb} "
          f"test_acc={acc:.4f}", flush=True)


if __name__ == "__main__":
    main()
