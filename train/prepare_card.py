"""The dataset card (``README.md``) of a prepared folder."""

from __future__ import annotations

from typing import Any

from train.prepare_layout import CONTEXT_DIR, FAILURES, MANIFEST, PrepareConfig

LONDON_ATTRIBUTION = (
    "Derived from the Face Research Lab London Set, Lisa DeBruine and Benedict Jones, 2017, figshare, "
    "doi:10.6084/m9.figshare.5047666.v5, licensed CC-BY 4.0 "
    "(https://creativecommons.org/licenses/by/4.0/). Changes: faces aligned and cropped, resized, "
    "and re-rendered as stylized modalities."
)


def dataset_card(
    config: PrepareConfig,
    rows: list[dict[str, Any]],
    failures: list[dict[str, Any]],
    modalities: list[str],
    unpaired: dict[str, list[str]] | None = None,
) -> str:
    """The README.md of a prepared folder: source, counts, modalities, licence, command."""
    identities = {s: sorted({r["identity"] for r in rows if r["split"] == s}) for s in ("train", "val")}
    lines = [
        "# Prepared PortraitGAN training data",
        "",
        f"- Source: `{config.source_dir}` ({config.source} layout)",
        f"- Crops: {config.size}x{config.size}, aligned on 68 dlib landmarks; landmarks in crop pixels",
        f"- Identities: {len(identities['train'])} train, {len(identities['val'])} val "
        f"(split by identity, val fraction {config.val_fraction}, seed {config.seed})",
        f"- Expressions: {', '.join(sorted({r['expression'] for r in rows}))}",
        "- Images per modality: " + ", ".join(f"{m} {sum(r['modality'] == m for r in rows)}" for m in modalities),
        (
            f"- Context crops: {config.context_size}x{config.context_size} (`{CONTEXT_DIR}/`), the same alignment "
            "with the face crop in the middle"
            if config.context_size
            else "- Context crops: none"
        ),
        f"- Photos that could not be used: {len(failures)} (see `{FAILURES}`)",
        *(
            f"- Photos without a `{modality}` image: {len(stems)}"
            + (f" ({', '.join(stems[:5])}{', ...' if len(stems) > 5 else ''})" if stems else "")
            for modality, stems in (unpaired or {}).items()
        ),
        "",
        "Modalities other than `photo` are pseudo-targets rendered from the aligned photo crop "
        "(built-in stylizers or Johnson et al. style networks), or real paired images cropped with the "
        "photo's alignment. They share the photo's landmarks.",
        "",
        f"`{MANIFEST}` has one JSON row per image: identity, expression, modality, split, path, landmarks "
        "(and context_path, context_size).",
        "",
        "Made with:",
        "",
        "```bash",
        config.command(),
        "```",
    ]
    if config.source == "london":
        lines += ["", "## Licence", "", LONDON_ATTRIBUTION]
    return "\n".join(lines) + "\n"
