#!/usr/bin/env python3
"""Benchmark: `ladder run` against the equivalent single-process ffmpeg CLI command and the lower bound.

Builds (once, cached) a 60 s input from the bundled sample, runs every contender N times,
alternating, and measures wall time, CPU time (user+sys) and peak RSS of each child process.
In the same rounds it measures the lower bound: each stage of the work done alone,
single-threaded, with the ffmpeg CLI (decode; decode+scale to each rung, minus decode; encode
each rung from its pre-scaled raw frames; audio); their CPU seconds summed are the bound's
CPU, divided by the CPUs available its wall time. Then, on the last run of each contender
only (not timed), measures every rung with the ffmpeg CLI as an independent checker: video
bitrate from the segment sizes and PSNR/SSIM against the source scaled to the rung size
(bicubic), and checks quality parity (PSNR within 0.1 dB at bitrates within 5 %). Ends with
the targets of issue 6, each PASS/FAIL. `--duration-scaling` and `--pinned-shards` add the
two slow measurements (2 x the duration; two shards pinned to one CPU each).

A contender is a name, a command, and how to find its rung outputs (one HLS media playlist
per rung); add one to `contenders()` to compare something else.

Standard library only (Python 3.11+). Run `scripts/bench.py --help`.
"""

from __future__ import annotations

import argparse
import atexit
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
    chunks: int | None = None  # from `ladder plan --json` (the unit of work shards share)


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
        chunks=len(plan["chunks"]) if plan and isinstance(plan.get("chunks"), list) else None,
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


def measure(cmd: list[str], cwd: Path, stdout: Path, stderr: Path, env: dict | None = None) -> RunResult:
    """Runs `cmd` as a child and measures it: wall time, and user+sys CPU and peak RSS from
    the child's own rusage (os.wait4), so nothing else on the machine is counted."""
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
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
# Lower bound: every stage done alone, single-threaded, with the ffmpeg CLI

FF = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
# One filter thread, one decoder thread (before -i); encoders get theirs from encoder_args.
ONE_THREAD_IN = ["-filter_threads", "1", "-threads", "1"]
# The ffmpeg CLI doing (nearly) nothing: the CPU cost of starting the process (loading and
# initialising the libav libraries), which is not part of any stage.
STARTUP = FF + ["-f", "lavfi", "-i", "nullsrc=s=16x16:d=0.04", "-f", "null", "-"]


@dataclasses.dataclass
class Stage:
    name: str  # "decode", "decode+scale v0", "encode v0", "audio"
    command: list[str]


class LowerBound:
    """The single-thread CPU seconds of each stage of the work done alone on the same input:
    decode once; scale to each rung (decode+scale minus decode); encode each rung from its
    pre-scaled raw frames (written once, untimed, to the run folder) with one thread; audio
    (decode + resample + AAC). Their sum is the least CPU any program doing the same work with
    the same libraries can spend; divided by the CPUs available, the least wall time.

    Each stage runs in a process of its own, so each pays the CLI's start-up (~0.1 s CPU of
    loading libav): it is measured alone (median of 3, every run) and subtracted from every
    stage measured directly (decode, encodes, audio; scale is a difference, so already net)."""

    def __init__(self, ladder: Ladder, input_path: Path, src: dict, work: Path):
        self.ladder, self.input, self.src, self.work = ladder, input_path, src, work
        # Constant frame rate at the ladder's rate: only when the source's differs.
        self.fps_opts = [] if abs(src["fps"] - ladder.fps) < 1e-3 else ["-r", f"{ladder.fps:g}"]
        self.raw = {r.index: work / f"raw-v{r.index}-{r.width}x{r.height}.yuv" for r in ladder.rungs}
        inp = [*ONE_THREAD_IN, "-i", str(input_path)]
        self.stages = [Stage("decode", FF + inp + ["-map", "0:v:0", *self.fps_opts, "-f", "null", "-"])]
        for r in ladder.rungs:
            self.stages.append(Stage(f"decode+scale v{r.index}", FF + inp + [
                "-map", "0:v:0", "-vf", f"scale={r.width}:{r.height}:flags=bicubic", "-pix_fmt", "yuv420p",
                *self.fps_opts, "-f", "null", "-",
            ]))  # fmt: skip
        for r in ladder.rungs:
            self.stages.append(Stage(f"encode v{r.index}", FF + self.raw_input(r) + encoder_args(ladder, True)
                                     + rate_args(ladder, r) + ["-f", "null", "-"]))  # fmt: skip
        if src["has_audio"]:
            self.stages.append(Stage("audio", FF + inp + [
                "-map", "0:a:0", "-c:a", "aac", "-b:a", f"{ladder.audio_kbps}k", "-ar", str(ladder.audio_rate),
                "-ac", str(ladder.audio_channels), "-threads", "1", "-f", "null", "-",
            ]))  # fmt: skip
        self.runs: list[dict[str, RunResult]] = []
        self.startup: list[float] = []  # CPU s of STARTUP, per run
        self.read_raw: dict[str, float] = {}  # CPU s of reading each raw file alone (in "encode")
        self.failed: str | None = None

    def raw_input(self, r: Rung) -> list[str]:
        return ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{r.width}x{r.height}", "-r", f"{self.ladder.fps:g}",
                "-i", str(self.raw[r.index])]  # fmt: skip

    def prepare(self) -> None:
        """Writes every rung's scaled frames once (one decode, bicubic, yuv420p), untimed, and
        measures the CPU cost of only reading them back (it is part of each encode stage)."""
        rungs = [r for r in self.ladder.rungs if not self.raw[r.index].is_file()]
        if rungs:
            graph = f"[0:v]split={len(rungs)}" + "".join(f"[s{k}]" for k in range(len(rungs)))
            graph += "".join(f";[s{k}]scale={r.width}:{r.height}:flags=bicubic[o{k}]" for k, r in enumerate(rungs))
            cmd = FF + ["-i", str(self.input), "-filter_complex", graph]
            for k, r in enumerate(rungs):
                cmd += ["-map", f"[o{k}]", "-pix_fmt", "yuv420p", *self.fps_opts, "-f", "rawvideo", str(self.raw[r.index])]
            gib = sum(r.width * r.height * 1.5 for r in rungs) * self.src["duration_s"] * self.ladder.fps / 2**30
            log(f"bench: writing the scaled raw frames for the lower bound (once, untimed, ~{gib:.1f} GiB): {shlex.join(cmd)}")
            run_quiet(cmd, cwd=REPO)
            # Written back now, not during the first timed runs: the kernel's writeback of
            # GiBs competes with them, and ladder's synced writes wait behind it.
            os.sync()
        up = statistics.median(measure(STARTUP, REPO, Path(os.devnull), Path(os.devnull)).cpu_s for _ in range(3))
        for r in self.ladder.rungs:
            res = measure(FF + self.raw_input(r) + ["-f", "null", "-"], REPO, Path(os.devnull), Path(os.devnull))
            self.read_raw[f"v{r.index}"] = max(0.0, res.cpu_s - up)

    def run_once(self, i: int) -> None:
        up = [measure(STARTUP, REPO, Path(os.devnull), Path(os.devnull)) for _ in range(3)]
        rec: dict[str, RunResult] = {}
        for st in self.stages:
            tag = st.name.replace(" ", "-").replace("+", "_")
            res = measure(st.command, REPO, Path(os.devnull), self.work / f"bound-{i}-{tag}.stderr")
            res.run = i
            if res.exit_code != 0:
                tail = (self.work / f"bound-{i}-{tag}.stderr").read_text(errors="replace").strip().splitlines()[-5:]
                self.failed = f"stage {st.name} exited {res.exit_code}: " + " | ".join(tail)
                return
            rec[st.name] = res
        self.runs.append(rec)
        self.startup.append(statistics.median(r.cpu_s for r in up))

    def per_run_stages(self, k: int) -> dict[str, float]:
        """CPU s of each stage in run k, net of the process start-up of the same run;
        scale = decode+scale - decode."""
        rec, up = self.runs[k], self.startup[k]
        out = {"decode": rec["decode"].cpu_s - up}
        for r in self.ladder.rungs:
            out[f"scale v{r.index}"] = rec[f"decode+scale v{r.index}"].cpu_s - rec["decode"].cpu_s
        for r in self.ladder.rungs:
            out[f"encode v{r.index}"] = rec[f"encode v{r.index}"].cpu_s - up
        if "audio" in rec:
            out["audio"] = rec["audio"].cpu_s - up
        return out

    def summary(self, nproc: int) -> dict | None:
        if not self.runs:
            return None
        per_run = [self.per_run_stages(k) for k in range(len(self.runs))]
        stages = {k: statistics.median(pr[k] for pr in per_run) for k in per_run[0]}
        cpu = sum(stages.values())
        return {
            "runs": len(self.runs),
            "nproc": nproc,
            "stages_cpu_s": stages,  # medians over the runs
            "cpu_s": cpu,  # the sum of the stages' medians
            "wall_s": cpu / nproc,
            "per_run_cpu_s": [sum(pr.values()) for pr in per_run],
            "startup_cpu_s": statistics.median(self.startup),  # subtracted from each direct stage
            "startup_per_run_cpu_s": self.startup,
            "startup_command": shlex.join(STARTUP),
            "all_processes_cpu_s": statistics.median(sum(r.cpu_s for r in rec.values()) for rec in self.runs),
            "read_raw_cpu_s": self.read_raw,
            "commands": {st.name: shlex.join(st.command) for st in self.stages},
            "measurements": [{k: dataclasses.asdict(v) for k, v in rec.items()} for rec in self.runs],
        }


