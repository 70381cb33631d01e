"""Generation: the request cache and call engine (`calls`), prices and budgets (`pricing`), the pipeline
steps (`pipeline`) and the background job (`job`)."""
