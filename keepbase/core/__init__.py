"""Plain building blocks every other package may import: config, errors, ids, clock, types."""
