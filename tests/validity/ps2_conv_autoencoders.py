"""Validity catalogue for ps2/conv_autoencoders: alternative correct answers and known mistakes.

The variants are executed in the notebook's namespace (torch, F, nn and math imported there).
"""

import torch
import torch.nn.functional as F
from torch import nn
from validity_harness import Catalogue

catalogue = Catalogue(
    "ps2/conv_autoencoders",
    tests={
        "ConvAutoencoder": [
            "test_ConvAutoencoder_shapes",
            "test_ConvAutoencoder_outputs",
            "test_ConvAutoencoder_structure",
        ],
        "TransposedConvDecoder": ["test_TransposedConvDecoder"],
        "reconstruction_loss": ["test_reconstruction_loss_bernoulli", "test_reconstruction_loss_gaussian"],
        "add_noise": ["test_add_noise"],
    },
)


# --- ConvAutoencoder: correct ------------------------------------------------------------------


@catalogue.correct
class ConvAutoencoder(nn.Module):
    """ModuleLists of nn.Conv2d with functional pooling and interpolation, a nested decoder class"""

    class NearestDecoder(nn.Module):
        def __init__(self, c1, c2, c3, out_channels):
            super().__init__()
            pairs = [(c3, c3), (c3, c2), (c2, c1)]
            self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in pairs)
            self.out = nn.Conv2d(c1, out_channels, 3, padding=1)

        def forward(self, code):
            h = code
            for size, conv in zip((7, 14, 28), self.convs, strict=True):
                h = F.relu(conv(F.interpolate(h, size=(size, size), mode="nearest")))
            return self.out(h)

    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        pairs = [(in_channels, c1), (c1, c2), (c2, c3)]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in pairs)
        if decoder is None:
            decoder = ConvAutoencoder.NearestDecoder(c1, c2, c3, in_channels)
        self.decoder = decoder

    def encode(self, x):
        for conv in self.convs:
            x = F.max_pool2d(F.relu(conv(x)), 2, ceil_mode=True)
        return x

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return torch.special.expit(self.forward(x))


@catalogue.correct
class ConvAutoencoder(nn.Module):
    """pooling before the ReLU, padding=1 pooling at 7x7, nearest-exact and scale_factor upsampling"""

    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        self.conv1 = nn.Conv2d(in_channels, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=(3, 3), padding="same")
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.pool_odd = nn.MaxPool2d(2, padding=1)
        self.decoder = decoder or nn.Sequential(
            nn.Upsample(size=(7, 7), mode="nearest-exact"),
            nn.Conv2d(c3, c3, 3, padding=1),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest-exact"),
            nn.Conv2d(c3, c2, 3, padding=1),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(c2, c1, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, in_channels, 3, padding=1),
        )

    def encode(self, x):
        x = F.relu(self.pool(self.conv1(x)))
        x = F.relu(self.pool(self.conv2(x)))
        return F.relu(self.pool_odd(self.conv3(x)))

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decoder(self.encode(x))

    def reconstruct(self, x):
        return 1 / (1 + torch.exp(-self(x)))


