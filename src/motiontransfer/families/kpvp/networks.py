"""KPVP (Kim et al., NeurIPS 2019): unsupervised keypoints guiding class-conditional video prediction.

Three networks and two discriminators:

* the keypoint detector Q (Sec. 2, Eq. 1): an hourglass and a spatial softmax whose expected coordinates are the K
  keypoints; it is the FOMM detector without Jacobians (:class:`motiontransfer.models.keypoint_detector.KPDetector`);
* the image translator T (Eq. 2-3, :class:`ImageTranslator`): encodes the reference image v, joins its features
  with Gaussian maps of the reference keypoints k and of the target keypoints k' (the analogy v : k :: ? : k'),
  decodes an image s and a soft background mask m, and blends m * v + (1 - m) * s;
* the motion generator M (Eq. 5, :class:`MotionGenerator`): a conditional VAE with LSTM encoder and decoder over
  future keypoint sequences, conditioned on the first frame's keypoints k_0 and a one-hot action;
* an image discriminator (FOMM's patch discriminator, used with the logistic GAN loss of Eq. 4) and an LSTM
  sequence discriminator (:class:`SequenceDiscriminator`).

The paper's ablations are config switches: ``translator.use_reference_keypoints`` (T sees only the target
keypoints) and ``translator.use_background_mask`` (T outputs s directly). The official code is TensorFlow 1; no
checkpoint compatibility is needed, so the module names are ours.

Keypoints are (B, K, 2) in [-1, 1], x first, as in every family.
"""

from __future__ import annotations

import torch
from torch import nn

from motiontransfer.families.kpvp.config import KPVPConfig, MotionGeneratorParams, TranslatorParams
from motiontransfer.models.keypoint_detector import KPDetector
from motiontransfer.nn.blocks import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d
from motiontransfer.nn.discriminators import PatchDiscriminator
from motiontransfer.ops.heatmaps import keypoints_to_gaussian

# --------------------------------------------------------------------------------------------------------- stage 1


def build_detector(config: KPVPConfig) -> KPDetector:
    """Q of ``config``: FOMM's detector without Jacobians, its 7x7 head padded so the heatmaps keep the input size.
    Forward: (B, C, H, W) in [0, 1] -> {'value': (B, K, 2), 'heatmap': (B, K, H, W)}."""
    params = config.detector
    return KPDetector(params.block_expansion, config.num_kp, config.num_channels, params.max_features,
                      params.num_blocks, params.temperature, estimate_jacobian=False, pad=3)


def keypoint_maps(keypoints: torch.Tensor, spatial_size: tuple[int, int], sigma: float) -> torch.Tensor:
    """Gaussian maps of Eq. 2 without the constant 1 / (sigma sqrt(2 pi)) (a uniform scale that the next
    convolution absorbs): keypoints (B, K, 2) in [-1, 1] -> (B, K, H, W) with peak 1."""
    return keypoints_to_gaussian(keypoints, spatial_size, sigma**2)


