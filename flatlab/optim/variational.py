"""Mean-field variational optimizers: the Gaussian KL and its gradients, the shared
:class:`VariationalOptimizer` (one step: perturb, average the gradients, add the KL term, step the base) and
MFVI (Blundell et al. 2015, arXiv:1505.05424). About 460 lines: the shared step is one function
with its documentation, and MFVI is its thinnest subclass."""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer

from .. import _validate as _v
from ._common import (LINKS, STD_PARAMETERIZATIONS, _call, _check_base_kwargs, _check_closure, _model_average,
                      _resolve_base, _whole_state, frozen_bn_stats)


def gaussian_kl(mean: Tensor, std: Tensor, prior_precision: float) -> Tensor:
    """``KL(N(μ, σ²) ‖ N(0, 1/λ₀))`` summed over elements: ``½ Σ [λ₀(σ² + μ²) − 1 − log(λ₀σ²)]``.

    >>> float(gaussian_kl(torch.zeros(3), torch.ones(3), prior_precision=1.0))
    0.0
    """
    prior_precision = _v.positive("prior_precision", prior_precision)
    var = std.pow(2)
    return 0.5 * (prior_precision * (var + mean.pow(2)) - 1.0 - torch.log(prior_precision * var)).sum()


def kl_gradients(mean: Tensor, std: Tensor, prior_precision: float, dataset_size: int) -> tuple[Tensor, Tensor]:
    """Gradients of ``KL(q ‖ p)/N`` with respect to μ and σ: ``(λ₀μ/N, (λ₀σ − 1/σ)/N)``.

    >>> kl_gradients(torch.tensor([2.0]), torch.tensor([1.0]), prior_precision=1.0, dataset_size=4)
    (tensor([0.5000]), tensor([0.]))
    """
    prior_precision = _v.positive("prior_precision", prior_precision)
    dataset_size = _v.integer("dataset_size", dataset_size, 1)
    return mean * (prior_precision / dataset_size), (prior_precision * std - 1.0 / std) / dataset_size


def _std(s: Tensor, kind: str) -> Tensor:
    return s.exp() if kind == "log" else F.softplus(s)


def _inverse_std(std: float, kind: str) -> float:
    if kind == "log":
        return math.log(std)
    try:
        return math.log(math.expm1(std))
    except OverflowError:  # softplus⁻¹(σ) = σ + log(1 − e^−σ) ≈ σ for large σ
        return std + math.log1p(-math.exp(-std))


def _check_init_std(init_std: float, dtype: torch.dtype, kind: str) -> None:
    """σ = init_std must survive in the parameters' dtype: σ > 0 and σ², 1/σ finite (the KL uses both)."""
    info = torch.finfo(dtype)
    lo, hi = math.sqrt(info.tiny), math.sqrt(info.max)
    sigma = float(_std(torch.tensor(_inverse_std(init_std, kind), dtype=dtype), kind))
    if not (lo <= init_std <= hi) or not (lo <= sigma <= hi):
        raise ValueError(f"init_std={init_std!r} {'underflows' if init_std < lo or sigma < lo else 'overflows'} in "
                         f"{dtype} (σ = {sigma:g}; the KL term needs σ², 1/σ finite and σ > 0): init_std must be "
                         f"in [{lo:.3g}, {hi:.3g}] for {dtype} parameters")





class _Bucket:
    """The parameters of one group with one dtype and device, laid end to end: ``bucket["mu"]``, ``["s"]``, … are
    flat tensors of their total size, made on first use (a buffer that a step never asks for costs nothing) and
    kept; ``bucket.views[name]`` cuts one into views shaped like the parameters."""

    def __init__(self, group: int, params: list[Tensor]):
        self.group, self.params = group, params
        self.sizes = [p.numel() for p in params]
        self.shapes = [(p.shape, p.dtype, p.device) for p in params]
        self.bufs: dict[str, Tensor] = {}
        self.views = _Views(self)

    def __getitem__(self, name: str) -> Tensor:
        buf = self.bufs.get(name)
        if buf is None:
            first = self.params[0]
            buf = self.bufs[name] = torch.empty(sum(self.sizes), dtype=first.dtype, device=first.device)
        return buf


