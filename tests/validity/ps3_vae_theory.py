"""Validity catalogue for ps3/vae_theory: alternative correct answers and known mistakes."""

from validity_harness import Catalogue

catalogue = Catalogue(
    "ps3/vae_theory",
    tests={
        "kl_standard_normal": ["test_kl_standard_normal", "test_kl_standard_normal_gradcheck"],
        "reparameterize": ["test_reparameterize", "test_reparameterize_gradients"],
        "kl_monte_carlo": ["test_kl_monte_carlo"],
        "vae_loss": ["test_vae_loss"],
    },
)

# --- kl_standard_normal -----------------------------------------------------------------------


@catalogue.correct
def kl_standard_normal(mu, logvar):
    """Kingma & Welling's form -1/2 sum(1 + logvar - mu^2 - exp(logvar))"""
    import torch

    return -0.5 * torch.sum(1 + logvar - mu**2 - torch.exp(logvar), dim=1)


@catalogue.correct
def kl_standard_normal(mu, logvar):
    """torch.distributions.kl_divergence between Normal distributions"""
    import torch
    from torch.distributions import Normal, kl_divergence

    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return kl_divergence(q, p).sum(dim=-1)


@catalogue.correct
def kl_standard_normal(mu, logvar):
    """through sigma and log(sigma) explicitly"""
    import torch

    sigma = torch.exp(logvar / 2)
    return (0.5 * mu * mu + 0.5 * sigma * sigma - 0.5 - torch.log(sigma)).sum(1)


@catalogue.correct
def kl_standard_normal(mu, logvar):
    """a Python loop over the latent dimensions, adding the one-dimensional KLs"""
    import torch

    total = torch.zeros(mu.shape[0], dtype=mu.dtype)
    for j in range(mu.shape[1]):
        m, lv = mu[:, j], logvar[:, j]
        total = total + 0.5 * (m * m + torch.exp(lv) - 1 - lv)
    return total


@catalogue.wrong("test_kl_standard_normal", "logvar used as log-sigma")
def kl_standard_normal(mu, logvar):
    import torch

    return 0.5 * (mu**2 + torch.exp(2 * logvar) - 1 - 2 * logvar).sum(dim=1)


@catalogue.wrong("test_kl_standard_normal", "exp(logvar) used as sigma")
def kl_standard_normal(mu, logvar):
    import torch

    sigma = torch.exp(logvar)
    return 0.5 * (mu**2 + sigma**2 - 1 - logvar).sum(dim=1)


@catalogue.wrong("test_kl_standard_normal", "standard deviation in place of the variance")
def kl_standard_normal(mu, logvar):
    import torch

    return 0.5 * (mu**2 + torch.exp(0.5 * logvar) - 1 - logvar).sum(dim=1)


@catalogue.wrong("test_kl_standard_normal", "missing 1/2")
def kl_standard_normal(mu, logvar):
    return (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)


@catalogue.wrong("test_kl_standard_normal", "1/2 on the mean term only")
def kl_standard_normal(mu, logvar):
    return (0.5 * mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)


@catalogue.wrong("test_kl_standard_normal", "mean over latent dimensions")
def kl_standard_normal(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).mean(dim=1)


@catalogue.wrong("test_kl_standard_normal", "missing -1")
def kl_standard_normal(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - logvar).sum(dim=1)


@catalogue.wrong("test_kl_standard_normal", "flipped sign of the log term")
def kl_standard_normal(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 + logvar).sum(dim=1)


