// The browser side of tests/players/play.mjs: `window.play(player, url)` loads a ladder
// with hls.js or Shaka Player, turns adaptation off, then for every rung seeks, switches to
// it and watches it play, and at last plays to the end. It resolves to what it saw; the
// Rust test (tests/players.rs) decides whether that is right. Nothing here throws: a
// problem is written down and the next rung is tried.

'use strict';

/** How long one step (a switch, a seek, some playback, the end) may take. */
const STEP_MS = 20_000;
/** Media that must play at each rung, in seconds, and frames that must be decoded meanwhile. */
const PLAY_SECONDS = 0.5;
const PLAY_FRAMES = 5;
/** The start is played this far before the rungs are tried. */
const START_SECONDS = 0.3;

function frames(video) {
  return video.getVideoPlaybackQuality().totalVideoFrames;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Asks to play. Not awaited: the promise stays pending while there is nothing to
 * play, and the waits that follow notice that. A refusal is an error; being interrupted
 * by the test's own `pause()` (AbortError) is not. */
function startPlaying(video, state) {
  video.play().catch((e) => {
    if (e.name === 'AbortError') return;
    state.errors.push(`video.play(): ${e.name}: ${e.message}`);
    state.fatal = true;
  });
}

/** Polls `ready` until it holds; resolves to null, or to why it did not (`what` timed out, or the player failed). */
async function waitFor(what, ready, state) {
  const deadline = performance.now() + STEP_MS;
  while (!ready()) {
    if (state.fatal) return `${what}: stopped by a fatal player error`;
    if (performance.now() > deadline) return `${what}: not within ${STEP_MS} ms`;
    await sleep(25);
  }
  return null;
}

/** hls.js on the master playlist: rungs are its levels, `currentLevel` switches at once. */
async function openHls(video, url, state, verbose) {
  const hls = new Hls({ debug: verbose, capLevelToPlayerSize: false });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    // hls.js reports its own cancelling of a request it no longer needs (after a switch
    // or a seek) as a non-fatal "aborted" error: that is not a problem of the stream.
    if (data.details === Hls.ErrorDetails.INTERNAL_ABORTED && !data.fatal) return;
    const detail = data.error?.message ?? data.reason ?? '';
    state.errors.push(`hls.js ${data.type}/${data.details}${data.fatal ? ' (fatal)' : ''}: ${detail}`);
    state.fatal ||= data.fatal;
  });
  const parsed = new Promise((resolve) => hls.once(Hls.Events.MANIFEST_PARSED, resolve));
  hls.attachMedia(video);
  hls.loadSource(url);
  await parsed;
  return {
    version: `hls.js ${Hls.version}`,
    rungs: hls.levels.map((level, id) => ({
      id,
      width: level.width,
      height: level.height,
      bandwidth: level.bitrate,
      codecs: [level.videoCodec, level.audioCodec].filter(Boolean),
    })),
    // The audio renditions hls.js offers, by language.
    audio: hls.audioTracks.map((t) => ({ language: t.lang, name: t.name, default: t.default })),
    select: (rung) => {
      hls.currentLevel = rung.id;
    },
    active: () => hls.currentLevel,
  };
}

/** Shaka Player on the MPD: rungs are its variant tracks, `selectVariantTrack` switches. */
async function openShaka(video, url, state, verbose) {
  shaka.polyfill.installAll();
  if (verbose) shaka.log?.setLevel?.(shaka.log.Level.DEBUG);
  const player = new shaka.Player();
  await player.attach(video);
  player.addEventListener('error', (event) => {
    const e = event.detail;
    state.errors.push(`shaka error ${e.code} (category ${e.category}, severity ${e.severity}): ${JSON.stringify(e.data)}`);
    state.fatal ||= e.severity === shaka.util.Error.Severity.CRITICAL;
  });
  player.configure({ abr: { enabled: false } });
  await player.load(url);
  const tracks = player.getVariantTracks().sort((a, b) => a.bandwidth - b.bandwidth);
  return {
    version: `Shaka Player ${shaka.Player.version}`,
    rungs: tracks.map((t) => ({
      id: t.id,
      width: t.width,
      height: t.height,
      bandwidth: t.bandwidth,
      codecs: [t.videoCodec, t.audioCodec].filter(Boolean),
    })),
    // The audio languages Shaka offers, with their DASH roles.
    audio: player.getAudioTracks().map((t) => ({ language: t.language, roles: t.roles, label: t.label })),
    select: (rung) => {
      const track = player.getVariantTracks().find((t) => t.id === rung.id);
      player.selectVariantTrack(track, /* clearBuffer */ true);
    },
    active: () => player.getVariantTracks().find((t) => t.active)?.id,
  };
}

