"""Datasets: the SQLite store, the resumable Dask generation pipeline and the training-file export.

``defectnet generate --config my.yaml --out data/my.sqlite`` fills a store
(:mod:`defectnet.data.store`) with pristine hosts, force-constant patches and doped
samples (:mod:`defectnet.data.generate`); ``defectnet dataset export`` turns it
(:mod:`defectnet.data.export`) into the HDF5/NPZ training file the model reads
(:mod:`defectnet.data.training_file`). Submodules are imported on use: Dask, h5py and
umap-learn are only loaded by what needs them.

This package directory also holds shipped data files (``data/hosts/`` of the host library).
"""