@catalogue.correct
class ConvAutoencoder(nn.Module):
    """zero-pads the 7x7 map (after the ReLU) before a plain 2x2 pooling"""

    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c2, c3, 3, padding=1),
            nn.ReLU(),
            nn.ZeroPad2d((0, 1, 0, 1)),
            nn.MaxPool2d(2, 2),
        )
        layers = []
        for size, (a, b) in zip((7, 14, 28), [(c3, c3), (c3, c2), (c2, c1)], strict=True):
            layers += [nn.Upsample(size=size), nn.Conv2d(a, b, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(c1, in_channels, 3, padding=1))
        self.decoder = nn.Sequential(*layers) if decoder is None else decoder

    def encode(self, x):
        return self.encoder(x)

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return self.forward(x).sigmoid()


@catalogue.correct
class ConvAutoencoder(nn.Module):
    """pooling as the max of reshaped 2x2 windows, nearest upsampling by index selection"""

    class IndexDecoder(nn.Module):
        def __init__(self, c1, c2, c3, out_channels):
            super().__init__()
            pairs = [(c3, c3), (c3, c2), (c2, c1)]
            self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in pairs)
            self.out = nn.Conv2d(c1, out_channels, 3, padding=1)

        @staticmethod
        def nearest(h, size):
            """Pixel i of the output copies pixel floor(i * in / out) of the input, along each axis."""
            rows = torch.arange(size) * h.shape[-2] // size
            cols = torch.arange(size) * h.shape[-1] // size
            return h[..., rows[:, None], cols[None, :]]

        def forward(self, code):
            h = code
            for size, conv in zip((7, 14, 28), self.convs, strict=True):
                h = torch.relu(conv(self.nearest(h, size)))
            return self.out(h)

    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        pairs = [(in_channels, c1), (c1, c2), (c2, c3)]
        self.down = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in pairs)
        self.decoder = ConvAutoencoder.IndexDecoder(c1, c2, c3, in_channels) if decoder is None else decoder

    @staticmethod
    def pool(h):
        if h.shape[-1] % 2:  # round up: an odd side gets a row and a column that never win
            h = F.pad(h, (0, 1, 0, 1), value=float("-inf"))
        n, c, height, width = h.shape
        return h.reshape(n, c, height // 2, 2, width // 2, 2).amax(dim=(3, 5))

    def encode(self, x):
        for conv in self.down:
            x = self.pool(torch.relu(conv(x)))
        return x

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return torch.sigmoid(self.forward(x))


# --- ConvAutoencoder: known mistakes -------------------------------------------------------------
# Each is the reference with one thing changed (marked with a comment).


@catalogue.wrong("test_ConvAutoencoder_shapes", "last pooling rounds down (7 -> 3)")
class ConvAutoencoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # floor: 7 -> 3
        )  # fmt: skip
        self.decoder = decoder or nn.Sequential(
            nn.Upsample(size=7), nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=14), nn.Conv2d(c3, c2, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=28), nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, in_channels, 3, padding=1),
        )  # fmt: skip

    def encode(self, x):
        return self.encoder(x)

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return torch.sigmoid(self(x))


@catalogue.wrong("test_ConvAutoencoder_shapes", "doubles the size at every stage (4 -> 8 -> 16 -> 32)")
class ConvAutoencoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        )  # fmt: skip
        self.decoder = decoder or nn.Sequential(
            nn.Upsample(scale_factor=2), nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(),
            nn.Upsample(scale_factor=2), nn.Conv2d(c3, c2, 3, padding=1), nn.ReLU(),
            nn.Upsample(scale_factor=2), nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, in_channels, 3, padding=1),
        )  # fmt: skip

    def encode(self, x):
        return self.encoder(x)

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return torch.sigmoid(self(x))


@catalogue.wrong("test_ConvAutoencoder_shapes", "bilinear instead of nearest upsampling")
class ConvAutoencoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        )  # fmt: skip
        self.decoder = decoder or nn.Sequential(
            nn.Upsample(size=7, mode="bilinear"), nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=14, mode="bilinear"), nn.Conv2d(c3, c2, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=28, mode="bilinear"), nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, in_channels, 3, padding=1),
        )  # fmt: skip

    def encode(self, x):
        return self.encoder(x)

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return torch.sigmoid(self(x))


@catalogue.wrong("test_ConvAutoencoder_shapes", "decoder channels in the encoder's order instead of mirrored")
class ConvAutoencoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        )  # fmt: skip
        self.decoder = decoder or nn.Sequential(
            nn.Upsample(size=7), nn.Conv2d(c3, c1, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=14), nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=28), nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c3, in_channels, 3, padding=1),
        )  # fmt: skip

    def encode(self, x):
        return self.encoder(x)

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return torch.sigmoid(self(x))


@catalogue.wrong("test_ConvAutoencoder_shapes", "ignores the channels argument (always 16-8-8)")
class ConvAutoencoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        )  # fmt: skip
        self.decoder = decoder or nn.Sequential(
            nn.Upsample(size=7), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=14), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=28), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, in_channels, 3, padding=1),
        )  # fmt: skip

    def encode(self, x):
        return self.encoder(x)

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return torch.sigmoid(self(x))


