"""Every loss term of the paper, one function each, named after its equation.

Images are in [-1, 1]. Discriminator outputs are lists (one per level) of lists of features with
the patch logits last, as returned by :class:`MultiLevelDiscriminator`.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from portraitgan_hub.vgg import TEXTURE_LAYERS, VGG19Features

DiscriminatorOutputs = list[list[torch.Tensor]]


# --- Eq. 6 and 10: least-squares adversarial losses (Mao et al. 2017), summed over all levels ----
def lsgan_discriminator_loss(real: DiscriminatorOutputs, fake: DiscriminatorOutputs) -> torch.Tensor:
    """Eq. 6 with the least-squares form: 1/2 E[(D_i(x_i) - 1)^2] + 1/2 E[D_i(g_i)^2], summed over i."""
    return sum(
        0.5 * (F.mse_loss(r[-1], torch.ones_like(r[-1])) + F.mse_loss(f[-1], torch.zeros_like(f[-1])))
        for r, f in zip(real, fake)
    )


def lsgan_generator_loss(fake: DiscriminatorOutputs) -> torch.Tensor:
    """The generator's side of Eq. 10 (least squares): E[(D_i(G(I_A, L_B, c)) - 1)^2], summed over i."""
    return sum(F.mse_loss(f[-1], torch.ones_like(f[-1])) for f in fake)


# --- Eq. 5: feature matching -------------------------------------------------------------------
def feature_matching_loss(real: DiscriminatorOutputs, fake: DiscriminatorOutputs) -> torch.Tensor:
    """Eq. 5: || E D_k(I_B) - E D_k(G(I_A, L_B)) ||_1 over every intermediate layer of every D_k.

    The expectations are batch means of the features (the real batch is drawn from the pool of
    real samples, so real and fake batches need not be paired). Each layer's L1 is a mean over its
    elements, and layers are averaged per discriminator, as in pix2pixHD, so the weight beta does
    not depend on network width.
    """
    total = 0.0
    for real_features, fake_features in zip(real, fake):
        layers = list(zip(real_features[:-1], fake_features[:-1]))
        total = total + sum(F.l1_loss(f.mean(dim=0), r.detach().mean(dim=0)) for r, f in layers) / len(layers)
    return total


