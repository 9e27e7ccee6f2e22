"""The board link's wire format: SLIP framing, CRC, commands and errors (``protocol``), and
the one payload codec (``codec``) that packs values through Amaranth layouts, for the host,
the testbenches and the fast engine alike. Free of cocotb; imports only ``core``.
"""