@catalogue.wrong("test_ConvAutoencoder_shapes", "always decodes to one channel, whatever in_channels")
class ConvAutoencoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        )  # fmt: skip
        self.decoder = decoder or nn.Sequential(
            nn.Upsample(size=7), nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=14), nn.Conv2d(c3, c2, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=28), nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, 1, 3, padding=1),  # should be in_channels
        )  # fmt: skip

    def encode(self, x):
        return self.encoder(x)

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return torch.sigmoid(self(x))


@catalogue.wrong("test_ConvAutoencoder_shapes", "squeezes the code (breaks a batch of 1)")
class ConvAutoencoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        )  # fmt: skip
        self.decoder = decoder or nn.Sequential(
            nn.Upsample(size=7), nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=14), nn.Conv2d(c3, c2, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=28), nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, in_channels, 3, padding=1),
        )  # fmt: skip

    def encode(self, x):
        return self.encoder(x).squeeze()

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return torch.sigmoid(self(x))


@catalogue.wrong("test_ConvAutoencoder_shapes", "stride-2 convolutions instead of max-pooling")
class ConvAutoencoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.decoder = decoder or nn.Sequential(
            nn.Upsample(size=7), nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=14), nn.Conv2d(c3, c2, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=28), nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, in_channels, 3, padding=1),
        )  # fmt: skip

    def encode(self, x):
        return self.encoder(x)

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return torch.sigmoid(self(x))


@catalogue.wrong(
    "test_ConvAutoencoder_outputs", "forward applies a sigmoid (returns probabilities, not logits)"
)
class ConvAutoencoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        )  # fmt: skip
        self.decoder = decoder or nn.Sequential(
            nn.Upsample(size=7), nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=14), nn.Conv2d(c3, c2, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=28), nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, in_channels, 3, padding=1), nn.Sigmoid(),
        )  # fmt: skip

    def encode(self, x):
        return self.encoder(x)

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return self(x)


@catalogue.wrong("test_ConvAutoencoder_outputs", "a ReLU after the last convolution (logits >= 0)")
class ConvAutoencoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        )  # fmt: skip
        self.decoder = decoder or nn.Sequential(
            nn.Upsample(size=7), nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=14), nn.Conv2d(c3, c2, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=28), nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, in_channels, 3, padding=1), nn.ReLU(),
        )  # fmt: skip

    def encode(self, x):
        return self.encoder(x)

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return torch.sigmoid(self(x))


@catalogue.wrong(
    "test_ConvAutoencoder_outputs", "reconstruct clamps the logits to [0, 1] instead of a sigmoid"
)
class ConvAutoencoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        )  # fmt: skip
        self.decoder = decoder or nn.Sequential(
            nn.Upsample(size=7), nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=14), nn.Conv2d(c3, c2, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=28), nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, in_channels, 3, padding=1),
        )  # fmt: skip

    def encode(self, x):
        return self.encoder(x)

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return self(x).clamp(0, 1)


@catalogue.wrong(
    "test_ConvAutoencoder_outputs", "no ReLU in the last encoder stage (the code can be negative)"
)
class ConvAutoencoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.MaxPool2d(2, ceil_mode=True),
        )  # fmt: skip
        self.decoder = decoder or nn.Sequential(
            nn.Upsample(size=7), nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=14), nn.Conv2d(c3, c2, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=28), nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, in_channels, 3, padding=1),
        )  # fmt: skip

    def encode(self, x):
        return self.encoder(x)

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return torch.sigmoid(self(x))


@catalogue.wrong("test_ConvAutoencoder_structure", "adds a dense layer on the code (far too many parameters)")
class ConvAutoencoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        )  # fmt: skip
        self.dense = nn.Linear(16 * c3, 16 * c3)
        self.decoder = decoder or nn.Sequential(
            nn.Upsample(size=7), nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=14), nn.Conv2d(c3, c2, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=28), nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, in_channels, 3, padding=1),
        )  # fmt: skip

    def encode(self, x):
        code = self.encoder(x)
        return F.relu(self.dense(code.flatten(1))).view(code.shape)

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return torch.sigmoid(self(x))


