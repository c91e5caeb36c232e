"""Every chapter-02 check passes its reference and fails plausible mistakes with a message naming them."""
import torch

from flatlab.exercises import sam as ex
from flatlab.optim import sam_perturbation


# ---- SAM perturbation -----------------------------------------------------------------------
def test_sam_reference_passes(capsys):
    assert ex.check_sam_perturbation(ex.sam_perturbation_reference)
    assert capsys.readouterr().out.startswith("✓ sam_perturbation")


def test_flatlab_implementation_passes_the_check(capsys):
    assert ex.check_sam_perturbation(lambda g, rho: sam_perturbation(g, rho))


def norm(grads):
    return torch.sqrt(sum((g ** 2).sum() for g in grads))


def check_fails_with(fn, text, capsys):
    assert not ex.check_sam_perturbation(fn)
    out = capsys.readouterr().out
    assert text in out, out
    return out


def test_unnormalized_gradient_is_named(capsys):
    check_fails_with(lambda g, rho: [rho * t for t in g], "divide by ‖g‖", capsys)


def test_wrong_sign_is_named(capsys):
    check_fails_with(lambda g, rho: [-rho * t / (norm(g) + 1e-12) for t in g], "wrong sign", capsys)


def test_squared_norm_is_named(capsys):
    check_fails_with(lambda g, rho: [rho * t / (norm(g) ** 2 + 1e-12) for t in g], "not ‖g‖²", capsys)


def test_forgotten_rho_is_named(capsys):
    check_fails_with(lambda g, rho: [t / (norm(g) + 1e-12) for t in g], "multiply by ρ", capsys)


def test_per_tensor_norm_is_named(capsys):
    check_fails_with(lambda g, rho: [rho * t / (t.norm() + 1e-12) for t in g], "*all* gradients together", capsys)


def test_zero_gradient_nan_is_named(capsys):
    out = check_fails_with(lambda g, rho: [rho * t / norm(g) for t in g], "‖g‖ = 0", capsys)
    assert "1 of 4 cases wrong" in out


def test_in_place_modification_is_named(capsys):
    def in_place(g, rho):
        n = norm(g) + 1e-12
        for t in g:
            t.mul_(rho / n)
        return g

    check_fails_with(in_place, "modified in place", capsys)


def test_wrong_return_type_is_named(capsys):
    check_fails_with(lambda g, rho: torch.cat([t.flatten() for t in g]) * rho, "return a list", capsys)


def test_sam_stub_and_crash(capsys):
    def stub(g, rho):
        raise NotImplementedError

    assert not ex.check_sam_perturbation(stub)
    assert "not implemented yet" in capsys.readouterr().out
    assert not ex.check_sam_perturbation(lambda g, rho: g.norm())
    assert "raised AttributeError" in capsys.readouterr().out


# ---- reparameterized sample -----------------------------------------------------------------
def test_reparam_reference_passes(capsys):
    assert ex.check_reparameterized_sample(ex.reparameterized_sample_reference)
    assert capsys.readouterr().out.startswith("✓ reparameterized_sample")


def reparam_fails_with(fn, text, capsys):
    assert not ex.check_reparameterized_sample(fn)
    out = capsys.readouterr().out
    assert text in out, out


def test_forgotten_exp_is_named(capsys):
    reparam_fails_with(lambda m, s, xi: m + s * xi, "exponentiate", capsys)


def test_variance_instead_of_std_is_named(capsys):
    reparam_fails_with(lambda m, s, xi: m + torch.exp(2 * s) * xi, "not σ²", capsys)


def test_log_variance_reading_is_named(capsys):
    reparam_fails_with(lambda m, s, xi: m + torch.exp(s / 2) * xi, "not log σ²", capsys)


def test_missing_noise_is_named(capsys):
    reparam_fails_with(lambda m, s, xi: m + torch.exp(s), "multiply σ by the noise", capsys)


def test_own_noise_is_named(capsys):
    reparam_fails_with(lambda m, s, xi: m + torch.exp(s) * torch.randn_like(m), "use the noise you are given", capsys)


def test_detached_sample_is_named(capsys):
    reparam_fails_with(lambda m, s, xi: (m + torch.exp(s) * xi).detach(), "carries no gradient", capsys)


