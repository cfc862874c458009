"""Make ``docs/report.png``, the README's picture of ``tunekit report``, from a real search.

Usage (from the repository root; needs Debian's ``chromium``)::

    python docs/report_png.py                       # examples/shapes.py, 16 trials of 150 steps
    python docs/report_png.py --trials 8 --max-steps 60

It runs the installed ``tunekit search`` on a bundled example in a fresh folder, writes the
HTML report with ``tunekit report``, screenshots it in headless Chromium, then trims the blank
bottom, scales it to 1000 px wide and stores it as a 256-colour PNG (the README wants < 300 KB).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1280, 6000  # the browser window; the page is shorter, the blank rest is trimmed
MAX_BYTES = 300_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", default=str(ROOT / "examples" / "shapes.py"))
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--max-steps", type=int, default=150)
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "report.png")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed (apt-get install chromium).")
    tunekit = [str(Path(sys.executable).parent / "tunekit")]
    # In a fresh folder with the default storage, so the report's export command reads as a user's would.
    env = {k: v for k, v in os.environ.items() if k != "TUNEKIT_STORAGE"}
    with tempfile.TemporaryDirectory() as tmp:
        search = ["search", args.script, "--trials", str(args.trials), "--max-steps", str(args.max_steps)]
        subprocess.run([*tunekit, *search], check=True, stdout=subprocess.DEVNULL, cwd=tmp, env=env)
        page = Path(tmp) / "report.html"
        subprocess.run(
            [*tunekit, "report", "--study", Path(args.script).stem, "-o", str(page)], check=True, cwd=tmp, env=env
        )
        shot = Path(tmp) / "shot.png"
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
            + [f"--window-size={WIDTH},{HEIGHT}", "--virtual-time-budget=15000", f"--screenshot={shot}", page.as_uri()],
            check=True,
            capture_output=True,
        )
        shrink(shot, args.output)
    size = args.output.stat().st_size
    print(f"wrote {args.output} ({size / 1000:.0f} KB)")
    if size > MAX_BYTES:
        sys.exit(f"{args.output} is over {MAX_BYTES / 1000:.0f} KB; draw fewer trials or a narrower image.")


def shrink(shot: Path, output: Path, width: int = 1000) -> None:
    """Trim the white bottom, scale to ``width`` and quantize to 256 colours (Pillow, which matplotlib brings)."""
    from PIL import Image, ImageChops, ImageOps

    image = Image.open(shot).convert("RGB")
    content = ImageChops.difference(image, Image.new("RGB", image.size, "white")).getbbox()
    image = image.crop((0, 0, image.width, min(image.height, content[3] + 20)))
    image = ImageOps.contain(image, (width, image.height * width // image.width), Image.LANCZOS)
    # Fast octree keeps the family colours apart (median cut merged blue with purple).
    image.quantize(256, method=Image.Quantize.FASTOCTREE).save(output, optimize=True)


if __name__ == "__main__":
    main()
