# Writes string_tiny.rda: a 5-vertex, 3-edge miniature of dmfind's STRING igraph object (undirected; vertex
# attributes name = Entrez id and symbol; edge attributes = STRING channel scores and combined_score).
# Run with R >= 4 and igraph: Rscript make_string_tiny.R
suppressMessages(library(igraph))
edges <- data.frame(from = c("1571", "4353", "7157"), to = c("1066", "1066", "4193"),
                    experiments = c(0, 45, 900), database = c(900, 0, 900), combined_score = c(905, 901, 999))
vertices <- data.frame(name = c("1571", "1066", "4353", "7157", "4193"),
                       symbol = c("CYP2E1", "CES1", "MPO", "TP53", "MDM2"))
string.v12.Entrez.ntm.700.400.k3 <- graph_from_data_frame(edges, directed = FALSE, vertices = vertices)
save(string.v12.Entrez.ntm.700.400.k3, file = "string_tiny.rda", compress = "xz")
