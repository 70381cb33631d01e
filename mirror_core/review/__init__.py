"""Review and curation: SQL-side filtering and search (`queries`), edits and statuses (`curation`),
filter state that round-trips through the URL (`filters`)."""
