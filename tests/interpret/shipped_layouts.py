"""Helpers (no tests): tiny random checkpoints in the exact file layouts Geneformer and scGPT ship.

Geneformer: the real V1 ``config.json`` files and dictionaries of ``fixtures/geneformer_v1`` (sizes overridden
so that the weights are tiny), laid out as the repository was before 2024 (``geneformer/token_dictionary.pkl``)
and since (``geneformer/gene_dictionaries_30m/*_gc30M.pkl``, ``geneformer/*_gc104M.pkl``, model folders
``Geneformer-V1-10M`` / ``Geneformer-V2-104M``). scGPT: state dicts with the parameter names of bowang-lab/scGPT's
``TransformerModel`` (``scgpt/model/model.py``), built from stock PyTorch modules with the same attribute names.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch import nn

FIXTURES = Path(os.environ.get("PERTURBLAB_DATA_DIR", "")) / "fixtures" / "geneformer_v1"
SMALL = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4}


# ---- Geneformer ------------------------------------------------------------------------------------
def real_config(name: str = "config.json", **overrides) -> dict:
    """A real Geneformer V1 config.json (``name`` relative to the fixture folder) with small sizes."""
    cfg = json.loads((FIXTURES / name).read_text())
    cfg.update(SMALL)
    cfg.update(overrides)
    return cfg


def save_bert(folder: Path, cfg: dict, fmt: str, seed: int = 0) -> Path:
    """Random ``BertForMaskedLM`` from ``cfg`` saved as ``model.safetensors`` (save_pretrained) or as
    ``pytorch_model.bin`` next to the given config.json (the V1 release: a torch-saved state dict that still
    holds the legacy ``bert.embeddings.position_ids`` buffer)."""
    from transformers import BertConfig, BertForMaskedLM

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    net = BertForMaskedLM(BertConfig(**{k: v for k, v in cfg.items() if k != "architectures"}))
    with torch.no_grad():  # larger than BERT's 0.02 init so that attention is far from uniform
        for p in net.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.3)
    if fmt == "safetensors":
        net.save_pretrained(folder)
    elif fmt == "bin":
        (folder / "config.json").write_text(json.dumps(cfg, indent=2))
        state = {k: v.clone() for k, v in net.state_dict().items()}
        state["bert.embeddings.position_ids"] = torch.arange(cfg["max_position_embeddings"])[None]
        torch.save(state, folder / "pytorch_model.bin")
    else:
        raise ValueError(fmt)
    return folder


def v1_release_layout(root: Path) -> Path:
    """The V1 repository before 2024: root model (6L, pytorch_model.bin), ``geneformer-12L-30M/`` and the
    dictionaries ``geneformer/token_dictionary.pkl`` / ``gene_median_dictionary.pkl``."""
    save_bert(root, real_config(), "bin")
    save_bert(root / "geneformer-12L-30M", real_config("geneformer-12L-30M/config.json"), "safetensors", seed=1)
    (root / "geneformer").mkdir(parents=True, exist_ok=True)
    for name in ("token_dictionary.pkl", "gene_median_dictionary.pkl"):
        shutil.copy(FIXTURES / name, root / "geneformer" / name)
    return root


def v2_dictionaries(ensembl_ids, seed: int = 0, collapse: dict | None = None):
    """V2-style dictionaries (``<pad>``, ``<mask>``, ``<cls>``, ``<eos>``, then genes) with numpy values, and an
    Ensembl mapping that sends each key of ``collapse`` to its value (Geneformer then sums their counts)."""
    rng = np.random.default_rng(seed)
    genes = list(dict.fromkeys(map(str, ensembl_ids)))
    tokens = {"<pad>": np.int64(0), "<mask>": np.int64(1), "<cls>": np.int64(2), "<eos>": np.int64(3)}
    tokens.update({g: np.int64(i + 4) for i, g in enumerate(genes)})
    medians = {g: np.float64(v) for g, v in zip(genes, rng.uniform(0.5, 5.0, len(genes)))}
    mapping = {g: g for g in genes}
    mapping.update(collapse or {})
    return tokens, medians, mapping


def dump(obj, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(obj, fh)
    return path


def release_2024_layout(root: Path, v2_tokens: dict, v2_medians: dict, v2_mapping: dict) -> Path:
    """The repository since 2024: ``Geneformer-V1-10M/`` (real V1 config), ``Geneformer-V2-104M/``
    (4,096 positions, ``<cls>``/``<eos>``), ``geneformer/*_gc104M.pkl`` and
    ``geneformer/gene_dictionaries_30m/*_gc30M.pkl``."""
    save_bert(root / "Geneformer-V1-10M", real_config(), "safetensors")
    v2 = real_config(vocab_size=len(v2_tokens), max_position_embeddings=4096)
    save_bert(root / "Geneformer-V2-104M", v2, "safetensors", seed=2)
    d30 = root / "geneformer" / "gene_dictionaries_30m"
    d30.mkdir(parents=True)
    shutil.copy(FIXTURES / "token_dictionary.pkl", d30 / "token_dictionary_gc30M.pkl")
    shutil.copy(FIXTURES / "gene_median_dictionary.pkl", d30 / "gene_median_dictionary_gc30M.pkl")
    dump(v2_tokens, root / "geneformer" / "token_dictionary_gc104M.pkl")
    dump(v2_medians, root / "geneformer" / "gene_median_dictionary_gc104M.pkl")
    dump(v2_mapping, root / "geneformer" / "ensembl_mapping_dict_gc104M.pkl")
    return root


def geneformer_reference(
    adata, token_dict, median_dict, gene_ids, n_counts, input_size, special, mapping=None, target_sum=10_000
):
    """Geneformer's tokenizer, one cell at a time, following ``TranscriptomeTokenizer`` (tokenize_anndata,
    sum_ensembl_ids with collapse_gene_ids=True, create_dataset's truncation), independent of perturblab.

    Returns one list of token ids per cell.
    """
    mapping = {k: k for k in token_dict} if mapping is None else mapping
    mapping = {k: v for k, v in mapping.items() if v in token_dict}
    collapsed = [mapping.get(str(g).upper()) for g in gene_ids]
    count = Counter(c for c in collapsed if c is not None)
    # sum_ensembl_ids: columns with a unique id in AnnData order, then the summed duplicates (first-seen order)
    columns = [(c, [i]) for i, c in enumerate(collapsed) if c is not None and count[c] == 1]
    columns += [(c, [i for i, x in enumerate(collapsed) if x == c]) for c in count if count[c] > 1]
    columns = [(c, cols) for c, cols in columns if c in token_dict]  # genelist_dict: keys of the token dictionary
    norm_factor_vector = np.array([median_dict[c] for c, _ in columns])
    gene_tokens = np.array([token_dict[c] for c, _ in columns])
    cells = []
    for cell in range(adata.n_obs):
        row = np.asarray(adata.X[cell].toarray()).ravel()
        x = np.array([row[cols].sum() if len(cols) > 1 else row[cols[0]] for _, cols in columns])
        x_norm = x / n_counts[cell] * target_sum / norm_factor_vector
        nonzero = np.nonzero(x_norm)[0]
        ranked = gene_tokens[nonzero][np.argsort(-x_norm[nonzero])]  # rank_genes
        if special:
            ranked = [token_dict["<cls>"], *ranked[: input_size - 2], token_dict["<eos>"]]
        else:
            ranked = list(ranked[:input_size])
        cells.append([int(t) for t in ranked])
    return cells


# ---- scGPT -------------------------------------------------------------------------------------------
class _Named(nn.Module):
    def __init__(self, **modules):
        super().__init__()
        for name, module in modules.items():
            setattr(self, name, module)


def _expr(d_in: int, d: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d), nn.LeakyReLU(), nn.Linear(d, d), nn.LeakyReLU(), nn.Linear(d, 1))


class ScGPTMirror(nn.Module):
    """scGPT's ``TransformerModel`` parameter layout from stock modules (and its forward for reference).

    ``variant``: ``"finetuned"`` (public TransformerModel, nn.TransformerEncoder, cls_decoder, no flag_encoder),
    ``"zero_prob"`` (also explicit_zero_prob: decoder.zero_logit, mvc_decoder.W_zero_logit), ``"pretrained"``
    (generative pre-training: flag_encoder, mvc_decoder), ``"batchnorm"`` (domain_spec_batchnorm="batchnorm"),
    ``"dsbn"``, ``"batch_labels"`` (use_batch_labels).
    """

    def __init__(self, ntoken: int, d: int, nhead: int, d_hid: int, nlayers: int, variant: str, padding_idx: int = 0):
        super().__init__()
        self.variant = variant
        self.encoder = _Named(embedding=nn.Embedding(ntoken, d, padding_idx=padding_idx), enc_norm=nn.LayerNorm(d))
        self.value_encoder = _Named(linear1=nn.Linear(1, d), linear2=nn.Linear(d, d), norm=nn.LayerNorm(d))
        if variant == "batchnorm":
            self.bn = nn.BatchNorm1d(d, eps=6.1e-5)
        if variant == "dsbn":
            self.dsbn = _Named(bns=nn.ModuleList([nn.BatchNorm1d(d, eps=6.1e-5, affine=False) for _ in range(2)]))
        layer = nn.TransformerEncoderLayer(d, nhead, d_hid, 0.0, batch_first=True)
        self.transformer_encoder = nn.TransformerEncoder(layer, nlayers, enable_nested_tensor=False)
        d_in = 2 * d if variant == "batch_labels" else d
        self.decoder = _Named(fc=_expr(d_in, d))
        if variant == "zero_prob":
            self.decoder.zero_logit = _expr(d_in, d)
        if variant == "batch_labels":
            self.batch_encoder = _Named(embedding=nn.Embedding(2, d), enc_norm=nn.LayerNorm(d))
        # ClsDecoder(d, n_cls=3, nlayers=3): [Linear, ReLU, LayerNorm] x 2, out_layer
        self.cls_decoder = _Named(
            _decoder=nn.ModuleList(
                [nn.Linear(d, d), nn.ReLU(), nn.LayerNorm(d), nn.Linear(d, d), nn.ReLU(), nn.LayerNorm(d)]
            ),
            out_layer=nn.Linear(d, 3),
        )
        if variant in {"zero_prob", "pretrained"}:
            self.mvc_decoder = _Named(gene2query=nn.Linear(d, d), W=nn.Linear(d, d, bias=False))
            if variant == "zero_prob":
                self.mvc_decoder.W_zero_logit = nn.Linear(d, d)
        if variant == "pretrained":
            self.flag_encoder = nn.Embedding(2, d)
        with torch.no_grad():
            for p in self.parameters():
                p.normal_(0, 0.3)
        if variant == "batchnorm":
            self.bn.running_mean.normal_(0, 0.2)
            self.bn.running_var.uniform_(0.5, 2.0)
        self.eval()

    def reference(self, input_ids, values, key_valid):
        """scGPT's ``_encode`` + ExprDecoder ``pred`` (no sampling): ``(hidden (B, S, d), pred (B, S))``."""
        emb = self.encoder.enc_norm(self.encoder.embedding(input_ids))
        x = torch.clamp(values.unsqueeze(-1), max=512)
        val = self.value_encoder.norm(self.value_encoder.linear2(torch.relu(self.value_encoder.linear1(x))))
        total = emb + val
        if self.variant == "batchnorm":
            total = self.bn(total.permute(0, 2, 1)).permute(0, 2, 1)
        hidden = self.transformer_encoder(total, src_key_padding_mask=~key_valid)
        return hidden, self.decoder.fc(hidden).squeeze(-1)


def scgpt_folder(
    folder: Path, genes, variant: str, names: str = "torch", d: int = 16, nhead: int = 4, nlayers: int = 2
):
    """Write ``best_model.pt``, ``args.json``, ``vocab.json`` of a random scGPT model as scGPT saves them.

    ``names``: ``"torch"`` (nn.MultiheadAttention: ``self_attn.in_proj_weight``), ``"flash"``
    (``self_attn.Wqkv.*``) or ``"flash2"`` (``self_attn._impl.Wqkv.*``, ``self_attn._impl.out_proj.*``).
    Returns the mirror module (reference forward) and the vocab.
    """
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "<cls>": 1, "<eoc>": 2, **{g: i + 3 for i, g in enumerate(genes)}}
    torch.manual_seed(3)
    mirror = ScGPTMirror(len(vocab), d, nhead, 2 * d, nlayers, variant)
    state = mirror.state_dict()
    if names == "flash":
        state = {k.replace("self_attn.in_proj_", "self_attn.Wqkv."): v for k, v in state.items()}
    elif names == "flash2":
        state = {
            k.replace("self_attn.in_proj_", "self_attn._impl.Wqkv.").replace(
                "self_attn.out_proj.", "self_attn._impl.out_proj."
            ): v
            for k, v in state.items()
        }
    torch.save(state, folder / "best_model.pt")
    (folder / "vocab.json").write_text(json.dumps(vocab))
    args = {  # keys as in scGPT's shipped args.json (scGPT_human) / fine-tuning runs
        "pad_token": "<pad>",
        "input_style": "binned",
        "input_emb_style": "continuous",
        "n_bins": 51,
        "max_seq_len": 1200,
        "mask_value": -1,
        "pad_value": -2,
        "nlayers": nlayers,
        "nheads": nhead,
        "embsize": d,
        "d_hid": 2 * d,
        "dropout": 0.2,
        "n_layers_cls": 3,
        "fast_transformer": names != "torch",
        "MVC": variant in {"zero_prob", "pretrained"},
        "USE_GENERATIVE_TRAINING": variant == "pretrained",
        "explicit_zero_prob": variant == "zero_prob",
    }
    (folder / "args.json").write_text(json.dumps(args))
    return mirror, vocab