class ImageTranslator(nn.Module):
    """T of Eq. 3: reference image v and keypoints k, k' -> blended image, synthesised image s and mask m.

    Encoder (:meth:`encode`, a function of v only, so computed once per source at inference): a 7x7
    :class:`SameBlock2d` and ``num_down_blocks`` :class:`DownBlock2d`. Decoder (:meth:`decode`): the features joined
    with the Gaussian maps of k' (and of k, with ``use_reference_keypoints``) at their resolution, a
    :class:`SameBlock2d` back to the feature width, ``num_residual_blocks`` :class:`ResBlock2d`, the
    :class:`UpBlock2d` mirror and a 7x7 convolution to 3 image channels and 1 mask channel (both sigmoid).

    Shapes: v (B, C, H, W) in [0, 1] with H, W divisible by 2^num_down_blocks; keypoints (B, K, 2).
    """

    def __init__(self, num_kp: int, num_channels: int, params: TranslatorParams) -> None:
        super().__init__()
        be, cap = params.block_expansion, params.max_features
        self.first = SameBlock2d(num_channels, be, kernel_size=7, padding=3)
        channels = [min(cap, be * 2**i) for i in range(params.num_down_blocks + 1)]
        self.down_blocks = nn.ModuleList(DownBlock2d(channels[i], channels[i + 1])
                                         for i in range(params.num_down_blocks))
        num_maps = num_kp * (2 if params.use_reference_keypoints else 1)
        self.join = SameBlock2d(channels[-1] + num_maps, channels[-1])
        self.residual = nn.Sequential(*(ResBlock2d(channels[-1]) for _ in range(params.num_residual_blocks)))
        self.up_blocks = nn.ModuleList(UpBlock2d(channels[i + 1], channels[i])
                                       for i in reversed(range(params.num_down_blocks)))
        self.final = nn.Conv2d(be, num_channels + 1, kernel_size=7, padding=3)
        self.num_channels = num_channels
        self.sigma = params.keypoint_sigma
        self.use_reference_keypoints = params.use_reference_keypoints
        self.use_background_mask = params.use_background_mask

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """v (B, C, H, W) -> features (B, C', H / 2^n, W / 2^n)."""
        out = self.first(image)
        for block in self.down_blocks:
            out = block(out)
        return out

    def decode(self, features: torch.Tensor, image: torch.Tensor, kp_reference: torch.Tensor,
               kp_target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. 3 from cached features.

        Args:
            features: :meth:`encode` of ``image`` (B, C', h, w). image: v (B, C, H, W).
            kp_reference: k (B, K, 2), the keypoints of v. kp_target: k' (B, K, 2).

        Returns:
            ``prediction`` m * v + (1 - m) * s (s alone without the background mask), ``generated`` s and ``mask``
            m (B, 1, H, W; zeros without the background mask), all in [0, 1].
        """
        size = (features.shape[2], features.shape[3])
        maps = [keypoint_maps(kp_target, size, self.sigma)]
        if self.use_reference_keypoints:
            maps.insert(0, keypoint_maps(kp_reference, size, self.sigma))
        out = self.residual(self.join(torch.cat([features, *(m.to(features.dtype) for m in maps)], dim=1)))
        for block in self.up_blocks:
            out = block(out)
        out = torch.sigmoid(self.final(out))
        generated, mask = out[:, :self.num_channels], out[:, self.num_channels:]
        if not self.use_background_mask:
            return {"prediction": generated, "generated": generated, "mask": torch.zeros_like(mask)}
        return {"prediction": mask * image + (1 - mask) * generated, "generated": generated, "mask": mask}

    def forward(self, image: torch.Tensor, kp_reference: torch.Tensor, kp_target: torch.Tensor
                ) -> dict[str, torch.Tensor]:
        """T(v; k; k') (Eq. 3): see :meth:`decode`."""
        return self.decode(self.encode(image), image, kp_reference, kp_target)


def build_image_discriminator(config: KPVPConfig) -> PatchDiscriminator:
    """D_im of Eq. 4: image (B, C, H, W) -> (feature maps, logit map (B, 1, h, w))."""
    params = config.image_discriminator
    return PatchDiscriminator(config.num_channels, params.block_expansion, params.num_blocks, params.max_features,
                              sn=params.sn)


# --------------------------------------------------------------------------------------------------------- stage 3


class StackedLSTM(nn.Module):
    """LSTM layers of the given hidden sizes applied in turn (batch first): (B, T, input_size) -> (B, T, last)."""

    def __init__(self, input_size: int, hidden_sizes: list[int]) -> None:
        super().__init__()
        sizes = [input_size, *hidden_sizes]
        self.layers = nn.ModuleList(nn.LSTM(sizes[i], sizes[i + 1], batch_first=True)
                                    for i in range(len(hidden_sizes)))
        self.output_size = sizes[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, input_size) -> (B, T, hidden_sizes[-1]) hidden states of the last layer."""
        for layer in self.layers:
            x, _ = layer(x)
        return x


def action_one_hot(actions: torch.Tensor | None, num_actions: int, batch: int, reference: torch.Tensor
                   ) -> torch.Tensor:
    """(B,) action indices -> (B, num_actions) one-hot rows on ``reference``'s device and dtype; (B, 0) for an
    unconditional model. Raises ValueError for missing actions of a conditional model or out-of-range indices."""
    if num_actions == 0:
        return reference.new_zeros(batch, 0)
    if actions is None:
        raise ValueError("this motion generator is class-conditional and needs an action per sequence")
    if actions.shape != (batch,) or int(actions.min()) < 0 or int(actions.max()) >= num_actions:
        raise ValueError(f"actions must be ({batch},) indices in [0, {num_actions}), got {actions.tolist()}")
    return torch.nn.functional.one_hot(actions.long(), num_actions).to(reference)


class MotionGenerator(nn.Module):
    """M of Eq. 5: a conditional VAE over future keypoint sequences k_{1:T} given c = [k_0, one-hot action].

    * encoder q(z | k_{1:T}, k_0, a): a :class:`StackedLSTM` over [k_t, c] for t = 1..T; linear layers from its last
      hidden state to the mean and log variance of z;
    * decoder p(k_{1:T} | z, k_0, a): a :class:`StackedLSTM` whose first input is a linear map of [z, c] and later
      inputs zeros (as the official code); each hidden state is mapped linearly to K x 2 coordinates through tanh.

    Shapes: keypoints (B, T, K, 2) and (B, K, 2) in [-1, 1]; actions (B,) indices (None when unconditional).
    """

    def __init__(self, num_kp: int, params: MotionGeneratorParams) -> None:
        super().__init__()
        self.num_kp = num_kp
        self.num_actions = len(params.actions)
        self.latent_dim = params.latent_dim
        condition = num_kp * 2 + self.num_actions
        self.encoder = StackedLSTM(num_kp * 2 + condition, params.hidden_sizes)
        self.to_mean = nn.Linear(self.encoder.output_size, params.latent_dim)
        self.to_logvar = nn.Linear(self.encoder.output_size, params.latent_dim)
        self.decoder_input = nn.Linear(params.latent_dim + condition, params.hidden_sizes[0])
        self.decoder = StackedLSTM(params.hidden_sizes[0], params.hidden_sizes)
        self.to_keypoints = nn.Linear(self.decoder.output_size, num_kp * 2)

    def condition(self, kp_initial: torch.Tensor, actions: torch.Tensor | None) -> torch.Tensor:
        """c = [k_0 flattened, one-hot action]: (B, 2K + num_actions)."""
        batch = kp_initial.shape[0]
        return torch.cat([kp_initial.reshape(batch, -1),
                          action_one_hot(actions, self.num_actions, batch, kp_initial)], dim=1)

    def encode(self, future: torch.Tensor, kp_initial: torch.Tensor, actions: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | k_{1:T}, k_0, a): future (B, T, K, 2) -> (mean, logvar), each (B, latent_dim)."""
        batch, steps = future.shape[:2]
        condition = self.condition(kp_initial, actions)[:, None].expand(-1, steps, -1)
        hidden = self.encoder(torch.cat([future.reshape(batch, steps, -1), condition], dim=2))[:, -1]
        return self.to_mean(hidden), self.to_logvar(hidden)

    def decode(self, z: torch.Tensor, kp_initial: torch.Tensor, actions: torch.Tensor | None, num_frames: int
               ) -> torch.Tensor:
        """p(k_{1:T} | z, k_0, a): z (B, latent_dim) -> keypoints (B, num_frames, K, 2) in (-1, 1)."""
        batch = z.shape[0]
        first = self.decoder_input(torch.cat([z, self.condition(kp_initial, actions)], dim=1))
        inputs = torch.cat([first[:, None], first.new_zeros(batch, num_frames - 1, first.shape[1])], dim=1)
        return torch.tanh(self.to_keypoints(self.decoder(inputs))).view(batch, num_frames, self.num_kp, 2)

    def forward(self, future: torch.Tensor, kp_initial: torch.Tensor, actions: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """Reconstruct k_{1:T} through the posterior (reparameterised sample): ``reconstruction`` (B, T, K, 2),
        ``mean`` and ``logvar`` (B, latent_dim)."""
        mean, logvar = self.encode(future, kp_initial, actions)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        return {"reconstruction": self.decode(z, kp_initial, actions, future.shape[1]), "mean": mean,
                "logvar": logvar}

    def sample(self, kp_initial: torch.Tensor, actions: torch.Tensor | None, num_frames: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Futures from the prior z ~ N(0, I) (Sec. 2, inference): kp_initial (B, K, 2) -> (B, num_frames, K, 2).
        ``generator`` (a CPU torch.Generator) fixes the draw."""
        z = torch.randn(kp_initial.shape[0], self.latent_dim, generator=generator)
        return self.decode(z.to(kp_initial), kp_initial, actions, num_frames)


class SequenceDiscriminator(nn.Module):
    """D_seq of Eq. 5: an LSTM over the flattened keypoints of each frame and a linear layer on its last hidden
    state: (B, T, K, 2) -> logits (B, 1)."""

    def __init__(self, num_kp: int, hidden_size: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(num_kp * 2, hidden_size, batch_first=True)
        self.linear = nn.Linear(hidden_size, 1)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        """See the class docstring."""
        hidden, _ = self.rnn(sequence.flatten(2))
        return self.linear(hidden[:, -1])


def build_motion_networks(config: KPVPConfig) -> tuple[MotionGenerator, SequenceDiscriminator]:
    """M and D_seq of ``config``."""
    params = config.motion_generator
    return (MotionGenerator(config.num_kp, params),
            SequenceDiscriminator(config.num_kp, params.discriminator_hidden_size))
