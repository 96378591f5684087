"""Deep ensemble: ``members`` independently seeded networks with mean + variance heads.

Predictive distribution per target (standardised units): mean of the member means, variance =
mean of the member variances (aleatoric) + variance of the member means (epistemic).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from coreloss.models.networks import build_network, train_network


class DeepEnsemble:
    """A list of networks built by :func:`build_network` with the same ``arch`` and ``net_kwargs``."""

    def __init__(self, arch: str = "mlp", members: int = 5, net_kwargs: dict | None = None, seed: int = 0):
        if members < 1:
            raise ValueError("an ensemble needs at least one member")
        self.arch = arch
        self.members = int(members)
        self.net_kwargs = dict(net_kwargs or {})
        self.seed = int(seed)
        self.nets: list[torch.nn.Module] = []

    def _build(self, n_in: int, n_out: int) -> list[torch.nn.Module]:
        nets = []
        for m in range(self.members):
            torch.manual_seed(self.seed + 1000 * m)
            nets.append(build_network(self.arch, n_in, n_out, **self.net_kwargs))
        return nets

    def fit(self, X: np.ndarray, Y: np.ndarray, *, X_val=None, Y_val=None,
            augment: Callable | None = None, progress: Callable[[], None] | None = None,
            warm: bool = False, **train_kwargs) -> list[dict]:
        """Train every member on standardised targets ``Y`` (own seed: init, batches, noise);
        ``warm``: continue from the current networks (fine-tuning) instead of new ones."""
        if warm and (not self.nets or (self.n_in, self.n_out) != (X.shape[1], Y.shape[1])):
            raise ValueError("warm start needs fitted networks of the same input and output sizes")
        self.n_in, self.n_out = X.shape[1], Y.shape[1]
        if not warm:
            self.nets = self._build(self.n_in, self.n_out)
        return [train_network(net, X, Y, seed=self.seed + 1000 * m, augment=augment, X_val=X_val,
                              Y_val=Y_val, progress=progress, **train_kwargs)
                for m, net in enumerate(self.nets)]

    @torch.no_grad()
    def predict(self, X: np.ndarray, batch_size: int = 16384) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, variance)`` each ``(n, n_out)`` in standardised units, batched."""
        n = len(X)
        mean = np.empty((n, self.n_out))
        var = np.empty((n, self.n_out))
        for start in range(0, n, batch_size):
            xb = torch.as_tensor(np.asarray(X[start:start + batch_size]), dtype=torch.float32)
            mus, vs = [], []
            for net in self.nets:
                out = net(xb)
                mus.append(out[:, :self.n_out])
                vs.append(torch.exp(out[:, self.n_out:].clamp(-10.0, 10.0)))
            mu = torch.stack(mus)
            mean[start:start + batch_size] = mu.mean(0).numpy()
            var[start:start + batch_size] = (torch.stack(vs).mean(0) + mu.var(0, unbiased=False)).numpy()
        return mean, var

    @torch.no_grad()
    def predict_full(self, X: np.ndarray, batch_size: int = 16384) -> dict:
        """One pass: ``mean``, ``var`` (total), ``epistemic`` (variance of member means), each
        ``(n, n_out)`` standardised, and ``latent``: ``(members, n, n_hidden)`` last hidden layers."""
        n = len(X)
        out = {"mean": np.empty((n, self.n_out)), "var": np.empty((n, self.n_out)),
               "epistemic": np.empty((n, self.n_out)), "latent": None}
        lat = []
        for start in range(0, n, batch_size):
            xb = torch.as_tensor(np.asarray(X[start:start + batch_size]), dtype=torch.float32)
            mus, vs, hs = [], [], []
            for net in self.nets:
                h = net.embed(xb)
                o = net.head(h)
                hs.append(h)
                mus.append(o[:, :self.n_out])
                vs.append(torch.exp(o[:, self.n_out:].clamp(-10.0, 10.0)))
            mu = torch.stack(mus)
            sl = slice(start, start + batch_size)
            epi = mu.var(0, unbiased=False)
            out["mean"][sl] = mu.mean(0).numpy()
            out["epistemic"][sl] = epi.numpy()
            out["var"][sl] = (torch.stack(vs).mean(0) + epi).numpy()
            lat.append(torch.stack(hs).numpy())
        out["latent"] = np.concatenate(lat, axis=1) if lat else np.zeros((len(self.nets), 0, 0))
        return out

    @torch.no_grad()
    def embed(self, X: np.ndarray) -> np.ndarray:
        """Latent vectors of the first member, ``(n, n_hidden)``."""
        return self.nets[0].embed(torch.as_tensor(X, dtype=torch.float32)).numpy()

    def state(self) -> dict:
        return {"arch": self.arch, "members": self.members, "net_kwargs": self.net_kwargs,
                "seed": self.seed, "n_in": self.n_in, "n_out": self.n_out,
                "weights": [net.state_dict() for net in self.nets]}

    @classmethod
    def from_state(cls, st: dict) -> "DeepEnsemble":
        net_kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in st["net_kwargs"].items()}
        ens = cls(st["arch"], st["members"], net_kwargs, st["seed"])
        ens.n_in, ens.n_out = int(st["n_in"]), int(st["n_out"])
        ens.nets = ens._build(ens.n_in, ens.n_out)
        for net, w in zip(ens.nets, st["weights"]):
            net.load_state_dict(w)
            net.eval()
        return ens
