"""Small PyTorch networks for spectra (MLP, 1-D CNN) and the one deterministic training loop
(:func:`train_network`) that trains every network of the package (ensemble members, forward model).

Every network maps a batch of spectra ``(n, n_grid)`` to ``(n, 2 * n_out)``: a mean and a
log-variance per (standardised) target, so a member of a deep ensemble can be trained with the
Gaussian negative log-likelihood (Lakshminarayanan et al., NeurIPS 2017). ``embed`` returns the
last hidden layer (the latent space).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

ARCHITECTURES = ("mlp", "cnn")


class MLP(nn.Module):
    """Dense network: ``n_in -> hidden[0] -> hidden[1] ... -> 2*n_out`` with ReLU and dropout."""

    def __init__(self, n_in: int, n_out: int, hidden: tuple[int, ...] = (256, 128), dropout: float = 0.1):
        super().__init__()
        layers: list[nn.Module] = []
        prev = n_in
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.ReLU(), nn.Dropout(dropout)]
            prev = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(prev, 2 * n_out)
        self.n_out = n_out

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class CNN1D(nn.Module):
    """1-D CNN: conv blocks (kernel ``kernel``, stride-2 pooling) -> dense ``hidden`` -> 2*n_out."""

    def __init__(self, n_in: int, n_out: int, channels: tuple[int, ...] = (8, 16, 32), kernel: int = 7,
                 hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        convs: list[nn.Module] = []
        prev, length = 1, n_in
        for c in channels:
            convs += [nn.Conv1d(prev, c, kernel, padding=kernel // 2), nn.ReLU(), nn.MaxPool1d(2)]
            prev, length = c, length // 2
        self.convs = nn.Sequential(*convs)
        self.dense = nn.Sequential(nn.Flatten(), nn.Linear(prev * length, hidden), nn.ReLU(),
                                   nn.Dropout(dropout))
        self.head = nn.Linear(hidden, 2 * n_out)
        self.n_out = n_out

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.convs(x.unsqueeze(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def build_network(arch: str, n_in: int, n_out: int, **kwargs) -> nn.Module:
    """Network ``arch`` (``"mlp"`` or ``"cnn"``) with keyword hyper-parameters of its class."""
    if arch == "mlp":
        return MLP(n_in, n_out, **kwargs)
    if arch == "cnn":
        return CNN1D(n_in, n_out, **kwargs)
    raise ValueError(f"unknown architecture {arch!r}; choose from {ARCHITECTURES}")


def gaussian_nll(out: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian NLL of targets ``y`` under ``out = [mean, log_var]`` over ``mask`` (constant dropped)."""
    n = y.shape[1]
    mu, log_var = out[:, :n], out[:, n:].clamp(-10.0, 10.0)
    nll = 0.5 * (log_var + (y - mu) ** 2 * torch.exp(-log_var))
    return torch.sum(nll * mask) / mask.sum().clamp(min=1.0)


def masked_mse(out: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the mean outputs over ``mask`` (missing targets, e.g. NaN angles, skipped)."""
    return torch.sum((out[:, :y.shape[1]] - y) ** 2 * mask) / mask.sum().clamp(min=1.0)


Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def train_network(net: nn.Module, X: np.ndarray, Y: np.ndarray, *, epochs: int = 200, lr: float = 1e-3,
                  batch_size: int = 128, weight_decay: float = 1e-5, seed: int = 0,
                  augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
                  mse_warmup: float = 0.2, X_val: np.ndarray | None = None,
                  Y_val: np.ndarray | None = None, progress: Callable[[], None] | None = None,
                  loss: Loss | None = None, seed_torch: bool = True) -> dict:
    """Train ``net`` in place on targets ``Y`` (AdamW, cosine schedule); returns the loss history.

    NaN targets are masked out of the loss. Default ``loss`` (mean + log-variance heads): the first
    ``mse_warmup`` fraction of epochs fits only the means (MSE), the rest the Gaussian NLL; a given
    ``loss(out, y, mask)`` is used for every epoch. ``augment(X_batch, rng)`` (e.g. noise + energy
    shift) is applied to every batch. With a validation set, the weights of the epoch with the
    lowest validation MSE are kept. ``progress()`` is called once per epoch. ``seed`` seeds the batch
    order and augmentation; torch too unless ``seed_torch=False`` (caller seeded it before building
    ``net``). Threads: whatever the caller set (``torch.set_num_threads``).
    """
    if seed_torch:
        torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    Mt = torch.as_tensor(np.isfinite(Y), dtype=torch.float32)
    Yt = torch.as_tensor(np.nan_to_num(Y), dtype=torch.float32)
    warm = int(round(mse_warmup * epochs))
    hist: dict = {"train": [], "val_mse": []}
    best, best_state = np.inf, None
    Xv = torch.as_tensor(X_val, dtype=torch.float32) if X_val is not None else None
    Yv = torch.as_tensor(np.nan_to_num(Y_val), dtype=torch.float32) if Y_val is not None else None
    Mv = torch.as_tensor(np.isfinite(Y_val), dtype=torch.float32) if Y_val is not None else None
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(len(X))
        total = 0.0
        for start in range(0, len(X), batch_size):
            idx = order[start:start + batch_size]
            xb = augment(X[idx], rng) if augment is not None else X[idx]
            xb = torch.as_tensor(xb, dtype=torch.float32)
            out = net(xb)
            fn = loss if loss is not None else (masked_mse if epoch < warm else gaussian_nll)
            value = fn(out, Yt[idx], Mt[idx])
            opt.zero_grad()
            value.backward()
            opt.step()
            total += float(value.detach()) * len(idx)
        sched.step()
        hist["train"].append(total / len(X))
        if Xv is not None and len(Xv):
            net.eval()
            with torch.no_grad():
                mse = float(masked_mse(net(Xv), Yv, Mv))
            hist["val_mse"].append(mse)
            if (loss is not None or epoch >= warm) and mse < best:
                best = mse
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        if progress is not None:
            progress()
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return hist
