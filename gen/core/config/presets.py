"""Built-in configurations (``--preset``), each after the paper it follows."""




PRESETS = {
    # Sized for `imcgen demo`: 64 digit pixels (0..16, 5-bit unsigned) over two 32-row tiles,
    # 10 classes, 5-bit weights over 2-bit cells, 5-bit SAR ADCs (10 rows per read).
    "default": {},
    # ISAAC (as the IEEE Design & Test tutorial, 2021, and Yan et al. 2019 describe it): 128x128
    # array, 2-bit cells, 16-bit weights over 8 cells with the offset encoding, 16-bit bit-serial
    # inputs, one 8-bit ADC shared by all 128 columns.
    "isaac": dict(rows=128, tiles=1, outputs=16, input_bits=16, input_signed=True,
                  weight_bits=16, cell_bits=2, weight_mapping="offset", adc_bits=8, adcs=1,
                  schedule="dense"),
    # Chang-group RRAM macro (Chen ISSCC'18 / Xue ISSCC'19, cited by Sebastian et al.
    # 2020 and Yan et al. 2019): 2-bit serial
    # inputs, SLC (1-bit) cells, 3-bit weights, 3-bit sense-amp readout, 7 rows per read.
    "chang": dict(rows=64, tiles=2, outputs=16, input_bits=2, input_signed=False,
                  weight_bits=3, cell_bits=1, weight_mapping="differential", adc_bits=3,
                  adcs=16, schedule="zero_skip"),
    # Sized for the iCEBreaker (iCE40 UP5K, 5280 logic cells) with the UART board top: two
    # 8-row tiles, 4 outputs, 4-bit inputs and weights over 2-bit cells, four 4-bit ADCs.
    # Its cells live in block RAM: the UP5K has no LUT RAM, and 512 cell bits in flip-flops
    # take a tenth of its logic cells (docs/architecture.md section 11).
    "small": dict(rows=8, tiles=2, outputs=4, input_bits=4, weight_bits=4, cell_bits=2,
                  adc_bits=4, adcs=4, stub={"cells": "block_ram"}),
    # HP Dot-Product Engine (Hu et al., "Memristor-based analog computation and neural network
    # classification with a dot product engine", 2018, as Bao et al., "Toward memristive
    # in-memory computing: principles and applications", 2022, and Yan et al., "Resistive
    # memory-based in-memory computing", 2019, describe it): a 128x64 1T1R array of 6-bit cells
    # with DAC and ADC arrays, 89.9 % on MNIST with a single layer. The 64 physical columns are
    # 32 differential pairs of one 6-bit cell (7-bit signed weights); 8-bit unsigned inputs (grey
    # levels) stand in for the DACs, bit-serially. The seeds give no ADC resolution: one 8-bit
    # ADC per column reads 4 rows of 6-bit cells without clipping (choice).
    "dpe": dict(rows=128, tiles=1, outputs=32, input_bits=8, input_signed=False, weight_bits=7,
                cell_bits=6, weight_mapping="differential", adc_bits=8, adcs=64,
                schedule="zero_skip"),
}
