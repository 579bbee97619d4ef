#!/usr/bin/env python3
"""Instructions, not seconds: `ladder run` against the lower bound's stages under callgrind.

CPU seconds on a shared VM move by 5-25 % between runs, more than the margin the CPU target
(ladder <= 1.0 x the lower bound) is about. The instructions a process executes do not: this
counts them (`valgrind --tool=callgrind`, Ir) for the lower bound's stages exactly as
`scripts/bench.py` runs them (decode; decode+scale per rung, minus decode; encode each rung
from its pre-scaled raw frames, one thread; audio; each net of the CLI's start-up) and for
`ladder run` on the same input, once as one chunk and once cut into chunks of one segment,
so the cost of a chunk boundary (its seek, warm-up and encoder set-up) shows apart from the
pipeline's. An instruction is not a second (cache misses and SIMD width differ), so this
explains the timed ratios; it does not replace them.

Slow: valgrind runs ~50x slower, so the input is short (12 s by default) and two processes
run at a time. Standard library only. Run `scripts/instructions.py --help`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (a sibling script, not a package)

REPO = bench.REPO


def callgrind(cmd: list[str], out_file: Path, log_file: Path) -> int:
    """Ir of `cmd` and all its threads under callgrind."""
    full = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", *cmd]
    with log_file.open("w") as log:
        res = subprocess.run(full, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
    if res.returncode != 0:
        bench.die(f"`{shlex.join(full)}` exited {res.returncode}; see {log_file}")
    for line in out_file.read_text(errors="replace").splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    bench.die(f"no totals in {out_file}")
    return 0


def chunked_preset(ladder_bin: Path, preset: str, work: Path) -> Path:
    """The preset's TOML with one segment per chunk: every segment boundary a chunk boundary."""
    p, _ = bench.preset_json(ladder_bin, preset)
    path = Path(preset) if preset.endswith(".toml") else REPO / "presets" / f"{p.get('name', preset)}.toml"
    text = path.read_text()
    if re.search(r"(?m)^chunk_segments\s*=", text):
        text = re.sub(r"(?m)^chunk_segments\s*=.*$", "chunk_segments = 1", text)
    else:
        text = re.sub(r"(?m)^\[segments\]\s*$", "[segments]\nchunk_segments = 1", text)
    out = work / f"{path.stem}-chunk1.toml"
    out.write_text(text)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=12.0, help="input duration (default 12)")
    ap.add_argument("--preset", default="small", help="preset (default small, the bench's)")
    ap.add_argument("--ladder", type=Path, default=REPO / "target" / "release" / "ladder")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        bench.die("valgrind is not installed (apt-get install valgrind)")
    if not args.ladder.is_file():
        bench.die(f"{args.ladder} does not exist (run `cargo build --release --locked`)")

    input_path = bench.build_input(args.seconds)
    src = bench.probe(input_path)
    ladder = bench.resolve_ladder(args.ladder, args.preset, input_path, src)
    work = bench.CACHE / f"instructions-{args.seconds:g}s"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    bound = bench.LowerBound(ladder, input_path, src, work)
    bound.prepare()

    jobs: dict[str, list[str]] = {"startup": bench.STARTUP}
    jobs |= {st.name: st.command for st in bound.stages}
    chunked = chunked_preset(args.ladder, args.preset, work)
    for name, preset in [("ladder", ladder.preset), ("ladder, 1-segment chunks", str(chunked))]:
        out = work / ("out-" + re.sub(r"\W+", "-", name))
        jobs[name] = [str(args.ladder), "run", str(input_path), "--out", str(out), "--preset", preset]
    bench.log(f"instructions: {len(jobs)} processes under callgrind, two at a time (slow: ~50x)")
    ir: dict[str, int] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {}
        for k, (name, cmd) in enumerate(jobs.items()):
            futures[name] = pool.submit(callgrind, cmd, work / f"callgrind-{k}.out", work / f"callgrind-{k}.log")
        for name, fut in futures.items():
            ir[name] = fut.result()
            bench.log(f"  {name}: {ir[name] / 1e9:.3f} G instructions")
    for raw in bound.raw.values():
        raw.unlink(missing_ok=True)

    up = ir["startup"]
    stages = {"decode": ir["decode"] - up}
    for r in ladder.rungs:
        stages[f"scale v{r.index}"] = ir[f"decode+scale v{r.index}"] - ir["decode"]
    for r in ladder.rungs:
        stages[f"encode v{r.index}"] = ir[f"encode v{r.index}"] - up
    if "audio" in ir:
        stages["audio"] = ir["audio"] - up
    total = sum(stages.values())
    chunks = json.loads(subprocess.run(
        [str(args.ladder), "plan", str(input_path), "--preset", str(chunked), "--json"],
        cwd=REPO, capture_output=True, text=True, check=True).stdout)["chunks"]  # fmt: skip
    boundaries = len(chunks) - 1
    rows = [["", "G instructions", "x lower bound"]]
    rows += [[f"bound: {k}", f"{v / 1e9:.3f}", ""] for k, v in stages.items()]
    rows.append(["lower bound (sum)", f"{total / 1e9:.3f}", "1.000"])
    for name in ("ladder", "ladder, 1-segment chunks"):
        rows.append([name, f"{ir[name] / 1e9:.3f}", f"{ir[name] / total:.4f}"])
    per_boundary = (ir["ladder, 1-segment chunks"] - ir["ladder"]) / max(boundaries, 1)
    print(f"\ninstructions (Ir, valgrind --tool=callgrind), {args.seconds:g} s of the sample, preset {ladder.preset}:")
    print(bench.table(rows, right={1, 2}))
    print(f"a chunk boundary costs {per_boundary / 1e9:.3f} G instructions "
          f"({per_boundary / total * 100:.2f} % of the bound; {boundaries} boundaries in the 1-segment run)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({
            "seconds": args.seconds, "preset": ladder.preset, "ir": ir, "bound_stages": stages,
            "bound": total, "boundaries": boundaries, "per_boundary": per_boundary,
            "commands": {k: shlex.join(v) for k, v in jobs.items()},
        }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