@catalogue.wrong("test_ConvAutoencoder_structure", "5x5 kernels (about three times the parameters)")
class ConvAutoencoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        )  # fmt: skip
        self.decoder = decoder or nn.Sequential(
            nn.Upsample(size=7), nn.Conv2d(c3, c3, 5, padding=2), nn.ReLU(),
            nn.Upsample(size=14), nn.Conv2d(c3, c2, 5, padding=2), nn.ReLU(),
            nn.Upsample(size=28), nn.Conv2d(c2, c1, 5, padding=2), nn.ReLU(),
            nn.Conv2d(c1, in_channels, 5, padding=2),
        )  # fmt: skip

    def encode(self, x):
        return self.encoder(x)

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return torch.sigmoid(self(x))


@catalogue.wrong("test_ConvAutoencoder_structure", "ignores the decoder argument")
class ConvAutoencoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Upsample(size=7), nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=14), nn.Conv2d(c3, c2, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=28), nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, in_channels, 3, padding=1),
        )  # fmt: skip

    def encode(self, x):
        return self.encoder(x)

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return torch.sigmoid(self(x))


@catalogue.wrong("test_ConvAutoencoder_structure", "detaches the code (the encoder never trains)")
class ConvAutoencoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        )  # fmt: skip
        self.decoder = decoder or nn.Sequential(
            nn.Upsample(size=7), nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=14), nn.Conv2d(c3, c2, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=28), nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, in_channels, 3, padding=1),
        )  # fmt: skip

    def encode(self, x):
        return self.encoder(x).detach()

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return torch.sigmoid(self(x))


@catalogue.wrong(
    "test_ConvAutoencoder_shapes", "the encoder's convolutions computed by F.conv2d from the modules' weights"
)
class ConvAutoencoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), in_channels=1, decoder=None):
        super().__init__()
        c1, c2, c3 = channels
        pairs = [(in_channels, c1), (c1, c2), (c2, c3)]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in pairs)
        layers = []
        for size, (a, b) in zip((7, 14, 28), [(c3, c3), (c3, c2), (c2, c1)], strict=True):
            layers += [nn.Upsample(size=size), nn.Conv2d(a, b, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(c1, in_channels, 3, padding=1))
        self.decoder = nn.Sequential(*layers) if decoder is None else decoder

    def encode(self, x):
        for conv in self.convs:
            x = F.max_pool2d(F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1)), 2, ceil_mode=True)
        return x

    def decode(self, code):
        return self.decoder(code)

    def forward(self, x):
        return self.decode(self.encode(x))

    def reconstruct(self, x):
        return torch.sigmoid(self(x))


# --- TransposedConvDecoder ---------------------------------------------------------------------


@catalogue.correct
class TransposedConvDecoder(nn.Module):
    """ModuleList of transposed convolutions told their output_size in forward"""

    def __init__(self, channels=(16, 8, 8), out_channels=1):
        super().__init__()
        c1, c2, c3 = channels
        pairs = [(c3, c3), (c3, c2), (c2, c1)]
        self.ups = nn.ModuleList(nn.ConvTranspose2d(a, b, 3, stride=2, padding=1) for a, b in pairs)
        self.head = nn.Conv2d(c1, out_channels, 3, padding=1)

    def forward(self, code):
        h = code
        for size, up in zip((7, 14, 28), self.ups, strict=True):
            h = torch.relu(up(h, output_size=[size, size]))
        return self.head(h)


@catalogue.correct
class TransposedConvDecoder(nn.Module):
    """explicit layers, the last one a stride-1 transposed convolution"""

    def __init__(self, channels=(16, 8, 8), out_channels=1):
        super().__init__()
        c1, c2, c3 = channels
        self.up1 = nn.ConvTranspose2d(c3, c3, kernel_size=3, stride=2, padding=1, output_padding=0)
        self.up2 = nn.ConvTranspose2d(c3, c2, kernel_size=3, stride=2, padding=1, output_padding=1)
        self.up3 = nn.ConvTranspose2d(c2, c1, kernel_size=3, stride=2, padding=1, output_padding=1)
        self.out = nn.ConvTranspose2d(c1, out_channels, kernel_size=3, padding=1)

    def forward(self, code):
        h = F.relu(self.up1(code))
        h = F.relu(self.up2(h))
        h = F.relu(self.up3(h))
        return self.out(h)


