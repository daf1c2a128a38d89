# Writes two miniatures of the Seurat "ifnb" subsets that perturblab's Kang 2018 file is built from:
# ifnb_sub_tiny.rda  (like scplotter's ifnb_sub: log-normalised data only, no counts; SeuratObject 4 Assay)
# ifnb1k_tiny.rda    (like seuratTools' ifnb1k: counts; written with the SeuratObject 5 layout, Assay5 with
#                     layers and LogMap name maps, declared here because Debian packages SeuratObject 4 only)
# Run with R >= 4, Matrix and SeuratObject 4: Rscript make_ifnb_tiny.R
suppressMessages(library(SeuratObject)); suppressMessages(library(Matrix))
genes <- c("ISG15", "CD14", "MS4A1", "IFIT1")
cells <- c("CTRL_A-1", "CTRL_B-1", "STIM_C-1")
counts_sub <- matrix(c(3, 0, 1, 0,   0, 2, 0, 0,   5, 1, 0, 7), nrow = 4, dimnames = list(genes, cells))
# nCount_RNA is the total over ALL genes of the original object, here larger than over these four
n_count <- c(10, 4, 20)
lognorm <- Matrix(log1p(sweep(counts_sub, 2, n_count, "/") * 1e4), sparse = TRUE)
ifnb_sub <- CreateSeuratObject(CreateAssayObject(data = lognorm), project = "IMMUNE")
ifnb_sub$orig.ident <- c("IMMUNE_CTRL", "IMMUNE_CTRL", "IMMUNE_STIM")
ifnb_sub$nCount_RNA <- n_count
ifnb_sub$nFeature_RNA <- c(5L, 2L, 9L)
ifnb_sub$stim <- c("CTRL", "CTRL", "STIM")
ifnb_sub$seurat_annotations <- factor(c("CD14 Mono", "B", "CD14 Mono"))
save(ifnb_sub, file = "ifnb_sub_tiny.rda", compress = "xz")

# ifnb1k: genes ISG15, CD14, IFIT1, CD3E (MS4A1 absent, CD3E extra); cells STIM_C-1 (also in ifnb_sub, same
# counts on the shared genes) and STIM_E-1 (new)
setClass("LogMap", contains = "matrix")
setClass("Assay5", representation(layers = "list", cells = "LogMap", features = "LogMap", default = "integer",
                                  assay.orig = "character", meta.data = "data.frame", misc = "list",
                                  key = "character"))
setClass("Seurat5Mimic", representation(assays = "list", meta.data = "data.frame"))
g2 <- c("ISG15", "CD14", "IFIT1", "CD3E")
c2 <- c("STIM_C-1", "STIM_E-1")
counts_k1 <- Matrix(matrix(c(5, 1, 7, 2,   0, 0, 4, 6), nrow = 4), sparse = TRUE)  # no dimnames, as in Assay5
logmap <- function(names) new("LogMap", matrix(TRUE, nrow = length(names), ncol = 1,
                                               dimnames = list(names, "counts")))
assay <- new("Assay5", layers = list(counts = counts_k1), cells = logmap(c2), features = logmap(g2),
             default = 1L, assay.orig = character(0), meta.data = data.frame(), misc = list(), key = "rna_")
meta <- data.frame(orig.ident = c("IMMUNE_STIM", "IMMUNE_STIM"), nCount_RNA = c(20, 12), nFeature_RNA = c(9L, 3L),
                   stim = c("STIM", "STIM"), seurat_annotations = factor(c("CD14 Mono", "NK")), row.names = c2)
ifnb1k <- new("Seurat5Mimic", assays = list(RNA = assay), meta.data = meta)
save(ifnb1k, file = "ifnb1k_tiny.rda", compress = "xz")
