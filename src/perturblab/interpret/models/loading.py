"""Loading a checkpoint as shipped into its adapter: the command line's entry (:func:`load_model`).

The layouts themselves (which files, where) are found by :mod:`.checkpoints`.
"""

from __future__ import annotations

from pathlib import Path

from ...exceptions import InputError, UnknownNameError
from .checkpoints import _OPTIONS, MODEL_KINDS, _layout_message, detect_model_kind

__all__ = ["load_model"]


def load_model(kind: str, path: str | Path, device=None, **options):
    """Load a checkpoint as shipped into its adapter: the entry point of the command line.

    Parameters
    ----------
    kind
        ``"geneformer"``, ``"scgpt"``, ``"own"`` or ``"auto"`` (:func:`detect_model_kind`).
    path
        Geneformer: the model folder; scGPT: the folder with ``best_model.pt``, ``args.json``, ``vocab.json``;
        own: the ``.pt`` file.
    device
        ``None``/"auto", "cpu" or "cuda".
    **options
        Adapter options; None values are ignored (unset command-line options). Geneformer:
        ``token_dictionary``, ``gene_median_file``, ``gene_id_key``, ``gene_mapping_file``, ``max_length``,
        ``special_tokens``, ``target_sum`` (see :meth:`GeneformerModel.from_pretrained`); scGPT:
        ``gene_id_key``, ``max_length``, ``include_zero_genes``, ``random_state``; own: none.

    Returns
    -------
    GeneTokenModel

    Raises
    ------
    InputError
        For a path with no recognisable layout (naming the files expected) or an option the kind does not take.
    UnknownNameError
        For an unknown ``kind``.

    Examples
    --------
    >>> model = load_model("geneformer", "Geneformer/Geneformer-V1-10M", gene_id_key="gene_ids")  # doctest: +SKIP
    >>> model = load_model("auto", "scGPT_human")  # doctest: +SKIP
    """
    from .geneformer import GeneformerModel
    from .own import OwnGeneTransformer
    from .scgpt import ScGPTModel

    if kind == "auto":
        kind = detect_model_kind(path)
    if kind not in MODEL_KINDS:
        raise UnknownNameError("model kind", kind, [*MODEL_KINDS, "auto"])
    given = {k: v for k, v in options.items() if v is not None}
    if bad := sorted(set(given) - set(_OPTIONS[kind])):
        allowed = ", ".join(_OPTIONS[kind]) or "none"
        raise InputError(f"option(s) {', '.join(bad)} do not apply to a {kind} model (options: {allowed}); drop them")
    path = Path(path)
    if kind == "geneformer":
        return GeneformerModel.from_pretrained(path, device=device, **given)
    if kind == "scgpt":
        return ScGPTModel.from_pretrained(path, device=device, **given)
    if not path.is_file():
        raise InputError(_layout_message(path))
    return OwnGeneTransformer.load(path, device=device)
