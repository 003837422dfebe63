"""The quickstart's digits classifier, defined in a file so that bundles can copy its source."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from workbench import batch, transform, unbatch

nn = transform(torch.nn)

# Held-out accuracy every run must reach after 2 epochs (one process reaches about 0.93, two
# DDP processes, which take half as many steps each, about 0.90; seeds are fixed).
ACCURACY_FLOOR = 0.85


@transform
def scale(pixels):
    return torch.as_tensor(pixels, dtype=torch.float32) / 16.0


@transform
def to_image(x):
    return x.reshape(1, 8, 8)


@transform
def to_label(scores):
    return int(scores.argmax())


def classifier():
    """A fresh classifier with the same initial weights on every call."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(16 * 4 * 4, 10))
    return scale >> to_image >> batch >> model >> unbatch >> to_label


def accuracy(scores, labels):
    return (scores.argmax(1) == labels).float().mean()


def digits():
    """``(train, held_out)`` lists of ``(pixels, label)`` items, the same split on every run."""
    d = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(d.data, d.target, test_size=0.25, random_state=0,
                                                        stratify=d.target)
    return list(zip(X_train, y_train.tolist())), list(zip(X_test, y_test.tolist()))


def held_out_accuracy(pipeline, held_out):
    predictions = list(pipeline.eval_apply([x for x, _ in held_out], batch_size=128))
    return sum(p == y for p, (_, y) in zip(predictions, held_out)) / len(held_out)