# ---------------------------------------------------------------------------------------------
# Optional modes: duration scaling, pinned shards


def doubled_input(args, input_path: Path, src: dict) -> Path:
    """An input twice as long as `input_path`, built the same way (cached): the sample looped
    to 2 x --seconds, or a given --input looped once (stream copy)."""
    if not args.input:
        return rel(build_input(2 * args.seconds))
    path = CACHE / f"{input_path.stem}-x2.mp4"
    if path.is_file() and path.stat().st_mtime >= input_path.stat().st_mtime:
        return rel(path)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    cmd = FF + ["-stream_loop", "1", "-i", str(input_path), "-t", f"{2 * src['duration_s']:.3f}", "-map", "0:v:0",
                "-map", "0:a:0?", "-c", "copy", str(tmp)]  # fmt: skip
    log(f"bench: building the 2x input (once): {shlex.join(cmd)}")
    run_quiet(cmd, cwd=REPO)
    tmp.rename(path)
    return rel(path)


def ladder_run_cmd(ladder_bin: Path, input_path: Path, out: Path, preset: str, *extra: str) -> list[str]:
    return [str(ladder_bin), "run", str(input_path), "--out", str(out), "--preset", preset, "--json", *extra]


def med(rs: list[RunResult], key: str) -> float:
    return statistics.median(getattr(r, key) for r in rs)


