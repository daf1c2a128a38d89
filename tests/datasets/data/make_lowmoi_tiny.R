# Writes lowmoi_tiny.rda: a 3-gene x 4-cell miniature of sceptredata's lowmoi_example_data (same structure:
# dgCMatrix response and gRNA matrices with row names, gRNA target and covariate data.frames).
# Run with R >= 4 and the Matrix package: Rscript make_lowmoi_tiny.R
library(Matrix)
response <- sparseMatrix(i = c(1, 3, 2, 1, 3), j = c(1, 1, 2, 3, 4), x = c(4, 1, 7, 2, 5), dims = c(3, 4),
                         dimnames = list(c("STAT1", "JAK2", "CD274"), NULL))
grna <- sparseMatrix(i = c(1, 2, 2, 3, 1, 3), j = c(1, 1, 2, 3, 4, 4), x = c(9, 1, 12, 30, 2, 6), dims = c(3, 4),
                     dimnames = list(c("STAT1g1", "JAK2g2", "NTg1"), NULL))
lowmoi_example_data <- list(
  response_matrix = response,
  grna_matrix = grna,
  grna_target_data_frame = data.frame(grna_id = c("STAT1g1", "JAK2g2", "NTg1"),
                                      grna_target = c("STAT1", "JAK2", "non-targeting")),
  extra_covariates = data.frame(bio_rep = factor(c("rep_1", "rep_2", "rep_1", "rep_3")))
)
save(lowmoi_example_data, file = "lowmoi_tiny.rda", compress = "xz")
