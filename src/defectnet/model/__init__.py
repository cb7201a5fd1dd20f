"""DefectNet: the model, its training, evaluation, checkpoints and baselines.

``network`` (the architectures), ``architectures`` (their registry, ``build_model``), ``dataset``
(training files, splits, augmentation), ``train``, ``evaluate``, ``checkpoint`` (``save_checkpoint``,
``load_model``), ``baselines``, ``commands`` (the ``train`` / ``evaluate`` subcommands). Importing this
package is cheap; torch is imported by the submodules that need it.
"""