@catalogue.wrong("test_kl_standard_normal", "sum over the batch too (a scalar)")
def kl_standard_normal(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum()


@catalogue.wrong("test_kl_standard_normal", "mean over the batch (a scalar)")
def kl_standard_normal(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1).mean()


@catalogue.wrong("test_kl_standard_normal", "sums over the batch axis instead of the latent axis")
def kl_standard_normal(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=0)


@catalogue.wrong("test_kl_standard_normal", "no sum at all, shape (N, d)")
def kl_standard_normal(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar)


@catalogue.wrong("test_kl_standard_normal", "forgets the mean term")
def kl_standard_normal(mu, logvar):
    return 0.5 * (logvar.exp() - 1 - logvar).sum(dim=1)


@catalogue.wrong("test_kl_standard_normal_gradcheck", "computed with numpy (no gradient)")
def kl_standard_normal(mu, logvar):
    import numpy as np
    import torch

    m, lv = mu.detach().numpy(), logvar.detach().numpy()
    return torch.from_numpy(0.5 * (m**2 + np.exp(lv) - 1 - lv).sum(axis=1))


@catalogue.wrong("test_kl_standard_normal_gradcheck", "computed in float32")
def kl_standard_normal(mu, logvar):
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)


@catalogue.wrong("test_kl_standard_normal_gradcheck", "computed in float32, cast back to the input dtype")
def kl_standard_normal(mu, logvar):
    kl = 0.5 * (mu.float() ** 2 + logvar.float().exp() - 1 - logvar.float()).sum(dim=1)
    return kl.to(mu.dtype)


@catalogue.wrong("test_kl_standard_normal_gradcheck", "detaches logvar (variance treated as a constant)")
def kl_standard_normal(mu, logvar):
    logvar = logvar.detach()
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)


# --- reparameterize ---------------------------------------------------------------------------


@catalogue.correct
def reparameterize(mu, logvar, generator=None):
    """in-place normal_ on an empty tensor, std from sqrt(exp(logvar))"""
    import torch

    eps = torch.empty_like(mu).normal_(generator=generator)
    return mu + eps * torch.sqrt(torch.exp(logvar))


@catalogue.correct
def reparameterize(mu, logvar, generator=None):
    """noise drawn by torch.normal(0, 1), then moved and scaled"""
    import torch

    eps = torch.normal(torch.zeros_like(mu), torch.ones_like(mu), generator=generator)
    return torch.addcmul(mu, eps, (0.5 * logvar).exp())


@catalogue.correct
def reparameterize(mu, logvar, generator=None):
    """float64 noise on the CPU, moved to mu's dtype and device, exp(logvar)**0.5"""
    import torch

    eps = torch.randn(*mu.shape, generator=generator, dtype=torch.float64).to(mu)
    return mu + logvar.exp() ** 0.5 * eps


@catalogue.correct
def reparameterize(mu, logvar, generator=None):
    """Box-Muller: the noise made from two uniforms per entry, drawn with the generator"""
    import math

    import torch

    u1 = 1 - torch.rand(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)  # (0, 1]: finite log
    u2 = torch.rand(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    eps = torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * math.pi * u2)
    return mu + torch.exp(0.5 * logvar) * eps


@catalogue.wrong("test_reparameterize", "noise drawn on the CPU (no device=): a GPU run fails")
def reparameterize(mu, logvar, generator=None):
    import torch

    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


@catalogue.wrong("test_reparameterize_gradients", "logvar used as log-sigma: sigma = exp(logvar)")
def reparameterize(mu, logvar, generator=None):
    import torch

    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    return mu + torch.exp(logvar) * eps


@catalogue.wrong("test_reparameterize", "exp(logvar) used as sigma (variance too large)")
def reparameterize(mu, logvar, generator=None):
    import torch

    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    return mu + torch.exp(logvar) * eps


@catalogue.wrong("test_reparameterize_gradients", "sigma = exp(logvar) / 2")
def reparameterize(mu, logvar, generator=None):
    import torch

    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    return mu + 0.5 * torch.exp(logvar) * eps


@catalogue.wrong("test_reparameterize", "logvar used as the standard deviation")
def reparameterize(mu, logvar, generator=None):
    import torch

    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    return mu + logvar * eps


@catalogue.wrong("test_reparameterize_gradients", "torch.normal(mu, sigma): zero gradients")
def reparameterize(mu, logvar, generator=None):
    import torch

    return torch.normal(mu, torch.exp(0.5 * logvar), generator=generator)


