"""Gene-token transformer adapters behind one interface (:class:`GeneTokenModel`).

- :class:`GeneformerModel` - Hugging Face ``BertForMaskedLM`` + rank-value tokenizer over the whole
  transcriptome (Geneformer V1 and V2 as shipped);
- :class:`ScGPTModel` - scGPT encoder re-implemented to return attention weights, loads scGPT state dicts;
- :class:`OwnGeneTransformer` - perturblab's own small model, trained by masked expression modelling;
- :func:`load_model` - a checkpoint directory as shipped (+ options) -> its adapter (the command line's entry).
"""

from .base import GeneMatch, GeneTokenModel, ModelOutput, TokenBatch
from .checkpoints import (
    GeneformerFiles,
    detect_model_kind,
    find_geneformer_files,
    find_scgpt_files,
)
from .geneformer import GeneformerModel
from .loading import load_model
from .own import OwnGeneTransformer
from .scgpt import ScGPTModel, load_scgpt_state_dict

__all__ = [
    "GeneMatch",
    "GeneTokenModel",
    "GeneformerFiles",
    "GeneformerModel",
    "ModelOutput",
    "OwnGeneTransformer",
    "ScGPTModel",
    "TokenBatch",
    "detect_model_kind",
    "find_geneformer_files",
    "find_scgpt_files",
    "load_model",
    "load_scgpt_state_dict",
]
