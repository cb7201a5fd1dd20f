"""Hostile inputs to ``defectnet predict``: each ends in a one-line error or a correct answer, never a traceback.

Every input is generated here, in ``tmp_path``, from the bundled GaAs example (2.0 % Si and
0.67 % Zn on Ga; the shipped model finds Si and not Be or C, see tests/test_predict.py). Each
case runs the CLI in-process and asserts the exit code, that no traceback and no raw Python
warning reached the user, and either a stable part of the one-line error (and the file it
names) or the answer. ``common`` holds the runner, the expectations and the case builders;
each test module the cases of one kind of input.
"""
