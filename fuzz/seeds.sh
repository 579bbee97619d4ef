#!/usr/bin/env bash
# Makes the fuzz target's seeds with the ffmpeg CLI: one small recording (64x48, two seconds,
# with sound) in each container and shape ladder meets, a few kilobytes each, so libFuzzer
# starts from inputs that reach the demuxers, decoders and the pipeline behind them.
set -euo pipefail
out="${1:-$(dirname "$0")/seeds/probe_decode}"
mkdir -p "$out"
f=(ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=64x48:rate=10:d=2"
   -f lavfi -i "sine=frequency=440:sample_rate=16000:d=2")
h264=(-c:v libx264 -preset ultrafast -g 5 -c:a aac -b:a 16k)
"${f[@]}" "${h264[@]}" "$out/moov-last.mp4"
"${f[@]}" "${h264[@]}" -movflags +faststart "$out/moov-first.mp4"
"${f[@]}" "${h264[@]}" -movflags frag_keyframe+empty_moov+default_base_moof "$out/fragmented.mp4"
"${f[@]}" "${h264[@]}" "$out/broadcast.ts"
"${f[@]}" "${h264[@]}" "$out/rtmp.flv"
"${f[@]}" -c:v libvpx -b:v 50k -c:a libopus "$out/egress.webm"
"${f[@]}" -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -c:a libopus -live 1 "$out/live.mkv"
"${f[@]}" -map 0:v -c:v libx264 -preset ultrafast -frames:v 1 "$out/one-frame.mp4"
cat "$out/broadcast.ts" "$out/broadcast.ts" > "$out/restarted.ts"
ls -l "$out" >&2