@catalogue.correct
class TransposedConvDecoder(nn.Module):
    """the last convolution as F.conv2d with a weight and a bias of its own (nn.Parameter)"""

    def __init__(self, channels=(16, 8, 8), out_channels=1):
        super().__init__()
        c1, c2, c3 = channels
        self.ups = nn.Sequential(
            nn.ConvTranspose2d(c3, c3, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(c3, c2, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
        )
        bound = 1 / (9 * c1) ** 0.5
        self.weight = nn.Parameter(torch.empty(out_channels, c1, 3, 3).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound))

    def forward(self, code):
        return F.conv2d(self.ups(code), self.weight, self.bias, padding=1)


@catalogue.wrong("test_TransposedConvDecoder", "output_padding=1 at every stage (4 -> 8 -> 16 -> 32)")
class TransposedConvDecoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), out_channels=1):
        super().__init__()
        c1, c2, c3 = channels
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(c3, c3, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c3, c2, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.Conv2d(c1, out_channels, 3, padding=1),
        )  # fmt: skip

    def forward(self, code):
        return self.layers(code)


@catalogue.wrong("test_TransposedConvDecoder", "no output_padding (4 -> 7 -> 13 -> 25)")
class TransposedConvDecoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), out_channels=1):
        super().__init__()
        c1, c2, c3 = channels
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(c3, c3, 3, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c3, c2, 3, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c1, out_channels, 3, padding=1),
        )  # fmt: skip

    def forward(self, code):
        return self.layers(code)


@catalogue.wrong("test_TransposedConvDecoder", "copies the upsampling decoder (no transposed convolution)")
class TransposedConvDecoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), out_channels=1):
        super().__init__()
        c1, c2, c3 = channels
        self.layers = nn.Sequential(
            nn.Upsample(size=7), nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=14), nn.Conv2d(c3, c2, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=28), nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, out_channels, 3, padding=1),
        )  # fmt: skip

    def forward(self, code):
        return self.layers(code)


@catalogue.wrong("test_TransposedConvDecoder", "nn.Upsample followed by stride-1 transposed convolutions")
class TransposedConvDecoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), out_channels=1):
        super().__init__()
        c1, c2, c3 = channels
        self.layers = nn.Sequential(
            nn.Upsample(size=7), nn.ConvTranspose2d(c3, c3, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=14), nn.ConvTranspose2d(c3, c2, 3, padding=1), nn.ReLU(),
            nn.Upsample(size=28), nn.ConvTranspose2d(c2, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, out_channels, 3, padding=1),
        )  # fmt: skip

    def forward(self, code):
        return self.layers(code)


@catalogue.wrong("test_TransposedConvDecoder", "ends with a sigmoid")
class TransposedConvDecoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), out_channels=1):
        super().__init__()
        c1, c2, c3 = channels
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(c3, c3, 3, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c3, c2, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.Conv2d(c1, out_channels, 3, padding=1), nn.Sigmoid(),
        )  # fmt: skip

    def forward(self, code):
        return self.layers(code)


@catalogue.wrong("test_TransposedConvDecoder", "ends with a ReLU")
class TransposedConvDecoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), out_channels=1):
        super().__init__()
        c1, c2, c3 = channels
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(c3, c3, 3, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c3, c2, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.Conv2d(c1, out_channels, 3, padding=1), nn.ReLU(),
        )  # fmt: skip

    def forward(self, code):
        return self.layers(code)


@catalogue.wrong("test_TransposedConvDecoder", "ignores out_channels")
class TransposedConvDecoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), out_channels=1):
        super().__init__()
        c1, c2, c3 = channels
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(c3, c3, 3, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c3, c2, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.Conv2d(c1, 1, 3, padding=1),
        )  # fmt: skip

    def forward(self, code):
        return self.layers(code)


