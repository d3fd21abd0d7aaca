"""Validity catalogue for ps3/vae_models: alternative correct answers and known mistakes."""

import textwrap
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from validity_harness import Catalogue, Variant, variant_source

catalogue = Catalogue(
    "ps3/vae_models",
    tests={
        "GaussianEncoder": ["test_GaussianEncoder"],
        "VAE": ["test_VAE_forward"],
        "negative_elbo": ["test_negative_elbo"],
        "gaussian_cnn_cifar10": [
            "test_gaussian_cnn_cifar10_shapes",
            "test_gaussian_cnn_cifar10_params",
            "test_gaussian_cnn_cifar10_behaviour",
        ],
        "keras_cifar_vae": ["test_keras_cifar_vae_layers", "test_keras_cifar_vae_behaviour"],
    },
    # load_part1 runs part 1's answers (reparameterize, vae_loss), found where grading puts the
    # student's submission: here, the instructor's part 1.
    setup=["imports", "load_part1"],
    environment={"CONVAE_SUBMISSION_DIR": str(Path(__file__).resolve().parents[2] / "source" / "ps3")},
)


# --- GaussianEncoder ----------------------------------------------------------------------------


@catalogue.correct
class GaussianEncoder(nn.Module):
    """heads applied in a loop, features flattened once more"""

    def __init__(self, features, feature_dim, latent_dim):
        super().__init__()
        self.features = features
        self.mu = nn.Linear(in_features=feature_dim, out_features=latent_dim, bias=True)
        self.logvar = nn.Linear(in_features=feature_dim, out_features=latent_dim, bias=True)

    def forward(self, x):
        h = self.features(x).flatten(1)
        return tuple(head(h) for head in (self.mu, self.logvar))


@catalogue.correct
class GaussianEncoder(nn.Module):
    """heads as F.linear on their own parameters"""

    def __init__(self, features, feature_dim, latent_dim):
        super().__init__()
        self.features = features
        self.mu, self.logvar = nn.Linear(feature_dim, latent_dim), nn.Linear(feature_dim, latent_dim)

    def forward(self, x):
        h = self.features(x)
        mu = torch.nn.functional.linear(h, self.mu.weight, self.mu.bias)
        logvar = torch.nn.functional.linear(h, self.logvar.weight, self.logvar.bias)
        return mu, logvar


@catalogue.correct
class GaussianEncoder(nn.Module):
    """heads as matrix products with their weights, h @ W.T + b (the heads never called as modules)"""

    def __init__(self, features, feature_dim, latent_dim):
        super().__init__()
        self.features = features
        self.mu = nn.Linear(feature_dim, latent_dim)
        self.logvar = nn.Linear(feature_dim, latent_dim)

    def forward(self, x):
        h = self.features(x)
        return h @ self.mu.weight.T + self.mu.bias, h @ self.logvar.weight.T + self.logvar.bias


@catalogue.correct
class GaussianEncoder(nn.Module):
    """both heads in one einsum over their stacked weights"""

    def __init__(self, features, feature_dim, latent_dim):
        super().__init__()
        self.features = features
        self.mu = nn.Linear(feature_dim, latent_dim)
        self.logvar = nn.Linear(feature_dim, latent_dim)

    def forward(self, x):
        h = self.features(x)
        weights = torch.stack([self.mu.weight, self.logvar.weight])
        biases = torch.stack([self.mu.bias, self.logvar.bias])
        out = torch.einsum("nf,hlf->hnl", h, weights) + biases[:, None, :]
        return out[0], out[1]


ENCODER_TEMPLATE = """
class GaussianEncoder(nn.Module):
    def __init__(self, features, feature_dim, latent_dim):
        super().__init__()
        self.features = features
        self.mu = nn.Linear(feature_dim, latent_dim)
        LOGVAR_HEAD

    def forward(self, x):
        h = self.features(x)
        RETURN
"""


def _encoder_mistake(
    label: str, returned: str, logvar_head: str = "self.logvar = nn.Linear(feature_dim, latent_dim)"
):
    """A GaussianEncoder that is the notebook's but for its logvar head and what forward returns."""
    source = ENCODER_TEMPLATE.replace("LOGVAR_HEAD", logvar_head).replace("RETURN", f"return {returned}")
    catalogue.wrong_variants.append(Variant("GaussianEncoder", label, source, "test_GaussianEncoder"))


