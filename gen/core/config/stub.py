"""``[stub]``: how the synthesizable crossbar stub stores its cells."""

from dataclasses import dataclass

from imcgen.core.config.schema import Table, key, table


@table("stub")
@dataclass(frozen=True)
class StubConfig(Table):
    """How the synthesizable crossbar stub stores its cells (docs/architecture.md section 11).

    ``registers``: a memory per row read combinationally, which synthesis maps to LUT RAM or
    flip-flops. ``block_ram``: one block RAM word per column group holding every row, read a
    cycle late (the stub addresses the next group while the SAR dwells on one), which frees a
    logic cell per cell bit on parts without LUT RAM (iCE40). A preference: the stub keeps
    registers where block RAM cannot work, and ``config show`` says which it uses
    (``block_ram_in_use``, :attr:`MacroConfig.stub_block_ram`).
    """

    cells: str = key("registers", "cell storage of the crossbar stub: registers (LUT RAM or "
                     "flip-flops) or block_ram where it can (one word per column group)",
                     choices=("registers", "block_ram"))

    def derived(self, cfg):
        if self.cells != "block_ram":
            return {}
        return {"block_ram_in_use": cfg.stub_block_ram,
                **({} if cfg.stub_block_ram else {"registers_because": cfg.stub_registers_why})}
