"""Validity catalogue for ps3/vae_models: alternative correct answers and known mistakes."""

from validity_harness import Catalogue, Variant, variant_source

catalogue = Catalogue(
    "ps3/vae_models",
    tests={
        "gaussian_cnn_cifar10": [
            "test_gaussian_cnn_cifar10_shapes",
            "test_gaussian_cnn_cifar10_params",
            "test_gaussian_cnn_cifar10_behaviour",
        ],
    },
    # The answer builds on GaussianEncoder and VAE, defined in a locked cell.
    setup=["imports", "vae_classes"],
)


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
