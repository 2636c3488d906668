"""The seed tutorial's code, run verbatim with ``hannah.`` replaced by ``hannah_hw.``, must
print what the tutorial shows."""

import re
from pathlib import Path

SEED = Path(__file__).parent / "data" / "seed_tutorial.txt"
CODE_START = ("from ", "import ", "@", "def ", "class ")


def cells():
    """(code, expected output or None) per notebook cell."""
    text = SEED.read_text().replace("hannah.", "hannah_hw.")
    for block in re.split(r"^In \[[^\]]*\]:\n", text, flags=re.M)[1:]:
        lines = [ln for ln in block.splitlines() if not ln.startswith("# ")]
        body = "\n".join(lines).strip("\n")
        head, _, rest = body.partition("\n\n")
        if "\n" not in head and not head.startswith(CODE_START) and "=" not in head:
            yield head, rest.strip() or None
        else:
            yield body, None


def test_seed_cells_print_what_the_tutorial_shows():
    ns: dict = {}
    checked = 0
    for code, expected in cells():
        if expected is None:
            exec(compile(code, str(SEED), "exec"), ns)
        else:
            got = repr(eval(code, ns))
            assert " ".join(got.split()) == " ".join(expected.split()), code
            checked += 1
    assert checked == 4  # graph and graph.operands, for both versions of the space
    # the helper functions of the tutorial build working graphs too
    g = ns["search_space_graph_v2"]()
    assert ns["conv_relu"](g, out_channels=8, kernel_size=3, stride=1).id == "conv_relu_0.Relu_0"
