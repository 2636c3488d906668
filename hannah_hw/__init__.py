"""hannah-hw: co-design a small neural network and the hardware that runs it."""

__version__ = "0.1.0"