_encoder_mistake("a ReLU after the heads", "torch.relu(self.mu(h)), torch.relu(self.logvar(h))")
_encoder_mistake(
    "returns the variance exp(logvar) instead of its log", "self.mu(h), torch.exp(self.logvar(h))"
)
_encoder_mistake(
    "one head for both outputs", "self.mu(h), self.logvar(h)", logvar_head="self.logvar = self.mu"
)
_encoder_mistake(
    "heads on the raw input, features never called", "self.mu(x.flatten(1)), self.logvar(x.flatten(1))"
)
_encoder_mistake("(logvar, mu) in the wrong order", "self.logvar(h), self.mu(h)")
_encoder_mistake(
    "the logvar head without a bias",
    "self.mu(h), self.logvar(h)",
    logvar_head="self.logvar = nn.Linear(feature_dim, latent_dim, bias=False)",
)


# --- VAE.forward --------------------------------------------------------------------------------


def _vae_with_forward(forward_body: str, label: str, must_fail: str | None = None):
    """Register a VAE whose forward has ``forward_body``; the rest of the class is the notebook's."""
    source = VAE_TEMPLATE.replace(
        "        FORWARD\n", textwrap.indent(textwrap.dedent(forward_body), " " * 8)
    )
    variants = catalogue.correct_variants if must_fail is None else catalogue.wrong_variants
    variants.append(Variant("VAE", label, source, must_fail))


VAE_TEMPLATE = """
class VAE(nn.Module):
    def __init__(self, encoder, decoder, latent_dim):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = latent_dim

    def forward(self, x):
        FORWARD

    @torch.no_grad()
    def reconstruct(self, x):
        return torch.sigmoid(self.decoder(self.encoder(x)[0]))

    @torch.no_grad()
    def sample(self, n, generator=None):
        return torch.sigmoid(self.decoder(torch.randn(n, self.latent_dim, generator=generator)))
"""

_vae_with_forward(
    """
    mu, logvar = self.encoder(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    return self.decoder(z), mu, logvar
    """,
    "the sample written out with randn_like",
)
_vae_with_forward(
    """
    mu, logvar = self.encoder(x)
    z = torch.distributions.Normal(mu, (0.5 * logvar).exp()).rsample()
    logits = self.decoder(z)
    return logits, mu, logvar
    """,
    "Normal(mu, sigma).rsample()",
)
_vae_with_forward(
    """
    mu, logvar = self.encoder(x)
    eps = torch.empty_like(mu).normal_()
    return self.decoder(torch.addcmul(mu, torch.exp(0.5 * logvar), eps)), mu, logvar
    """,
    "the sample by torch.addcmul, noise from Tensor.normal_",
)
_vae_with_forward(
    """
    mu, logvar = self.encoder(x)
    return self.decoder(mu), mu, logvar
    """,
    "decodes mu: no sampling",
    "test_VAE_forward",
)
_vae_with_forward(
    """
    mu, logvar = self.encoder(x)
    z = mu + torch.exp(logvar) * torch.randn_like(mu)
    return self.decoder(z), mu, logvar
    """,
    "exp(logvar) taken as the standard deviation",
    "test_VAE_forward",
)
_vae_with_forward(
    """
    mu, logvar = self.encoder(x)
    z = reparameterize(mu, torch.exp(0.5 * logvar))
    return self.decoder(z), mu, logvar
    """,
    "hands reparameterize the standard deviation instead of logvar",
    "test_VAE_forward",
)
_vae_with_forward(
    """
    mu, logvar = self.encoder(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(1, mu.shape[1])
    return self.decoder(z), mu, logvar
    """,
    "one noise vector for the whole batch",
    "test_VAE_forward",
)
_vae_with_forward(
    """
    mu, logvar = self.encoder(x)
    z = reparameterize(mu, logvar).detach()
    return self.decoder(z), mu, logvar
    """,
    "a detached sample: no gradient reaches the heads through z",
    "test_VAE_forward",
)
_vae_with_forward(
    """
    mu, logvar = self.encoder(x)
    z = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).sample()
    return self.decoder(z), mu, logvar
    """,
    "Normal(mu, sigma).sample(), which is not reparameterised",
    "test_VAE_forward",
)


