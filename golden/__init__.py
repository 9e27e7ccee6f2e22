"""NumPy golden model of the IMC macro, integer-exact and vectorised over a batch of vectors.

One module per hardware block (``weight_mapper``, ``input_driver``, ``row_scheduler``,
``crossbar_stub``, ``sar_adc``, ``shift_add``, ``adder_network``, ``output_stage``);
``macro_top.run`` composes them. The arithmetic is docs/architecture.md, sections 1-6. The model
reads every width and count from :class:`imcgen.core.config.MacroConfig` and knows nothing of
the RTL.
"""

from imcgen.golden.macro_top import GoldenResult, run

__all__ = ["GoldenResult", "run"]
