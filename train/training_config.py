"""The training configuration: one typed dataclass tree, read from YAML.

A YAML file may start with ``base: ../lite.yaml`` (a path relative to the file): the base is read
first and this file's keys are merged over it, section by section, so an ablation is the few keys
it changes. Command-line overrides ``key.sub=value`` are applied last; each value is parsed with
``yaml.safe_load`` (``optim.steps=10``, ``objective.cycle=0``, ``vgg_weights=null``).

The ``model`` section names a preset of :class:`PortraitGANConfig` (``preset: lite``) and overrides
any of its fields; the resolved configuration spells every field out. Or it names a published
checkpoint to fine-tune (``init_from: HUB_ID_OR_FOLDER``, optionally ``init_revision``): the
architecture then comes from that checkpoint's ``config.json``, and any field given here must agree
with it (see ``train/finetune.py``, which resolves it when the run starts).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from portraitgan_hub.config import PortraitGANConfig
from portraitgan_hub.objective import ObjectiveConfig

MIXED_PRECISION = ("no", "bf16", "fp16")
#: Parts of the generator ``optim.freeze`` can hold fixed (see ``train/finetune.py``).
FREEZABLE = ("encoder", "residual", "decoder")


@dataclass
class DataConfig:
    """A folder made by ``python -m train.prepare`` and how to read it."""

    path: str = "data/london256"
    #: Side the crops are resized to; None: the model's ``image_size``.
    image_size: int | None = None
    #: Per process; the global batch is ``batch_size * processes * optim.grad_accumulation``.
    batch_size: int = 1
    num_workers: int = 2
    #: Width of the landmark map's lines; None: the model's ``landmark_line_width``.
    line_width: int | None = None
    #: Seeds the pairing, augmentation and shuffling: a sample is a pure function of (seed, epoch, index).
    seed: int = 0
    flip_probability: float = 0.5
    max_scale: float = 0.0
    max_shift: float = 0.0
    train_split: str = "train"
    val_split: str = "val"
    #: Share of training samples that are synthetic pairs (train/dataset.py; 0 in the paper).
    synthetic_ratio: float = 0.0
    #: Which synthetic pairs: ``expression`` (warped to a random expression, back to the original)
    #: and ``teeth`` (a smile warped shut onto the neutral landmarks, back to the smile).
    synthetic_kinds: list[str] = field(default_factory=lambda: ["expression", "teeth"])
    #: Per-point landmark noise of a synthetic expression, as a fraction of the distance between the eyes.
    synthetic_noise: float = 0.01
    #: Share of samples read through a random window of the context crops (whole-picture conversion,
    #: train/dataset.py). Needs a folder prepared with context crops.
    context_ratio: float = 0.0
    #: Share of samples whose side B is another modality at a random strength (train/dataset.py).
    modality_mix_ratio: float = 0.0
    #: Probability that a neutral row whose smile (same person, same modality) opens the mouth is
    #: paired with that smile (opened-mouth pairs, train/dataset.py).
    opening_ratio: float = 0.0
    #: A second prepared folder (e.g. the original training data) mixed into fine-tuning, so that the
    #: modalities the new data leaves out are replayed and not forgotten; None: no replay.
    replay_path: str | None = None
    #: Fraction of each epoch's samples drawn from ``replay_path`` (0 <= ratio < 1).
    replay_ratio: float = 0.5


@dataclass
class OptimConfig:
    """Adam as in pix2pixHD: lr 2e-4, betas (0.5, 0.999), constant, then linear decay to 0."""

    lr: float = 2e-4
    #: Discriminator learning rate; None: same as ``lr``.
    lr_discriminator: float | None = None
    betas: tuple[float, float] = (0.5, 0.999)
    #: Optimizer steps of the whole run (each is ``grad_accumulation`` batches).
    steps: int = 20_000
    #: Step at which the linear decay to 0 starts; None: half of ``steps`` (pix2pixHD's 100 + 100 epochs).
    decay_start: int | None = None
    grad_accumulation: int = 1
    #: ``no``, ``bf16`` or ``fp16`` (fp16 uses accelerate's loss scaling; GPU only).
    mixed_precision: str = "no"
    #: Store G's and D's weights channels-last (NHWC): faster convolutions on a CPU through oneDNN,
    #: measured in benchmarks/train_step.py.
    channels_last: bool = False
    #: ``torch.compile`` G and D (accelerate's ``dynamo_backend="inductor"``): faster steps after
    #: minutes of compilation (6-9 % after 15 min on a 2-core CPU), for runs of several hours; needs a
    #: C++ compiler on a CPU.
    compile: bool = False
    #: Threads of this process's torch (``torch.set_num_threads``); None: torch's default (the cores).
    threads: int | None = None
    #: Clip the global gradient norm of each network; None: no clipping.
    max_grad_norm: float | None = None
    #: Generator parts held fixed: any of ``encoder`` (stem and downsampling, except the stem weights
    #: of modalities added by ``model.init_from``), ``residual`` (bottleneck blocks), ``decoder``.
    freeze: list[str] = field(default_factory=list)
    #: Blocks of every PatchGAN held fixed, counted from its input (FreezeD, Mo et al. 2020): a
    #: fine-tune on a few images adapts only D's upper layers. 0: D trains whole.
    freeze_discriminator_layers: int = 0
    #: Multiplies the updates of the stem weights of modalities added by ``model.init_from`` (they
    #: start at zero and are the new modality's only way into G; see ``train/finetune.py``).
    new_modality_lr_scale: float = 1.0
    #: An existing modality whose stem weights the added modalities start from (G asked for the new
    #: one starts as G asked for this one: textual inversion's initializer token); None: zero weights,
    #: "no modality".
    new_modality_init: str | None = None


@dataclass
class TrainingConfig:
    """Everything ``train/train.py`` needs; saved resolved into the run folder and every checkpoint."""

    model: PortraitGANConfig = field(default_factory=lambda: PortraitGANConfig.preset("lite"))
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    output_dir: str = "runs/lite"
    #: Seeds model initialisation and the real-sample pools (the data has its own ``data.seed``).
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    sample_every: int = 500
    #: Rows of the sample grid (fixed validation pairs, or training pairs without a val split).
    sample_count: int = 4
    validate_every: int = 2000
    #: Validation pairs per evaluation; None: the whole val split.
    validation_samples: int | None = 64
    #: VGG19 weights for the texture loss: file, folder or Hub id (or ``$PORTRAITGAN_VGG19_WEIGHTS``).
    vgg_weights: str | None = None
    #: Random VGG19 features instead of ImageNet ones: smoke tests only.
    allow_random_vgg: bool = False
    tensorboard: bool = True
    progress: bool = True
    #: ``torch.use_deterministic_algorithms(True)`` for bit-exact resumes (slower on GPU).
    deterministic: bool = False
    #: Where the model section came from, for the record; its fields are spelled out in ``model``.
    model_preset: str | None = "lite"
    #: Fine-tune from this published checkpoint (Hub id or folder), written as ``model.init_from``.
    init_from: str | None = None
    #: Hub revision (branch, tag, commit) of ``init_from``, written as ``model.init_revision``.
    init_revision: str | None = None
    #: The ``model`` fields the config file gave explicitly (checked against ``init_from``'s config).
    model_fields_given: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        checks = {
            "optim.steps": self.optim.steps >= 1,
            "optim.grad_accumulation": self.optim.grad_accumulation >= 1,
            "data.batch_size": self.data.batch_size >= 1,
            "data.num_workers": self.data.num_workers >= 0,
            "keep_checkpoints": self.keep_checkpoints >= 1,
            "checkpoint_every": self.checkpoint_every >= 1,
            "sample_every": self.sample_every >= 1,
            "validate_every": self.validate_every >= 1,
            "log_every": self.log_every >= 1,
            "optim.lr": self.optim.lr > 0,
            "data.replay_ratio": 0 <= self.data.replay_ratio < 1,
            "optim.new_modality_lr_scale": self.optim.new_modality_lr_scale > 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid training config values: {', '.join(bad)}")
        if self.optim.threads is not None and self.optim.threads < 1:
            raise ValueError(f"optim.threads must be a positive number of threads or null, got {self.optim.threads}")
        if self.optim.mixed_precision not in MIXED_PRECISION:
            raise ValueError(
                f"optim.mixed_precision must be one of {MIXED_PRECISION}, got {self.optim.mixed_precision!r}"
            )
        if self.optim.decay_start is not None and self.optim.decay_start < 0:
            raise ValueError(f"optim.decay_start must be >= 0, got {self.optim.decay_start}")
        unknown = sorted(set(self.optim.freeze) - set(FREEZABLE))
        if unknown:
            raise ValueError(f"optim.freeze: unknown parts {unknown}; choose from {list(FREEZABLE)}")
        if self.init_from is not None and self.model_preset is not None:
            raise ValueError(
                "model.preset and model.init_from cannot both be set: the architecture of a fine-tune comes "
                "from the checkpoint's config.json (set model.preset: null)"
            )

    # --- derived values ---------------------------------------------------------------------------
    @property
    def image_size(self) -> int:
        return self.data.image_size or self.model.image_size

    @property
    def line_width(self) -> int:
        return self.data.line_width or self.model.landmark_line_width

    @property
    def decay_start(self) -> int:
        """Step where the linear decay starts (at most ``optim.steps``: a shortened run just decays less)."""
        return (
            self.optim.steps // 2 if self.optim.decay_start is None else min(self.optim.decay_start, self.optim.steps)
        )

    # --- serialisation ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["optim"]["betas"] = list(self.optim.betas)
        preset = data.pop("model_preset")
        data["model"] = {"preset": preset, **data["model"]} if preset else data["model"]
        data.pop("model_fields_given")
        init = {"init_from": data.pop("init_from"), "init_revision": data.pop("init_revision")}
        if init["init_from"] is not None:
            data["model"] = {**{k: v for k, v in init.items() if v is not None}, **data["model"]}
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        data = dict(data)
        data.pop("base", None)
        model = dict(data.pop("model", None) or {})
        preset = model.pop("preset", None)
        init = {key: model.pop(key, None) for key in ("init_from", "init_revision")}
        for key, value in init.items():
            if value is not None and not isinstance(value, str):
                raise ValueError(f"model.{key} must be a string, got {value!r}")
        _check_keys(model, PortraitGANConfig, "model")
        model = _coerce_fields(model, PortraitGANConfig, "model")
        model_config = PortraitGANConfig.preset(preset, **model) if preset else PortraitGANConfig(**model)
        sections = {"objective": ObjectiveConfig, "data": DataConfig, "optim": OptimConfig}
        built: dict[str, Any] = {}
        for name, section_type in sections.items():
            values = data.pop(name, None) or {}
            if not isinstance(values, dict):
                raise ValueError(f"{name} must be a mapping, got {values!r}")
            _check_keys(values, section_type, name)
            built[name] = section_type(**_coerce_fields(values, section_type, name))
        internal = ("model", "model_preset", "init_from", "init_revision", "model_fields_given")
        _check_keys(data, cls, "", exclude=(*internal, *sections))
        top = _coerce_fields(data, cls)
        return cls(
            model=model_config,
            model_preset=preset,
            **init,
            model_fields_given=tuple(sorted(model)),
            **built,
            **top,
        )


# --- reading YAML -----------------------------------------------------------------------------------
def read_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML file with its ``base:`` chain merged in (the file's own keys win)."""
    path = Path(path).resolve()
    if path in _seen:
        raise ValueError(f"config files include each other in a loop: {' -> '.join(map(str, (*_seen, path)))}")
    if not path.is_file():
        raise FileNotFoundError(f"training config {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML ({error}); expected a training config mapping") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a YAML mapping")
    base = data.pop("base", None)
    if base is None:
        return data
    return merge(read_yaml(path.parent / base, (*_seen, path)), data)


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``, recursing into mappings; other values are replaced."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (values parsed with ``yaml.safe_load``) to a nested dict."""
    out = merge(data, {})
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"overrides look like key.sub=value, got {item!r}")
        value = yaml.safe_load(text) if text else None
        *parents, leaf = key.strip().split(".")
        node = out
        for part in parents:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ValueError(f"cannot set {key}: {part} is not a section")
            else:
                child = node[part] = dict(child)
            node = child
        node[leaf] = value
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainingConfig:
    """The training config from a YAML file (with its ``base:`` chain) and dotted overrides."""
    data = read_yaml(path) if path is not None else {}
    return TrainingConfig.from_dict(apply_overrides(data, list(overrides or [])))