# --- negative_elbo ------------------------------------------------------------------------------


@catalogue.correct
def negative_elbo(model, x, beta=1.0):
    """the terms unpacked and put back together"""
    logits, mu, logvar = model(x)
    total, reconstruction, kl = vae_loss(x, logits, mu, logvar, beta)  # noqa: F821
    return total, reconstruction, kl


@catalogue.correct
def negative_elbo(model, x, beta=1.0):
    """the loss written out without vae_loss"""
    logits, mu, logvar = model(x)
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum() / len(x)
    return reconstruction + beta * kl, reconstruction, kl


@catalogue.correct
def negative_elbo(model, x, beta=1.0):
    """torch.distributions: the Bernoulli log-likelihood and kl_divergence to the prior"""
    from torch.distributions import Bernoulli, Normal, kl_divergence

    logits, mu, logvar = model(x)
    log_likelihood = Bernoulli(logits=logits, validate_args=False).log_prob(x).reshape(len(x), -1).sum(1)
    prior = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), prior).sum(1)
    reconstruction, kl = -log_likelihood.mean(), kl.mean()
    return reconstruction + beta * kl, reconstruction, kl


@catalogue.wrong("test_negative_elbo", "beta not passed on")
def negative_elbo(model, x, beta=1.0):
    logits, mu, logvar = model(x)
    return vae_loss(x, logits, mu, logvar)  # noqa: F821 -- part 1 of the notebook


@catalogue.wrong("test_negative_elbo", "the model run twice, so mu and the logits come from different passes")
def negative_elbo(model, x, beta=1.0):
    logits = model(x)[0]
    _, mu, logvar = model(x)
    return vae_loss(x, logits, mu, logvar, beta)  # noqa: F821 -- part 1 of the notebook


@catalogue.wrong("test_negative_elbo", "only the total returned")
def negative_elbo(model, x, beta=1.0):
    logits, mu, logvar = model(x)
    return vae_loss(x, logits, mu, logvar, beta)[0]  # noqa: F821


@catalogue.wrong("test_negative_elbo", "summed over the batch instead of averaged")
def negative_elbo(model, x, beta=1.0):
    logits, mu, logvar = model(x)
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum()
    return reconstruction + beta * kl, reconstruction, kl


@catalogue.wrong("test_negative_elbo", "sigmoid applied before a loss that expects logits")
def negative_elbo(model, x, beta=1.0):
    logits, mu, logvar = model(x)
    return vae_loss(x, torch.sigmoid(logits), mu, logvar, beta)  # noqa: F821 -- part 1 of the notebook


# --- correct alternatives ---------------------------------------------------------------------


@catalogue.correct
def gaussian_cnn_cifar10(latent_dim=16):
    """explicit module classes with functional ReLUs and view()"""
    import torch.nn.functional as F
    from torch import nn

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 32, kernel_size=3, stride=2, padding=1)
            self.conv2 = nn.Conv2d(32, 64, kernel_size=3, stride=2, padding=1)
            self.conv3 = nn.Conv2d(64, 128, kernel_size=3, stride=2, padding=1)
            self.fc_mu = nn.Linear(2048, latent_dim)
            self.fc_logvar = nn.Linear(2048, latent_dim)

        def forward(self, x):
            h = F.relu(self.conv3(F.relu(self.conv2(F.relu(self.conv1(x))))))
            h = h.view(h.size(0), -1)
            return self.fc_mu(h), self.fc_logvar(h)

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(latent_dim, 2048)
            self.up1 = nn.ConvTranspose2d(128, 64, 3, 2, 1, 1)
            self.up2 = nn.ConvTranspose2d(64, 32, 3, 2, 1, 1)
            self.up3 = nn.ConvTranspose2d(32, 3, 3, 2, 1, 1)

        def forward(self, z):
            h = F.relu(self.fc(z)).view(-1, 128, 4, 4)
            return self.up3(F.relu(self.up2(F.relu(self.up1(h)))))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = Encoder()
            self.decoder = Decoder()

    return Model()


