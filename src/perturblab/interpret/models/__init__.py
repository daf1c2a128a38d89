"""Gene-token transformer adapters behind one interface (:class:`GeneTokenModel`).

- :class:`GeneformerModel` - Hugging Face ``BertForMaskedLM`` + rank-value tokenizer (Geneformer);
- :class:`ScGPTModel` - scGPT encoder re-implemented to return attention weights, loads scGPT state dicts;
- :class:`OwnGeneTransformer` - perturblab's own small model, trained by masked expression modelling.
"""

from .base import GeneTokenModel, ModelOutput, TokenBatch
from .geneformer import GeneformerModel
from .own import OwnGeneTransformer
from .scgpt import ScGPTModel, load_scgpt_state_dict

__all__ = [
    "GeneTokenModel",
    "ModelOutput",
    "TokenBatch",
    "GeneformerModel",
    "ScGPTModel",
    "load_scgpt_state_dict",
    "OwnGeneTransformer",
]