def duration_scaling(args, ladder_bin: Path, ladder: Ladder, input_path: Path, src: dict, work: Path) -> dict:
    """`ladder run` on the input and on one twice as long, alternating, --runs times each."""
    long_path = doubled_input(args, input_path, src)
    long_src = probe(long_path)
    jobs = ["--jobs", str(args.jobs)] if args.jobs else []
    res: dict[str, list[RunResult]] = {"1x": [], "2x": []}
    print(f"\nduration scaling: {input_path} ({src['duration_s']:.2f} s) vs {long_path} ({long_src['duration_s']:.2f} s)")
    for i in range(1, args.runs + 1):
        for tag, path in (("1x", input_path), ("2x", long_path)):
            out = work / f"scaling-{tag}-{i}"
            r = measure(ladder_run_cmd(ladder_bin, path, out, ladder.preset, *jobs), REPO, work / f"scaling-{tag}-{i}.stdout",
                        work / f"scaling-{tag}-{i}.stderr")  # fmt: skip
            r.run = i
            res[tag].append(r)
            print(f"run {i}/{args.runs} ladder {tag}  wall {r.wall_s:7.2f} s  cpu {r.cpu_s:7.2f} s  "
                  f"peak RSS {r.max_rss_mib:7.1f} MiB  {'ok' if r.exit_code == 0 else f'FAILED (exit {r.exit_code})'}", flush=True)  # fmt: skip
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)
    ok = {t: [r for r in rs if r.exit_code == 0] for t, rs in res.items()}
    doc = {"inputs": {"1x": {"path": str(input_path), "duration_s": src["duration_s"]},
                      "2x": {"path": str(long_path), "duration_s": long_src["duration_s"]}},
           "runs": {t: [dataclasses.asdict(r) for r in rs] for t, rs in res.items()}}  # fmt: skip
    if not ok["1x"] or not ok["2x"]:
        doc["error"] = "a run failed"
        print("duration scaling: a run failed, no ratio")
        return doc
    m = {t: {k: med(rs, k) for k in ("wall_s", "cpu_s", "max_rss_mib")} for t, rs in ok.items()}
    doc |= {
        "medians": m,
        "duration_ratio": long_src["duration_s"] / src["duration_s"],
        "wall_ratio": m["2x"]["wall_s"] / m["1x"]["wall_s"],
        "cpu_ratio": m["2x"]["cpu_s"] / m["1x"]["cpu_s"],
        "rss_ratio": m["2x"]["max_rss_mib"] / m["1x"]["max_rss_mib"],
    }
    print(f"duration scaling (medians): {doc['duration_ratio']:.2f}x the duration -> wall {doc['wall_ratio']:.3f}x "
          f"(target <= 2.05), CPU {doc['cpu_ratio']:.3f}x; peak RSS {m['1x']['max_rss_mib']:.1f} -> "
          f"{m['2x']['max_rss_mib']:.1f} MiB ({doc['rss_ratio']:.2f}x, flat = <= 1.10x)")  # fmt: skip
    return doc