@catalogue.correct
def gaussian_cnn_cifar10(latent_dim=16):
    """built in a loop, LeakyReLU, logvar head called first, VAE wrapper"""
    from torch import nn

    layers, channels = [], [3, 32, 64, 128]
    for c_in, c_out in zip(channels, channels[1:], strict=False):
        layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.1)]

    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(*layers, nn.Flatten())
            self.heads = nn.ModuleDict(
                {"mu": nn.Linear(2048, latent_dim), "logvar": nn.Linear(2048, latent_dim)}
            )

        def forward(self, x):
            h = self.body(x)
            logvar = self.heads["logvar"](h)
            return self.heads["mu"](h), logvar

    up = []
    for c_in, c_out in zip(channels[::-1], channels[::-1][1:], strict=False):
        up += [nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1), nn.LeakyReLU(0.1)]
    decoder = nn.Sequential(
        nn.Linear(latent_dim, 2048), nn.LeakyReLU(0.1), nn.Unflatten(1, (128, 4, 4)), *up[:-1]
    )
    return VAE(TwoHeads(), decoder, latent_dim)  # noqa: F821 -- defined by the notebook


@catalogue.correct
def gaussian_cnn_cifar10(latent_dim=16):
    """GaussianEncoder with ELU activations and a reshape module of its own"""
    from torch import nn

    class Reshape(nn.Module):
        def forward(self, x):
            return x.reshape(len(x), 128, 4, 4)

    features = nn.Sequential(
        nn.Conv2d(3, 32, (3, 3), (2, 2), (1, 1)),
        nn.ELU(),
        nn.Conv2d(32, 64, (3, 3), (2, 2), (1, 1)),
        nn.ELU(),
        nn.Conv2d(64, 128, (3, 3), (2, 2), (1, 1)),
        nn.ELU(),
        nn.Flatten(start_dim=1),
    )
    decoder = nn.Sequential(
        nn.Linear(latent_dim, 128 * 16),
        nn.ELU(),
        Reshape(),
        nn.ConvTranspose2d(128, 64, (3, 3), (2, 2), (1, 1), (1, 1)),
        nn.ELU(),
        nn.ConvTranspose2d(64, 32, (3, 3), (2, 2), (1, 1), (1, 1)),
        nn.ELU(),
        nn.ConvTranspose2d(32, 3, (3, 3), (2, 2), (1, 1), (1, 1)),
    )
    return VAE(GaussianEncoder(features, 2048, latent_dim), decoder, latent_dim)  # noqa: F821


@catalogue.correct
def gaussian_cnn_cifar10(latent_dim=16):
    """the table's layers as modules, forward computing with their weights (F.conv2d, addmm, F.linear)"""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            pairs = ((3, 32), (32, 64), (64, 128))
            self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in pairs)
            self.mu = nn.Linear(2048, latent_dim)
            self.logvar = nn.Linear(2048, latent_dim)

        def forward(self, x):
            for conv in self.convs:
                x = F.relu(F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1))
            h = x.flatten(1)
            mu = torch.addmm(self.mu.bias, h, self.mu.weight.T)
            return mu, F.linear(h, self.logvar.weight, self.logvar.bias)

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(latent_dim, 2048)
            pairs = ((128, 64), (64, 32), (32, 3))
            self.ups = nn.ModuleList(
                nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1) for a, b in pairs
            )

        def forward(self, z):
            x = F.relu(F.linear(z, self.fc.weight, self.fc.bias)).view(-1, 128, 4, 4)
            for index, up in enumerate(self.ups):
                x = F.conv_transpose2d(x, up.weight, up.bias, stride=2, padding=1, output_padding=1)
                x = F.relu(x) if index < len(self.ups) - 1 else x
            return x

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = Encoder(), Decoder()

    return Model()


# --- mistakes ---------------------------------------------------------------------------------


