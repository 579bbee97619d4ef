#!/usr/bin/env python3
"""Benchmark: `ladder run` against the equivalent single-process ffmpeg CLI command.

Builds (once, cached) a 60 s input from the bundled sample, runs every contender N times,
alternating, and measures wall time, CPU time (user+sys) and peak RSS of each child process.
Then, on the last run of each contender only (not timed), measures every rung with the ffmpeg
CLI as an independent checker: video bitrate from the segment sizes and PSNR/SSIM against
the source scaled to the rung size (bicubic).

A contender is a name, a command, and how to find its rung outputs (one HLS media playlist
per rung); add one to `contenders()` to compare something else.

Standard library only (Python 3.11+). Run `scripts/bench.py --help`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "media" / "bbb-720p25-5s.mp4"
CACHE = REPO / "target" / "bench"


def rel(path: Path) -> Path:
    """`path` relative to the repository when inside it (commands run there): shorter to read."""
    path = path.resolve()
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def die(msg: str) -> None:
    log(f"bench: {msg}")
    sys.exit(1)


# ---------------------------------------------------------------------------------------------
# The ladder: the ONE place the rung table comes from (the preset, resolved by the binary).


@dataclasses.dataclass
class Rung:
    index: int  # folder v<index>
    name: str
    width: int
    height: int
    bitrate_kbps: int
    maxrate_kbps: int
    bufsize_kbit: int


@dataclasses.dataclass
class Ladder:
    """What both contenders must produce, from the preset and the input."""

    preset: str
    source: str  # how the preset was read
    encoder: str
    profile: str | None
    level: str | None
    speed: str | None
    rate_control: dict
    fps: float
    gop_frames: int
    segment_seconds: float
    rungs: list[Rung]
    audio_kbps: int
    audio_rate: int
    audio_channels: int
    thumbs_interval: float | None
    thumbs_width: int | None


def frame_rate(value) -> float | None:
    """A preset/plan frame rate as serialised by ladder: a number, "num/den", or {num, den}."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        num, _, den = value.partition("/")
        return float(num) / float(den or 1)
    if isinstance(value, dict):
        num = value.get("num", value.get("numerator"))
        den = value.get("den", value.get("denominator", 1))
        if num is not None:
            return float(num) / float(den)
    if isinstance(value, list) and len(value) == 2:
        return float(value[0]) / float(value[1])
    return None


def preset_json(ladder_bin: Path, preset: str) -> tuple[dict, str]:
    """The preset with every default filled in: from `ladder presets show --json`, else the
    TOML file with the documented defaults (maxrate 1.5 x, bufsize 2 s of maxrate)."""
    if ladder_bin.is_file():
        cmd = [str(ladder_bin), "presets", "show", "--preset", preset, "--json"]
        res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if res.returncode == 0:
            return json.loads(res.stdout), shlex.join(["ladder", *cmd[1:]])
        log(f"bench: `{shlex.join(cmd)}` failed ({res.stderr.strip()}); reading the TOML instead")
    path = Path(preset) if preset.endswith(".toml") else REPO / "presets" / f"{preset}.toml"
    if not path.is_file():
        die(f"no preset {preset!r} (looked for {path}); build ladder or pass a .toml path")
    raw = tomllib.loads(path.read_text())
    for r in raw["rungs"]:
        r.setdefault("maxrate_kbps", round(r["bitrate_kbps"] * 1.5))
        r.setdefault("bufsize_kbit", 2 * r["maxrate_kbps"])
    raw["video"].setdefault("encoder", {"h264": "libx264", "hevc": "libx265"}.get(raw["video"].get("codec", "h264"), ""))
    raw["video"].setdefault("rate_control", {"mode": "cvbr"})
    return raw, f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path} (TOML fallback)"


def ladder_plan(ladder_bin: Path, preset: str, input_path: Path) -> dict | None:
    """`ladder plan --json` for this input: the exact rungs, frame rate and GOP ladder uses."""
    if not ladder_bin.is_file():
        return None
    cmd = [str(ladder_bin), "plan", str(input_path), "--preset", preset, "--json"]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        log(f"bench: `{shlex.join(cmd)}` failed ({res.stderr.strip()}); planning from the preset")
        return None
    try:
        plan = json.loads(res.stdout)
        if plan["rungs"] and all("width" in r and "height" in r for r in plan["rungs"]):
            return plan
    except (json.JSONDecodeError, KeyError, TypeError):
        pass
    log("bench: unexpected `ladder plan --json` output; planning from the preset")
    return None