@catalogue.wrong("test_TransposedConvDecoder", "channels in the encoder's order instead of mirrored")
class TransposedConvDecoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), out_channels=1):
        super().__init__()
        c1, c2, c3 = channels
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(c3, c1, 3, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c1, c2, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c2, c3, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.Conv2d(c3, out_channels, 3, padding=1),
        )  # fmt: skip

    def forward(self, code):
        return self.layers(code)


@catalogue.wrong(
    "test_TransposedConvDecoder",
    "the transposed convolutions computed by F.conv_transpose2d from the modules' weights",
)
class TransposedConvDecoder(nn.Module):
    def __init__(self, channels=(16, 8, 8), out_channels=1):
        super().__init__()
        c1, c2, c3 = channels
        pairs = [(c3, c3), (c3, c2), (c2, c1)]
        self.ups = nn.ModuleList(nn.ConvTranspose2d(a, b, 3, stride=2, padding=1) for a, b in pairs)
        self.out = nn.Conv2d(c1, out_channels, 3, padding=1)

    def forward(self, code):
        h = code
        for extra, up in zip((0, 1, 1), self.ups, strict=True):
            h = F.relu(F.conv_transpose2d(h, up.weight, up.bias, stride=2, padding=1, output_padding=extra))
        return self.out(h)


# --- reconstruction_loss -------------------------------------------------------------------------


@catalogue.correct
def reconstruction_loss(logits, target, likelihood="bernoulli"):
    """softplus form, per-image sums averaged with mean()"""
    if likelihood == "bernoulli":
        per_pixel = F.softplus(logits) - target * logits
    elif likelihood == "gaussian":
        per_pixel = 0.5 * (logits - target).pow(2)
    else:
        raise ValueError(likelihood)
    return per_pixel.flatten(1).sum(dim=1).mean()


@catalogue.correct
def reconstruction_loss(logits, target, likelihood="bernoulli"):
    """library losses with reduction="sum", divided by the batch size"""
    losses = {
        "bernoulli": lambda: F.binary_cross_entropy_with_logits(logits, target, reduction="sum"),
        "gaussian": lambda: F.mse_loss(logits, target, reduction="sum") / 2,
    }
    if likelihood not in losses:
        raise ValueError(f"likelihood must be one of {sorted(losses)}")
    return losses[likelihood]() / len(logits)


@catalogue.correct
def reconstruction_loss(logits, target, likelihood="bernoulli"):
    """the stable formula max(l, 0) - l x + log(1 + exp(-|l|)) written out"""
    batch = logits.shape[0]
    if likelihood == "gaussian":
        return ((logits - target) ** 2).sum() / (2 * batch)
    if likelihood != "bernoulli":
        raise ValueError("unknown likelihood")
    stable = logits.clamp(min=0) - logits * target + torch.log1p(torch.exp(-logits.abs()))
    return stable.sum() / batch


@catalogue.correct
def reconstruction_loss(logits, target, likelihood="bernoulli"):
    """log-likelihoods from torch.distributions (Bernoulli, and Normal less its constant)"""
    from torch.distributions import Bernoulli, Normal

    if likelihood == "bernoulli":
        log_likelihood = Bernoulli(logits=logits, validate_args=False).log_prob(target)
    elif likelihood == "gaussian":
        log_likelihood = Normal(logits, 1.0).log_prob(target) + 0.5 * math.log(2 * math.pi)  # noqa: F821
    else:
        raise ValueError(f"unknown likelihood {likelihood!r}")
    return -log_likelihood.sum() / len(logits)


@catalogue.wrong("test_reconstruction_loss_bernoulli", "mean over pixels (library default reduction)")
def reconstruction_loss(logits, target, likelihood="bernoulli"):
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(logits, target)
    if likelihood == "gaussian":
        return 0.5 * ((logits - target) ** 2).flatten(1).sum(1).mean()
    raise ValueError(likelihood)


@catalogue.wrong("test_reconstruction_loss_bernoulli", "sigmoid applied twice")
def reconstruction_loss(logits, target, likelihood="bernoulli"):
    if likelihood == "bernoulli":
        probabilities = torch.sigmoid(logits)
        return F.binary_cross_entropy_with_logits(probabilities, target, reduction="sum") / len(logits)
    if likelihood == "gaussian":
        return 0.5 * ((logits - target) ** 2).sum() / len(logits)
    raise ValueError(likelihood)


