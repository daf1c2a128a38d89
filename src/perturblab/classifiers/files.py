"""Fitted classifiers from files, and content checksums that identify a fitted classifier in a run's settings.

- :func:`load_classifier_file`: a CellTypist model (``.pkl``, read by celltypist's loader: a pickle, so only
  files you name explicitly) or a scikit-learn estimator serialised with skops (``.skops``; skops refuses
  types it does not trust, so no code from the file runs). Arbitrary pickles are refused.
- :func:`classifier_checksum`: ``sha256`` of a deterministic serialisation (skops for scikit-learn estimators,
  the tensors of a torch module's ``state_dict``), so that a resumed audit knows a classifier changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..exceptions import InputError

__all__ = ["CLASSIFIER_FILE_KINDS", "classifier_checksum", "file_checksum", "load_classifier_file"]

#: File kinds :func:`load_classifier_file` reads, by suffix.
CLASSIFIER_FILE_KINDS = {".pkl": "celltypist", ".skops": "skops"}


def file_checksum(path) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def load_classifier_file(path, *, representation: str = "log1p"):
    """A fitted classifier from a file: a CellTypist model (``.pkl``) or a skops-serialised scikit-learn estimator
    (``.skops``).

    **Security:** a ``.pkl`` file is loaded only as a CellTypist model, through celltypist's own loader, which
    unpickles it: unpickling runs code stored in the file, so pass only files you trust. A ``.skops`` file is read
    with ``skops.io.load``, which refuses any type it does not trust by default (no code runs); the untrusted types
    are named in the error. Other pickles (``joblib``, ``.pickle``) are refused: re-save your estimator with
    ``skops.io.dump(estimator, "model.skops")``.

    Parameters
    ----------
    path
        ``.pkl`` (CellTypist) or ``.skops`` file.
    representation
        What a scikit-learn estimator reads (see :func:`~perturblab.classifiers.wrap`): ``"log1p"`` (default)
        or ``"counts"``. The estimator must have been fitted on a DataFrame whose columns are gene names
        (``feature_names_in_``).

    Returns
    -------
    CellTypeClassifier
        Fitted; its ``checksum_`` attribute is the file's ``sha256``.

    Raises
    ------
    InputError
        Missing file, unknown suffix, untrusted types in a skops file, an estimator without gene names.

    Examples
    --------
    A logistic regression fitted on a DataFrame whose columns are genes, saved with skops and read back:

    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> import skops.io
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = pd.DataFrame([[0.0, 3.0], [0.1, 2.5], [3.0, 0.0], [2.8, 0.2]], columns=["MS4A1", "NKG7"])
    >>> path = Path(tempfile.mkdtemp()) / "model.skops"
    >>> skops.io.dump(LogisticRegression().fit(X, ["B", "B", "NK", "NK"]), path)
    >>> clf = load_classifier_file(path)
    >>> print(clf)
    SklearnClassifier(LogisticRegression, 2 genes, 2 classes, log1p)
    >>> clf.checksum_.startswith("sha256:")
    True
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"classifier file {str(path)!r} not found; pass the path of a .pkl (CellTypist) or .skops "
                         "(scikit-learn via skops) file")
    kind = CLASSIFIER_FILE_KINDS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"cannot read classifier file {path.name}: use a CellTypist model (.pkl) or a scikit-learn "
                         "estimator saved with skops.io.dump (.skops); other pickles are refused (they run code)")
    if kind == "celltypist":
        from .celltypist import CellTypistClassifier

        clf = CellTypistClassifier.from_model(path)
    else:
        clf = _load_skops(path, representation)
    clf.checksum_ = file_checksum(path)
    return clf


def _load_skops(path: Path, representation: str):
    import skops.io as sio

    from .wrap import SklearnClassifier

    untrusted = sio.get_untrusted_types(file=path)
    if untrusted:
        raise InputError(f"{path.name} holds types skops does not trust ({', '.join(untrusted[:10])}); perturblab "
                         "loads only trusted scikit-learn objects: save a plain scikit-learn estimator or Pipeline")
    try:
        est = sio.load(path, trusted=None)
    except Exception as err:  # skops raises several types for corrupt files
        raise InputError(f"cannot read {path.name} with skops ({' '.join(str(err).split())[:200]})") from None
    genes = getattr(est, "feature_names_in_", None)
    if genes is None:
        raise InputError(f"the estimator in {path.name} has no gene names (feature_names_in_); fit it on a DataFrame "
                         "whose columns are the genes, or wrap it in Python: plab.classifiers.wrap(est, genes=...)")
    return SklearnClassifier(est, list(genes), representation)


def classifier_checksum(clf) -> str:
    """A content checksum of a fitted classifier (``sha256:<hex>``), for a run's settings fingerprint.

    In order: ``checksum_`` (set by :func:`load_classifier_file`: the file's); a wrapped scikit-learn estimator's
    skops serialisation (deterministic) with its genes and representation; a wrapped torch module's ``state_dict``
    tensors with genes and classes; a CellTypist model's classifier and scaler (skops); any other object's pickle
    (a best effort: two equal objects pickle alike, but a function's checksum covers its code object only).
    """
    if getattr(clf, "checksum_", None):
        return str(clf.checksum_)
    h = hashlib.sha256()
    est = getattr(clf, "estimator", None)
    try:
        import torch

        module = est if isinstance(est, torch.nn.Module) else None
    except ImportError:  # pragma: no cover
        module = None
    if module is not None:
        for k, v in module.state_dict().items():
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
    elif est is not None and hasattr(est, "get_params"):
        h.update(_skops_bytes(est))
    elif hasattr(clf, "model_") and hasattr(clf.model_, "scaler"):  # CellTypist
        h.update(_skops_bytes(clf.model_.classifier))
        h.update(_skops_bytes(clf.model_.scaler))
    elif est is not None and hasattr(est, "__code__"):
        h.update(est.__code__.co_code)
        h.update(repr(est.__code__.co_consts).encode())
    else:
        import pickle

        h.update(pickle.dumps(clf, protocol=4))
    for attr in ("genes_", "classes_"):
        h.update("\x00".join(map(str, np.asarray(getattr(clf, attr, [])).tolist())).encode())
    h.update(str(getattr(clf, "representation", "")).encode())
    return "sha256:" + h.hexdigest()


def _skops_bytes(obj) -> bytes:
    """A canonical skops serialisation of ``obj``: skops' schema with its object ids renumbered in order of
    appearance and its array files replaced by their content hashes (the raw archive holds ``id()`` values and
    timestamps, so two dumps of one estimator differ byte-wise; this canonical form does not)."""
    import io
    import json
    import zipfile

    import skops.io as sio

    try:
        raw = sio.dumps(obj)
    except Exception:  # an object skops cannot serialise: its pickle (deterministic for plain data)
        import pickle

        return pickle.dumps(obj, protocol=4)
    archive = zipfile.ZipFile(io.BytesIO(raw))
    members = {n: hashlib.sha256(archive.read(n)).hexdigest() for n in archive.namelist() if n != "schema.json"}
    ids: dict = {}

    def canon(node):
        if isinstance(node, dict):
            return {k: (ids.setdefault(v, len(ids)) if k == "__id__" else canon(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [canon(v) for v in node]
        if isinstance(node, str) and node in members:
            return members[node]
        return node

    schema = canon(json.loads(archive.read("schema.json")))
    return json.dumps(schema, sort_keys=True).encode()