def test_gradient_only_to_mean_is_named(capsys):
    reparam_fails_with(lambda m, s, xi: m + torch.exp(s).detach() * xi, "no gradient reaches log σ", capsys)


def test_reparam_stub(capsys):
    def stub(m, s, xi):
        raise NotImplementedError

    assert not ex.check_reparameterized_sample(stub)
    assert "not implemented yet" in capsys.readouterr().out


# ---- the KL term of MFVI ----------------------------------------------------------------------
def test_kl_reference_passes_and_agrees_with_flatlab_and_torch(capsys):
    from torch.distributions import Normal, kl_divergence

    from flatlab.optim import gaussian_kl

    assert ex.check_gaussian_kl(ex.gaussian_kl_reference)
    assert capsys.readouterr().out.startswith("✓ gaussian_kl")
    assert ex.check_gaussian_kl(gaussian_kl)
    mean, std, lam = torch.tensor([0.3, -1.0, 2.0]), torch.tensor([0.2, 1.5, 0.7]), 4.0
    by_torch = kl_divergence(Normal(mean, std), Normal(torch.zeros(3), torch.full((3,), lam ** -0.5))).sum()
    assert torch.isclose(ex.gaussian_kl_reference(mean, std, lam).float(), by_torch, rtol=1e-5)


def kl_fails_with(fn, text, capsys):
    assert not ex.check_gaussian_kl(fn)
    out = capsys.readouterr().out
    assert out.startswith("✗ gaussian_kl") and text in out and "expected KL" in out, out


def test_kl_missing_half_is_named(capsys):
    kl_fails_with(lambda m, s, lam: (lam * (s**2 + m**2) - 1 - torch.log(lam * s**2)).sum(), "factor ½", capsys)


def test_kl_std_instead_of_variance_is_named(capsys):
    kl_fails_with(lambda m, s, lam: 0.5 * (lam * (s + m**2) - 1 - torch.log(lam * s)).sum(), "not σ", capsys)


def test_kl_unsquared_log_term_is_named(capsys):
    kl_fails_with(lambda m, s, lam: 0.5 * (lam * (s**2 + m**2) - 1 - torch.log(lam * s)).sum(),
                  "square σ inside the log", capsys)


def test_kl_missing_constant_is_named(capsys):
    kl_fails_with(lambda m, s, lam: 0.5 * (lam * (s**2 + m**2) - torch.log(lam * s**2)).sum(), "subtract 1", capsys)


def test_kl_missing_mean_is_named(capsys):
    kl_fails_with(lambda m, s, lam: 0.5 * (lam * s**2 - 1 - torch.log(lam * s**2)).sum(), "λ₀μ²", capsys)


def test_kl_precision_read_as_variance_is_named(capsys):
    kl_fails_with(lambda m, s, lam: 0.5 * ((s**2 + m**2) / lam - 1 + torch.log(lam / s**2)).sum(), "*precision*",
                  capsys)


def test_kl_reverse_direction_is_named(capsys):
    kl_fails_with(lambda m, s, lam: 0.5 * ((1 / lam + m**2) / s**2 - 1 + torch.log(lam * s**2)).sum(), "KL(p ‖ q)",
                  capsys)


def test_kl_mean_instead_of_sum_is_named(capsys):
    kl_fails_with(lambda m, s, lam: 0.5 * (lam * (s**2 + m**2) - 1 - torch.log(lam * s**2)).mean(), "do not average",
                  capsys)


def test_kl_per_element_tensor_is_named(capsys):
    assert not ex.check_gaussian_kl(lambda m, s, lam: 0.5 * (lam * (s**2 + m**2) - 1 - torch.log(lam * s**2)))
    assert "sum the per-element terms" in capsys.readouterr().out


def test_kl_stub_and_crash(capsys):
    def stub(m, s, lam):
        raise NotImplementedError

    assert not ex.check_gaussian_kl(stub)
    assert "not implemented yet" in capsys.readouterr().out
    assert not ex.check_gaussian_kl(lambda m, s, lam: lam.log())
    assert "raised AttributeError" in capsys.readouterr().out