/** dash.js on the MPD: rungs are video representations x audio tracks (as Shaka's variants). */
async function openDash(video, url, state, verbose) {
  const player = dashjs.MediaPlayer().create();
  const E = dashjs.MediaPlayer.events;
  player.updateSettings({
    debug: { logLevel: verbose ? dashjs.Debug.LOG_LEVEL_DEBUG : dashjs.Debug.LOG_LEVEL_WARNING },
    streaming: { abr: { autoSwitchBitrate: { video: false, audio: false } } },
  });
  player.on(E.ERROR, (e) => {
    state.errors.push(`dash.js error: ${JSON.stringify(e.error ?? e)}`);
    state.fatal = true;
  });
  const ready = new Promise((resolve) => player.on(E.STREAM_INITIALIZED, resolve));
  player.initialize(video, url, false);
  await ready;
  const reps = player.getRepresentationsByType('video').sort((a, b) => a.bandwidth - b.bandwidth);
  const audios = player.getTracksFor('audio');
  const rungs = [];
  for (const r of reps)
    for (const [i, a] of audios.entries())
      rungs.push({ id: `${r.id}/${a.lang}`, rep: r.id, audio: i, width: r.width, height: r.height,
        bandwidth: r.bandwidth + (a.bitrateList?.[0]?.bandwidth ?? 0), codecs: [r.codecs, a.codec?.match(/codecs="?([^"]+)/)?.[1]].filter(Boolean) });
  // Alternate the language between successive rungs, as Shaka's bandwidth order does.
  rungs.sort((x, y) => x.bandwidth - y.bandwidth || x.audio - y.audio);
  return {
    version: `dash.js ${player.getVersion()}`,
    rungs: rungs.map(({ rep, audio, ...r }) => ({ ...r, _rep: rep, _audio: audio })),
    audio: audios.map((t) => ({ language: t.lang, roles: t.roles })),
    select: (rung) => {
      const a = player.getTracksFor('audio')[rung._audio];
      if (player.getCurrentTrackFor('audio')?.lang !== a.lang) player.setCurrentTrack(a);
      player.setRepresentationForTypeById('video', rung._rep, /* forceReplace */ true);
    },
    active: () => `${player.getCurrentRepresentationForType('video')?.id}/${player.getCurrentTrackFor('audio')?.lang}`,
  };
}

/** Plays `url` with `playerName` ('hls.js', 'shaka' or 'dashjs'); resolves to the observations. */
window.play = async function play(playerName, url, verbose = false) {
  const state = { errors: [], fatal: false };
  const video = document.getElementById('video');
  video.addEventListener('error', () => {
    state.errors.push(`video element error ${video.error?.code}: ${video.error?.message}`);
    state.fatal = true;
  });
  const result = { player: playerName, version: null, supported: {}, duration: null, rungs: [], ended: null, errors: state.errors };
  let opened;
  try {
    opened = await ({ 'hls.js': openHls, shaka: openShaka, dashjs: openDash }[playerName])(video, url, state, verbose);
  } catch (e) {
    state.errors.push(`loading ${url}: ${e?.message ?? JSON.stringify(e)}`);
    return result;
  }
  result.version = opened.version;
  result.audio = opened.audio;
  for (const codec of new Set(opened.rungs.flatMap((r) => r.codecs))) {
    const kind = codec.startsWith('mp4a') ? 'audio' : 'video';
    result.supported[codec] = MediaSource.isTypeSupported(`${kind}/mp4; codecs="${codec}"`);
  }
  // Adaptation off from the start (the first rung chosen by hand), so that no switch of
  // the player's own is still appending when the test switches.
  opened.select(opened.rungs[0]);
  video.muted = true;
  startPlaying(video, state);
  const problem = await waitFor(
    'the start to play',
    () => Number.isFinite(video.duration) && video.currentTime > START_SECONDS,
    state,
  );
  if (problem) {
    state.errors.push(problem);
    return result;
  }
  result.duration = video.duration;
  // Seek targets spread over the recording (past its first half second, which the start
  // played), leaving room to play at each.
  const room = Math.max(video.duration - PLAY_SECONDS - 2.5, 0.1);
  for (const [k, rung] of opened.rungs.entries()) {
    const seen = { ...rung, seekTo: Number((0.5 + ((k * 1.7) % room)).toFixed(3)), problem: null };
    result.rungs.push(seen);
    // Switched and sought while paused, so that the player's own stall handling (which
    // reports a stall as an error) does not run while the new rung's segment loads. A
    // paused element need not show a new frame, so the picture's size is checked playing.
    video.pause();
    opened.select(rung);
    video.currentTime = seen.seekTo;
    seen.problem = await waitFor(
      `switching to rung ${rung.id} (${rung.width}x${rung.height}) at ${seen.seekTo} s`,
      () => opened.active() === rung.id && !video.seeking && video.readyState >= HTMLMediaElement.HAVE_FUTURE_DATA,
      state,
    );
    [seen.timeFrom, seen.framesFrom] = [video.currentTime, frames(video)];
    startPlaying(video, state);
    seen.problem ??= await waitFor(
      `playing rung ${rung.id} from ${seen.timeFrom.toFixed(3)} s`,
      () =>
        video.currentTime >= seen.timeFrom + PLAY_SECONDS &&
        frames(video) >= seen.framesFrom + PLAY_FRAMES &&
        video.videoHeight === rung.height,
      state,
    );
    [seen.timeTo, seen.framesTo] = [video.currentTime, frames(video)];
    [seen.videoWidth, seen.videoHeight] = [video.videoWidth, video.videoHeight];
    seen.dropped = video.getVideoPlaybackQuality().droppedVideoFrames;
  }
  // The last segment, to the end of the stream.
  video.currentTime = Math.max(video.duration - 1, 0);
  const endProblem = await waitFor('playing to the end', () => video.ended, state);
  if (endProblem) state.errors.push(endProblem);
  result.ended = video.ended;
  result.endedAt = video.currentTime;
  return result;
};
