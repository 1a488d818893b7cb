"""Sample tooling, beside the product: synthetic statements with planted behaviours and ground-truth labels
(`generate`), and recall / precision of a published database against those labels (`evaluate`)."""