def resolve_ladder(ladder_bin: Path, preset: str, input_path: Path, src: dict) -> Ladder:
    p, source = preset_json(ladder_bin, preset)
    video, seg, audio = p["video"], p["segments"], p.get("audio", {})
    thumbs = p.get("thumbnails", {})
    plan = ladder_plan(ladder_bin, preset, input_path)
    if plan:
        source += " + `ladder plan --json`"
        by_name = {r["name"]: r for r in p["rungs"]}
        rungs = [by_name.get(r.get("name"), {}) | r for r in plan["rungs"]]
        fps = frame_rate(plan.get("fps")) or src["fps"]
        gop_frames = plan.get("gop_frames") or round(seg["gop_seconds"] * fps)
    else:  # the same rules, roughly: never upscale, the source's rate up to max_fps
        rungs = [r for r in p["rungs"] if r["width"] <= src["width"] and r["height"] <= src["height"]]
        fps = frame_rate(video.get("fps")) or min(src["fps"], frame_rate(video.get("max_fps")) or 60.0)
        gop_frames = round(seg["gop_seconds"] * fps)
    return Ladder(
        preset=p.get("name", preset),
        source=source,
        encoder=video.get("encoder") or "libx264",
        profile=video.get("profile"),
        level=video.get("level"),
        speed=video.get("speed"),
        rate_control=video.get("rate_control") or {"mode": "cvbr"},
        fps=fps,
        gop_frames=gop_frames,
        segment_seconds=seg["segment_seconds"],
        rungs=[
            Rung(r.get("index", i), r.get("name", f"v{i}"), r["width"], r["height"], r["bitrate_kbps"], r["maxrate_kbps"], r["bufsize_kbit"])
            for i, r in enumerate(rungs)
        ],
        audio_kbps=audio.get("bitrate_kbps", 128),
        audio_rate=audio.get("sample_rate", 48000),
        audio_channels=audio.get("channels", 2),
        thumbs_interval=thumbs.get("interval_seconds") if thumbs.get("enabled", True) else None,
        thumbs_width=thumbs.get("width"),
    )


# ---------------------------------------------------------------------------------------------
# Contenders


@dataclasses.dataclass
class Contender:
    name: str
    # Why it cannot run (binary or subcommand missing), or None.
    unavailable: Callable[[], str | None]
    # The command that writes the whole output into `out` (which does not exist yet).
    command: Callable[[Path], list[str]]
    # The HLS media playlist of rung `rung` in the output `out`.
    rung_playlist: Callable[[Path, Rung], Path]
    # Done before each run (e.g. create folders the tool does not create itself).
    prepare: Callable[[Path], None] = lambda out: None


def ladder_contender(ladder_bin: Path, ladder: Ladder, input_path: Path, jobs: int | None) -> Contender:
    def unavailable() -> str | None:
        if not ladder_bin.is_file():
            return f"{ladder_bin} does not exist (run `cargo build --release --locked`)"
        res = subprocess.run([str(ladder_bin), "run", "--help"], cwd=REPO, capture_output=True, text=True)
        if res.returncode != 0:
            return f"`{ladder_bin} run` is not available in this build ({(res.stderr.strip().splitlines() or ['?'])[0]})"
        return None

    def command(out: Path) -> list[str]:
        cmd = [str(ladder_bin), "run", str(input_path), "--out", str(out), "--preset", ladder.preset, "--json"]
        return cmd + (["--jobs", str(jobs)] if jobs else [])

    return Contender("ladder", unavailable, command, lambda out, r: out / f"v{r.index}" / "index.m3u8")


