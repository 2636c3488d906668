"""The seed tutorial's first space: one fixed 5x5 convolution (no free parameters)."""

from hannah_hw.nas.functional_operators.op import Tensor, search_space
from hannah_hw.nas.functional_operators.operators import Conv2d


@search_space
def search_space_graph():
    input = Tensor(name="input", shape=(1, 3, 32, 32), axis=("N", "C", "H", "W"), grad=False)
    weight = Tensor(name="weight", shape=(16, 3, 5, 5), axis=("O", "I", "kH", "kW"), grad=True)
    return Conv2d(stride=1, dilation=1, groups=1, padding=0)(input, weight)
