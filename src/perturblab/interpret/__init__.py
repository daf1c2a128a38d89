"""Interpretability of single-cell foundation models: what does attention encode? (Kendiukhov 2026)."""

# --- part A: adapters, attention extraction, ablation, training ---
from .ablation import ablation_experiment, fidelity, uniform_attention, zero_heads, zero_layer_attention, zero_mlp
from .extraction import LayerAttention, cell_embeddings, extract_attention, iter_layer_attention
from .models import GeneformerModel, GeneTokenModel, OwnGeneTransformer, ScGPTModel, TokenBatch
from .training import TrainingResult, train_masked_expression
