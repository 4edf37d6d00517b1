"""``vcgencmd pmic_read_adc`` output in the Raspberry Pi 5's format, and a stand-in ``vcgencmd`` for tests.

The line format (rail name + ``_A``/``_V``, ADC channel in brackets, value with 8 decimals and the unit,
right-aligned names; 12 rails with a current, EXT5V and BATT with a voltage only) is the one documented in
../shared/notes/imx500-runtime.md and printed by a Pi 5's firmware; the values are plausible idle values.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PI5_PMIC_READ_ADC = """\
 3V7_WL_SW_A current(0)=0.05127470A
   3V3_SYS_A current(1)=0.07523130A
   1V8_SYS_A current(2)=0.15724900A
  DDR_VDD2_A current(3)=0.02049200A
  DDR_VDDQ_A current(4)=0.00000000A
   1V1_SYS_A current(5)=0.18254800A
    0V8_SW_A current(6)=0.33697000A
  VDD_CORE_A current(7)=1.42880000A
   3V3_DAC_A current(17)=0.00012210A
   3V3_ADC_A current(18)=0.00042735A
   0V8_AON_A current(16)=0.00427350A
      HDMI_A current(22)=0.02295480A
 3V7_WL_SW_V volt(8)=3.71008800V
   3V3_SYS_V volt(9)=3.30860400V
   1V8_SYS_V volt(10)=1.80329700V
  DDR_VDD2_V volt(11)=1.11150000V
  DDR_VDDQ_V volt(12)=0.60732600V
   1V1_SYS_V volt(13)=1.10622700V
    0V8_SW_V volt(14)=0.80219780V
  VDD_CORE_V volt(15)=0.77472000V
   3V3_DAC_V volt(20)=3.30678800V
   3V3_ADC_V volt(21)=3.30311700V
   0V8_AON_V volt(19)=0.79853480V
      HDMI_V volt(23)=5.05945000V
     EXT5V_V volt(24)=5.05716000V
      BATT_V volt(25)=0.00000000V
"""

# A board without the PMIC ADC command (a Pi 4): vcgencmd answers with an error line (wording varies by firmware).
PI4_PMIC_READ_ADC = 'error=2 error_msg="Invalid arguments"\n'


def fake_vcgencmd(bin_dir: Path, text: str, returncode: int = 0, step_core_a: float = 0.0) -> Path:
    """Write an executable ``vcgencmd`` into ``bin_dir`` printing ``text`` (VDD_CORE current grows per call)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    counter = bin_dir / "calls"
    data = bin_dir / "pmic.txt"
    data.write_text(text)
    script = bin_dir / "vcgencmd"
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = pmic_read_adc ] || exit 1\n'
        f'n=$(cat "{counter}" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "{counter}"\n'
        f'awk -v n="$n" -v step="{step_core_a}" '
        '\'/VDD_CORE_A/ {split($2, a, "="); v = a[2] + 0 + n * step; '
        'printf "  VDD_CORE_A %s=%.8fA\\n", substr($2, 1, index($2, "=") - 1), v; next} {print}\' '
        f'"{data}"\n'
        f"exit {returncode}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


def path_with(bin_dir: Path) -> str:
    """PATH with ``bin_dir`` first."""
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
