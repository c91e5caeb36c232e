"""An ensemble of M models with stacked parameters ``{name: (M, ...)}``: ``_Ensemble`` computes their outputs,
per-model losses and gradients at once (batched matrix products for Linear/activation stacks, ``torch.func.vmap``
otherwise); ``_evaluate_ensemble`` and ``_load`` evaluate the stack and load one model back into a module."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..data import Dataset
from ..models import MLP
from ..train import make_loss



_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.GELU, nn.Softplus, nn.Sigmoid, nn.Identity, nn.LeakyReLU, nn.ELU,
                nn.SiLU)


def _bmm_layers(model: nn.Module) -> list[nn.Module] | None:
    """The layers of a Linear/element-wise stack (``flatlab.MLP`` or ``nn.Sequential``), else None."""
    if isinstance(model, MLP) and type(model).forward is MLP.forward:
        net = model.net
    elif type(model) is nn.Sequential:
        net = model
    else:
        return None
    if len(net) == 0:
        return None
    for layer in net:
        if not (type(layer) is nn.Linear or isinstance(layer, _ELEMENTWISE)):
            return None
    if any(b is not None for b in net.buffers()):
        return None
    return list(net)


def _loss_kind(dataset: Dataset, loss: str) -> str:
    """What ``make_loss(dataset, loss)`` computes: cross_entropy, mse_onehot, mse or logistic."""
    if loss == "auto":
        loss = {"classification": "cross_entropy", "binary": "logistic", "regression": "mse"}[dataset.task]
    if loss == "mse" and dataset.task == "classification":
        return "mse_onehot"
    return loss


def _softmax_pair(out: Tensor) -> tuple[Tensor, Tensor]:
    """softmax and log-softmax over the last axis in one pass (torch's kernels are slow on a short
    last axis such as 10 classes: 3× here)."""
    z = out - out.amax(-1, keepdim=True)
    e = z.exp()
    total = e.sum(-1, keepdim=True)
    return e / total, z - total.log()


class _Ensemble:
    """M models with stacked parameters ``{name: (M, ...)}``: outputs, per-model losses, gradients.

    ``bmm``: a Linear/activation stack as batched matrix products; the backward pass is written out
    (ReLU, tanh, sigmoid, identity with any of make_loss's losses) or left to autograd (other
    activations). ``func``: any module, ``torch.func.vmap(grad_and_value(functional_call))``.
    """

    _MANUAL = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity)

    def __init__(self, template: nn.Module, dataset: Dataset, loss: str, impl: str):
        self.kind = _loss_kind(dataset, loss)
        self.n_classes = dataset.n_classes
        self.y_event = tuple(dataset.y_train.shape[1:])
        self.x_event = tuple(dataset.x_train.shape[1:])
        self.names = [n for n, p in template.named_parameters() if p.requires_grad]
        frozen = {n: p.detach() for n, p in template.named_parameters() if not p.requires_grad}
        buffers = {n: b.detach() for n, b in template.named_buffers()}
        layers = _bmm_layers(template)
        if impl == "bmm" and (layers is None or frozen):
            raise ValueError("vmap_impl='bmm' needs a flatlab.MLP or an nn.Sequential of Linear layers and "
                             "element-wise activations (all trainable); use vmap_impl='func' for other models")
        self.impl = "bmm" if impl in ("auto", "bmm") and layers is not None and not frozen else "func"
        if self.impl == "bmm":
            prefix = "net." if isinstance(template, MLP) else ""
            self.layers: list[tuple] = []
            for i, layer in enumerate(layers):
                if isinstance(layer, nn.Linear):
                    self.layers.append(("linear", f"{prefix}{i}.weight",
                                        None if layer.bias is None else f"{prefix}{i}.bias"))
                else:
                    self.layers.append(("act", layer, None))
            self.manual = all(type(a) in self._MANUAL for k, a, _ in self.layers if k == "act")
        else:
            from torch.func import functional_call, grad_and_value, vmap

            loss_fn = make_loss(dataset, loss)

            def loss_single(params, x, y):
                return loss_fn(functional_call(template, (params, frozen, buffers), (x,)), y)

            def out_single(params, x):
                return functional_call(template, (params, frozen, buffers), (x,))

            self._gv = {s: vmap(grad_and_value(loss_single), in_dims=(0, None, None) if s else (0, 0, 0))
                        for s in (True, False)}
            self._out = {s: vmap(out_single, in_dims=(0, None if s else 0)) for s in (True, False)}

    # -- losses of M models at once (the formulas of flatlab.train.make_loss) ------------------
    def _residual_target(self, out: Tensor, y: Tensor) -> Tensor:
        if self.kind == "mse_onehot":
            return torch.nn.functional.one_hot(y, self.n_classes).to(out.dtype)
        return y

    def losses(self, out: Tensor, y: Tensor) -> Tensor:
        """Per-model loss (M,) of outputs (M, N, ...) against targets (N, ...) or (M, N, ...)."""
        m = out.shape[0]
        if y.dim() == len(self.y_event) + 1:
            y = y.unsqueeze(0).expand(m, *y.shape)
        if self.kind == "cross_entropy":
            logp = _softmax_pair(out)[1]
            return -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(1)
        if self.kind == "mse_onehot":
            return 0.5 * (out - self._residual_target(out, y)).pow(2).sum(-1).mean(1)
        if self.kind == "logistic":
            return torch.nn.functional.softplus(-y * out.reshape(y.shape)).flatten(1).mean(1)
        return 0.5 * (out.reshape(y.shape) - y).pow(2).flatten(1).mean(1)

    def _loss_and_grad(self, out: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Per-model losses (M,) and d loss_m / d out (the models' losses are independent)."""
        if self.kind == "cross_entropy":
            p, logp = _softmax_pair(out)
            values = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(1)
            p.scatter_add_(-1, y.unsqueeze(-1), torch.full(y.unsqueeze(-1).shape, -1.0, dtype=out.dtype))
            return values, p / out.shape[1]
        values = self.losses(out, y)
        if self.kind == "mse_onehot":
            return values, (out - self._residual_target(out, y)) / out.shape[1]
        per_model = y[0].numel()
        if self.kind == "logistic":
            z = -y * out.reshape(y.shape)
            return values, (-y * torch.sigmoid(z) / per_model).reshape(out.shape)
        return values, ((out.reshape(y.shape) - y) / per_model).reshape(out.shape)

    # -- forward and backward ------------------------------------------------------------------
    def _linear(self, params, w_name, b_name, h):
        w = params[w_name].transpose(1, 2)
        return torch.bmm(h, w) if b_name is None else torch.baddbmm(params[b_name].unsqueeze(1), h, w)

    def outputs(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        """Outputs (M, N, ...) for shared inputs x (N, ...) or per-model inputs (M, N, ...)."""
        shared = x.dim() == len(self.x_event) + 1
        if self.impl == "func":
            return self._out[shared](params, x)
        m = params[self.names[0]].shape[0]
        h = x.unsqueeze(0).expand(m, *x.shape) if shared else x
        for kind, a, b in self.layers:
            h = self._linear(params, a, b, h) if kind == "linear" else a(h)
        return h

    def grads_and_losses(self, params: dict[str, Tensor], x: Tensor, y: Tensor
                         ) -> tuple[dict[str, Tensor], Tensor]:
        """Gradients {name: (M, ...)} of each model's minibatch loss, and the losses (M,)."""
        shared = x.dim() == len(self.x_event) + 1
        if self.impl == "func":
            grads, values = self._gv[shared](params, x, y)
            return grads, values.detach()
        m = params[self.names[0]].shape[0]
        if shared:
            x = x.unsqueeze(0).expand(m, *x.shape)
            y = y.unsqueeze(0).expand(m, *y.shape)
        if not self.manual:
            leaves = {n: p.detach().requires_grad_(True) for n, p in params.items()}
            with torch.enable_grad():
                values = self.losses(self.outputs(leaves, x), y)
                grads = torch.autograd.grad(values.sum(), [leaves[n] for n in self.names])
            return dict(zip(self.names, grads)), values.detach()
        with torch.no_grad():
            inputs, acts = [], []  # input of each Linear layer; (activation, its output) pairs
            h = x
            for kind, a, b in self.layers:
                if kind == "linear":
                    inputs.append(h)
                    h = self._linear(params, a, b, h)
                else:
                    h = a(h)
                acts.append(h)
            values, d = self._loss_and_grad(h, y)
            grads: dict[str, Tensor] = {}
            k = len(inputs)
            for pos in range(len(self.layers) - 1, -1, -1):
                kind, a, b = self.layers[pos]
                if kind == "act":
                    out = acts[pos]
                    if isinstance(a, nn.ReLU):
                        d = d * (out > 0)
                    elif isinstance(a, nn.Tanh):
                        d = d * (1 - out * out)
                    elif isinstance(a, nn.Sigmoid):
                        d = d * (out * (1 - out))
                    continue
                k -= 1
                grads[a] = torch.bmm(d.transpose(1, 2), inputs[k])
                if b is not None:
                    grads[b] = d.sum(1)
                if k > 0:
                    d = torch.bmm(d, params[a])
        return grads, values


@torch.no_grad()
def _evaluate_ensemble(ens: _Ensemble, params: dict[str, Tensor], ds: Dataset, chunk: int = 16) -> list[dict]:
    """``flatlab.train.evaluate`` for every model of the stack (full train and test sets)."""
    m = params[ens.names[0]].shape[0]
    rows: list[dict] = [{} for _ in range(m)]
    for lo in range(0, m, chunk):
        sub = {n: p[lo:lo + chunk] for n, p in params.items()}
        for split in ("train", "test"):
            x, y = getattr(ds, split)
            if len(x) == 0:
                for r in rows[lo:lo + chunk]:
                    r[f"{split}_loss"], r[f"{split}_acc"] = float("nan"), float("nan")
                continue
            out = ens.outputs(sub, x)
            losses = ens.losses(out, y).tolist()
            if ds.task == "classification":
                accs = (out.argmax(-1) == y).float().mean(1).tolist()
            elif ds.task == "binary":
                accs = (torch.sign(out.reshape(out.shape[0], *y.shape)) == y).float().flatten(1).mean(1).tolist()
            else:
                accs = [float("nan")] * out.shape[0]
            for j in range(out.shape[0]):
                rows[lo + j][f"{split}_loss"], rows[lo + j][f"{split}_acc"] = losses[j], accs[j]
    return rows


def _load(module: nn.Module, params: dict[str, Tensor], j: int) -> nn.Module:
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name in params:
                p.copy_(params[name][j])
    return module