@catalogue.wrong("test_reparameterize_gradients", "sample drawn under torch.no_grad()")
def reparameterize(mu, logvar, generator=None):
    import torch

    with torch.no_grad():
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps


@catalogue.wrong("test_reparameterize_gradients", "detached sample")
def reparameterize(mu, logvar, generator=None):
    import torch

    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    return (mu + torch.exp(0.5 * logvar) * eps).detach()


@catalogue.wrong("test_reparameterize_gradients", "Normal(mu, sigma).sample() (not rsample)")
def reparameterize(mu, logvar, generator=None):
    import torch

    return torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).sample()


@catalogue.wrong("test_reparameterize", "ignores the generator (global RNG)")
def reparameterize(mu, logvar, generator=None):
    import torch

    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


@catalogue.wrong("test_reparameterize", "Normal(mu, sigma).rsample() cannot take the generator")
def reparameterize(mu, logvar, generator=None):
    import torch

    return torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).rsample()


@catalogue.wrong("test_reparameterize", "one noise vector shared by the whole batch")
def reparameterize(mu, logvar, generator=None):
    import torch

    eps = torch.randn(mu.shape[-1], generator=generator, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


@catalogue.wrong("test_reparameterize", "uniform noise (torch.rand)")
def reparameterize(mu, logvar, generator=None):
    import torch

    eps = torch.rand(mu.shape, generator=generator, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


@catalogue.wrong("test_reparameterize", "returns mu (no noise)")
def reparameterize(mu, logvar, generator=None):
    return mu + 0 * logvar


@catalogue.wrong("test_reparameterize", "float32 noise: loses mu's float64 dtype")
def reparameterize(mu, logvar, generator=None):
    import torch

    eps = torch.randn(mu.shape, generator=generator)
    return (mu + torch.exp(0.5 * logvar) * eps).float()


# --- kl_monte_carlo ---------------------------------------------------------------------------


@catalogue.correct
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    """a Python loop over samples calling reparameterize, with Normal.log_prob"""
    import torch
    from torch.distributions import Normal

    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    total = 0
    for _ in range(n_samples):
        z = reparameterize(mu, logvar, generator=generator)
        total = total + (q.log_prob(z) - p.log_prob(z)).sum(dim=1)
    return total / n_samples


@catalogue.correct
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    """samples on a trailing axis, log-densities written through eps"""
    import torch

    sigma = torch.exp(0.5 * logvar)
    eps = torch.randn(mu.shape + (n_samples,), generator=generator, dtype=mu.dtype)
    z = mu.unsqueeze(-1) + sigma.unsqueeze(-1) * eps
    log_q = -0.5 * ((z - mu.unsqueeze(-1)) / sigma.unsqueeze(-1)) ** 2 - torch.log(sigma).unsqueeze(-1)
    log_p = -0.5 * z**2
    return (log_q - log_p).mean(dim=-1).sum(dim=-1)


@catalogue.correct
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    """repeat the batch n_samples times and average with view"""
    import math

    n, d = mu.shape
    z = reparameterize(mu.repeat(n_samples, 1), logvar.repeat(n_samples, 1), generator=generator)
    mu_r, lv_r = mu.repeat(n_samples, 1), logvar.repeat(n_samples, 1)
    log_q = -0.5 * math.log(2 * math.pi) - 0.5 * lv_r - 0.5 * (z - mu_r) ** 2 * (-lv_r).exp()
    log_p = -0.5 * math.log(2 * math.pi) - 0.5 * z**2
    return (log_q - log_p).sum(dim=1).view(n_samples, n).mean(dim=0)


@catalogue.correct
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    """log-densities of whole codes from MultivariateNormal with a diagonal scale_tril"""
    import torch
    from torch.distributions import MultivariateNormal

    shape = (n_samples, *mu.shape)
    z = reparameterize(mu.expand(shape), logvar.expand(shape), generator=generator)  # noqa: F821
    q = MultivariateNormal(mu, scale_tril=torch.diag_embed(torch.exp(0.5 * logvar)))
    d = mu.shape[-1]
    p = MultivariateNormal(torch.zeros(d, dtype=mu.dtype), scale_tril=torch.eye(d, dtype=mu.dtype))
    return (q.log_prob(z) - p.log_prob(z)).mean(dim=0)


@catalogue.wrong("test_kl_monte_carlo", "mean over latent dimensions")
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    import torch

    sigma = torch.exp(0.5 * logvar)
    eps = torch.randn((n_samples,) + tuple(mu.shape), generator=generator, dtype=mu.dtype)
    z = mu + sigma * eps
    log_q = -0.5 * eps**2 - torch.log(sigma)
    log_p = -0.5 * z**2
    return (log_q - log_p).mean(dim=-1).mean(dim=0)


@catalogue.wrong("test_kl_monte_carlo", "returns the closed form (no sampling)")
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(dim=1)


@catalogue.wrong("test_kl_monte_carlo", "ignores n_samples (one sample)")
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    import torch

    sigma = torch.exp(0.5 * logvar)
    z = mu + sigma * torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    log_q = -0.5 * ((z - mu) / sigma) ** 2 - torch.log(sigma)
    return (log_q + 0.5 * z**2).sum(dim=1)


@catalogue.wrong("test_kl_monte_carlo", "ignores the generator (global RNG)")
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    import torch

    sigma = torch.exp(0.5 * logvar)
    z = mu + sigma * torch.randn((n_samples,) + tuple(mu.shape), dtype=mu.dtype)
    log_q = -0.5 * ((z - mu) / sigma) ** 2 - torch.log(sigma)
    return (log_q + 0.5 * z**2).sum(dim=-1).mean(dim=0)


@catalogue.wrong("test_kl_monte_carlo", "torch.normal samples: zero gradients")
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    import torch

    sigma = torch.exp(0.5 * logvar)
    z = torch.normal(mu.expand(n_samples, *mu.shape), sigma.expand(n_samples, *mu.shape), generator=generator)
    log_q = -0.5 * ((z - mu) / sigma) ** 2 - torch.log(sigma)
    return (log_q + 0.5 * z**2).sum(dim=-1).mean(dim=0)


@catalogue.wrong("test_kl_monte_carlo", "detached samples (gradient only through log q's parameters)")
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    import torch

    sigma = torch.exp(0.5 * logvar)
    eps = torch.randn((n_samples,) + tuple(mu.shape), generator=generator, dtype=mu.dtype)
    z = (mu + sigma * eps).detach()
    log_q = -0.5 * ((z - mu) / sigma) ** 2 - torch.log(sigma)
    return (log_q + 0.5 * z**2).sum(dim=-1).mean(dim=0)


@catalogue.wrong("test_kl_monte_carlo", "whole computation under torch.no_grad()")
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    import torch

    with torch.no_grad():
        sigma = torch.exp(0.5 * logvar)
        eps = torch.randn((n_samples,) + tuple(mu.shape), generator=generator, dtype=mu.dtype)
        z = mu + sigma * eps
        return (-0.5 * eps**2 - torch.log(sigma) + 0.5 * z**2).sum(dim=-1).mean(dim=0)


@catalogue.wrong("test_kl_monte_carlo", "flipped sign: log p - log q")
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    import torch

    sigma = torch.exp(0.5 * logvar)
    eps = torch.randn((n_samples,) + tuple(mu.shape), generator=generator, dtype=mu.dtype)
    z = mu + sigma * eps
    return (-0.5 * z**2 + 0.5 * eps**2 + torch.log(sigma)).sum(dim=-1).mean(dim=0)


@catalogue.wrong("test_kl_monte_carlo", "sums over samples instead of averaging")
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    import torch

    sigma = torch.exp(0.5 * logvar)
    eps = torch.randn((n_samples,) + tuple(mu.shape), generator=generator, dtype=mu.dtype)
    z = mu + sigma * eps
    return (-0.5 * eps**2 - torch.log(sigma) + 0.5 * z**2).sum(dim=-1).sum(dim=0)


@catalogue.wrong("test_kl_monte_carlo", "log q without the log-sigma normaliser")
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    import torch

    sigma = torch.exp(0.5 * logvar)
    eps = torch.randn((n_samples,) + tuple(mu.shape), generator=generator, dtype=mu.dtype)
    z = mu + sigma * eps
    return (-0.5 * eps**2 + 0.5 * z**2).sum(dim=-1).mean(dim=0)


@catalogue.wrong("test_kl_monte_carlo", "samples with sigma = exp(logvar)")
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    import torch

    sigma = torch.exp(logvar)
    eps = torch.randn((n_samples,) + tuple(mu.shape), generator=generator, dtype=mu.dtype)
    z = mu + sigma * eps
    log_q = -0.5 * ((z - mu) / torch.exp(0.5 * logvar)) ** 2 - 0.5 * logvar
    return (log_q + 0.5 * z**2).sum(dim=-1).mean(dim=0)


@catalogue.wrong("test_kl_monte_carlo", "no sum over latent dimensions, shape (N, d)")
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    import torch

    sigma = torch.exp(0.5 * logvar)
    eps = torch.randn((n_samples,) + tuple(mu.shape), generator=generator, dtype=mu.dtype)
    z = mu + sigma * eps
    return (-0.5 * eps**2 - torch.log(sigma) + 0.5 * z**2).mean(dim=0)


# --- vae_loss ---------------------------------------------------------------------------------


@catalogue.correct
def vae_loss(x, logits, mu, logvar, beta=1.0):
    """reduction='sum' divided by the batch size, Kingma's KL inline"""
    import torch
    import torch.nn.functional as F

    n = x.shape[0]
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / n
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / n
    return reconstruction + beta * kl, reconstruction, kl


@catalogue.correct
def vae_loss(x, logits, mu, logvar, beta=1.0):
    """explicit log-sigmoid formula, flatten(1)"""
    import torch.nn.functional as F

    log_p = F.logsigmoid(logits)
    log_1mp = F.logsigmoid(-logits)
    nll = -(x * log_p + (1 - x) * log_1mp)
    reconstruction = nll.flatten(1).sum(1).mean()
    kl = kl_standard_normal(mu, logvar).mean()
    total = reconstruction + beta * kl
    return (total, reconstruction, kl)


@catalogue.correct
def vae_loss(x, logits, mu, logvar, beta=1.0):
    """Bernoulli(logits=...).log_prob, validation off for grey levels"""
    from torch.distributions import Bernoulli

    reconstruction = (
        -Bernoulli(logits=logits, validate_args=False).log_prob(x).reshape(len(x), -1).sum(-1).mean()
    )
    kl = kl_standard_normal(mu, logvar).mean()
    return reconstruction + beta * kl, reconstruction, kl


@catalogue.correct
def vae_loss(x, logits, mu, logvar, beta=1.0):
    """a Python loop over the images, and kl_divergence from torch.distributions"""
    import torch
    import torch.nn.functional as F
    from torch.distributions import Normal, kl_divergence

    n = x.shape[0]
    per_image = [
        F.binary_cross_entropy_with_logits(image_logits, image, reduction="sum")
        for image, image_logits in zip(x, logits, strict=True)
    ]
    reconstruction = sum(per_image) / n
    prior = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), prior).sum() / n
    return reconstruction + beta * kl, reconstruction, kl


