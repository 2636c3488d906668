"""Ground-level helpers every layer may import: safe names for generated text, child
processes that die with their parent, where builds and caches go."""
