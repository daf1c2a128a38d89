"""Checkpoints as they ship: Geneformer V1/V2 layouts on real PBMC3k cells, scGPT state-dict variants, load_model."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
import torch

from perturblab.exceptions import InputError, PerturblabWarning, UnknownNameError
from perturblab.interpret.extraction import extract_attention
from perturblab.interpret.models import (
    GeneformerModel,
    OwnGeneTransformer,
    ScGPTModel,
    detect_model_kind,
    find_geneformer_files,
    load_model,
)
from perturblab.interpret.tokenizers import load_gene_dict

from .shipped_layouts import (
    FIXTURES,
    dump,
    geneformer_reference,
    real_config,
    release_2024_layout,
    save_bert,
    scgpt_folder,
    v1_release_layout,
    v2_dictionaries,
)
from .tiny_models import synthetic_counts


@pytest.fixture(scope="module")
def pbmc_cells(pbmc3k):
    """24 QC-passing PBMC3k cells (all 32,738 genes, raw counts; Ensembl ids in var['gene_ids'])."""
    keep = np.flatnonzero(pbmc3k.obs["cell_type"].astype(str).to_numpy() != "UNDETERMINED")
    rng = np.random.default_rng(0)
    return pbmc3k[np.sort(rng.choice(keep, 24, replace=False))].copy()


@pytest.fixture(scope="module")
def v1_root(tmp_path_factory):
    return v1_release_layout(tmp_path_factory.mktemp("geneformer_v1"))


def _study_genes(adata, n=12):
    """The n most detected genes plus one gene without a Geneformer token (a MIR host id)."""
    detected = np.asarray((adata.X > 0).sum(axis=0)).ravel()
    return [*adata.var_names[np.argsort(-detected, kind="stable")[:n]].tolist(), "MIR1302-10"]


def _tokens(model, adata, genes, batch_size=8):
    out, index = [], []
    for batch in model.tokenize(adata, genes, batch_size=batch_size):
        for b in range(len(batch)):
            m = batch.attention_mask[b]
            out.append(batch.input_ids[b, m].tolist())
            index.append(batch.gene_index[b, m].numpy())
    return out, index


def test_geneformer_v1_release_tokenises_pbmc_cells_as_geneformer(v1_root, pbmc_cells):
    model = GeneformerModel.from_pretrained(v1_root, gene_id_key="gene_ids", device="cpu")
    assert (model.max_length, model.special_tokens, model.n_layers) == (2048, False, 2)
    token_dict = load_gene_dict(FIXTURES / "token_dictionary.pkl")
    medians = load_gene_dict(FIXTURES / "gene_median_dictionary.pkl")
    totals = np.asarray(pbmc_cells.X.sum(axis=1), dtype=np.float64).ravel()  # obs n_counts
    ref = geneformer_reference(pbmc_cells, token_dict, medians, pbmc_cells.var["gene_ids"], totals, 2048, special=False)
    genes = _study_genes(pbmc_cells)
    ours, index = _tokens(model, pbmc_cells, genes)
    assert len(ours) == pbmc_cells.n_obs
    for cell, (a, b) in enumerate(zip(ours, ref)):
        assert a == b, f"cell {cell}: token sequences differ"
    # the whole transcriptome is tokenised (hundreds of genes per cell), the genes under study are marked
    assert np.median([len(s) for s in ours]) > 300
    inverse = {v: k for k, v in token_dict.items()}
    ids = dict(zip(pbmc_cells.var_names, pbmc_cells.var["gene_ids"]))
    for seq, gi in zip(ours, index):
        for tok, g in zip(seq, gi):
            if g >= 0:
                assert inverse[tok] == ids[genes[g]]
            else:
                assert inverse[tok] not in {ids[x] for x in genes}
    # truncation to a smaller input keeps the top-ranked genes, as Geneformer's create_dataset
    short = GeneformerModel.from_pretrained(v1_root, gene_id_key="gene_ids", max_length=100, device="cpu")
    assert _tokens(short, pbmc_cells[:6], genes)[0] == [r[:100] for r in ref[:6]]


def test_geneformer_genes_without_token_are_left_out_and_logged(v1_root, pbmc_cells, caplog):
    model = GeneformerModel.from_pretrained(v1_root, gene_id_key="gene_ids", device="cpu")
    genes = _study_genes(pbmc_cells)
    token_dict = load_gene_dict(FIXTURES / "token_dictionary.pkl")
    expected = [
        g for g, e in zip(pbmc_cells.var_names, pbmc_cells.var["gene_ids"]) if g in genes and e not in token_dict
    ]
    assert expected == ["MIR1302-10"]
    with caplog.at_level(logging.WARNING, logger="perturblab.interpret.models.base"):
        match = model.match_genes(pbmc_cells, genes)
        model.match_genes(pbmc_cells, genes)
        maps = extract_attention(model, pbmc_cells[:4], genes, batch_size=4, layers=[0])
    assert match.dropped.tolist() == expected and match.n_dropped == 1 and match.kept.size == len(genes) - 1
    assert model.gene_match.dropped.tolist() == expected
    lines = [r.getMessage() for r in caplog.records if "no token" in r.getMessage()]
    assert len(lines) == 1 and "1 of 13 genes" in lines[0] and "MIR1302-10" in lines[0]
    dropped = genes.index("MIR1302-10")
    assert maps[0].n_cells[dropped].sum() == 0 and maps[0].n_cells.diagonal().max() == 4
    # ids from var_names (symbols) match nothing: one clear error naming the column to use
    with pytest.raises(InputError, match="gene_id_key.*gene_ids"):
        GeneformerModel.from_pretrained(v1_root, device="cpu").match_genes(pbmc_cells, genes)


def test_geneformer_attention_of_study_genes_comes_from_the_full_context(v1_root, pbmc_cells):
    model = GeneformerModel.from_pretrained(v1_root / "geneformer-12L-30M", gene_id_key="gene_ids", device="cpu")
    cells = pbmc_cells[:5]
    genes = _study_genes(cells, n=6)[:6]
    maps = extract_attention(model, cells, genes, batch_size=2)
    # brute force: each cell alone through the Hugging Face forward on its full token sequence
    acc, cnt, acc_sub = np.zeros((2, 4, 6, 6)), np.zeros((6, 6)), np.zeros((2, 4, 6, 6))
    for c in range(cells.n_obs):
        batch = next(model.tokenize(cells[c : c + 1], genes))
        gi = batch.gene_index[0].numpy()
        pos = np.flatnonzero(gi >= 0)
        with torch.no_grad():
            att = model.network(input_ids=batch.input_ids, output_attentions=True).attentions
            sub = model.network(input_ids=batch.input_ids[:, pos], output_attentions=True).attentions
        for lay in range(2):
            a = att[lay][0].numpy()
            acc[lay][:, gi[pos][:, None], gi[pos][None, :]] += a[:, pos][:, :, pos]
            acc_sub[lay][:, gi[pos][:, None], gi[pos][None, :]] += sub[lay][0].numpy()
        cnt[gi[pos][:, None], gi[pos][None, :]] += 1
    np.testing.assert_array_equal(maps[0].n_cells, cnt)
    for lay in range(2):
        np.testing.assert_allclose(maps[lay].per_head, acc[lay] / np.maximum(cnt, 1), rtol=1e-4, atol=1e-6)
        # attention among the study genes alone (the old behaviour) is a different quantity
        assert np.abs(maps[lay].per_head - acc_sub[lay] / np.maximum(cnt, 1)).max() > 1e-2
    # mean-pooled cell embeddings average over the whole transcriptome's gene tokens
    batch = next(model.tokenize(cells[:1], genes))
    with torch.no_grad():
        hidden = model.network(input_ids=batch.input_ids, output_hidden_states=True).hidden_states[-1][0]
    np.testing.assert_allclose(model.cell_embeddings(cells[:1], genes)[0], hidden.mean(0).numpy(), rtol=1e-4, atol=1e-5)


def test_geneformer_2024_layout_v1_and_v2_models(tmp_path, pbmc_cells):
    cells = pbmc_cells[:8]
    ids = cells.var["gene_ids"].astype(str).to_numpy()
    expressed = ids[np.asarray((cells.X > 0).sum(axis=0)).ravel() > 0]
    # V2 vocabulary: 400 expressed genes; two more ids collapse into the first one through the Ensembl mapping
    vocab_ids = expressed[:400]
    collapse = {expressed[400]: vocab_ids[0], expressed[401]: vocab_ids[0]}
    tokens, medians, mapping = v2_dictionaries(vocab_ids, collapse=collapse)
    root = release_2024_layout(tmp_path, tokens, medians, mapping)

    v1 = GeneformerModel.from_pretrained(root / "Geneformer-V1-10M", gene_id_key="gene_ids", device="cpu")
    assert not v1.special_tokens and v1.max_length == 2048 and len(v1.token_dictionary) == 25426
    v2 = GeneformerModel.from_pretrained(root / "Geneformer-V2-104M", gene_id_key="gene_ids", device="cpu")
    assert v2.special_tokens and v2.max_length == 4096 and len(v2.token_dictionary) == len(tokens)
    genes = [g for g, e in zip(cells.var_names, ids) if e in set(vocab_ids[:5])]
    ours, index = _tokens(v2, cells, genes, batch_size=4)
    totals = np.asarray(cells.X.sum(axis=1), dtype=np.float64).ravel()
    ref = geneformer_reference(
        cells,
        load_gene_dict(root / "geneformer" / "token_dictionary_gc104M.pkl"),
        load_gene_dict(root / "geneformer" / "gene_median_dictionary_gc104M.pkl"),
        ids,
        totals,
        4096,
        special=True,
        mapping=mapping,
    )
    assert ours == ref
    assert all(s[0] == 2 and s[-1] == 3 and g[0] == -1 and g[-1] == -1 for s, g in zip(ours, index))
    # the collapsed gene carries the summed counts of its three columns
    col = [np.flatnonzero(ids == e)[0] for e in (vocab_ids[0], *collapse)]
    assert (np.asarray(cells.X[:, col].sum(axis=1)).ravel() > np.asarray(cells.X[:, col[0]].sum(axis=1)).ravel()).any()
    assert extract_attention(v2, cells, genes, batch_size=4)[1].per_head.shape == (4, len(genes), len(genes))
    # V1 model folder of the same repository gets the V1 dictionaries (the V2 ones do not fit its vocabulary)
    assert (
        load_model("geneformer", root / "Geneformer-V1-10M", gene_id_key="gene_ids").token_dictionary
        == v1.token_dictionary
    )
    with pytest.warns(PerturblabWarning, match=f"has {len(tokens)} tokens but the model's vocabulary has 25426"):
        GeneformerModel.from_pretrained(
            root / "Geneformer-V1-10M", token_dictionary=root / "geneformer" / "token_dictionary_gc104M.pkl"
        )
    # the V1 dictionary cannot serve the V2 model: its token ids exceed the V2 vocabulary
    v1_tokens = root / "geneformer" / "gene_dictionaries_30m" / "token_dictionary_gc30M.pkl"
    with pytest.raises(InputError, match="does not fit.*token ids up to 25425"):
        GeneformerModel.from_pretrained(root / "Geneformer-V2-104M", token_dictionary=v1_tokens)


def test_geneformer_2024_95m_layout(tmp_path, pbmc_cells):
    # mid-2024 release: gf-12L-95M-i4096/ and geneformer/*_gc95M.pkl next to gene_dictionaries_30m/
    tokens, medians, mapping = v2_dictionaries(pbmc_cells.var["gene_ids"][:3000], seed=1)
    save_bert(
        tmp_path / "gf-12L-95M-i4096", real_config(vocab_size=len(tokens), max_position_embeddings=4096), "safetensors"
    )
    dump(tokens, tmp_path / "geneformer" / "token_dictionary_gc95M.pkl")
    dump(medians, tmp_path / "geneformer" / "gene_median_dictionary_gc95M.pkl")
    dump(mapping, tmp_path / "geneformer" / "ensembl_mapping_dict_gc95M.pkl")
    d30 = tmp_path / "geneformer" / "gene_dictionaries_30m"
    dump(load_gene_dict(FIXTURES / "token_dictionary.pkl"), d30 / "token_dictionary_gc30M.pkl")
    dump(load_gene_dict(FIXTURES / "gene_median_dictionary.pkl"), d30 / "gene_median_dictionary_gc30M.pkl")
    files = find_geneformer_files(tmp_path / "gf-12L-95M-i4096")
    assert (files.token_dictionary.name, files.gene_mapping_file.name, files.version) == (
        "token_dictionary_gc95M.pkl",
        "ensembl_mapping_dict_gc95M.pkl",
        "V2",
    )
    model = load_model("geneformer", tmp_path / "gf-12L-95M-i4096", gene_id_key="gene_ids", device="cpu")
    assert model.special_tokens and model.max_length == 4096


def test_geneformer_explicit_dictionaries_and_layout_errors(tmp_path, v1_root, pbmc_cells):
    folder = save_bert(tmp_path / "model_only", real_config(), "safetensors")
    with pytest.raises(InputError, match="no Geneformer dictionaries found.*--token-dictionary"):
        GeneformerModel.from_pretrained(folder)
    tok = v1_root / "geneformer" / "token_dictionary.pkl"
    # the gene median file shipped next to the token dictionary is found; an explicit one overrides it
    a = GeneformerModel.from_pretrained(folder, token_dictionary=tok, gene_id_key="gene_ids", device="cpu")
    medians = {k: v * 2 for k, v in load_gene_dict(v1_root / "geneformer" / "gene_median_dictionary.pkl").items()}
    b = load_model(
        "geneformer",
        folder,
        token_dictionary=tok,
        gene_median_file=dump(medians, tmp_path / "m.pkl"),
        gene_id_key="gene_ids",
        device="cpu",
    )
    assert a.gene_medians["ENSG00000000003"] * 2 == b.gene_medians["ENSG00000000003"]
    # medians scaled by a constant do not change the ranks
    assert _tokens(a, pbmc_cells[:3], ["CD74"])[0] == _tokens(b, pbmc_cells[:3], ["CD74"])[0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="config.json.*best_model.pt, args.json, vocab.json"):
        load_model("auto", tmp_path / "empty")
    (tmp_path / "noweights").mkdir()
    (tmp_path / "noweights" / "config.json").write_text((FIXTURES / "config.json").read_text())
    with pytest.raises(InputError, match="no weights.*git lfs"):
        load_model("geneformer", tmp_path / "noweights")
    with pytest.raises(InputError, match="do not apply to a scgpt model"):
        load_model("scgpt", tmp_path / "empty", token_dictionary=tok)
    with pytest.raises(UnknownNameError, match="did you mean 'geneformer'"):
        load_model("genformer", folder)

    # a pickle holding anything but plain values is refused
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = dump({"<pad>": Evil()}, tmp_path / "evil" / "token_dictionary.pkl")
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        GeneformerModel.from_pretrained(folder, token_dictionary=evil, gene_median_file=tok)


@pytest.mark.parametrize(
    "variant, names",
    [
        ("finetuned", "torch"),
        ("zero_prob", "torch"),
        ("pretrained", "flash"),
        ("pretrained", "flash2"),
        ("batchnorm", "torch"),
    ],
)
def test_scgpt_checkpoint_variants_load_and_match_the_reference_forward(tmp_path, variant, names):
    adata = synthetic_counts(20, 14)
    genes = list(adata.var_names)
    mirror, _ = scgpt_folder(tmp_path, genes[:12], variant, names)  # g12, g13: not in the vocabulary
    with pytest.warns(UserWarning, match="unused scGPT task heads.*cls_decoder"):
        model = load_model("auto", tmp_path, device="cpu")
    assert isinstance(model, ScGPTModel) and model.network.explicit_zero_prob == (variant == "zero_prob")
    assert model.match_genes(adata, genes).dropped.tolist() == ["g12", "g13"]
    batch = next(model.tokenize(adata, genes, batch_size=20))
    assert int(batch.gene_index.max()) <= 11
    with torch.no_grad():
        out = model.forward(batch, output_logits=True)
        hidden, pred = mirror.reference(batch.input_ids, batch.values, batch.attention_mask)
    valid = batch.attention_mask
    torch.testing.assert_close(out.hidden_states[-1][valid], hidden[valid], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.logits[valid], pred[valid], atol=1e-4, rtol=1e-4)
    if variant == "zero_prob":
        torch.testing.assert_close(model.network.decoder.zero_logit[0].weight, mirror.decoder.zero_logit[0].weight)
    maps = extract_attention(model, adata, genes, batch_size=10)
    assert maps[1].per_head.shape == (4, 14, 14) and maps[1].n_cells[12:].sum() == 0


@pytest.mark.parametrize(
    "variant, message", [("dsbn", "domain-specific batch norm"), ("batch_labels", "use_batch_labels")]
)
def test_scgpt_checkpoints_that_need_batch_labels_are_refused(tmp_path, variant, message):
    scgpt_folder(tmp_path, ["g0", "g1"], variant)
    with pytest.raises(InputError, match=message):
        ScGPTModel.from_pretrained(tmp_path)
    (tmp_path / "vocab.json").unlink()
    with pytest.raises(InputError, match="lacks vocab.json"):
        ScGPTModel.from_pretrained(tmp_path)


def test_detect_model_kind_and_own_model(tmp_path):
    adata = synthetic_counts()
    own = OwnGeneTransformer(adata.var_names[:8], d_model=8, n_heads=2, n_layers=1, d_ff=16, device="cpu")
    own.save(tmp_path / "own.pt")
    assert detect_model_kind(tmp_path / "own.pt") == "own"
    again = load_model("auto", tmp_path / "own.pt", device="cpu")
    assert isinstance(again, OwnGeneTransformer)
    match = again.match_genes(adata, list(adata.var_names))
    assert match.dropped.tolist() == [f"g{i}" for i in range(8, 12)]
    batch = next(again.tokenize(adata, list(adata.var_names)))
    assert set(batch.gene_index[batch.gene_index >= 0].tolist()) <= set(range(8))
    with pytest.raises(InputError, match="none of the 2 genes is in the model's vocabulary"):
        next(again.tokenize(adata, ["g10", "g11"]))