@catalogue.wrong("test_vae_loss", "sums over the batch instead of averaging")
def vae_loss(x, logits, mu, logvar, beta=1.0):
    import torch.nn.functional as F

    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = kl_standard_normal(mu, logvar).sum()
    return reconstruction + beta * kl, reconstruction, kl


@catalogue.wrong("test_vae_loss", "mean over pixels (default reduction)")
def vae_loss(x, logits, mu, logvar, beta=1.0):
    import torch.nn.functional as F

    reconstruction = F.binary_cross_entropy_with_logits(logits, x)
    kl = kl_standard_normal(mu, logvar).mean()
    return reconstruction + beta * kl, reconstruction, kl


@catalogue.wrong("test_vae_loss", "KL averaged over latent dimensions")
def vae_loss(x, logits, mu, logvar, beta=1.0):
    import torch.nn.functional as F

    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).mean()
    return reconstruction + beta * kl, reconstruction, kl


@catalogue.wrong("test_vae_loss", "beta weights the reconstruction")
def vae_loss(x, logits, mu, logvar, beta=1.0):
    import torch.nn.functional as F

    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
    kl = kl_standard_normal(mu, logvar).mean()
    return beta * reconstruction + kl, reconstruction, kl


@catalogue.wrong("test_vae_loss", "returns beta * kl as kl")
def vae_loss(x, logits, mu, logvar, beta=1.0):
    import torch.nn.functional as F

    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
    kl = beta * kl_standard_normal(mu, logvar).mean()
    return reconstruction + kl, reconstruction, kl


