// Plays a ladder output folder in headless Chromium (Debian's /usr/bin/chromium) with
// hls.js (its master.m3u8), and Shaka Player and dash.js (its manifest.mpd), and prints what happened
// as one JSON object on stdout. tests/players.rs runs this and judges the result; this
// script only fails (exit 1) when it cannot play at all (no browser, no page).
//
//   node tests/players/play.mjs OUTPUT_DIR [--chromium /usr/bin/chromium] [--player hls.js|shaka|dashjs]
//
// The folder, the page (page.html, page.js) and the players' builds are served by a
// static server of this script on 127.0.0.1, so the page and the media share one origin.
// playwright-core drives the browser (it never downloads one): it gives the page's
// errors, its console and a promise-returning evaluate, which `--dump-dom` cannot.

import { createServer } from 'node:http';
import { open, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const args = process.argv.slice(2);
const outputDir = args[0];
const option = (name, otherwise) => (args.includes(name) ? args[args.indexOf(name) + 1] : otherwise);
const chromiumPath = option('--chromium', '/usr/bin/chromium');
const only = option('--player', null);
/** A player that has not finished by then is reported as hanging (the page's own waits are shorter). */
const PLAYER_MS = 180_000;
if (!outputDir) {
  console.error('usage: node play.mjs OUTPUT_DIR [--chromium PATH]');
  process.exit(2);
}

// What the page and its scripts are; everything under /media/ is the ladder's output.
const routes = {
  '/': path.join(here, 'page.html'),
  '/page.js': path.join(here, 'page.js'),
  '/lib/hls.js': path.join(path.dirname(require.resolve('hls.js/package.json')), 'dist/hls.js'),
  // dash.js exports no package.json: its build is found beside this script.
  '/lib/dash.js': path.join(here, 'node_modules/dashjs/dist/modern/umd/dash.all.min.js'),
  '/lib/shaka.js': path.join(
    path.dirname(require.resolve('shaka-player/package.json')),
    'dist/shaka-player.compiled.js',
  ),
};

// The content types ladder's S3 uploads carry (README, "Outputs"): players sniff some of
// them, and a wrong one must show up here as it would behind a CDN.
const contentTypes = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.mpd': 'application/dash+xml',
  '.m4s': 'video/iso.segment',
  '.mp4': 'video/mp4',
  '.m4a': 'audio/mp4',
  '.vtt': 'text/vtt',
  '.jpg': 'image/jpeg',
  '.json': 'application/json',
};

/** Requests the server could not answer with the file (4xx): a player may hide them. */
const failedRequests = [];

/** The file a URL path names, or null when it names none (or climbs out of its folder). */
function fileFor(urlPath) {
  if (urlPath.startsWith('/media/')) {
    const root = path.resolve(outputDir);
    const file = path.resolve(root, '.' + decodeURIComponent(urlPath.slice('/media'.length)));
    return file.startsWith(root + path.sep) ? file : null;
  }
  return routes[urlPath] ?? null;
}

/** Serves whole files and single byte ranges (players ask for both). */
async function serve(req, res) {
  const urlPath = new URL(req.url, 'http://localhost').pathname;
  const file = fileFor(urlPath);
  let size;
  try {
    size = file && (await stat(file)).isFile() ? (await stat(file)).size : null;
  } catch {
    size = null;
  }
  if (size === null) {
    failedRequests.push(`${req.method} ${urlPath}: 404`);
    res.writeHead(404).end();
    return;
  }
  let [start, end] = [0, size - 1];
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
  if (range) {
    start = range[1] === '' ? Math.max(0, size - Number(range[2])) : Number(range[1]);
    end = range[1] !== '' && range[2] !== '' ? Math.min(Number(range[2]), size - 1) : size - 1;
    if (start > end) {
      failedRequests.push(`${req.method} ${urlPath} ${req.headers.range}: 416`);
      res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
      return;
    }
  }
  const headers = {
    'Content-Type': contentTypes[path.extname(file)] ?? 'application/octet-stream',
    'Content-Length': end - start + 1,
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'no-store',
  };
  if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const handle = await open(file);
  try {
    const buffer = Buffer.alloc(end - start + 1);
    await handle.read(buffer, 0, buffer.length, start);
    res.end(buffer);
  } finally {
    await handle.close();
  }
}

const server = createServer((req, res) =>
  serve(req, res).catch((e) => {
    failedRequests.push(`${req.method} ${req.url}: ${e.message}`);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  }),
);
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

// LADDER_PLAYERS_DEBUG=1: the players log verbosely, and the page's console goes to stderr.
const debug = Boolean(process.env.LADDER_PLAYERS_DEBUG);

// The flags of a closed network: no background requests, no component or sync downloads.
// playwright-core starts it with a fresh, temporary user-data-dir of its own.
const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  chromiumSandbox: false,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--autoplay-policy=no-user-gesture-required',
    '--mute-audio',
  ],
  timeout: 60_000,
});

const result = { chromium: browser.version(), players: {} };
try {
  for (const [name, manifest] of [
    ['hls.js', '/media/master.m3u8'],
    ['shaka', '/media/manifest.mpd'],
    ['dashjs', '/media/manifest.mpd'],
  ].filter(([name]) => !only || name === only)) {
    const page = await browser.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(`uncaught: ${e.message}`));
    page.on('console', (m) => {
      if (debug) process.stderr.write(`[${name} ${m.type()}] ${m.text()}\n`);
      if (m.type() === 'error' && !debug) pageErrors.push(`console: ${m.text()}`);
    });
    page.on('crash', () => pageErrors.push('the page crashed'));
    failedRequests.length = 0;
    let played;
    try {
      await page.goto(`${origin}/`);
      let timer;
      const hang = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${name} did not finish within ${PLAYER_MS} ms`)), PLAYER_MS);
      });
      played = await Promise.race([
        page.evaluate(([player, url, verbose]) => window.play(player, url, verbose), [
          name,
          `${origin}${manifest}`,
          debug,
        ]),
        hang,
      ]).finally(() => clearTimeout(timer));
    } catch (e) {
      played = { player: name, rungs: [], errors: [`driving the page: ${e.message}`] };
    }
    played.errors.push(...pageErrors);
    played.failedRequests = [...failedRequests];
    result.players[name] = played;
    await page.close().catch(() => {});
  }
} finally {
  await browser.close();
  server.close();
}
process.stdout.write(JSON.stringify(result, null, 2) + '\n');
