"""The accelerator: configuration derived from a QGraph, the Program compiler, and the
behavioural model the RTL is held to."""