class _Views:
    def __init__(self, bucket: _Bucket):
        self.bucket, self.cut = bucket, {}

    def __getitem__(self, name: str) -> list[Tensor]:
        views = self.cut.get(name)
        if views is None:
            b = self.bucket
            views = self.cut[name] = [t.view_as(p) for t, p in zip(b[name].split(b.sizes), b.params)]
        return views


# ----------------------------------------------------------------------------------------------
# variational optimizers: MFVI and friends
# ----------------------------------------------------------------------------------------------
class VariationalOptimizer(Optimizer):
    r"""Mean-field Gaussian posterior ``q(w) = N(μ, diag σ²)`` learned by perturbed gradients.

    Objective (per example, so its scale matches the usual mean loss):

        F(μ, σ) = E_{w ~ q}[ L(w) ] + KL(q ‖ N(0, λ₀⁻¹ I)) / N

    with ``L`` the mean minibatch loss (the negative log-likelihood per example), λ₀ =
    ``prior_precision`` and N = ``dataset_size``; N·F is the negative ELBO. μ is stored in the
    parameters themselves (so the model *is* the posterior mean between steps); σ = exp(s)
    (``std_param="log"``) or softplus(s) (``"softplus"``), with s kept in the optimizer state.
    Each step draws ``mc_samples`` perturbations ``ε_k`` (the subclass decides how), evaluates
    ``g_k = ∇L_B(μ + ε_k)`` and sets

        ∇_μ F ≈ mean_k g_k + λ₀ μ / N
        ∇_σ F ≈ mean_k g_k ⊙ ∂w/∂σ + (λ₀ σ − 1/σ) / N      (∂w/∂σ = ξ for ε = σ ⊙ ξ)

    then the base optimizer (Adam by default) updates μ and s (``∇_s = ∇_σ · dσ/ds``). Subclasses:
    :class:`MFVI`, :class:`MixSAM`, :class:`VariationalSAM`. Noise comes from torch's global RNG
    (seeded by ``fit(seed=…)``) or from ``generator``.

    The base optimizer must not add its own weight decay: the prior *is* the weight decay
    (λ₀/N, coupled L2), so ``weight_decay`` in ``base_kwargs`` is refused and set to 0. All
    parameter groups are given to the constructor (``add_param_group`` later is refused).

    Choosing the base: Adam normalizes each coordinate, so s = log σ moves by about ``lr`` per step
    whatever the size of its gradient — the KL's entropy term (−1/N) then makes σ grow at that rate
    until curvature stops it, which on a network can be far beyond what the mean can fit. With SGD
    the σ-gradient keeps its natural scale O(1/N) and σ moves slowly (chapter 02 uses SGD on the
    MLP, Adam on Bayesian linear regression).
    """

    _passes = "at perturbed points"

    def __init__(self, params: Iterable, lr: float = 1e-3, *, dataset_size: int, prior_precision: float = 1.0,
                 init_std: float = 1e-2, mc_samples: int = 1, base_optimizer: str | type[Optimizer] = "adam",
                 std_param: str = "log", learn_std: bool = True, model: nn.Module | None = None,
                 generator: torch.Generator | None = None, **base_kwargs: Any):
        lr = _v.positive("lr", lr)
        prior_precision = _v.positive("prior_precision", prior_precision)
        dataset_size = _v.integer("dataset_size", dataset_size, 1)
        init_std = _v.positive("init_std", init_std)
        mc_samples = _v.integer("mc_samples", mc_samples, 1)
        _v.choice("std_param", std_param, STD_PARAMETERIZATIONS)
        learn_std = _v.boolean("learn_std", learn_std)
        if model is not None and not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module or None, got {type(model).__name__}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        if base_kwargs.get("weight_decay", 0.0):
            raise ValueError(f"weight_decay={base_kwargs['weight_decay']!r} is not allowed in {type(self).__name__}: "
                             "the Gaussian prior already acts as weight decay λ₀/N — set prior_precision instead")
        base_kwargs.pop("weight_decay", None)
        base_cls = _resolve_base(base_optimizer)
        _check_base_kwargs(base_kwargs)
        defaults = dict(lr=lr, prior_precision=prior_precision, dataset_size=dataset_size, init_std=init_std,
                        mc_samples=mc_samples, learn_std=learn_std, **self._extra_defaults(), **base_kwargs)
        super().__init__(params, defaults)
        self.std_param, self.model, self.generator = std_param, model, generator
        self._base_cls, self._base_keys = base_cls, ["lr", *base_kwargs]
        if "weight_decay" in inspect.signature(base_cls).parameters:
            base_kwargs["weight_decay"] = 0.0
        for group in self.param_groups:
            for key in ("lr", "prior_precision", "init_std"):
                _v.positive(key, group[key])
            _v.integer("dataset_size", group["dataset_size"], 1)
            _v.integer("mc_samples", group["mc_samples"], 1)
            _v.boolean("learn_std", group["learn_std"])
            self._check_group(group)
            for p in group["params"]:
                if not p.is_floating_point():
                    raise TypeError("parameters must be floating-point tensors")
                _check_init_std(group["init_std"], p.dtype, std_param)
                self.state[p]["std_param"] = torch.full_like(p, _inverse_std(group["init_std"], std_param))
        self._layout()
        self.base_optimizer = base_cls(self._base_groups(), **base_kwargs)

    # -- subclass hooks -------------------------------------------------------------------------
    def _extra_defaults(self) -> dict:
        return {}

    def _check_group(self, group: dict) -> None:
        """Validate a subclass's per-group hyper-parameters."""

    def _needs_mean_gradient(self) -> bool:
        """Whether the perturbation needs ∇L_B(μ) (one pass at the mean before the perturbed ones)."""
        return False

    def _perturb(self, sigmas: list[Tensor], mean_grads: list[Tensor] | None,
                 groups: list[dict]) -> tuple[list[Tensor], list[Tensor] | None]:
        """ε and ∂w/∂σ (None: the perturbation does not depend on σ), one flat tensor per bucket (see
        :meth:`_layout`); ``sigmas`` and ``mean_grads`` are flat per bucket, ``groups`` the bucket's group."""
        raise NotImplementedError

    # -- plumbing ---------------------------------------------------------------------------------
    def _layout(self) -> None:
        """Lay the parameters of each group end to end, one *bucket* per (group, dtype, device).

        Every elementwise operation of a step — σ from s, the noise, ε, the gradients of μ and s, the
        base optimizer's update — is then one torch call on a flat tensor per bucket instead of one per
        parameter tensor (on a CPU torch's ``_foreach_*`` calls run a loop over the tensors). Per bucket:
        ``mu`` (the mean, gathered from the parameters each step; the base optimizer updates it and the
        parameters are copied back from it), ``s`` (σ's parameter; ``state[p]["std_param"]`` is a view of
        it), ``work`` (μ + ε, copied into the parameters for the closure) and the scratch buffers the step
        writes into instead of allocating (see :class:`_Bucket`).
        """
        self._buckets: list[_Bucket] = []
        for gi, group in enumerate(self.param_groups):
            kinds: dict[tuple, list[Tensor]] = {}
            for p in group["params"]:
                kinds.setdefault((p.dtype, p.device), []).append(p)
            for params in kinds.values():
                bucket = _Bucket(gi, params)
                for p, v in zip(params, bucket.views["s"]):
                    v.copy_(self.state[p]["std_param"])
                    self.state[p]["std_param"] = v
                self._buckets.append(bucket)
        self._link()

    def _link(self) -> None:
        """The lists and views derived from the buckets' buffers (again after unpickling, which copies views)."""
        for b in self._buckets:
            b.views = _Views(b)
            for p, v in zip(b.params, b.views["s"]):
                self.state[p]["std_param"] = v
        self._params = [p for b in self._buckets for p in b.params]
        self._mu_views = [v for b in self._buckets for v in b.views["mu"]]
        self._work_views = [v for b in self._buckets for v in b.views["work"]]
        first = self._buckets[0]["mu"] if self._buckets else None
        self._one_draw = all(b["mu"].dtype == first.dtype and b["mu"].device == first.device for b in self._buckets)
        if self._one_draw and first is not None:
            self._xi = torch.empty(sum(b["mu"].numel() for b in self._buckets), dtype=first.dtype, device=first.device)
            self._xi_views = list(self._xi.split([b["mu"].numel() for b in self._buckets]))

    def _base_groups(self) -> list[dict]:
        groups = []
        for gi, group in enumerate(self.param_groups):
            mine = [b for b in self._buckets if b.group == gi]
            groups.append({"params": [b["mu"] for b in mine] + [b["s"] for b in mine],
                           **{k: group[k] for k in self._base_keys}})
        return groups

    def add_param_group(self, param_group: dict) -> None:
        if hasattr(self, "base_optimizer"):
            raise NotImplementedError(f"{type(self).__name__} takes all parameter groups in its constructor")
        super().add_param_group(param_group)

    def _sync(self) -> None:
        for group, base in zip(self.param_groups, self.base_optimizer.param_groups):
            for k in self._base_keys:
                base[k] = group[k]
        for b in self._buckets:
            for p, shape in zip(b.params, b.shapes):
                if (p.shape, p.dtype, p.device) != shape:
                    raise ValueError(f"{type(self).__name__}: a parameter changed from {tuple(shape[0])} {shape[1]} on "
                                     f"{shape[2]} to {tuple(p.shape)} {p.dtype} on {p.device} since the optimizer was "
                                     "built; build a new optimizer for the changed model")

    def _noise(self) -> list[Tensor]:
        """ξ ~ N(0, I), one flat tensor per bucket (one draw for all buckets when dtypes and devices agree)."""
        if self._one_draw:  # the same numbers as torch.randn(total, generator=…), drawn into a kept buffer
            self._xi.normal_(generator=self.generator)
            return self._xi_views
        return [torch.randn(b["mu"].shape, generator=self.generator, dtype=b["mu"].dtype, device=b["mu"].device)
                for b in self._buckets]

    def _sigmas(self) -> list[Tensor]:
        if self.std_param == "log":
            return [torch.exp(b["s"], out=b["sig"]) for b in self._buckets]
        return [F.softplus(b["s"]) for b in self._buckets]

    def _take_grads(self, into: str) -> list[Tensor]:
        """The gradients now in ``.grad`` (zeros where None), copied into each bucket's buffer ``into``, which are
        returned; ``.grad`` is cleared."""
        out = []
        for b in self._buckets:
            params = b.params
            grads = [p.grad for p in params]
            if any(g is None for g in grads):
                grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
            flat = [g.reshape(-1) for g in grads]
            out.append(torch.cat(flat, out=b[into]))
            for p in params:
                p.grad = None
        return out

    # -- the step ---------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor:
        """One step; returns the minibatch loss at μ when a pass at the mean is made (MixSAM with
        m < 1, variational SAM), else the loss averaged over the ``mc_samples`` samples."""
        name = type(self).__name__
        closure = _check_closure(closure, name, self._passes)
        self._sync()
        ps, buckets = self._params, self._buckets
        groups = [self.param_groups[b.group] for b in buckets]
        torch._foreach_copy_(self._mu_views, ps)  # μ, flat
        sigmas = self._sigmas()
        first_loss, mean_grads, passes = None, None, 0
        if self._needs_mean_gradient():
            first_loss = _call(closure, ps, name)
            mean_grads = self._take_grads("mg")
            passes = 1
        n_samples = max(g["mc_samples"] for g in self.param_groups)
        acc_mu: list[Tensor] = []
        acc_s: list[Tensor] | None = None
        losses = []
        for k in range(n_samples):
            eps, dw = self._perturb(sigmas, mean_grads, groups)
            for b, e in zip(buckets, eps):
                torch.add(b["mu"], e, out=b["work"])  # w = μ + ε
            torch._foreach_copy_(ps, self._work_views)
            with frozen_bn_stats(self.model) if (self.model is not None and passes > 0) else nullcontext():
                losses.append(_call(closure, ps, name))
            passes += 1
            gs = self._take_grads("acc" if k == 0 else "tmp")
            gs_dw = None if dw is None else [torch.mul(g, d, out=b["gdw" if k == 0 else "eps"])
                                             for g, d, b in zip(gs, dw, buckets)]
            if k == 0:
                acc_mu, acc_s = gs, gs_dw
            else:
                for a, g in zip(acc_mu, gs):
                    a.add_(g)
                if gs_dw is not None:
                    for a, g in zip(acc_s, gs_dw):
                        a.add_(g)
        if n_samples > 1:
            for a in acc_mu + (acc_s or []):
                a.div_(float(n_samples))
        for i, (b, group) in enumerate(zip(buckets, groups)):
            coef, inv_n = group["prior_precision"] / group["dataset_size"], 1.0 / group["dataset_size"]
            torch.add(acc_mu[i], b["mu"], alpha=coef, out=b["grad"])  # ∇_μ = mean g + (λ₀/N) μ
            sd = sigmas[i]
            if self.std_param == "log":  # ∇_s = σ ∇_σ = σ·mean(g ⊙ ∂w/∂σ) + (λ₀σ² − 1)/N
                g_s = torch.mul(sd, sd, out=b["g_s"])
                g_s.mul_(coef).sub_(inv_n)
                if acc_s is not None:
                    g_s.addcmul_(acc_s[i], sd)
            else:  # ∇_s = sigmoid(s) ∇_σ
                g_s = coef * sd - inv_n / sd
                if acc_s is not None:
                    g_s.add_(acc_s[i])
                g_s = g_s * torch.sigmoid(b["s"])
            b["mu"].grad = b["grad"]
            b["s"].grad = g_s if group["learn_std"] else None
            for p, g in zip(b.params, b.views["grad"]):
                p.grad = g
        self.base_optimizer.step()
        torch._foreach_copy_(ps, self._mu_views)  # the parameters are the updated mean
        if first_loss is not None:
            return first_loss
        return losses[0] if len(losses) == 1 else torch.stack([torch.as_tensor(v).detach() for v in losses]).mean()

    # -- the posterior ------------------------------------------------------------------------------
    def posterior(self) -> list[tuple[Tensor, Tensor]]:
        """``[(μ, σ)]`` per parameter, in parameter order (detached copies).

        >>> w = torch.nn.Parameter(torch.zeros(2))
        >>> MFVI([w], dataset_size=10, init_std=0.5).posterior()[0][1]
        tensor([0.5000, 0.5000])
        """
        return [(p.detach().clone(), _std(self.state[p]["std_param"], self.std_param).detach().clone())
                for group in self.param_groups for p in group["params"]]

    def kl(self) -> float:
        """``KL(q ‖ p)`` of the current posterior (summed over all parameters, not divided by N)."""
        total = 0.0
        for group in self.param_groups:
            for p in group["params"]:
                sd = _std(self.state[p]["std_param"], self.std_param)
                total += float(gaussian_kl(p.detach(), sd, group["prior_precision"]))
        return total

    @contextmanager
    def sample(self, generator: torch.Generator | None = None) -> Iterator[None]:
        """Put one posterior sample ``w = μ + σ ⊙ ξ`` into the parameters; restore μ on exit.

        >>> w = torch.nn.Parameter(torch.zeros(3))
        >>> opt = MFVI([w], dataset_size=10, init_std=0.1)
        >>> with opt.sample():
        ...     moved = bool(w.abs().sum() > 0)
        >>> moved, w.abs().sum().item()
        (True, 0.0)
        """
        gen = generator if generator is not None else self.generator
        means = []
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    means.append((p, p.detach().clone()))
                    noise = torch.randn(p.shape, generator=gen, dtype=p.dtype, device=p.device)
                    p.add_(_std(self.state[p]["std_param"], self.std_param) * noise)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, m in means:
                    p.copy_(m)

    @torch.no_grad()
    def predict(self, model: nn.Module, x: Tensor, samples: int = 32, link: str = "softmax",
                generator: torch.Generator | None = None) -> Tensor:
        """Bayesian model average ``p(y|x) ≈ (1/S) Σ_s link(f(x; w_s))``, ``w_s ~ q`` (eval mode).

        ``link``: ``"softmax"`` (class probabilities), ``"sigmoid"`` or ``"identity"``.

        >>> model = torch.nn.Linear(2, 3)
        >>> opt = MFVI(model.parameters(), dataset_size=10)
        >>> torch.allclose(opt.predict(model, torch.zeros(4, 2), samples=5).sum(1), torch.ones(4))
        True
        """
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        samples = _v.integer("samples", samples, 1)
        _v.choice("link", link, LINKS)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")

        def sampled_forward(inputs: Tensor) -> Tensor:
            with self.sample(generator):
                return model(inputs)

        return _model_average(model, x, samples, link, sampled_forward)

    # -- state ------------------------------------------------------------------------------------
    __getstate__ = _whole_state   # a deep copy or a pickle keeps the base optimizer

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "_buckets" in state:
            self._link()

    def state_dict(self) -> dict:
        """Groups, σ parameters (per parameter) and the base optimizer's state (key ``"base"``)."""
        sd = super().state_dict()
        sd["base"] = self.base_optimizer.state_dict()
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        if "base" not in state_dict:
            raise ValueError(f"state_dict has no 'base' entry: it was not saved by {type(self).__name__}.state_dict()")
        base = state_dict.pop("base")
        super().load_state_dict(state_dict)
        for b in self._buckets:  # the loaded σ parameters go back into the flat buffers
            for p, v in zip(b.params, b.views["s"]):
                v.copy_(self.state[p]["std_param"])
                self.state[p]["std_param"] = v
        self.base_optimizer.load_state_dict(base)

    def __repr__(self) -> str:
        d = self.defaults
        return (f"{type(self).__name__}(lr={d['lr']}, prior_precision={d['prior_precision']}, "
                f"dataset_size={d['dataset_size']}, mc_samples={d['mc_samples']}, base={self._base_cls.__name__})")