def _reference(
    latent_dim=16,
    kernel=3,
    output_padding=1,
    bias=True,
    act=None,
    final=None,
    head_act=None,
    norm=False,
    up_kind="transposed",
):
    """The reference architecture with one knob turned: the mistakes below are built from it."""
    from torch import nn

    act = nn.ReLU if act is None else act
    padding = 1

    def a():
        return act() if act is not False else nn.Identity()

    enc = []
    for c_in, c_out in ((3, 32), (32, 64), (64, 128)):
        enc.append(nn.Conv2d(c_in, c_out, kernel, stride=2, padding=padding, bias=bias))
        if norm:
            enc.append(nn.BatchNorm2d(c_out))
        enc.append(a())
    features = nn.Sequential(*enc, nn.Flatten())

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = features
            self.mu = nn.Linear(2048, latent_dim)
            self.logvar = nn.Linear(2048, latent_dim)

        def forward(self, x):
            h = self.features(x)
            logvar = self.logvar(h)
            return self.mu(h), head_act()(logvar) if head_act else logvar

    dec = [nn.Linear(latent_dim, 2048), a(), nn.Unflatten(1, (128, 4, 4))]
    for c_in, c_out in ((128, 64), (64, 32), (32, 3)):
        if up_kind == "transposed":
            dec.append(nn.ConvTranspose2d(c_in, c_out, kernel, 2, padding, output_padding, bias=bias))
        else:
            dec += [nn.Upsample(scale_factor=2), nn.Conv2d(c_in, c_out, kernel, padding=1, bias=bias)]
        dec.append(a())
    dec = dec[:-1]
    if final is not None:
        dec.append(final())

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = Encoder()
            self.decoder = nn.Sequential(*dec)

    return Model()


def wrong_from_reference(must_fail, label):
    """Like ``catalogue.wrong``, with ``_reference``'s source put before the mistake's."""

    def register(obj):
        source = variant_source(_reference) + "\n\n" + variant_source(obj)
        catalogue.wrong_variants.append(Variant(obj.__name__, label, source, must_fail))
        return obj

    return register


@wrong_from_reference("test_gaussian_cnn_cifar10_shapes", "no output_padding: 25x25 outputs")
def gaussian_cnn_cifar10(latent_dim=16):
    return _reference(latent_dim, output_padding=0)


@wrong_from_reference("test_gaussian_cnn_cifar10_shapes", "latent size hard-coded to 16")
def gaussian_cnn_cifar10(latent_dim=16):
    return _reference(16)


@wrong_from_reference("test_gaussian_cnn_cifar10_shapes", "one head of 2*latent_dim outputs split in two")
def gaussian_cnn_cifar10(latent_dim=16):
    from torch import nn

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
                nn.Conv2d(64, 128, 3, 2, 1), nn.ReLU(), nn.Flatten(),
            )  # fmt: skip
            self.head = nn.Linear(2048, 2 * latent_dim)

        def forward(self, x):
            return self.head(self.features(x)).chunk(2, dim=1)

    model = _reference(latent_dim)
    model.encoder = Encoder()
    return model


@wrong_from_reference("test_gaussian_cnn_cifar10_shapes", "upsample + conv instead of transposed conv")
def gaussian_cnn_cifar10(latent_dim=16):
    return _reference(latent_dim, up_kind="upsample")


@wrong_from_reference("test_gaussian_cnn_cifar10_shapes", "decoder output channels-last (N, 32, 32, 3)")
def gaussian_cnn_cifar10(latent_dim=16):
    from torch import nn

    model = _reference(latent_dim)

    class ChannelsLast(nn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1)

    model.decoder.append(ChannelsLast())
    return model


@wrong_from_reference("test_gaussian_cnn_cifar10_shapes", "encoder returns z = mu only, not the pair")
def gaussian_cnn_cifar10(latent_dim=16):
    from torch import nn

    model = _reference(latent_dim)
    inner = model.encoder

    class MuOnly(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x)[0]

    model.encoder = MuOnly()
    return model


@wrong_from_reference("test_gaussian_cnn_cifar10_params", "4x4 kernels: right shapes, wrong counts")
def gaussian_cnn_cifar10(latent_dim=16):
    return _reference(latent_dim, kernel=4, output_padding=0)


@wrong_from_reference("test_gaussian_cnn_cifar10_params", "convolutions without bias")
def gaussian_cnn_cifar10(latent_dim=16):
    return _reference(latent_dim, bias=False)


@wrong_from_reference("test_gaussian_cnn_cifar10_params", "batch normalisation after each convolution")
def gaussian_cnn_cifar10(latent_dim=16):
    return _reference(latent_dim, norm=True)


