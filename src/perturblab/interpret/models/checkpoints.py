"""Checkpoint directories as the models ship them, and one entry point from a directory to an adapter.

- Geneformer (Hugging Face repository ``ctheodoris/Geneformer``): a model folder holds ``config.json`` and
  ``model.safetensors`` or ``pytorch_model.bin``; the dictionaries live in the ``geneformer/`` package folder
  of the repository - V2 (Genecorpus-104M): ``geneformer/token_dictionary_gc104M.pkl``,
  ``gene_median_dictionary_gc104M.pkl``, ``ensembl_mapping_dict_gc104M.pkl``; V1 (Genecorpus-30M):
  ``geneformer/gene_dictionaries_30m/token_dictionary_gc30M.pkl`` (and the ``gene_median`` / ``ensembl_mapping``
  companions), or, in releases before 2024, ``geneformer/token_dictionary.pkl`` and
  ``geneformer/gene_median_dictionary.pkl``; the 2024 releases of the 4,096-token models named theirs
  ``*_gc95M.pkl``. The model folder is the repository root (its default model) or a sub-folder
  (``Geneformer-V1-10M``, ``Geneformer-V2-104M``, ``gf-12L-95M-i4096``, ``gf-12L-30M-i2048``,
  ``geneformer-12L-30M``...).
- scGPT (``bowang-lab/scGPT`` model folders): ``best_model.pt``, ``args.json``, ``vocab.json``.
- perturblab's own model: one ``.pt`` file written by :meth:`OwnGeneTransformer.save`.

:func:`load_model` is what the command line calls: ``load_model(kind, path, **options)``.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

from ...exceptions import InputError, PerturblabWarning
from ..tokenizers import load_gene_dict

__all__ = [
    "GENEFORMER_DICTIONARIES",
    "GENEFORMER_WEIGHTS",
    "MODEL_KINDS",
    "SCGPT_FILES",
    "GeneformerFiles",
    "detect_model_kind",
    "find_geneformer_files",
    "find_scgpt_files",
]

logger = logging.getLogger(__name__)

#: Model kinds :func:`load_model` knows.
MODEL_KINDS = ("geneformer", "scgpt", "own")

#: Weight files of a Hugging Face model folder (any one of them).
GENEFORMER_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                      "pytorch_model.bin.index.json")

#: Dictionary sets as Geneformer ships them: (version, token dictionary, gene medians, Ensembl mapping or None),
#: paths relative to a dictionary folder (the model folder, its ``geneformer/``, or ``../geneformer/``).
GENEFORMER_DICTIONARIES = (
    ("V2", "token_dictionary_gc104M.pkl", "gene_median_dictionary_gc104M.pkl", "ensembl_mapping_dict_gc104M.pkl"),
    ("V2", "token_dictionary_gc95M.pkl", "gene_median_dictionary_gc95M.pkl", "ensembl_mapping_dict_gc95M.pkl"),
    ("V1", "gene_dictionaries_30m/token_dictionary_gc30M.pkl", "gene_dictionaries_30m/gene_median_dictionary_gc30M.pkl",
     "gene_dictionaries_30m/ensembl_mapping_dict_gc30M.pkl"),
    ("V1", "token_dictionary_gc30M.pkl", "gene_median_dictionary_gc30M.pkl", "ensembl_mapping_dict_gc30M.pkl"),
    ("V1", "token_dictionary.pkl", "gene_median_dictionary.pkl", None),
)

#: Files of an scGPT model folder (all three).
SCGPT_FILES = ("best_model.pt", "args.json", "vocab.json")

# options each kind of model accepts in load_model (besides device)
_OPTIONS = {
    "geneformer": ("token_dictionary", "gene_median_file", "gene_id_key", "gene_mapping_file", "max_length",
                   "special_tokens", "target_sum"),
    "scgpt": ("gene_id_key", "max_length", "include_zero_genes", "random_state"),
    "own": (),
}


@dataclass(frozen=True)
class GeneformerFiles:
    """The files of a Geneformer checkpoint (see :func:`find_geneformer_files`).

    Attributes
    ----------
    folder
        The model folder (``config.json`` and weights).
    config
        ``folder / "config.json"``.
    weights
        The weight file found (``model.safetensors``, ``pytorch_model.bin`` or a shard index).
    token_dictionary, gene_median_file
        The dictionaries used.
    gene_mapping_file
        Geneformer's Ensembl mapping dictionary, or None.
    version
        ``"V1"`` (2,048 positions), ``"V2"`` (4,096) or ``"custom"``, from the dictionaries and the config.
    architecture
        ``config.json``'s first architecture (``"BertForMaskedLM"`` for the pre-trained models).
    """

    folder: Path
    config: Path
    weights: Path
    token_dictionary: Path
    gene_median_file: Path
    gene_mapping_file: Path | None
    version: str
    architecture: str


def _layout_message(path: Path) -> str:
    return (
        f"{path} has no recognisable checkpoint layout: a Geneformer model folder holds config.json and one of "
        f"{', '.join(GENEFORMER_WEIGHTS)} (dictionaries in geneformer/: token_dictionary_gc104M.pkl and "
        "gene_median_dictionary_gc104M.pkl for V2, gene_dictionaries_30m/token_dictionary_gc30M.pkl and "
        "gene_median_dictionary_gc30M.pkl or token_dictionary.pkl and gene_median_dictionary.pkl for V1), an scGPT "
        f"folder holds {', '.join(SCGPT_FILES)}, perturblab's own model is one .pt file; pass the folder that "
        "holds these files"
    )


def _read_config(path: Path) -> dict:
    try:
        return json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read {path / 'config.json'}: {err}; pass a Hugging Face model folder") from None


def _partner(file: Path, kind: str, source: str = "token_dictionary") -> Path:
    """The dictionary of ``kind`` (``token_dictionary``, ``gene_median_dictionary``, ``ensembl_mapping_dict``) that
    ships next to ``file``, a ``source`` dictionary: ``token_dictionary_gc30M.pkl`` ->
    ``gene_median_dictionary_gc30M.pkl``."""
    return file.with_name(file.name.replace(source, kind))


def find_geneformer_files(
    path: str | Path,
    token_dictionary: str | Path | None = None,
    gene_median_file: str | Path | None = None,
    gene_mapping_file: str | Path | None = None,
) -> GeneformerFiles:
    """Find the model and dictionary files of a Geneformer checkpoint laid out as shipped.

    Parameters
    ----------
    path
        The model folder: ``config.json`` plus one of :data:`GENEFORMER_WEIGHTS`.
    token_dictionary, gene_median_file, gene_mapping_file
        Explicit files; they override the lookup. When only the token dictionary is given, the gene median
        (and mapping) file shipped next to it is used (``token_dictionary_gc30M.pkl`` ->
        ``gene_median_dictionary_gc30M.pkl``).

    Returns
    -------
    GeneformerFiles

    Notes
    -----
    Dictionaries are searched in ``path``, ``path/geneformer`` and ``path/../geneformer``: first perturblab's
    ``token_dictionary.json`` / ``gene_median_dictionary.json`` in ``path`` (written by
    :meth:`GeneformerModel.save_pretrained`), then the sets of :data:`GENEFORMER_DICTIONARIES`, V2 first for a
    model with >= 4,096 positions, V1 first otherwise. A set is taken only when its largest token id fits the
    model's ``vocab_size``; among those, one with exactly ``vocab_size`` tokens is preferred (the pre-trained
    models' dictionaries have exactly that size, so a V1 model gets the V1 dictionary of a repository that
    holds both). A dictionary of another size is used with a warning.

    Raises
    ------
    InputError
        If ``path`` is not a model folder (the message lists the files expected), an explicit file does not
        exist, or no dictionary set found fits the model.
    """
    folder = Path(path)
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise InputError(_layout_message(folder))
    weights = next((folder / w for w in GENEFORMER_WEIGHTS if (folder / w).is_file()), None)
    if weights is None:
        raise InputError(
            f"{folder} has config.json but no weights ({', '.join(GENEFORMER_WEIGHTS)}); Geneformer's weights are "
            "Git LFS files: run 'git lfs pull' in the clone or download the folder again"
        )
    config = _read_config(folder)
    vocab_size = int(config.get("vocab_size", 0))
    positions = int(config.get("max_position_embeddings", 0))
    architecture = str((config.get("architectures") or ["BertForMaskedLM"])[0])
    for given in (token_dictionary, gene_median_file, gene_mapping_file):
        if given is not None and not Path(given).is_file():
            raise InputError(f"dictionary file {given} does not exist; pass an existing file")
    explicit_mapping = None if gene_mapping_file is None else Path(gene_mapping_file)
    if token_dictionary is not None or gene_median_file is not None:
        if token_dictionary is not None:
            tok = Path(token_dictionary)
            med = Path(gene_median_file) if gene_median_file is not None else _partner(tok, "gene_median_dictionary")
        else:
            med = Path(str(gene_median_file))
            tok = _partner(med, "token_dictionary", source="gene_median_dictionary")
        for file, option in ((tok, "token_dictionary"), (med, "gene_median_file")):
            if not file.is_file() or tok == med:
                raise InputError(f"no {option} file found next to the other dictionary (looked for {file}); pass "
                                 f"{option}")
        mapping = explicit_mapping or _partner(tok, "ensembl_mapping_dict")
        found_mapping = mapping if mapping.is_file() and mapping != tok else None
        reason, version, size = _check_fits(tok, vocab_size, positions)
        if reason is not None:
            raise InputError(f"token dictionary {tok} does not fit the model {folder}: {reason}; pass the dictionary "
                             "the model was trained with")
        _warn_size(tok, size, vocab_size)
        return GeneformerFiles(folder, folder / "config.json", weights, tok, med, found_mapping, version, architecture)

    dict_folders = [folder, folder / "geneformer", folder.parent / "geneformer"]
    candidates: list[tuple[Path, Path, Path | None]] = []
    if (folder / "token_dictionary.json").is_file() and (folder / "gene_median_dictionary.json").is_file():
        candidates.append((folder / "token_dictionary.json", folder / "gene_median_dictionary.json", None))
    v2_first = positions >= 4096
    for _, tok_name, med_name, map_name in sorted(GENEFORMER_DICTIONARIES, key=lambda s: (s[0] == "V2") != v2_first):
        for d in dict_folders:
            if (d / tok_name).is_file() and (d / med_name).is_file():
                candidates.append((d / tok_name, d / med_name, None if map_name is None else d / map_name))
    rejected, fitting = [], []
    for tok, med, shipped_mapping in candidates:
        reason, version, size = _check_fits(tok, vocab_size, positions)
        if reason is None:
            fitting.append((size != vocab_size, tok, med, shipped_mapping, version, size))  # exact size first
        else:
            rejected.append(f"{tok} ({reason})")
    if fitting:
        _, tok, med, shipped_mapping, version, size = min(fitting, key=lambda f: f[0])
        _warn_size(tok, size, vocab_size)
        chosen = explicit_mapping or shipped_mapping
        chosen = chosen if chosen is not None and chosen.is_file() else None
        return GeneformerFiles(folder, folder / "config.json", weights, tok, med, chosen, version, architecture)
    if rejected:
        raise InputError(
            f"no Geneformer dictionary found for {folder} fits its config.json (vocab_size {vocab_size}): "
            f"{'; '.join(rejected)}; pass token_dictionary and gene_median_file (--token-dictionary, "
            "--gene-median-file)"
        )
    raise InputError(
        f"no Geneformer dictionaries found for {folder}: looked for token_dictionary_gc104M.pkl, "
        "gene_dictionaries_30m/token_dictionary_gc30M.pkl and token_dictionary.pkl (with their gene_median "
        f"companions) in {', '.join(str(d) for d in dict_folders)}; pass token_dictionary and gene_median_file "
        "(--token-dictionary, --gene-median-file)"
    )


def _warn_size(token_file: Path, size: int, vocab_size: int) -> None:
    if vocab_size and size != vocab_size:
        warnings.warn(
            f"token dictionary {token_file} has {size} tokens but the model's vocabulary has {vocab_size} "
            "(config.json vocab_size); the pre-trained Geneformer models use a dictionary of exactly that size, so "
            "check that this is the dictionary the model was trained with",
            PerturblabWarning,
            stacklevel=3,
        )


def _check_fits(token_file: Path, vocab_size: int, positions: int) -> tuple[str | None, str, int]:
    """``(reason it does not fit or None, version, number of tokens)`` of a token dictionary for a model.

    The version is ``"V2"`` for a dictionary with ``<cls>``/``<eos>`` and a 4,096-position model, ``"V1"`` for
    one without them and 2,048 positions, else ``"custom"``.
    """
    tokens = load_gene_dict(token_file)
    ids = [int(v) for v in tokens.values()]
    special = "<cls>" in tokens and "<eos>" in tokens
    version = "V2" if special and positions == 4096 else "V1" if not special and positions == 2048 else "custom"
    if "<pad>" not in tokens:
        return "no <pad> token", version, len(tokens)
    if vocab_size and max(ids) >= vocab_size:
        return f"token ids up to {max(ids)}, the model has {vocab_size}", version, len(tokens)
    return None, version, len(tokens)


def find_scgpt_files(path: str | Path) -> dict[str, Path]:
    """``{"best_model.pt": ..., "args.json": ..., "vocab.json": ...}`` of an scGPT model folder.

    Raises
    ------
    InputError
        If one of the three files is missing (the message names it).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(_layout_message(folder))
    missing = [name for name in SCGPT_FILES if not (folder / name).is_file()]
    if missing:
        raise InputError(
            f"{folder} lacks {', '.join(missing)}: an scGPT model folder holds {', '.join(SCGPT_FILES)}; "
            "pass the folder that holds all three"
        )
    return {name: folder / name for name in SCGPT_FILES}


def detect_model_kind(path: str | Path) -> str:
    """``"geneformer"``, ``"scgpt"`` or ``"own"`` from the files at ``path``.

    Raises
    ------
    InputError
        If ``path`` matches none of the layouts (the message lists the files each layout holds).
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".pt":
        return "own"
    if path.is_dir():
        if (path / "config.json").is_file():
            return "geneformer"
        if any((path / name).is_file() for name in SCGPT_FILES):
            return "scgpt"
    raise InputError(_layout_message(path))