@catalogue.wrong("test_vae_loss", "subtracts the KL")
def vae_loss(x, logits, mu, logvar, beta=1.0):
    import torch.nn.functional as F

    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
    kl = kl_standard_normal(mu, logvar).mean()
    return reconstruction - beta * kl, reconstruction, kl


@catalogue.wrong("test_vae_loss", "squared error on the sigmoid instead of cross-entropy")
def vae_loss(x, logits, mu, logvar, beta=1.0):
    import torch

    reconstruction = ((torch.sigmoid(logits) - x) ** 2).reshape(len(x), -1).sum(1).mean()
    kl = kl_standard_normal(mu, logvar).mean()
    return reconstruction + beta * kl, reconstruction, kl


@catalogue.wrong("test_vae_loss", "sigmoid applied before binary_cross_entropy_with_logits")
def vae_loss(x, logits, mu, logvar, beta=1.0):
    import torch
    import torch.nn.functional as F

    per_image = F.binary_cross_entropy_with_logits(torch.sigmoid(logits), x, reduction="none")
    reconstruction = per_image.reshape(len(x), -1).sum(1).mean()
    kl = kl_standard_normal(mu, logvar).mean()
    return reconstruction + beta * kl, reconstruction, kl


@catalogue.wrong("test_vae_loss", "x and logits swapped")
def vae_loss(x, logits, mu, logvar, beta=1.0):
    import torch
    import torch.nn.functional as F

    per_image = F.binary_cross_entropy_with_logits(x, torch.sigmoid(logits), reduction="none")
    reconstruction = per_image.reshape(len(x), -1).sum(1).mean()
    kl = kl_standard_normal(mu, logvar).mean()
    return reconstruction + beta * kl, reconstruction, kl


@catalogue.wrong("test_vae_loss", "losses returned as Python floats (.item())")
def vae_loss(x, logits, mu, logvar, beta=1.0):
    import torch.nn.functional as F

    reconstruction = (F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]).item()
    kl = kl_standard_normal(mu, logvar).mean().item()
    return reconstruction + beta * kl, reconstruction, kl


@catalogue.wrong("test_vae_loss", "per-image losses, no batch mean (shape (N,))")
def vae_loss(x, logits, mu, logvar, beta=1.0):
    import torch.nn.functional as F

    reconstruction = (
        F.binary_cross_entropy_with_logits(logits, x, reduction="none").reshape(len(x), -1).sum(1)
    )
    kl = kl_standard_normal(mu, logvar)
    return reconstruction + beta * kl, reconstruction, kl


@catalogue.wrong("test_vae_loss", "KL computed on detached encoder outputs")
def vae_loss(x, logits, mu, logvar, beta=1.0):
    import torch.nn.functional as F

    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
    kl = kl_standard_normal(mu.detach(), logvar.detach()).mean()
    return reconstruction + beta * kl, reconstruction, kl
