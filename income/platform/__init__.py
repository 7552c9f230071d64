"""What every pipeline stands on: settings, Spark, Java, local Valkey, lineage, the demo summary."""
