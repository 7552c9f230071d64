"""Raw census records: their schema and domains, the Adult importer, the synthetic generator, validation."""
