"""Amaranth components of the accelerator, each with a behavioural golden model beside it."""