def encoder_args(ladder: Ladder, single_thread: bool = False) -> list[str]:
    """The video encoder settings every rung shares (codec, speed, profile, level, fixed closed
    GOP without scene cuts), as ffmpeg CLI options; `single_thread` adds one encoder thread."""
    cmd = ["-c:v", ladder.encoder, "-pix_fmt", "yuv420p", "-r", f"{ladder.fps:g}"]
    if ladder.speed:
        cmd += ["-preset", ladder.speed]
    if ladder.profile:
        cmd += ["-profile:v", ladder.profile]
    if ladder.level:
        cmd += ["-level:v", ladder.level]
    g = str(ladder.gop_frames)
    cmd += ["-g", g, "-keyint_min", g, "-sc_threshold", "0", "-flags", "+cgop"]
    if ladder.encoder == "libx264":
        cmd += ["-x264-params", "scenecut=0:open-gop=0" + (":threads=1" if single_thread else "")]
    elif ladder.encoder == "libx265" and single_thread:
        cmd += ["-x265-params", "pools=none:frame-threads=1"]
    if single_thread:
        cmd += ["-threads", "1"]
    return cmd


def rate_args(ladder: Ladder, r: Rung, spec: str = "") -> list[str]:
    """Rate control of one rung; `spec` is the stream specifier suffix (e.g. ":2") or ""."""
    crf = ladder.rate_control.get("crf") if ladder.rate_control.get("mode") == "capped_crf" else None
    cmd = [f"-crf:v{spec}", f"{crf:g}"] if crf is not None else [f"-b:v{spec}", f"{r.bitrate_kbps}k"]
    return cmd + [f"-maxrate:v{spec}", f"{r.maxrate_kbps}k", f"-bufsize:v{spec}", f"{r.bufsize_kbit}k"]


def ffmpeg_command(ladder: Ladder, input_path: Path, has_audio: bool, out: Path) -> list[str]:
    """ONE ffmpeg process: decode once, split, scale (bicubic), encode every rung with the
    preset's settings, one AAC rendition in its own group, CMAF HLS; plus the thumbnails.
    Stream specifiers (`-b:v:K`) count output video streams; folders are named v<rung index>."""
    rungs = list(enumerate(ladder.rungs))
    thumbs = ladder.thumbs_interval is not None and ladder.thumbs_width
    split = "".join(f"[s{k}]" for k, _ in rungs) + ("[st]" if thumbs else "")
    graph = [f"[0:v]split={len(rungs) + (1 if thumbs else 0)}{split}"]
    graph += [f"[s{k}]scale={r.width}:{r.height}:flags=bicubic[v{k}]" for k, r in rungs]
    if thumbs:
        graph.append(f"[st]fps=1/{ladder.thumbs_interval:g},scale={ladder.thumbs_width}:-2:flags=bicubic[th]")
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(input_path)]
    cmd += ["-filter_complex", ";".join(graph)]
    for k, _ in rungs:
        cmd += ["-map", f"[v{k}]"]
    if has_audio:
        cmd += ["-map", "0:a:0"]
    cmd += encoder_args(ladder)
    for k, r in rungs:
        cmd += rate_args(ladder, r, f":{k}")
    agroup = ",agroup:aud" if has_audio else ""
    var_map = [f"v:{k}{agroup},name:v{r.index}" for k, r in rungs]
    if has_audio:
        cmd += ["-c:a", "aac", "-b:a", f"{ladder.audio_kbps}k", "-ar", str(ladder.audio_rate), "-ac", str(ladder.audio_channels)]
        var_map.append("a:0,agroup:aud,name:a0")
    cmd += [
        "-f", "hls", "-hls_time", f"{ladder.segment_seconds:g}", "-hls_playlist_type", "vod",
        "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments",
        "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", str(out / "%v" / "seg_%d.m4s"),
        "-master_pl_name", "master.m3u8", "-var_stream_map", " ".join(var_map), str(out / "%v" / "index.m3u8"),
    ]  # fmt: skip
    if thumbs:
        cmd += ["-map", "[th]", "-q:v", "3", str(out / "thumbs" / "t_%d.jpg")]
    return cmd


def ffmpeg_contender(ladder: Ladder, input_path: Path, has_audio: bool) -> Contender:
    return Contender(
        "ffmpeg",
        lambda: None if shutil.which("ffmpeg") else "ffmpeg is not on PATH (run scripts/deps.sh)",
        lambda out: ffmpeg_command(ladder, input_path, has_audio, out),
        lambda out, r: out / f"v{r.index}" / "index.m3u8",
        lambda out: (out / "thumbs").mkdir(parents=True, exist_ok=True),
    )