@catalogue.wrong("test_reconstruction_loss_bernoulli", "BCE on probabilities: binary_cross_entropy(sigmoid)")
def reconstruction_loss(logits, target, likelihood="bernoulli"):
    if likelihood == "bernoulli":
        return F.binary_cross_entropy(torch.sigmoid(logits), target, reduction="sum") / len(logits)
    if likelihood == "gaussian":
        return 0.5 * ((logits - target) ** 2).sum() / len(logits)
    raise ValueError(likelihood)


@catalogue.wrong("test_reconstruction_loss_bernoulli", "BCE on probabilities, written out with an eps clamp")
def reconstruction_loss(logits, target, likelihood="bernoulli"):
    if likelihood == "bernoulli":
        p = torch.sigmoid(logits).clamp(1e-7, 1 - 1e-7)
        return -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).sum() / len(logits)
    if likelihood == "gaussian":
        return 0.5 * ((logits - target) ** 2).sum() / len(logits)
    raise ValueError(likelihood)


@catalogue.wrong("test_reconstruction_loss_bernoulli", "sum over the batch instead of the mean")
def reconstruction_loss(logits, target, likelihood="bernoulli"):
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(logits, target, reduction="sum")
    if likelihood == "gaussian":
        return 0.5 * ((logits - target) ** 2).sum()
    raise ValueError(likelihood)


@catalogue.wrong("test_reconstruction_loss_bernoulli", "returns one loss per image (no batch mean)")
def reconstruction_loss(logits, target, likelihood="bernoulli"):
    if likelihood == "bernoulli":
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    elif likelihood == "gaussian":
        per_pixel = 0.5 * (logits - target) ** 2
    else:
        raise ValueError(likelihood)
    return per_pixel.flatten(1).sum(1)


@catalogue.wrong("test_reconstruction_loss_bernoulli", "logits and target swapped")
def reconstruction_loss(logits, target, likelihood="bernoulli"):
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(target, logits, reduction="sum") / len(logits)
    if likelihood == "gaussian":
        return 0.5 * ((logits - target) ** 2).sum() / len(logits)
    raise ValueError(likelihood)


@catalogue.wrong("test_reconstruction_loss_bernoulli", "returns a detached number (.item())")
def reconstruction_loss(logits, target, likelihood="bernoulli"):
    if likelihood == "bernoulli":
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(logits)
    elif likelihood == "gaussian":
        loss = 0.5 * ((logits - target) ** 2).sum() / len(logits)
    else:
        raise ValueError(likelihood)
    return torch.tensor(loss.item())


@catalogue.wrong("test_reconstruction_loss_gaussian", "squared error without the 1/2")
def reconstruction_loss(logits, target, likelihood="bernoulli"):
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(logits)
    if likelihood == "gaussian":
        return ((logits - target) ** 2).sum() / len(logits)
    raise ValueError(likelihood)


@catalogue.wrong("test_reconstruction_loss_gaussian", "F.mse_loss with its default mean over every pixel")
def reconstruction_loss(logits, target, likelihood="bernoulli"):
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(logits)
    if likelihood == "gaussian":
        return F.mse_loss(logits, target)
    raise ValueError(likelihood)


@catalogue.wrong("test_reconstruction_loss_gaussian", "sigmoid before the squared error")
def reconstruction_loss(logits, target, likelihood="bernoulli"):
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(logits)
    if likelihood == "gaussian":
        return 0.5 * ((torch.sigmoid(logits) - target) ** 2).sum() / len(logits)
    raise ValueError(likelihood)


@catalogue.wrong("test_reconstruction_loss_gaussian", "ignores likelihood (always binary cross-entropy)")
def reconstruction_loss(logits, target, likelihood="bernoulli"):
    return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(logits)


@catalogue.wrong("test_reconstruction_loss_gaussian", "anything but 'bernoulli' is treated as Gaussian")
def reconstruction_loss(logits, target, likelihood="bernoulli"):
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / len(logits)
    return 0.5 * ((logits - target) ** 2).sum() / len(logits)


