"""A small topic classifier over the corpus shipped in notebooks/data (token ids of varying length).

Imported by tests (and run as a script by the browser test's notebook): built the way a user
would, with a vocabulary dict, ``batch.pad`` and an embedding-bag model; trained for a few seconds.
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from workbench import annotate, batch, transform, unbatch

CORPUS = Path(__file__).resolve().parents[1] / "notebooks" / "data" / "topics.tsv"
CLASSES = ["sport", "politics", "science"]


def load_corpus() -> tuple[list[str], list[str]]:
    with open(CORPUS, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [r["text"] for r in rows], [r["label"] for r in rows]


class TopicModel(torch.nn.Module):
    def __init__(self, vocab_size: int, dim: int = 16, classes: int = 3):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab_size, dim, padding_idx=0)
        self.head = torch.nn.Linear(dim, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).unsqueeze(-1).float()
        pooled = (self.embedding(ids) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.head(pooled)


def build(texts: list[str], labels: list[str], epochs: int = 30):
    """(pipeline, vocab): trained on ``texts``; the pipeline is annotated with classes and vocab."""
    vocab = {"<pad>": 0, "<unk>": 1}
    for text in texts:
        for word in text.split():
            vocab.setdefault(word, len(vocab))

    @transform
    def encode(text: str) -> torch.Tensor:
        return torch.tensor([vocab.get(w, 1) for w in text.lower().split()])

    torch.manual_seed(0)
    model = transform(TopicModel(len(vocab)))
    pipeline = encode >> batch.pad(value=0) >> model >> unbatch
    annotate(pipeline, class_names=CLASSES, vocab=vocab)
    targets = torch.tensor([CLASSES.index(y) for y in labels])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    trainer = encode >> batch.pad(value=0) >> model
    for _ in range(epochs):
        order = torch.randperm(len(texts)).tolist()
        for logits, start in zip(trainer.train_apply([texts[i] for i in order], batch_size=32, shuffle=False),
                                 range(0, len(texts), 32)):
            loss = torch.nn.functional.cross_entropy(logits, targets[order[start:start + 32]])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return pipeline, vocab
