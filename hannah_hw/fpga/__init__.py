"""FPGA bitstreams: board definitions, board tops (a UART-to-Wishbone bridge around the
accelerator, or the SoC), builds with the open tools, fit checks and a resource model."""
