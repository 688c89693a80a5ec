"""Device implementations: SKU latency models, presets and simulated units."""

from moo_compress.devices.simulated import SimulatedDevice
from moo_compress.devices.sku import SKU, Precision
from moo_compress.devices.skus import (
    CORTEX_A72,
    JETSON_NANO,
    JETSON_XAVIER_NX,
    MPIC_RISCV,
    RI5CY_RISCV,
    SKUS,
    get_sku,
)

__all__ = [
    "CORTEX_A72",
    "JETSON_NANO",
    "JETSON_XAVIER_NX",
    "MPIC_RISCV",
    "RI5CY_RISCV",
    "SKU",
    "SKUS",
    "Precision",
    "SimulatedDevice",
    "get_sku",
]