def s3_vs_local(args, ladder_bin: Path, ladder: Ladder, input_path: Path, work: Path) -> dict:
    """`ladder run` local -> local against S3 -> S3 through a local S3 protocol server
    (examples/s3_server.rs: s3s + s3s-fs over a folder, SigV4), alternating, --runs times
    each. Both read and write the same disk, so the ratio is the cost of the S3 path itself:
    the ranged fetch, checksummed PUTs, HTTP and signing (issue 4's target: <= 1.05 x)."""
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    build = ["cargo", "build", "--release", "--locked", "--example", "s3_server"]
    log(f"bench: building the S3 server (once): {shlex.join(build)}")
    run_quiet(build, cwd=REPO)
    server_bin = target_dir / "release" / "examples" / "s3_server"
    root = work / "s3-root"
    (root / "media").mkdir(parents=True, exist_ok=True)
    (root / "ladder").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / input_path, root / "media" / "input.mp4")
    server = subprocess.Popen([str(server_bin), str(root), "0"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        ready = (server.stdout.readline() if server.stdout else "").split()
        if len(ready) != 4 or ready[0] != "ready":
            return {"error": f"the S3 server did not start ({ready})"}
        endpoint, key, secret = ready[1:]
        env = os.environ | {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1",
                            "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
                            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}  # fmt: skip
        jobs = ["--jobs", str(args.jobs)] if args.jobs else []
        res: dict[str, list[RunResult]] = {"local": [], "s3": []}
        print(f"\nS3 vs local: {input_path}; S3 server {endpoint} over {root}")
        for i in range(1, args.runs + 1):
            s3_cmd = [str(ladder_bin), "run", "s3://media/input.mp4", "--out", f"s3://ladder/run-{i}", "--preset",
                      ladder.preset, "--json", "--s3-endpoint", endpoint, *jobs]  # fmt: skip
            runs = (("local", ladder_run_cmd(ladder_bin, input_path, work / f"s3cmp-local-{i}", ladder.preset, *jobs)),
                    ("s3", s3_cmd))  # fmt: skip
            for tag, cmd in runs:
                r = measure(cmd, REPO, work / f"s3cmp-{tag}-{i}.stdout", work / f"s3cmp-{tag}-{i}.stderr", env=env)
                r.run = i
                res[tag].append(r)
                print(f"run {i}/{args.runs} ladder {tag:5}  wall {r.wall_s:7.2f} s  cpu {r.cpu_s:7.2f} s  "
                      f"peak RSS {r.max_rss_mib:7.1f} MiB  {'ok' if r.exit_code == 0 else f'FAILED (exit {r.exit_code})'}", flush=True)  # fmt: skip
            if not args.keep:
                shutil.rmtree(work / f"s3cmp-local-{i}", ignore_errors=True)
                shutil.rmtree(root / "ladder" / f"run-{i}", ignore_errors=True)
    finally:
        server.terminate()
        server.wait()
    doc: dict = {"endpoint": endpoint, "runs": {t: [dataclasses.asdict(r) for r in rs] for t, rs in res.items()}}
    ok = {t: [r for r in rs if r.exit_code == 0] for t, rs in res.items()}
    if not ok["local"] or not ok["s3"]:
        doc["error"] = "a run failed"
        print("S3 vs local: a run failed, no ratio")
        return doc
    m = {t: {k: med(rs, k) for k in ("wall_s", "cpu_s", "max_rss_mib")} for t, rs in ok.items()}
    doc |= {"medians": m, "wall_ratio": m["s3"]["wall_s"] / m["local"]["wall_s"],
            "cpu_ratio": m["s3"]["cpu_s"] / m["local"]["cpu_s"]}  # fmt: skip
    print(f"S3 vs local (medians): wall {m['s3']['wall_s']:.2f} / {m['local']['wall_s']:.2f} s = {doc['wall_ratio']:.3f}x "
          f"(target <= 1.05), CPU {doc['cpu_ratio']:.3f}x, peak RSS {m['local']['max_rss_mib']:.1f} -> {m['s3']['max_rss_mib']:.1f} MiB")  # fmt: skip
    return doc


# ---------------------------------------------------------------------------------------------
# Streaming an S3 input (issue 18): start-up, a shard's share, stream vs fetch


def start_s3_server(root: Path) -> tuple[subprocess.Popen, str, dict]:
    """examples/s3_server.rs (s3s + s3s-fs) over `root`: the process, its endpoint, and the
    environment that reaches it and nothing else."""
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    build = ["cargo", "build", "--release", "--locked", "--example", "s3_server"]
    log(f"bench: building the S3 server (once): {shlex.join(build)}")
    run_quiet(build, cwd=REPO)
    server = subprocess.Popen([str(target_dir / "release" / "examples" / "s3_server"), str(root), "0"],
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)  # fmt: skip
    ready = (server.stdout.readline() if server.stdout else "").split()
    if len(ready) != 4 or ready[0] != "ready":
        server.kill()
        die(f"the S3 server did not start ({ready})")
    endpoint, key, secret = ready[1:]
    env = os.environ | {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1",
                        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
                        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "LADDER_S3_ENDPOINT": endpoint}  # fmt: skip
    return server, endpoint, env


def seed_object(root: Path, bucket: str, key: str, source: Path) -> None:
    """Puts `source` in the server's folder as `bucket/key` (a hard link) with the ETag s3s-fs
    keeps for an uploaded object (else it hashes the whole file on every GET)."""
    import base64
    import hashlib

    dest = root / bucket / key
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        os.link(source, dest)
    md5_cache = source.with_suffix(source.suffix + ".md5")
    if not md5_cache.is_file():
        h = hashlib.md5()
        with open(source, "rb") as f:
            while chunk := f.read(1 << 24):
                h.update(chunk)
        md5_cache.write_text(h.hexdigest())
    enc = lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")  # noqa: E731
    info = root / f".bucket-{enc(bucket)}.object-{enc(key)}.internal.json"
    info.write_text(json.dumps({"e_tag": md5_cache.read_text().strip()}))


class CountingProxy:
    """A TCP proxy in front of the S3 server that counts the bytes the server sends back:
    what the object store served (bodies and headers), independent of ladder's own count."""

    def __init__(self, upstream: str):
        import socket
        import threading

        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.served = 0
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src, dst, count: bool) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
                if count:
                    with self.lock:
                        self.served += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(2)
                except OSError:
                    pass

    def take(self) -> int:
        with self.lock:
            served, self.served = self.served, 0
        return served


def looped_input(source: Path, seconds: int) -> Path:
    """`source` looped to `seconds` by stream copy (no re-encode: cheap for an hour), the
    index at the end as a recorder writes it. Cached."""
    path = CACHE / f"loop-{seconds}s.mp4"
    if path.is_file():
        return path
    tmp = path.with_suffix(".part.mp4")
    cmd = [*FF, "-stream_loop", "-1", "-i", str(source), "-t", str(seconds), "-c", "copy", str(tmp)]
    log(f"bench: building the {seconds} s input (once): {shlex.join(cmd)}")
    run_quiet(cmd, cwd=REPO)
    tmp.rename(path)
    return path


def time_to_first_picture(cmd: list[str], env: dict) -> tuple[float | None, str]:
    """Seconds from starting `cmd` to its log's `first picture encoded`; the run is then
    interrupted (SIGTERM). Also returns the log read so far."""
    import signal

    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    seen, lines = None, []
    assert proc.stderr
    for line in proc.stderr:
        lines.append(line)
        if "first picture encoded" in line:
            seen = time.monotonic() - start
            break
    proc.send_signal(signal.SIGTERM)
    proc.communicate()
    return seen, "".join(lines)


def streaming(args, ladder_bin: Path, input_path: Path, work: Path) -> dict:
    """Issue 18's measurements through the local S3 server and a byte-counting proxy:
    start-up (process start to the first encoded picture) of a 10- and a 60-minute input,
    streamed and fetched; `--shard 0/32` of the hour (bytes served, wall against the same
    shard from a local file); a whole 10-minute S3 -> S3 run streamed against fetched."""
    inputs = {600: looped_input(input_path, 600), 3600: looped_input(input_path, 3600)}
    root = work / "s3-root"
    (root / "ladder").mkdir(parents=True, exist_ok=True)
    for seconds, path in inputs.items():
        seed_object(root, "media", f"in-{seconds}.mp4", path)
    server, endpoint, env = start_s3_server(root)
    proxy = CountingProxy(endpoint)
    penv = env | {"LADDER_S3_ENDPOINT": proxy.endpoint}
    doc: dict = {"inputs": {s: {"path": str(p), "bytes": p.stat().st_size} for s, p in inputs.items()}}
    preset = ["--preset", args.preset, "--progress", "off", "--log", "ladder=info", "--log-format", "text"]
    try:
        print("\nstart-up: process start to the first encoded picture (S3 input through the proxy)")
        startup: dict = {}
        for seconds in inputs:
            for mode in ("stream", "fetch"):
                runs = []
                for i in range(args.runs):
                    out = work / f"startup-{seconds}-{mode}-{i}"
                    cmd = [str(ladder_bin), "run", f"s3://media/in-{seconds}.mp4", "--out", str(out), *preset]
                    proxy.take()
                    t, _ = time_to_first_picture(cmd, penv | {"LADDER_S3_INPUT": mode})
                    runs.append({"seconds": t, "bytes_served": proxy.take()})
                    shutil.rmtree(out, ignore_errors=True)
                ok = [r["seconds"] for r in runs if r["seconds"] is not None]
                startup[f"{seconds}-{mode}"] = {"runs": runs, "median_s": statistics.median(ok) if ok else None}
                print(f"  {seconds // 60:3d} min, {mode:6}: " + ", ".join(f"{r['seconds']:.2f} s ({r['bytes_served'] / 1e6:.1f} MB)"
                      if r["seconds"] is not None else "no picture" for r in runs))  # fmt: skip
        doc["startup"] = startup

        print("\nshard 0/32 of the hour: bytes the store served, wall against the same shard from the local file")
        shard_env = penv | {"LADDER_SHARD": "0/32"}
        proxy.take()
        s3_run = measure([str(ladder_bin), "run", "s3://media/in-3600.mp4", "--out", str(work / "shard-s3"), "--json", *preset],
                         REPO, work / "shard-s3.stdout", work / "shard-s3.stderr", env=shard_env)  # fmt: skip
        served = proxy.take()
        local_run = measure([str(ladder_bin), "run", str(inputs[3600]), "--out", str(work / "shard-local"), "--json", *preset],
                            REPO, work / "shard-local.stdout", work / "shard-local.stderr", env=shard_env)  # fmt: skip
        summary = json.loads((work / "shard-s3.stdout").read_text() or "{}")
        size = inputs[3600].stat().st_size
        doc["shard"] = {"s3": dataclasses.asdict(s3_run), "local": dataclasses.asdict(local_run), "bytes_served": served,
                        "bytes_read": summary.get("input_bytes_read"), "size": size,
                        "chunks": summary.get("chunks_encoded"), "share": served / size,
                        "wall_ratio": s3_run.wall_s / local_run.wall_s}  # fmt: skip
        print(f"  served {served / 1e6:.1f} of {size / 1e6:.1f} MB = {served / size:.4f} (ladder counted "
              f"{summary.get('input_bytes_read')}); chunks {summary.get('chunks_encoded')}; wall {s3_run.wall_s:.2f} s "
              f"from S3, {local_run.wall_s:.2f} s from the local file: {doc['shard']['wall_ratio']:.3f}x")  # fmt: skip

        print("\nwhole 10-minute run, S3 -> S3: streamed against fetched whole")
        full: dict = {}
        for mode in ("stream", "fetch"):
            proxy.take()
            r = measure([str(ladder_bin), "run", "s3://media/in-600.mp4", "--out", f"s3://ladder/full-{mode}", "--json",
                         *preset], REPO, work / f"full-{mode}.stdout", work / f"full-{mode}.stderr",
                        env=penv | {"LADDER_S3_INPUT": mode})  # fmt: skip
            full[mode] = dataclasses.asdict(r) | {"bytes_served": proxy.take()}
            print(f"  {mode:6}: wall {r.wall_s:.2f} s, CPU {r.cpu_s:.2f} s, peak RSS {r.max_rss_mib:.1f} MiB, "
                  f"served {full[mode]['bytes_served'] / 1e6:.1f} MB, exit {r.exit_code}")  # fmt: skip
        full["wall_ratio"] = full["stream"]["wall_s"] / full["fetch"]["wall_s"]
        doc["full"] = full
    finally:
        server.terminate()
        server.wait()

    st = doc["startup"]
    s10, s60 = st["600-stream"]["median_s"], st["3600-stream"]["median_s"]
    sh = doc["shard"]
    rows = [["target", "measured", "result"]]
    rows.append(target_line("start-up <= 2 s (10 and 60 min, streamed)", f"{s10:.2f} / {s60:.2f} s" if s10 and s60 else "-",
                            bool(s10 and s60 and max(s10, s60) <= 2.0)))  # fmt: skip
    rows.append(target_line("start-up 60 min within 10 % of 10 min", f"{s60 / s10:.3f}x" if s10 and s60 else "-",
                            bool(s10 and s60 and abs(s60 / s10 - 1) <= 0.10)))  # fmt: skip
    rows.append(target_line("shard 0/32 reads <= 1/32 + 5 %", f"{sh['share']:.4f} (<= {1 / 32 + 0.05:.4f})",
                            sh["share"] <= 1 / 32 + 0.05))  # fmt: skip
    rows.append(target_line("shard 0/32 wall <= 1.1 x its chunks from a local file", f"{sh['wall_ratio']:.3f}x",
                            sh["wall_ratio"] <= 1.1))  # fmt: skip
    rows.append(target_line("S3 -> S3 streamed <= 1.0 x fetched", f"{doc['full']['wall_ratio']:.3f}x",
                            doc["full"]["wall_ratio"] <= 1.0))  # fmt: skip
    print("\ntargets (issue 18):")
    print(table(rows, right={2}))
    doc["targets"] = rows[1:]
    return doc


def streaming_main(args, ladder_bin: Path, input_path: Path) -> int:
    """`--streaming`: issue 18's measurements alone; 0 when every target passes."""
    if not ladder_bin.is_file():
        die(f"{ladder_bin} is missing (make build)")
    info = machine()
    print(f"machine: {info['nproc']} CPUs ({info['cpu_model']}), commit {info['git_commit']}; input looped from {input_path}")
    work = rel(CACHE / f"runs-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}")
    work.mkdir(parents=True, exist_ok=True)
    doc = streaming(args, ladder_bin, input_path, work) | {"machine": info}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nresults: {args.json}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(row[2] == "PASS" for row in doc["targets"]) else 1


def pinned_shards(args, ladder_bin: Path, ladder: Ladder, input_path: Path, work: Path) -> dict:
    """One `ladder run --jobs 1` pinned to one CPU, against two processes at once, each pinned to
    a CPU of its own and doing one shard of two (`--shard i/2 --jobs 1`) into the same fresh
    output; the last to finish publishes master.m3u8. Alternating, --runs times each."""
    cpus = sorted(os.sched_getaffinity(0))[:2]
    if len(cpus) < 2 or not shutil.which("taskset"):
        why = "needs 2 CPUs and taskset"
        print(f"\npinned shards: SKIPPED ({why})")
        return {"error": why}
    print(f"\npinned shards: 1 process on CPU {cpus[0]} vs 2 shards on CPUs {cpus[0]} and {cpus[1]}")
    if ladder.chunks is not None and ladder.chunks < 2:
        print(f"note: the plan has {ladder.chunks} chunk(s): shard 1/2 has nothing to do; use a longer input")
    single: list[RunResult] = []
    pairs: list[dict] = []
    for i in range(1, args.runs + 1):
        out = work / f"pinned-1-{i}"
        cmd = ["taskset", "-c", str(cpus[0])] + ladder_run_cmd(ladder_bin, input_path, out, ladder.preset, "--jobs", "1")
        r = measure(cmd, REPO, work / f"pinned-1-{i}.stdout", work / f"pinned-1-{i}.stderr")
        r.run = i
        single.append(r)
        ok = r.exit_code == 0 and (out / "master.m3u8").is_file()
        print(f"run {i}/{args.runs} 1 process   wall {r.wall_s:7.2f} s  cpu {r.cpu_s:7.2f} s  "
              f"peak RSS {r.max_rss_mib:7.1f} MiB  {'ok' if ok else f'FAILED (exit {r.exit_code})'}", flush=True)  # fmt: skip
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)

        out = work / f"pinned-2-{i}"
        procs, files = {}, []
        start = time.monotonic()
        for k, cpu in enumerate(cpus):
            cmd = ["taskset", "-c", str(cpu)] + ladder_run_cmd(ladder_bin, input_path, out, ladder.preset, "--shard", f"{k}/2", "--jobs", "1")
            so, se = open(work / f"pinned-2-{i}-{k}.stdout", "wb"), open(work / f"pinned-2-{i}-{k}.stderr", "wb")
            files += [so, se]
            p = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=so, stderr=se)
            procs[p.pid] = (k, p)
        shards: list[dict] = [{} for _ in cpus]
        pending = set(procs)
        while pending:
            pid, status, ru = os.wait4(-1, 0)
            if pid not in pending:
                continue
            pending.discard(pid)
            k, p = procs[pid]
            p.returncode = os.waitstatus_to_exitcode(status)
            shards[k] = {"shard": f"{k}/2", "cpu": cpus[k], "exit_code": p.returncode, "wall_s": time.monotonic() - start,
                         "cpu_s": ru.ru_utime + ru.ru_stime, "max_rss_mib": ru.ru_maxrss / 1024}  # fmt: skip
        wall = time.monotonic() - start
        for f in files:
            f.close()
        master = (out / "master.m3u8").is_file()
        ok = all(s["exit_code"] == 0 for s in shards) and master
        pairs.append({"run": i, "wall_s": wall, "cpu_s": sum(s["cpu_s"] for s in shards), "master_m3u8": master,
                      "ok": ok, "shards": shards})  # fmt: skip
        print(f"run {i}/{args.runs} 2 shards    wall {wall:7.2f} s  cpu {pairs[-1]['cpu_s']:7.2f} s  "
              f"peak RSS {max(s['max_rss_mib'] for s in shards):7.1f} MiB  "
              + ("ok" if ok else f"FAILED (exits {[s['exit_code'] for s in shards]}, master.m3u8 {'present' if master else 'MISSING'})"),
              flush=True)  # fmt: skip
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    doc = {"cpus": cpus, "single": [dataclasses.asdict(r) for r in single], "pairs": pairs}
    s_ok = [r for r in single if r.exit_code == 0]
    p_ok = [p for p in pairs if p["ok"]]
    if not s_ok or not p_ok:
        doc["error"] = "a run failed"
        print("pinned shards: a run failed, no speed-up")
        return doc
    doc |= {"single_wall_s": med(s_ok, "wall_s"), "pair_wall_s": statistics.median(p["wall_s"] for p in p_ok),
            "single_cpu_s": med(s_ok, "cpu_s"), "pair_cpu_s": statistics.median(p["cpu_s"] for p in p_ok)}  # fmt: skip
    doc["speedup"] = doc["single_wall_s"] / doc["pair_wall_s"]
    # How much of its CPU each pinned process got (CPU s / wall s): well below 1 means other
    # load shared the pinned CPUs, and the speed-up says more about that load than about ladder.
    doc["cpu_share_single"] = statistics.median(r.cpu_s / r.wall_s for r in s_ok)
    doc["cpu_share_shards"] = statistics.median(
        sum(sh["cpu_s"] for sh in p["shards"]) / sum(sh["wall_s"] for sh in p["shards"]) for p in p_ok
    )
    print(f"pinned shards (medians): 1 process {doc['single_wall_s']:.2f} s, 2 shards {doc['pair_wall_s']:.2f} s -> "
          f"speed-up {doc['speedup']:.2f}x (target >= 1.9); CPU {doc['single_cpu_s']:.2f} -> {doc['pair_cpu_s']:.2f} s; "
          f"master.m3u8 present after every pair: {all(p['master_m3u8'] for p in pairs)}")  # fmt: skip
    print(f"CPU share each pinned process got (CPU s / wall s): 1 process {doc['cpu_share_single']:.2f}, "
          f"shards {doc['cpu_share_shards']:.2f}")  # fmt: skip
    if min(doc["cpu_share_single"], doc["cpu_share_shards"]) < 0.9:
        print("note: below 0.9: other load shared the pinned CPUs; the speed-up is not meaningful on this machine now")
    return doc


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


