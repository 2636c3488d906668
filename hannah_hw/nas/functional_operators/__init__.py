"""HANNAH's functional operator DSL."""
