"""The training configuration: one frozen dataclass, validated on construction, saved as
``config.yaml`` beside every run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from defectnet.errors import DefectnetError
from defectnet.model.augment import Augment
from defectnet.model.dataset import DISTRACTOR_MODES, SplitConfig
from defectnet.model.network import ModelConfig
from defectnet.settings import Settings

# The string-valued fields and what each accepts: one table, one check.
CHOICES = {
    "monitor": ("loss", "mae"),
    "monitor_split": ("val", "val_ood"),
    "optimizer": ("adam", "adamw"),
    "schedule": ("cosine", "constant"),
    "distractors": tuple(DISTRACTOR_MODES),
}


@dataclass(frozen=True)
class TrainConfig(Settings, what="training config"):
    """Everything that determines a training run (saved as ``config.yaml`` beside it).

    Attributes
    ----------
    arch : {'defectnet', 'paper'}
    spectrum_mode : {'total', 'gpdos'}
        Which pair of spectra the model sees (recorded in the checkpoint).
    model : dict
        Overrides of :class:`~defectnet.model.network.ModelConfig` fields.
    split : SplitConfig
    augment : Augment
    epochs, batch_size : int
    lr : float
        Peak learning rate.
    weight_decay : float
    optimizer : {'adam', 'adamw'}
    schedule : {'cosine', 'constant'}
        Cosine decay to 5 % of ``lr`` over ``epochs`` after a 1-epoch linear warm-up, or constant.
    patience : int
        Epochs without improvement of the monitored validation quantity before stopping.
    monitor : {'loss', 'mae'}
        What selects the best epoch and drives early stopping: the model's own validation
        loss, or the validation concentration MAE.
    monitor_split : {'val', 'val_ood'}
        Where it is measured: validation samples of the training hosts, or the calibration
        hosts held out whole (``split.calib_host_fraction`` / ``calib_hosts``), which selects
        the epoch that generalises best to hosts never seen rather than the one that fits
        the training hosts best; the OOD test hosts stay untouched either way. The other
        one is logged too (``val_ood_*`` in ``metrics.jsonl``) whenever there are such hosts.
    seed : int
        Seeds torch and the numpy Generator that shuffles and augments.
    max_minutes : float
        Wall-clock budget of the epoch loop; training stops after the epoch that exceeds it.
    threads : int
        torch intra-op threads.
    grad_clip : float
        Max gradient norm (0 = off).
    calibrate : bool
        After training, fit the presence temperature and the uncertainty scale on the
        validation set (defectnet arch).
    distractors : {'pool', 'stored'}
        Candidate lists: ``pool`` (default) redraws each training sample's distractors every
        epoch from its host's own dopant pool (elements present in other samples of that
        host), and fixes seeded ones for validation and test — so no element is absent by
        its name alone; ``stored`` uses the lists in the data file.
    init_from : str or None
        Fine-tuning: start from this checkpoint's weights (same architecture, grid,
        vocabulary and spectrum mode required).
    freeze : tuple of str
        Parameter-name prefixes (``conv``, ``to_tokens``, ``embed`` ...) whose weights
        stay fixed; each must match at least one parameter.
    oversample : dict
        {training host: k}: that host's training samples appear k times (an integer ≥ 1) in
        every epoch, so hosts that matter most keep their weight as the data grow (the
        textbook semiconductors among hundreds of hosts).
    """

    arch: str = "defectnet"
    spectrum_mode: str = "total"
    model: dict = field(default_factory=dict)
    split: SplitConfig = SplitConfig()
    augment: Augment = Augment()
    epochs: int = 60
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    schedule: str = "cosine"
    patience: int = 12
    monitor: str = "loss"
    monitor_split: str = "val"
    seed: int = 0
    max_minutes: float = 30.0
    threads: int = 2
    grad_clip: float = 1.0
    calibrate: bool = True
    distractors: str = "pool"
    init_from: str | None = None
    freeze: tuple = ()
    oversample: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "freeze", tuple(self.freeze))
        bad = {h: k for h, k in (self.oversample or {}).items() if not (isinstance(k, int) and k >= 1)}
        if bad:
            raise DefectnetError(f"oversample factors must be integers >= 1, got {bad}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise DefectnetError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.patience < 1 or self.threads < 1:
            raise DefectnetError("epochs, batch_size, patience, threads must be >= 1 and lr > 0")
        ModelConfig.from_dict({"arch": self.arch, **self.model})  # validates the overrides

    @classmethod
    def from_yaml(cls, path) -> TrainConfig:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise DefectnetError(f"config file {path} does not exist")
        try:
            d = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise DefectnetError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(d, dict):
            raise DefectnetError(f"{path}: expected a mapping of config keys")
        return cls.from_dict(d)
