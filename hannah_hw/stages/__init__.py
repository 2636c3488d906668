"""The flow's stages, one function per stage: each takes the files of the stage before
and makes its own, so the flow (and the CLI) only order and record them."""