class MFVI(VariationalOptimizer):
    r"""Mean-field variational inference with the reparameterization trick (Bayes by backprop).

    Minimizes ``E_{ξ~N(0,I)}[L(μ + σ ⊙ ξ)] + KL(N(μ, σ²) ‖ N(0, λ₀⁻¹))/N`` over μ (the parameters)
    and σ (optimizer state). Algorithm, per step::

        for k in 1..S:  ξ_k ~ N(0, I);  g_k = ∇L_B(μ + σ ⊙ ξ_k)          # S = mc_samples closure calls
        ∇_μ = mean_k g_k + λ₀ μ / N
        ∇_σ = mean_k g_k ⊙ ξ_k + (λ₀ σ − 1/σ) / N
        (μ, s) ← base_optimizer_step((μ, s), (∇_μ, ∇_σ · dσ/ds))

    ``MFVI(params, lr=1e-3, *, dataset_size, prior_precision=1.0, init_std=1e-2, mc_samples=1,
    base_optimizer="adam", std_param="log", learn_std=True, model=None, generator=None,
    **base_kwargs)``. For Bayesian linear regression with a Gaussian likelihood the optimum is
    known in closed form: μ = the exact posterior mean and σ_i² = 1/Λ_ii (Λ = posterior precision),
    checked in ``tests/test_optim.py``.

    Departures from Blundell et al.: the objective is divided by N (so ``lr`` means what it means
    for the mean loss); σ = exp(s) by default (softplus optional); no KL re-weighting over minibatches;
    ``learn_std=False`` keeps σ fixed (Gaussian smoothing of the loss: "random-perturbation SGD").

    >>> w = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    >>> opt = MFVI([w], lr=0.01, dataset_size=100, init_std=0.1)
    >>> def closure():
    ...     opt.zero_grad(); loss = (w ** 2).sum(); loss.backward(); return loss
    >>> _ = opt.step(closure); [round(float(s.mean()), 2) for _, s in opt.posterior()]
    [0.1]
    """

    _passes = "at mc_samples posterior samples μ + σ ⊙ ξ"

    def _perturb(self, sigmas, mean_grads, groups):
        xi = self._noise()
        return [torch.mul(s, x, out=b["eps"]) for s, x, b in zip(sigmas, xi, self._buckets)], xi