def target_line(name: str, value: str, ok: bool | None) -> list[str]:
    return [name, value, "-" if ok is None else ("PASS" if ok else "FAIL")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="timed runs per contender, alternating (default 5)")
    ap.add_argument("--input", type=Path, help="benchmark this file as is instead of the looped sample")
    ap.add_argument("--seconds", type=float, default=60, help="length of the looped sample input (default 60)")
    ap.add_argument("--preset", default="small", help="ladder preset (default small)")
    ap.add_argument("--jobs", type=int, help="pass --jobs N to `ladder run`")
    ap.add_argument("--ladder", type=Path, help="the ladder binary (default $CARGO_TARGET_DIR or target, /release/ladder)")
    ap.add_argument("--only", action="append", help="run only this contender: ladder, ffmpeg or bound (repeatable)")
    ap.add_argument("--no-quality", action="store_true", help="skip the bitrate/PSNR/SSIM table")
    ap.add_argument("--duration-scaling", action="store_true",
                    help="also run ladder on the input and on one twice as long (--runs each): time ratio, peak RSS")
    ap.add_argument("--pinned-shards", action="store_true",
                    help="also compare one `ladder run --jobs 1` pinned to a CPU with two shards pinned to one CPU each")
    ap.add_argument("--s3", action="store_true",
                    help="also compare S3 -> S3 (a local S3 protocol server, examples/s3_server.rs) with local -> local")
    ap.add_argument("--streaming", action="store_true",
                    help="only issue 18's S3 input measurements: start-up (10 and 60 min), a shard's share, stream vs fetch")
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
    if args.streaming:
        return streaming_main(args, ladder_bin, input_path)
    src = probe(input_path)
    ladder = resolve_ladder(ladder_bin, args.preset, input_path, src)
    if not ladder.rungs:
        die("no rung of the preset applies to this input")

    every = contenders(args, ladder_bin, ladder, input_path, src)
    if args.only:
        every = [c for c in every if c.name in args.only]
    use_bound = not args.only or "bound" in args.only
    active, skipped = [], {}
    for c in every:
        why = c.unavailable()
        if why:
            log(f"bench: SKIPPING {c.name}: {why}")
            skipped[c.name] = why
        else:
            active.append(c)
    ladder_ok = ladder_contender(ladder_bin, ladder, input_path, args.jobs).unavailable() is None
    modes = (args.duration_scaling or args.pinned_shards or args.s3) and ladder_ok
    if not active and not use_bound and not modes:
        die("nothing to run")

    info = machine()
    nproc = info["nproc"]
    print(f"machine: {nproc} CPUs ({info['cpu_model']}), kernel {info['kernel']}")
    print(f"ffmpeg:  {info['ffmpeg']}")
    print(f"commit:  {info['git_commit']} ({info['git_branch']})")
    print(f"input:   {input_path}"
          f" ({src['width']}x{src['height']} @ {src['fps']:g} fps, {src['duration_s']:.2f} s)")  # fmt: skip
    print(f"preset:  {ladder.preset} from `{ladder.source}`: {ladder.encoder} {ladder.speed or ''}, "
          f"GOP {ladder.gop_frames} frames @ {ladder.fps:g} fps, {ladder.segment_seconds:g} s segments, "
          + ", ".join(f"{r.width}x{r.height}@{r.bitrate_kbps}k" for r in ladder.rungs)
          + (f"; {ladder.chunks} chunk(s)" if ladder.chunks is not None else ""))  # fmt: skip
    try:
        print(f"load:    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min) before the runs")
    except OSError:
        pass
    for name, why in skipped.items():
        print(f"SKIPPED: {name}: {why}")
    if (args.duration_scaling or args.pinned_shards) and not ladder_ok:
        print("SKIPPED: --duration-scaling/--pinned-shards: the ladder binary is not available")
    print()

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = rel(CACHE / f"runs-{stamp}")
    work.mkdir(parents=True, exist_ok=True)
    commands: dict[str, str] = {}
    for c in active:
        commands[c.name] = shlex.join(c.command(work / f"{c.name}-N"))
        print(f"{c.name} command (output dir {c.name}-N):\n  {commands[c.name]}\n")

    bound = LowerBound(ladder, input_path, src, work) if use_bound else None
    if bound and not args.keep:  # the raw frames are large (~4 GiB for 60 s): never leave them behind
        atexit.register(lambda: [f.unlink(missing_ok=True) for f in bound.raw.values()])
    if bound:
        print(f"lower bound: each stage alone, single-threaded, CPU = user+sys of the process; "
              f"scale = decode+scale - decode; wall = CPU / {nproc} CPUs. Commands:")
        for st in bound.stages:
            print(f"  {st.name}: {shlex.join(st.command)}")
        print()
        bound.prepare()

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
        if bound and not bound.failed:
            bound.run_once(i)
            if bound.failed:
                failed.add("bound")
                print(f"run {i}/{args.runs} bound    FAILED: {bound.failed}", flush=True)
            else:
                st = bound.per_run_stages(len(bound.runs) - 1)
                part = lambda p: sum(v for k, v in st.items() if k.startswith(p))  # noqa: E731
                print(f"run {i}/{args.runs} bound    cpu {sum(st.values()):7.2f} s  (decode {part('decode'):.2f}, "
                      f"scale {part('scale'):.2f}, encode {part('encode'):.2f}, audio {part('audio'):.2f})", flush=True)  # fmt: skip
    if bound and not args.keep:
        for f in bound.raw.values():
            f.unlink(missing_ok=True)

    # Medians and ratios over the successful runs.
    medians: dict[str, dict] = {}
    for c in active:
        ok = [r for r in results[c.name] if r.exit_code == 0]
        if ok:
            medians[c.name] = {k: med(ok, k) for k in ("wall_s", "cpu_s", "max_rss_mib")} | {"runs": len(ok)}
    bsum = bound.summary(nproc) if bound else None
    print()
    if bsum:
        rows = [["lower bound stage", "CPU s", "share"]]
        for k, v in bsum["stages_cpu_s"].items():
            rows.append([k, f"{v:.2f}", f"{100 * v / bsum['cpu_s']:.1f} %"])
        for group in ("scale", "encode"):
            v = sum(x for k, x in bsum["stages_cpu_s"].items() if k.startswith(group))
            if any(k.startswith(group) for k in bsum["stages_cpu_s"]):
                rows.append([f"all {group}", f"{v:.2f}", f"{100 * v / bsum['cpu_s']:.1f} %"])
        rows.append(["total (= bound CPU)", f"{bsum['cpu_s']:.2f}", "100.0 %"])
        print(table(rows))
        print(f"(medians of {bsum['runs']} run(s), each stage net of the CLI's process start-up, "
              f"{bsum['startup_cpu_s']:.3f} s CPU per process, measured alone: `{bsum['startup_command']}`;\n"
              " each encode reads its raw frames from a file: reading them alone costs "
              + ", ".join(f"{k} {v:.2f} s" for k, v in bsum["read_raw_cpu_s"].items())
              + " CPU, included above;\n thumbnails, muxing and manifests are not in the bound)")  # fmt: skip
        print()
    if medians or bsum:
        rows = [["median", "runs", "wall s", "CPU s", "CPU/wall", "peak RSS MiB", "x realtime"]]
        for name, m in medians.items():
            rows.append([name, str(m["runs"]), f"{m['wall_s']:.2f}", f"{m['cpu_s']:.2f}",
                         f"{m['cpu_s'] / m['wall_s']:.2f}", f"{m['max_rss_mib']:.1f}",
                         f"{src['duration_s'] / m['wall_s']:.2f}"])  # fmt: skip
        if bsum:
            rows.append(["lower bound", str(bsum["runs"]), f"{bsum['wall_s']:.2f}", f"{bsum['cpu_s']:.2f}",
                         f"{nproc:.2f}", "-", f"{src['duration_s'] / bsum['wall_s']:.2f}"])  # fmt: skip
        print(table(rows))
    ratios: dict[str, dict] = {}
    names = [c.name for c in active if c.name in medians]
    if len(names) >= 2:
        base = names[-1]
        for name in names[:-1]:
            ratios[f"{name}/{base}"] = {k: medians[name][k] / medians[base][k] for k in ("wall_s", "cpu_s", "max_rss_mib")}
    if bsum:
        for name in names:
            ratios[f"{name}/lower bound"] = {k: medians[name][k] / bsum[k] for k in ("wall_s", "cpu_s")}
    if ratios:
        print()
        for key, r in ratios.items():
            print(f"ratio {key}: wall {r['wall_s']:.3f}x  CPU {r['cpu_s']:.3f}x"
                  + (f"  peak RSS {r['max_rss_mib']:.2f}x" if "max_rss_mib" in r else "") + "  (below 1 = left better)")  # fmt: skip
    if "ladder" in medians:
        print(f"ladder peak RSS: {medians['ladder']['max_rss_mib']:.1f} MiB")

    # Quality on the last successful output of each contender (not timed).
    qual: dict[str, list[dict]] = {}
    parity: list[dict] = []
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
            if "ladder" in qual and "ffmpeg" in qual:
                print()
                for r, lq, fq in zip(ladder.rungs, qual["ladder"], qual["ffmpeg"]):
                    item = {"rung": f"v{r.index}", "name": r.name, "ladder_psnr_y": lq["psnr_y"], "ffmpeg_psnr_y": fq["psnr_y"],
                            "ladder_kbps": lq["kbps"], "ffmpeg_kbps": fq["kbps"], "pass": False}  # fmt: skip
                    if lq["psnr_y"] is not None and fq["psnr_y"] is not None and fq["kbps"]:
                        item["psnr_delta_db"] = lq["psnr_y"] - fq["psnr_y"]
                        item["bitrate_delta"] = lq["kbps"] / fq["kbps"] - 1
                        item["pass"] = item["psnr_delta_db"] >= -0.1 and abs(item["bitrate_delta"]) <= 0.05
                        print(f"quality parity v{r.index} {r.name}: PSNR within 0.1 dB at bitrates within 5 %: "
                              f"PSNR-Y {lq['psnr_y']:.2f} vs {fq['psnr_y']:.2f} dB ({item['psnr_delta_db']:+.3f}), "
                              f"{lq['kbps']:.0f} vs {fq['kbps']:.0f} kbit/s ({100 * item['bitrate_delta']:+.1f} %): "
                              f"{'PASS' if item['pass'] else 'FAIL'}")  # fmt: skip
                    else:
                        print(f"quality parity v{r.index} {r.name}: no measurement: FAIL")
                    parity.append(item)
                print("(ladder vs ffmpeg; a higher PSNR passes, a bitrate more than 5 % off either way fails)")

    scaling = duration_scaling(args, ladder_bin, ladder, input_path, src, work) if args.duration_scaling and ladder_ok else None
    pinned = pinned_shards(args, ladder_bin, ladder, input_path, work) if args.pinned_shards and ladder_ok else None
    s3 = s3_vs_local(args, ladder_bin, ladder, input_path, work) if args.s3 and ladder_ok else None

    # Targets of issue 6, item 2.
    lm, fm = medians.get("ladder"), medians.get("ffmpeg")
    targets: list[dict] = []

    def add(name: str, value: float | None, limit: float, text: str, le: bool = True, why: str = "not measured") -> None:
        ok = None if value is None else (value <= limit if le else value >= limit)
        targets.append({"target": name, "value": value, "limit": limit, "pass": ok, "shown": text if value is not None else why})

    add("wall <= 0.95 x ffmpeg", lm and fm and lm["wall_s"] / fm["wall_s"], 0.95,
        lm and fm and f"{lm['wall_s'] / fm['wall_s']:.3f}x ({lm['wall_s']:.2f} / {fm['wall_s']:.2f} s)")
    add("wall <= 1.04 x lower bound", lm and bsum and lm["wall_s"] / bsum["wall_s"], 1.04,
        lm and bsum and f"{lm['wall_s'] / bsum['wall_s']:.3f}x ({lm['wall_s']:.2f} / {bsum['wall_s']:.2f} s)")
    add("CPU <= 1.0 x lower bound CPU", lm and bsum and lm["cpu_s"] / bsum["cpu_s"], 1.0,
        lm and bsum and f"{lm['cpu_s'] / bsum['cpu_s']:.3f}x ({lm['cpu_s']:.2f} / {bsum['cpu_s']:.2f} s)")
    add("peak RSS <= 350 MiB", lm and lm["max_rss_mib"], 350, lm and f"{lm['max_rss_mib']:.1f} MiB")
    npass = sum(p["pass"] for p in parity)
    add("quality parity (every rung)", float(npass) if parity else None, len(parity),
        f"{npass}/{len(parity)} rungs", le=False, why="not measured (needs ladder, ffmpeg and quality)")
    sc = scaling if scaling and "wall_ratio" in scaling else None
    add("2 x duration -> <= 2.05 x wall", sc and sc["wall_ratio"], 2.05,
        sc and f"{sc['wall_ratio']:.3f}x", why="not measured (--duration-scaling)")
    add("memory flat in duration (<= 1.10 x)", sc and sc["rss_ratio"], 1.10,
        sc and f"{sc['rss_ratio']:.2f}x ({sc['medians']['1x']['max_rss_mib']:.1f} -> {sc['medians']['2x']['max_rss_mib']:.1f} MiB)",
        why="not measured (--duration-scaling)")  # fmt: skip
    pn = pinned if pinned and "speedup" in pinned else None
    add("2 pinned shards >= 1.9 x 1 pinned process", pn and pn["speedup"], 1.9,
        pn and f"{pn['speedup']:.2f}x ({pn['single_wall_s']:.2f} / {pn['pair_wall_s']:.2f} s)", le=False,
        why="not measured (--pinned-shards)")  # fmt: skip
    s3m = s3 if s3 and "wall_ratio" in s3 else None
    add("S3 -> S3 <= 1.05 x local -> local (issue 4)", s3m and s3m["wall_ratio"], 1.05,
        s3m and f"{s3m['wall_ratio']:.3f}x", why="not measured (--s3)")
    print("\ntargets (issue 6; the last one is issue 4's):")
    print(table([["target", "measured", "result"]] + [target_line(t["target"], t["shown"], t["pass"]) for t in targets], right={2}))

    if args.json:
        doc = {
            "machine": info,
            "input": {"path": str(input_path), **src},
            "preset": dataclasses.asdict(ladder),
            "commands": commands,
            "runs": {n: [dataclasses.asdict(r) for r in rs] for n, rs in results.items()},
            "medians": medians,
            "lower_bound": bsum if bsum else ({"error": bound.failed} if bound else None),
            "ratios": ratios,
            "quality": qual,
            "quality_parity": parity,
            "duration_scaling": scaling,
            "pinned_shards": pinned,
            "s3_vs_local": s3,
            "targets": targets,
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