def contenders(args, ladder_bin: Path, ladder: Ladder, input_path: Path, src: dict) -> list[Contender]:
    """Everything compared, in the order each round runs them. The first is the subject, the
    last the baseline the ratios divide by."""
    return [ladder_contender(ladder_bin, ladder, input_path, args.jobs), ffmpeg_contender(ladder, input_path, src["has_audio"])]


# ---------------------------------------------------------------------------------------------
# Measuring


@dataclasses.dataclass
class RunResult:
    run: int
    exit_code: int
    wall_s: float
    user_s: float
    sys_s: float
    cpu_s: float
    max_rss_mib: float


def measure(cmd: list[str], cwd: Path, stdout: Path, stderr: Path) -> RunResult:
    """Runs `cmd` as a child and measures it: wall time, and user+sys CPU and peak RSS from
    the child's own rusage (os.wait4), so nothing else on the machine is counted."""
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # keeps Popen from waiting again
    return RunResult(
        run=0,
        exit_code=proc.returncode,
        wall_s=wall,
        user_s=ru.ru_utime,
        sys_s=ru.ru_stime,
        cpu_s=ru.ru_utime + ru.ru_stime,
        max_rss_mib=ru.ru_maxrss / 1024,  # KiB on Linux
    )


def run_quiet(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        die(f"`{shlex.join(cmd)}` failed:\n{res.stderr[-3000:]}")
    return res


# ---------------------------------------------------------------------------------------------
# Input


def probe(path: Path) -> dict:
    res = run_quiet([
        "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
        "stream=width,height,r_frame_rate,nb_frames:format=duration", "-of", "json", str(path),
    ])  # fmt: skip
    info = json.loads(res.stdout)
    if not info.get("streams"):
        die(f"{path} has no video stream")
    s = info["streams"][0]
    audio = run_quiet([
        "ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "stream=index", "-of", "csv=p=0", str(path),
    ]).stdout.strip()  # fmt: skip
    return {
        "has_audio": bool(audio),
        "width": s["width"],
        "height": s["height"],
        "fps": frame_rate(s["r_frame_rate"]),
        "duration_s": float(info["format"]["duration"]),
    }


def build_input(seconds: float) -> Path:
    """The sample looped to `seconds` and re-encoded once to one continuous high-quality stream
    (continuous time stamps, realistic decode cost). Cached."""
    path = CACHE / f"input-{seconds:g}s.mp4"
    if path.is_file():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    cmd = [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-stream_loop", "-1", "-i", str(SAMPLE), "-t", f"{seconds:g}", "-map", "0:v:0", "-map", "0:a:0",
        "-c:v", "libx264", "-preset", "medium", "-crf", "18", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "192k", "-ac", "2", "-ar", "48000", "-movflags", "+faststart", str(tmp),
    ]  # fmt: skip
    log(f"bench: building the {seconds:g} s input (once): {shlex.join(cmd)}")
    run_quiet(cmd, cwd=REPO)
    tmp.rename(path)
    return path


# ---------------------------------------------------------------------------------------------
# Outputs and quality


def media_playlist(path: Path) -> tuple[Path | None, list[tuple[Path, float]]]:
    """(init segment, [(segment, EXTINF seconds)]) of an HLS media playlist."""
    init, segs, dur = None, [], None
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-MAP:"):
            m = re.search(r'URI="([^"]+)"', line)
            init = path.parent / m.group(1) if m else None
        elif line.startswith("#EXT-X-BYTERANGE"):
            die(f"{path}: byte-range segments are not supported by the benchmark yet")
        elif line.startswith("#EXTINF:"):
            dur = float(line[len("#EXTINF:") :].split(",")[0])
        elif line and not line.startswith("#"):
            segs.append((path.parent / line, dur or 0.0))
            dur = None
    return init, segs


def rung_stats(playlist: Path, concat_to: Path) -> dict:
    """Bitrate of one rung from its files, and its segments joined into one fragmented MP4."""
    init, segs = media_playlist(playlist)
    seg_bytes = [p.stat().st_size for p, _ in segs]
    duration = sum(d for _, d in segs)
    with open(concat_to, "wb") as out:
        for p in ([init] if init else []) + [p for p, _ in segs]:
            with open(p, "rb") as f:
                shutil.copyfileobj(f, out)
    peak = max((b * 8 / d for b, (_, d) in zip(seg_bytes, segs) if d > 0), default=0.0)
    return {
        "segments": len(segs),
        "duration_s": duration,
        "bytes": sum(seg_bytes),
        "kbps": sum(seg_bytes) * 8 / duration / 1000 if duration else 0.0,
        "peak_segment_kbps": peak / 1000,
    }


def quality(source: Path, rungs: list[Rung], files: list[Path], log_to: Path) -> list[dict]:
    """PSNR and SSIM of every rung against the source scaled to the rung size (bicubic), in one
    ffmpeg process that decodes the source once. Time stamps start at 0 on both sides."""
    graph = ["[0:v]setpts=PTS-STARTPTS,split=" + str(len(rungs)) + "".join(f"[r{i}]" for i in range(len(rungs)))]
    for i, r in enumerate(rungs):
        graph += [
            f"[r{i}]scale={r.width}:{r.height}:flags=bicubic,split[ra{i}][rb{i}]",
            f"[{i + 1}:v]setpts=PTS-STARTPTS[d{i}]",
            f"[d{i}][ra{i}]psnr@psnr{i}=shortest=1[e{i}]",
            f"[e{i}][rb{i}]ssim@ssim{i}=shortest=1[o{i}]",
        ]
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-y", "-i", str(source)]
    for f in files:
        cmd += ["-i", str(f)]
    cmd += ["-filter_complex", ";".join(graph)]
    for i in range(len(rungs)):
        cmd += ["-map", f"[o{i}]"]
    cmd += ["-f", "null", "-"]
    res = run_quiet(cmd, cwd=REPO)
    log_to.write_text(shlex.join(cmd) + "\n\n" + res.stderr)
    results = []
    for i, f in enumerate(files):
        psnr = re.search(rf"\[psnr@psnr{i} @ [^]]*\] PSNR y:(\S+) u:(\S+) v:(\S+) average:(\S+)", res.stderr)
        ssim = re.search(rf"\[ssim@ssim{i} @ [^]]*\] SSIM Y:(\S+) .*All:(\S+)", res.stderr)
        frames = run_quiet([
            "ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
            "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(f),
        ]).stdout.strip()  # fmt: skip
        results.append({
            "psnr_y": float(psnr.group(1)) if psnr else None,
            "psnr_avg": float(psnr.group(4)) if psnr else None,
            "ssim_y": float(ssim.group(1)) if ssim else None,
            "ssim_all": float(ssim.group(2)) if ssim else None,
            "frames": int(frames) if frames.isdigit() else None,
        })  # fmt: skip
    return results


# ---------------------------------------------------------------------------------------------
# Reporting


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if not model:
        model = platform.processor() or platform.machine()

    def first_line(cmd: list[str]) -> str:
        try:
            res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
            return (res.stdout.strip().splitlines() or [""])[0] if res.returncode == 0 else ""
        except OSError:
            return ""

    commit = first_line(["git", "rev-parse", "HEAD"])
    if commit and first_line(["git", "status", "--porcelain", "--untracked-files=no"]):
        commit += "-dirty"
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpus_online": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "ffmpeg": first_line(["ffmpeg", "-hide_banner", "-version"]),
        "git_commit": commit,
        "git_branch": first_line(["git", "rev-parse", "--abbrev-ref", "HEAD"]),
    }