# --- add_noise -----------------------------------------------------------------------------------


@catalogue.correct
def add_noise(x, std, generator=None):
    """Tensor.normal_ with the generator, torch.clip"""
    noise = torch.empty_like(x).normal_(mean=0.0, std=std, generator=generator)
    return torch.clip(x + noise, 0.0, 1.0)


@catalogue.correct
def add_noise(x, std, generator=None):
    """torch.normal with size= and generator=, on the CPU, then moved to x's dtype and device"""
    noise = torch.normal(0.0, float(std), size=tuple(x.shape), generator=generator)
    return torch.clamp(x + noise.to(x), min=0.0, max=1.0)


@catalogue.correct
def add_noise(x, std, generator=None):
    """unit normal scaled by std, clamped in place on the new tensor"""
    noisy = x + std * x.new_empty(x.shape).normal_(generator=generator)
    noisy.clamp_(0, 1)
    return noisy


@catalogue.correct
def add_noise(x, std, generator=None):
    """Box-Muller: normal noise made from two uniforms per pixel, drawn with the generator"""
    import math

    u1 = 1 - torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)  # (0, 1]: finite log
    u2 = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    noise = torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * math.pi * u2)
    return torch.clamp(x + std * noise, 0, 1)


@catalogue.wrong("test_add_noise", "noise drawn on the CPU (no device=): a GPU run fails")
def add_noise(x, std, generator=None):
    return (x + std * torch.randn(x.shape, generator=generator, dtype=x.dtype)).clamp(0, 1)


@catalogue.wrong("test_add_noise", "no clipping")
def add_noise(x, std, generator=None):
    return x + std * torch.randn(x.shape, generator=generator)


@catalogue.wrong("test_add_noise", "ignores the generator (randn_like)")
def add_noise(x, std, generator=None):
    return (x + std * torch.randn_like(x)).clamp(0, 1)


@catalogue.wrong("test_add_noise", "uniform noise instead of Gaussian")
def add_noise(x, std, generator=None):
    return (x + std * torch.rand(x.shape, generator=generator)).clamp(0, 1)


@catalogue.wrong("test_add_noise", "std used as a variance")
def add_noise(x, std, generator=None):
    return (x + std**2 * torch.randn(x.shape, generator=generator)).clamp(0, 1)


@catalogue.wrong("test_add_noise", "one noise value per image")
def add_noise(x, std, generator=None):
    noise = torch.randn((x.shape[0],) + (1,) * (x.dim() - 1), generator=generator)
    return (x + std * noise).clamp(0, 1)


@catalogue.wrong("test_add_noise", "the same noise for every image of the batch")
def add_noise(x, std, generator=None):
    noise = torch.randn(x.shape[1:], generator=generator)
    return (x + std * noise).clamp(0, 1)


@catalogue.wrong("test_add_noise", "modifies x in place")
def add_noise(x, std, generator=None):
    return x.add_(std * torch.randn(x.shape, generator=generator)).clamp_(0, 1)


@catalogue.wrong("test_add_noise", "clips the noise instead of the noisy image")
def add_noise(x, std, generator=None):
    return x + (std * torch.randn(x.shape, generator=generator)).clamp(0, 1)


@catalogue.wrong("test_add_noise", "rescales to [0, 1] by min and max instead of clipping")
def add_noise(x, std, generator=None):
    noisy = x + std * torch.randn(x.shape, generator=generator)
    return (noisy - noisy.min()) / (noisy.max() - noisy.min())


@catalogue.wrong("test_add_noise", "restarts the generator from its seed at every call")
def add_noise(x, std, generator=None):
    if generator is not None:
        generator = torch.Generator().manual_seed(generator.initial_seed())
    return (x + std * torch.randn(x.shape, generator=generator)).clamp(0, 1)


@catalogue.wrong("test_add_noise", "reseeds the global random state from the generator")
def add_noise(x, std, generator=None):
    if generator is not None:
        torch.manual_seed(generator.initial_seed())
    return (x + std * torch.randn_like(x)).clamp(0, 1)
