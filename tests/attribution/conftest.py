"""Small trained models with known answers for the attribution tests (seeded, a few seconds in all)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench import batch, transform

FLIPPED = 90  # training labels changed on purpose


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """These models are tiny: one intra-op thread is fastest, and far faster on a busy shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn digits as float32 vectors in [0, 1], labels, and a copy of the labels with some flipped."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    rng = np.random.default_rng(0)
    flipped = np.sort(rng.choice(len(x), size=FLIPPED, replace=False))
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.integers(1, 10, size=FLIPPED)) % 10
    return x, y, noisy, flipped


@pytest.fixture(scope="session")
def digits_pipeline(digits, _one_thread):
    """An MLP trained (full batch, 300 steps) on the digits with the flipped labels."""
    _seed()
    x, _, noisy, _ = digits
    model = transform(torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-4)
    xs, ys = torch.from_numpy(x), torch.from_numpy(noisy)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(model(xs), ys)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return transform(torch.as_tensor) >> batch >> model
