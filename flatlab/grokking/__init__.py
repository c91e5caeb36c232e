"""Grokking on a CPU in seconds: a tuned recipe, StableMax, ⊥Grad and the diagnostics of chapter 05.

A network fits its training set early and generalizes much later ("grokking"). Here a+b mod 59
with two 64-dim embeddings → 128 ReLU → 59 logits, full-batch AdamW (lr 5e-2, weight decay 1,
β = (0.9, 0.98)) on 40 % of the pairs fits the training set in ~20 steps and reaches 95 % test
accuracy at steps 370–410 (seeds 0–3) — about a second on one CPU core. :func:`grok` runs it::

    run = grok(GrokConfig(steps=800))          # or grok(weight_decay=3.0, train_fraction=0.6)
    run.history                                # a flatlab.train.History, one row per evaluation
    steps_to(run.history, "test_acc", 0.95)

Tuning notes (measured on a 2-core CPU, seeds 0–3): lr 3e-2 (the original prototype's) reaches 95 % test
at steps 540–680 here, lr 5e-2 at 370–410, lr 1e-1 at 250–290 but fits the training set 3× later.

The loop is lean on purpose (``flatlab.train.fit`` evaluates the full train and test sets through
the generic model call and knows no StableMax loss): the first layer acts on the concatenated
embeddings, so W·[E_a(a); E_b(b)] = (E_a W_aᵀ)[a] + (E_b W_bᵀ)[b] is two p×h tables gathered per
example — the same function and gradients as ``ModularMLP.forward``, fewer flops — AdamW is the
fused kernel, and training runs on one thread. Subnormal floats are flushed to zero while training
(``flush_denormal``): once the logits are in the hundreds, softmax produces subnormal probabilities
that make CPU arithmetic several times slower. The collapse itself is decided by normal floats (a loss
is exactly 0 when Σ_j e^{x_j − x_y} rounds to 1), and Adam's update of a gradient below 1e-38 is zero
either way; runs with and without flushing gave the same histories to 4 digits here.

Also here: StableMax and ⊥Grad (Prieto et al., "Grokking at the edge of numerical stability",
arXiv:2501.04697), a softmax-collapse probe, the Fourier spectrum of the embeddings (Nanda et al.,
arXiv:2301.05217), the inverse participation ratio of neurons and pruning (Doshi et al., "To grok or
not to grok", arXiv:2310.13061), weight norms (Liu et al., Omnigrok, arXiv:2210.01117), a small
one-layer transformer, and a (cached) phase sweep over weight decay × train fraction. Grokking:
Power et al., arXiv:2201.02177.

The package, one concept per module (everything is re-exported here, so ``flatlab.grokking.X`` works as before):

- ``losses``: StableMax, its log and cross-entropy, :func:`loss_function` (``LOSSES``);
- ``forward``: :func:`logits` and :func:`hidden_units` (the fast table form), :func:`nlm_cosine`, :func:`weight_norm`;
- ``collapse``: :func:`softmax_collapse` and :class:`CollapseProbe`;
- ``transformer``: :class:`OneLayerTransformer`;
- ``recipe``: :class:`GrokConfig`, :class:`GrokRun`, :func:`threads`, :func:`build`, :func:`grok`, :func:`grok_many`
  (several runs side by side in worker processes);
- ``milestones``: :func:`steps_to`, :func:`grokking_delay`;
- ``cache``: :func:`cached_grok` and the cache version;
- ``fourier``: the embedding's Fourier energy, top-k fraction, key frequencies, neuron IPR and its threshold;
- ``pruning``: :func:`prune_neurons`, :func:`accuracy_on`, :func:`pruning_report`;
- ``gains``: :func:`hidden_outputs`, :func:`neuron_gains` (readout norm, BatchNorm scale and effective gain of each
  hidden neuron);
- ``phases``: ``PHASES``, :func:`classify_phase`, :func:`phase_sweep`.

⊥Grad lives in ``flatlab.optim.orthograd``; ``OrthoGrad``, ``orthogonal_gradient`` and
``orthogonalize_gradients_`` are re-exported here (chapter 05 calls ``gk.OrthoGrad``).
"""
from __future__ import annotations

from ..optim import OrthoGrad as OrthoGrad
from ..optim import orthogonal_gradient as orthogonal_gradient
from ..optim import orthogonalize_gradients_ as orthogonalize_gradients_
from .cache import cached_grok as cached_grok
from .collapse import CollapseProbe as CollapseProbe, softmax_collapse as softmax_collapse
from .forward import (
    hidden_units as hidden_units, logits as logits, nlm_cosine as nlm_cosine, weight_norm as weight_norm,
)
from .fourier import (
    embedding_matrix as embedding_matrix, fourier_energy as fourier_energy, ipr as ipr,
    ipr_threshold as ipr_threshold, key_frequencies as key_frequencies, neuron_ipr as neuron_ipr,
    neuron_spectra as neuron_spectra, top_k_fraction as top_k_fraction,
)
from .gains import hidden_outputs as hidden_outputs, neuron_gains as neuron_gains
from .losses import (
    LOSSES as LOSSES, log_stablemax as log_stablemax, loss_function as loss_function, stablemax as stablemax,
    stablemax_cross_entropy as stablemax_cross_entropy, stablemax_s as stablemax_s,
)
from .milestones import grokking_delay as grokking_delay, steps_to as steps_to
from .phases import PHASES as PHASES, classify_phase as classify_phase, phase_sweep as phase_sweep
from .pruning import accuracy_on as accuracy_on, prune_neurons as prune_neurons, pruning_report as pruning_report
from .recipe import (
    DTYPES as DTYPES, MODELS as MODELS, GrokConfig as GrokConfig, GrokRun as GrokRun, build as build, grok as grok,
    grok_many as grok_many, threads as threads,
)
from .transformer import OneLayerTransformer as OneLayerTransformer
