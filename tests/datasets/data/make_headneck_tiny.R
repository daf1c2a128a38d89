# Writes headneck_tiny.rda: a 3-gene x 2-cell miniature of CHETAH's headneck_ref (a SingleCellExperiment
# whose "counts" assay holds log-normalised values, colData column "celltypes").
# Run with R >= 4 and Bioconductor's SingleCellExperiment: Rscript make_headneck_tiny.R
suppressMessages(library(SingleCellExperiment))
m <- matrix(c(0, 1.5, 2.25, 0, 0.5, 3), nrow = 3,
            dimnames = list(c("CD3E", "MS4A1", "LYZ"), c("hn_cell1", "hn_cell2")))
headneck_ref <- SingleCellExperiment(assays = list(counts = m),
                                     colData = DataFrame(celltypes = c("CD4 T cell", "B cell")))
save(headneck_ref, file = "headneck_tiny.rda", compress = "xz")
