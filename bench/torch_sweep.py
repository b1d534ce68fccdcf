#!/usr/bin/python3
"""PyTorch peer for bench/sweep.sh: the same 12-trial grid, run one after another.

Model (as fitd's sweep base): Dense 64 relu with an L2 kernel penalty l2 * sum(w^2)
added to the loss (Keras' form) -> Dropout rate -> Dense 10 softmax, Adam 1e-3
(epsilon 1e-7, Keras' default), batch 32, sparse categorical crossentropy on
tests/fixtures/digits.csv; validation_split 0.2 = the last 20% of the rows taken
before shuffling; the training rows are shuffled every epoch. Grid: l2 in
{0, 1e-4, 1e-3, 1e-2} x rate in {0, 0.2, 0.5}.

Prints one RESULT line: total wall seconds of the 12 runs (data loading excluded)
and the best val_loss of each trial.
"""
import argparse
import csv
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--csv", default="tests/fixtures/digits.csv")
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch  # after the environment is set

    torch.set_num_threads(args.threads)
    with open(args.csv) as f:
        rows = list(csv.reader(f))
    head, body = rows[0], rows[1:]
    li = head.index("label")
    x = torch.tensor([[float(v) for j, v in enumerate(r) if j != li] for r in body])
    y = torch.tensor([int(float(r[li])) for r in body])
    n_val = int(len(body) * 0.2)
    xt, yt, xv, yv = x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]

    results = []
    start = time.perf_counter()
    for l2 in (0.0, 1e-4, 1e-3, 1e-2):
        for rate in (0.0, 0.2, 0.5):
            torch.manual_seed(3)
            d1, d2 = torch.nn.Linear(64, 64), torch.nn.Linear(64, 10)
            torch.nn.init.xavier_uniform_(d1.weight)
            torch.nn.init.zeros_(d1.bias)
            torch.nn.init.xavier_uniform_(d2.weight)
            torch.nn.init.zeros_(d2.bias)
            model = torch.nn.Sequential(d1, torch.nn.ReLU(), torch.nn.Dropout(rate), d2)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
            ce = torch.nn.CrossEntropyLoss()
            best = float("inf")
            for _ in range(args.epochs):
                model.train()
                perm = torch.randperm(len(xt))
                for b in range(0, len(xt), 32):
                    idx = perm[b:b + 32]
                    opt.zero_grad()
                    loss = ce(model(xt[idx]), yt[idx]) + l2 * (d1.weight ** 2).sum()
                    loss.backward()
                    opt.step()
                model.eval()
                with torch.no_grad():
                    val = ce(model(xv), yv).item() + l2 * (d1.weight ** 2).sum().item()
                best = min(best, val)
            results.append(best)
            print(f"l2={l2:g} rate={rate:g} best_val_loss={best:.4f}", file=sys.stderr)
    total = time.perf_counter() - start
    print("RESULT seconds=%.3f best_val_loss=%s" % (total, ",".join("%.4f" % v for v in results)))


if __name__ == "__main__":
    main()