@wrong_from_reference("test_gaussian_cnn_cifar10_params", "one head used for both mu and logvar")
def gaussian_cnn_cifar10(latent_dim=16):
    from torch import nn

    model = _reference(latent_dim)
    features, head = model.encoder.features, model.encoder.mu

    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.features, self.head = features, head

        def forward(self, x):
            h = self.features(x)
            return self.head(h), self.head(h)

    model.encoder = Shared()
    return model


@wrong_from_reference("test_gaussian_cnn_cifar10_params", "an extra parameter outside encoder and decoder")
def gaussian_cnn_cifar10(latent_dim=16):
    import torch
    from torch import nn

    model = _reference(latent_dim)
    model.log_scale = nn.Parameter(torch.zeros(1))
    return model


@wrong_from_reference("test_gaussian_cnn_cifar10_behaviour", "no activations: the whole model is linear")
def gaussian_cnn_cifar10(latent_dim=16):
    return _reference(latent_dim, act=False)


@wrong_from_reference("test_gaussian_cnn_cifar10_behaviour", "a sigmoid at the end of the decoder")
def gaussian_cnn_cifar10(latent_dim=16):
    from torch import nn

    return _reference(latent_dim, final=nn.Sigmoid)


@wrong_from_reference("test_gaussian_cnn_cifar10_behaviour", "a ReLU after the logvar head")
def gaussian_cnn_cifar10(latent_dim=16):
    from torch import nn

    return _reference(latent_dim, head_act=nn.ReLU)


@wrong_from_reference("test_gaussian_cnn_cifar10_behaviour", "standardises each batch (no parameters)")
def gaussian_cnn_cifar10(latent_dim=16):
    from torch import nn

    class BatchStandardise(nn.Module):
        def forward(self, x):
            return (x - x.mean(0, keepdim=True)) / (x.std(0, keepdim=True) + 1e-5)

    model = _reference(latent_dim)
    model.encoder.features.insert(0, BatchStandardise())
    return model


# --- keras_cifar_vae ----------------------------------------------------------------------------


@catalogue.correct
def keras_cifar_vae(latent_dim=2):
    """modules of its own, functional pooling and nearest-neighbour interpolation"""

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            widths = [3, 512, 256, 128, 64, 32, 16, 8]
            self.convs = nn.ModuleList(
                nn.Conv2d(a, b, 3, padding="same") for a, b in zip(widths, widths[1:], strict=False)
            )
            self.z_mean = nn.Linear(8, latent_dim)
            self.z_log_var = nn.Linear(8, latent_dim)

        def forward(self, x):
            for index, conv in enumerate(self.convs):
                x = F.relu(conv(x))
                if index < 5:
                    x = F.max_pool2d(x, 2)
            h = x.reshape(len(x), 8)
            return self.z_mean(h), self.z_log_var(h)

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.Linear(latent_dim, 8)
            widths = [8, 8, 16, 32, 64, 128, 3]
            self.ups = nn.ModuleList(
                nn.ConvTranspose2d(a, b, 3, 1, 1) for a, b in zip(widths, widths[1:], strict=False)
            )

        def forward(self, z):
            x = F.relu(self.dense(z)).view(-1, 8, 1, 1)
            for up in self.ups[:-1]:
                x = F.interpolate(F.relu(up(x)), scale_factor=2, mode="nearest")
            return self.ups[-1](x)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = Encoder(), Decoder()

    return Model()