# --- Eq. 3: identity L1 ------------------------------------------------------------------------
def identity_loss(generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 3: || I_B - G(I_A, L_B, c_B) ||_1 (mean absolute error)."""
    return F.l1_loss(generated, target)


def hallucination_loss(generated: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Not in the paper: Eq. 3's L1 over the warp-guided G's hallucination region alone.

    ``generated``, ``target`` (B, 3, H, W) in [-1, 1]; ``region`` (B, 1, H, W) in {0, 1}, what G draws
    itself (an opened mouth; :func:`portraitgan_hub.warp_guidance.landmark_hallucination`). The mean
    absolute error over the region's pixels, 0 for a batch without any. Eq. 3 averages over the
    whole image, where an opened mouth is about 1 % of the pixels, so G's colour there got almost no
    gradient and the demo drew it as checkerboard noise after 12,800 steps. Normalising by the
    region's area follows the hole term of inpainting losses (Liu et al. 2018, partial convolutions).
    """
    keep = region.to(generated.dtype).expand_as(generated)
    return ((generated - target).abs() * keep).sum() / keep.sum().clamp_min(1.0)


# --- Eq. 11: cycle consistency -----------------------------------------------------------------
def cycle_loss(
    reconstructed: torch.Tensor, original: torch.Tensor, excluded: torch.Tensor | None = None
) -> torch.Tensor:
    """One direction of Eq. 11: || G(G(I_A, L_B, c), L_A, c') - I_A ||_1 (mean absolute error).

    ``excluded`` (B, 1, H, W) in {0, 1}, not in the paper: pixels left out of the mean, used for the
    warp-guided G's hallucination region of the way back (teeth the neutral face cannot show: asking
    for them exactly teaches G to hide them in its neutral output).
    """
    if excluded is None:
        return F.l1_loss(reconstructed, original)
    keep = (1 - excluded.to(reconstructed.dtype)).expand_as(reconstructed)
    return ((reconstructed - original).abs() * keep).sum() / keep.sum().clamp_min(1.0)


# --- Eq. 8-9: Gram-matrix texture loss ---------------------------------------------------------
def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Eq. 8: G(k, l) = <psi^k, psi^l>, normalised by C*H*W so it does not depend on image size."""
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)
    return flat @ flat.transpose(1, 2) / (channels * height * width)


def texture_loss(
    vgg: VGG19Features,
    generated: torch.Tensor,
    target: torch.Tensor,
    layers: tuple[str, ...] = TEXTURE_LAYERS,
) -> torch.Tensor:
    """Eq. 9 summed over VGG19 conv1_1..conv5_1: sum_L ||Gram_L(generated) - Gram_L(target)||^2.

    The squared Frobenius norm is taken per sample and averaged over the batch. VGG19 is frozen;
    gradients flow only into ``generated``.
    """
    # Gram matrices sum over every pixel: in bf16/fp16 they lose most of their precision, so the
    # texture term always runs in float32, also inside an autocast region (mixed-precision training).
    with torch.autocast(device_type=generated.device.type, enabled=False):
        generated_features = vgg(generated.float(), layers)
        with torch.no_grad():
            target_features = vgg(target.float(), layers)
        total = 0.0
        for name in layers:
            difference = gram_matrix(generated_features[name]) - gram_matrix(target_features[name])
            total = total + difference.pow(2).sum(dim=(1, 2)).mean()
    return total


def mask_penalty(mask: torch.Tensor) -> torch.Tensor:
    """GANimation's attention-mask regulariser (Pumarola et al. 2018, Eq. 4, without its total variation):
    the mean of the blend mask A (B, 1, H, W) in [0, 1], where 1 copies the input. Keeps A from
    saturating at 1, where its gradient vanishes and G would copy forever. Not in PortraitGAN."""
    return mask.float().mean()


#: Sobel magnitude (per pixel, image in [-1, 1], kernels divided by 8) above which a pixel of the
#: target is on an outline: a dark cartoon line or a pencil stroke on a light ground reaches 0.3-1.
OUTLINE_THRESHOLD = 0.15


def sobel_gradients(image: torch.Tensor) -> torch.Tensor:
    """Horizontal and vertical Sobel derivatives of every channel, (B, 2C, H, W), kernels divided by 8
    (a unit step between two pixels gives 0.5 on both sides); replicate padding keeps the size."""
    kernel = image.new_tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8
    kernels = torch.stack([kernel, kernel.T])[:, None].repeat(image.shape[1], 1, 1, 1)  # (2C, 1, 3, 3)
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(padded, kernels, groups=image.shape[1])


def outline_pixels(target: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) in {0, 1}: where the target's grey level has a Sobel magnitude above
    :data:`OUTLINE_THRESHOLD`, grown by one pixel so that a thin line's own pixels are included."""
    grey = target.float().mean(dim=1, keepdim=True)
    gx, gy = sobel_gradients(grey).unbind(dim=1)
    edges = ((gx**2 + gy**2).sqrt() > OUTLINE_THRESHOLD).float()[:, None]
    return F.max_pool2d(edges, 3, stride=1, padding=1)


def outline_loss(generated: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Not in the paper: Eq. 3's L1 over the target's outline pixels (:func:`outline_pixels`) alone.

    ``generated``, ``target`` (B, 3, H, W) in [-1, 1]; ``weights`` (B,) each sample's share (how much
    it changes modality, :func:`modality_change`; None: 1). Per sample the mean absolute error over
    its outline pixels (normalised by their area, as :func:`hallucination_loss` is), then the
    weighted batch mean. A pseudo-target's outlines are about 5 % of its pixels but most of what
    tells a cartoon from the photo, which a whole-image mean weighs at 5 %.
    """
    edges = outline_pixels(target.detach()).to(generated.dtype)
    error = ((generated - target).abs() * edges).sum(dim=(1, 2, 3))
    per_sample = error / (3 * edges.sum(dim=(1, 2, 3))).clamp_min(1.0)
    return per_sample.mean() if weights is None else (weights.to(per_sample) * per_sample).mean()


def gradient_loss(generated: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Not in the paper: the L1 distance between the Sobel gradients (:func:`sobel_gradients`) of
    ``generated`` and ``target`` (B, 3, H, W) in [-1, 1], per sample, then weighted by ``weights`` (B,)
    as in :func:`outline_loss`. Strokes and edges live in the gradients, which a blurred C lacks
    even where its mean colour is right (gradient losses of image restoration, e.g. Ma et al. 2020)."""
    difference = (sobel_gradients(generated) - sobel_gradients(target.detach())).abs()
    per_sample = difference.mean(dim=(1, 2, 3))
    return per_sample.mean() if weights is None else (weights.to(per_sample) * per_sample).mean()
