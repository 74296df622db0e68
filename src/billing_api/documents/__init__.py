"""Bills, superbills and statements as PDF: a plain view model, the rows it is built from, and its renderer."""