def table(rows: list[list[str]], right: set[int] | None = None) -> str:
    right = right if right is not None else set(range(1, len(rows[0])))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    fmt = lambda r: "  ".join(v.rjust(w) if c in right else v.ljust(w) for c, (v, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(rows[0]), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows[1:]])


def fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


# ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per contender, alternating (default 3)")
    ap.add_argument("--input", type=Path, help="benchmark this file as is instead of the looped sample")
    ap.add_argument("--seconds", type=float, default=60, help="length of the looped sample input (default 60)")
    ap.add_argument("--preset", default="small", help="ladder preset (default small)")
    ap.add_argument("--jobs", type=int, help="pass --jobs N to `ladder run`")
    ap.add_argument("--ladder", type=Path, help="the ladder binary (default $CARGO_TARGET_DIR or target, /release/ladder)")
    ap.add_argument("--only", action="append", help="run only this contender (repeatable)")
    ap.add_argument("--no-quality", action="store_true", help="skip the bitrate/PSNR/SSIM table")
    ap.add_argument("--keep", action="store_true", help="keep every output (under target/bench/runs-<time>)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON to FILE")
    args = ap.parse_args()
    if args.runs < 1:
        die("--runs must be at least 1")
    # Paths from the command line are relative to where it was typed; everything runs in the repo.
    for name in ("input", "json", "ladder"):
        if getattr(args, name):
            setattr(args, name, getattr(args, name).resolve())
    os.chdir(REPO)
    for tool in ("ffmpeg", "ffprobe"):
        if not shutil.which(tool):
            die(f"{tool} is not on PATH (run scripts/deps.sh)")

    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    ladder_bin = (args.ladder or target / "release" / "ladder").resolve()

    input_path = rel(args.input) if args.input else rel(build_input(args.seconds))
    src = probe(input_path)
    ladder = resolve_ladder(ladder_bin, args.preset, input_path, src)
    if not ladder.rungs:
        die("no rung of the preset applies to this input")

    every = contenders(args, ladder_bin, ladder, input_path, src)
    if args.only:
        every = [c for c in every if c.name in args.only]
    active, skipped = [], {}
    for c in every:
        why = c.unavailable()
        if why:
            log(f"bench: SKIPPING {c.name}: {why}")
            skipped[c.name] = why
        else:
            active.append(c)
    if not active:
        die("nothing to run")

    info = machine()
    print(f"machine: {info['nproc']} CPUs ({info['cpu_model']}), kernel {info['kernel']}")
    print(f"ffmpeg:  {info['ffmpeg']}")
    print(f"commit:  {info['git_commit']} ({info['git_branch']})")
    print(f"input:   {input_path}"
          f" ({src['width']}x{src['height']} @ {src['fps']:g} fps, {src['duration_s']:.2f} s)")  # fmt: skip
    print(f"preset:  {ladder.preset} from `{ladder.source}`: {ladder.encoder} {ladder.speed or ''}, "
          f"GOP {ladder.gop_frames} frames @ {ladder.fps:g} fps, {ladder.segment_seconds:g} s segments, "
          + ", ".join(f"{r.width}x{r.height}@{r.bitrate_kbps}k" for r in ladder.rungs))  # fmt: skip
    for name, why in skipped.items():
        print(f"SKIPPED: {name}: {why}")
    print()

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = rel(CACHE / f"runs-{stamp}")
    work.mkdir(parents=True, exist_ok=True)
    commands: dict[str, str] = {}
    for c in active:
        commands[c.name] = shlex.join(c.command(work / f"{c.name}-N"))
        print(f"{c.name} command (output dir {c.name}-N):\n  {commands[c.name]}\n")

    results: dict[str, list[RunResult]] = {c.name: [] for c in active}
    last_out: dict[str, Path] = {}
    failed: set[str] = set()
    for i in range(1, args.runs + 1):
        for c in active:
            if c.name in failed:
                continue
            out = work / f"{c.name}-{i}"
            c.prepare(out)
            r = measure(c.command(out), REPO, work / f"{c.name}-{i}.stdout", work / f"{c.name}-{i}.stderr")
            r.run = i
            results[c.name].append(r)
            status = "ok" if r.exit_code == 0 else f"FAILED (exit {r.exit_code}, see {work / f'{c.name}-{i}.stderr'})"
            print(f"run {i}/{args.runs} {c.name:<8} wall {r.wall_s:7.2f} s  cpu {r.cpu_s:7.2f} s  "
                  f"peak RSS {r.max_rss_mib:7.1f} MiB  {status}", flush=True)  # fmt: skip
            if r.exit_code != 0:
                failed.add(c.name)
                tail = (work / f"{c.name}-{i}.stderr").read_text(errors="replace").strip().splitlines()[-5:]
                log("\n".join("  " + line for line in tail))
                continue
            if c.name in last_out and not args.keep:
                shutil.rmtree(last_out[c.name], ignore_errors=True)
            last_out[c.name] = out

    # Medians and ratios over the successful runs.
    medians: dict[str, dict] = {}
    for c in active:
        ok = [r for r in results[c.name] if r.exit_code == 0]
        if ok:
            medians[c.name] = {
                k: statistics.median(getattr(r, k) for r in ok) for k in ("wall_s", "cpu_s", "max_rss_mib")
            } | {"runs": len(ok)}
    print()
    if medians:
        rows = [["median", "runs", "wall s", "CPU s", "CPU/wall", "peak RSS MiB", "x realtime"]]
        for name, m in medians.items():
            rows.append([name, str(m["runs"]), f"{m['wall_s']:.2f}", f"{m['cpu_s']:.2f}",
                         f"{m['cpu_s'] / m['wall_s']:.2f}", f"{m['max_rss_mib']:.1f}",
                         f"{src['duration_s'] / m['wall_s']:.2f}"])  # fmt: skip
        print(table(rows))
    ratios: dict[str, dict] = {}
    names = [c.name for c in active if c.name in medians]
    if len(names) >= 2:
        base = names[-1]
        for name in names[:-1]:
            ratios[f"{name}/{base}"] = {k: medians[name][k] / medians[base][k] for k in ("wall_s", "cpu_s", "max_rss_mib")}
        print()
        for key, r in ratios.items():
            print(f"ratio {key}: wall {r['wall_s']:.2f}x  CPU {r['cpu_s']:.2f}x  peak RSS {r['max_rss_mib']:.2f}x"
                  "  (below 1 = ladder better)")  # fmt: skip

    # Quality on the last successful output of each contender (not timed).
    qual: dict[str, list[dict]] = {}
    if not args.no_quality:
        for c in active:
            out = last_out.get(c.name)
            if not out:
                continue
            log(f"bench: measuring quality of {c.name} ({out.name}) …")
            stats, files = [], []
            for r in ladder.rungs:
                pl = c.rung_playlist(out, r)
                if not pl.is_file():
                    die(f"{c.name}: no playlist {pl} for rung {r.index}")
                files.append(work / f"{c.name}-v{r.index}.mp4")
                stats.append(rung_stats(pl, files[-1]))
            q = quality(input_path, ladder.rungs, files, work / f"{c.name}-quality.log")
            qual[c.name] = [s | m for s, m in zip(stats, q)]
            if not args.keep:
                for f in files:
                    f.unlink(missing_ok=True)
        if qual:
            names_q = list(qual)
            expected = round(src["duration_s"] * ladder.fps)
            head = ["rung", "size", "target"] + [f"{n} kbit/s" for n in names_q] + [f"{n} PSNR-Y" for n in names_q]
            head += [f"{n} SSIM-Y" for n in names_q]
            rows = [head]
            for k, r in enumerate(ladder.rungs):
                row = [f"v{r.index} {r.name}", f"{r.width}x{r.height}", f"{r.bitrate_kbps}"]
                row += [fmt(qual[n][k]["kbps"], ".0f") for n in names_q]
                row += [fmt(qual[n][k]["psnr_y"], ".2f") for n in names_q]
                row += [fmt(qual[n][k]["ssim_y"], ".4f") for n in names_q]
                rows.append(row)
            print()
            print(table(rows, right=set(range(2, len(head)))))
            print("(kbit/s = segment bytes x 8 / playlist duration; PSNR/SSIM vs the source scaled bicubic to the rung size)")
            for n in names_q:
                for r, qr in zip(ladder.rungs, qual[n]):
                    if qr["frames"] is not None and abs(qr["frames"] - expected) > 1:
                        print(f"note: {n} v{r.index} has {qr['frames']} frames, the source {expected}")
                    if qr["psnr_y"] is None:
                        print(f"note: {n} v{r.index}: no PSNR in {work / f'{n}-quality.log'}")

    if args.json:
        doc = {
            "machine": info,
            "input": {"path": str(input_path), **src},
            "preset": dataclasses.asdict(ladder),
            "commands": commands,
            "runs": {n: [dataclasses.asdict(r) for r in rs] for n, rs in results.items()},
            "medians": medians,
            "ratios": ratios,
            "quality": qual,
            "skipped": skipped,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nresults: {args.json}")
    if args.keep:
        print(f"outputs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
