"""Search spaces (HANNAH's DSL), their costs, and search strategies."""