# --- typed fields -----------------------------------------------------------------------------------
def _check_keys(values: dict[str, Any], cls: type, section: str, exclude: tuple[str, ...] = ()) -> None:
    known = {f.name for f in dataclasses.fields(cls)} - set(exclude)
    unknown = sorted(set(values) - known)
    if unknown:
        prefix = f"{section}." if section else ""
        names = ", ".join(prefix + key for key in unknown)
        raise ValueError(f"unknown training config keys: {names}; known {section or 'top-level'} keys: {sorted(known)}")


def _coerce_fields(values: dict[str, Any], cls: type, section: str = "") -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    prefix = f"{section}." if section else ""
    return {key: _coerce(value, hints[key], prefix + key) for key, value in values.items()}


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    """Check ``value`` against a field's annotation, converting what YAML reads loosely.

    YAML 1.1 reads ``2e-4`` as a string and ``10`` as an int where a float is meant; both are
    accepted for float fields. Anything that does not fit is a ValueError naming the key.
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, name)
            except ValueError as error:
                errors.append(str(error))
        raise ValueError(errors[0])
    if origin is typing.Literal:
        if value in args:
            return value
        raise ValueError(f"{name} must be one of {args}, got {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ValueError(f"{name} must have {len(args)} items, got {value!r}")
            return tuple(_coerce(v, a, name) for v, a in zip(value, args))
        item = args[0] if args else Any
        return origin(_coerce(v, item, name) for v in value)
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ValueError(f"{name} must be a number, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{name} must be true or false, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        if value is False and name == "optim.mixed_precision":
            return "no"  # YAML 1.1 reads an unquoted `no` (as in optim.mixed_precision=no) as false
        raise ValueError(f"{name} must be a string, got {value!r}")
    return value