@catalogue.correct
def keras_cifar_vae(latent_dim=2):
    """one flat list per stage, upsampling before the ReLU"""
    enc = [
        nn.Conv2d(3, 512, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(512, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(256, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(128, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(),
        nn.Flatten(),
    ]  # fmt: skip
    dec = [nn.Linear(latent_dim, 8), nn.ReLU(), nn.Unflatten(1, (8, 1, 1))]
    for a, b in ((8, 8), (8, 16), (16, 32), (32, 64), (64, 128)):
        dec += [
            nn.ConvTranspose2d(a, b, kernel_size=3, padding=1),
            nn.UpsamplingNearest2d(scale_factor=2),
            nn.ReLU(),
        ]
    dec.append(nn.ConvTranspose2d(128, 3, kernel_size=3, padding=1))
    return VAE(GaussianEncoder(nn.Sequential(*enc), 8, latent_dim), nn.Sequential(*dec), latent_dim)  # noqa: F821


@catalogue.correct
def keras_cifar_vae(latent_dim=2):
    """the Dense layers as matrix products with their weights, the convolutions called as modules"""

    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            layers = []
            for c_in, c_out in ((3, 512), (512, 256), (256, 128), (128, 64), (64, 32)):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            layers += [nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 8, 3, padding=1), nn.ReLU()]
            self.convs = nn.Sequential(*layers)
            self.z_mean, self.z_log_var = nn.Linear(8, latent_dim), nn.Linear(8, latent_dim)

        def forward(self, x):
            h = self.convs(x).flatten(1)
            mean = torch.einsum("nf,df->nd", h, self.z_mean.weight) + self.z_mean.bias
            return mean, h @ self.z_log_var.weight.T + self.z_log_var.bias

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.Linear(latent_dim, 8)
            layers = []
            for c_in, c_out in ((8, 8), (8, 16), (16, 32), (32, 64), (64, 128)):
                layers += [
                    nn.ConvTranspose2d(c_in, c_out, 3, padding=1),
                    nn.ReLU(),
                    nn.Upsample(scale_factor=2),
                ]
            self.ups = nn.Sequential(*layers, nn.ConvTranspose2d(128, 3, 3, padding=1))

        def forward(self, z):
            h = torch.relu(z @ self.dense.weight.T + self.dense.bias)
            return self.ups(h.reshape(-1, 8, 1, 1))

    return VAE(Heads(), Decoder(), latent_dim)  # noqa: F821 -- defined by the notebook


KERAS_REFERENCE = """
def keras_cifar_vae(latent_dim=2, kernel=3, up_first=False, last_conv=True, sigmoid=False, decoder_relu=True,
                    batch_norm=False):
    features = []
    for c_in, c_out in ((3, 512), (512, 256), (256, 128), (128, 64), (64, 32)):
        features += [nn.Conv2d(c_in, c_out, kernel, padding=1)]
        features += [nn.BatchNorm2d(c_out)] if batch_norm else []
        features += [nn.ReLU(), nn.MaxPool2d(2)]
    features += [nn.Conv2d(32, 16, 3, padding=1), nn.ReLU()]
    features += [nn.Conv2d(16, 8, 3, padding=1), nn.ReLU()] if last_conv else []
    features.append(nn.Flatten())
    encoder = GaussianEncoder(nn.Sequential(*features), 8 if last_conv else 16, latent_dim)
    act = nn.ReLU if decoder_relu else nn.Identity
    layers = [nn.Linear(latent_dim, 8), act(), nn.Unflatten(1, (8, 1, 1))]
    for c_in, c_out in ((8, 8), (8, 16), (16, 32), (32, 64), (64, 128)):
        block = [nn.ConvTranspose2d(c_in, c_out, 3, padding=1), act()]
        up = [nn.Upsample(scale_factor=2)]
        layers += up + block if up_first else block + up
    layers.append(nn.ConvTranspose2d(128, 3, 3, padding=1))
    layers += [nn.Sigmoid()] if sigmoid else []
    return VAE(encoder, nn.Sequential(*layers), latent_dim)
"""


def keras_mistake(must_fail: str, label: str, **options):
    """A keras_cifar_vae that is the reference but for ``options``."""
    call = ", ".join(f"{key}={value!r}" for key, value in options.items())
    source = KERAS_REFERENCE.replace("def keras_cifar_vae(", "def _keras_reference(") + (
        f"\n\ndef keras_cifar_vae(latent_dim=2):\n    return _keras_reference(latent_dim, {call})\n"
    )
    catalogue.wrong_variants.append(Variant("keras_cifar_vae", label, source, must_fail))


keras_mistake("test_keras_cifar_vae_layers", "5x5 kernels with padding 1 ('valid'-like sizes)", kernel=5)
keras_mistake("test_keras_cifar_vae_layers", "upsampling before each transposed convolution", up_first=True)
keras_mistake("test_keras_cifar_vae_layers", "the last convolution, to 8 channels, left out", last_conv=False)
keras_mistake("test_keras_cifar_vae_layers", "batch normalisation after the convolutions", batch_norm=True)
keras_mistake("test_keras_cifar_vae_behaviour", "a sigmoid at the end of the decoder", sigmoid=True)
keras_mistake("test_keras_cifar_vae_behaviour", "no ReLU in the decoder", decoder_relu=False)
