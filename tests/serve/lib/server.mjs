// Shared helpers of the `dsvl2 serve` end-to-end tests: a toy checkpoint,
// servers started on a free port and always stopped, raw HTTP, SSE, images.
//
// Environment (set by CTest, see node_tests.cmake):
//   DSVL2_BIN            the dsvl2 executable (default: build/dsvl2)
//   DSVL2_SHARED_DIR     shared/ with tokenizer/deepseek_v3/tokenizer.json
//   DSVL2_SOURCE_DIR     the checkout (demo/demo.png)
//   DSVL2_TEST_ARTIFACTS where server logs are kept (optional)
//   CI=true              a missing tokenizer fails instead of skipping
import { after } from 'node:test';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

export const SOURCE_DIR = process.env.DSVL2_SOURCE_DIR || path.resolve(fileURLToPath(import.meta.url), '../../../..');
export const SHARED_DIR = process.env.DSVL2_SHARED_DIR || path.join(SOURCE_DIR, '..', 'shared');
export const BIN = process.env.DSVL2_BIN || path.join(SOURCE_DIR, 'build', 'dsvl2');
export const TOKENIZER = path.join(SHARED_DIR, 'tokenizer', 'deepseek_v3', 'tokenizer.json');
export const DEMO_PNG = path.join(SOURCE_DIR, 'demo', 'demo.png');
const TEST_FILE = path.basename(process.argv[1] || 'serve', '.mjs');

// Why the suite cannot run here, or false. CTest's SKIP_REGULAR_EXPRESSION
// matches the "dsvl2-serve: skipped" prefix, so a skip shows as a skip.
export const skipReason = (() => {
  const ci = process.env.CI === 'true';
  let why = null;
  if (!fs.existsSync(BIN)) why = `dsvl2 binary not found at ${BIN}`;
  else if (!fs.existsSync(TOKENIZER)) why = `tokenizer not found at ${TOKENIZER} (scripts/fetch-tokenizer ${path.dirname(TOKENIZER)} fetches it)`;
  if (why && ci) throw new Error(`${why}; CI=true does not allow skipping`);
  if (why) console.log(`dsvl2-serve: skipped: ${why}`);
  return why ? `dsvl2-serve: skipped: ${why}` : false;  // not null: node:test skips on null
})();

// ---- Watchdog: a hung server or client must not hang the suite. ---------
const servers = new Set();
let watchdog = null;
export function setWatchdog(seconds) {
  if (watchdog) clearTimeout(watchdog);
  watchdog = setTimeout(() => {
    console.error(`dsvl2-serve: watchdog: ${TEST_FILE} still running after ${seconds} s; killing its servers`);
    for (const s of servers) {
      console.error(`--- server ${s.port} stderr (tail) ---\n${s.stderr().slice(-4000)}`);
      s.kill('SIGKILL');
    }
    process.exit(1);
  }, seconds * 1000);
  watchdog.unref();
}
setWatchdog(Number(process.env.DSVL2_SERVE_WATCHDOG_S) || 300);

// Last resort: never leave a server behind, even when the file throws.
process.on('exit', () => {
  for (const s of servers) s.kill('SIGKILL');
});
for (const [sig, n] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]]) {
  process.on(sig, () => process.exit(128 + n));  // runs the exit handler above
}
after(async () => {
  await Promise.all([...servers].map((s) => s.stop()));
});

// ---- The toy checkpoint: the tiny-test preset, once per test file. -------
let toyModel = null;
export function makeToyModel() {
  if (toyModel) return toyModel;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dsvl2-serve-model-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  execFileSync(BIN, ['make-random-checkpoint', '--preset', 'tiny-test', '--out', dir, '--seed', '5', '--tokenizer', TOKENIZER],
               { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
  toyModel = dir;
  return dir;
}

// ---- Servers -------------------------------------------------------------
let serverCount = 0;

// Starts `dsvl2 serve -m MODEL --port 0 ...args` (with -c 2048 unless args
// set -c) and resolves once the ready line named the port and /health is 200.
export async function startServer(args = [], { model = makeToyModel(), readyTimeoutMs = 60_000 } = {}) {
  const argv = ['serve', '-m', model, '--port', '0', ...args];
  if (!args.includes('-c') && !args.includes('--ctx')) argv.push('-c', '2048');
  const child = spawn(BIN, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  const n = ++serverCount;
  let err = '';
  let exited = null;  // {code, signal} once it exited
  const exitPromise = new Promise((resolve) => child.on('exit', (code, signal) => {
    exited = { code, signal };
    resolve(exited);
  }));
  const s = {
    pid: child.pid, port: 0, url: '',
    stderr: () => err,
    alive: () => exited === null,
    kill: (sig) => { if (exited === null) try { child.kill(sig); } catch {} },
    // SIGTERM, then SIGKILL after 10 s; resolves to {code, signal, wasRunning}.
    stop: async () => {
      const wasRunning = exited === null;
      if (wasRunning) {
        child.kill('SIGTERM');
        const t = setTimeout(() => s.kill('SIGKILL'), 10_000);
        await exitPromise;
        clearTimeout(t);
      }
      servers.delete(s);
      saveLog(s, n, argv);
      return { ...exited, wasRunning };
    },
  };
  servers.add(s);
  child.stderr.setEncoding('utf8');
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line after ${readyTimeoutMs} ms:\n${err}`)), readyTimeoutMs);
    child.stderr.on('data', (d) => {
      err += d;
      if (err.length > 4 << 20) err = err.slice(-(2 << 20));
      const m = /dsvl2: serving .* at http:\/\/([^\s/]+):(\d+)\//.exec(err);
      if (m && !s.port) {
        clearTimeout(timer);
        resolve({ host: m[1], port: Number(m[2]) });
      }
    });
    exitPromise.then((e) => {
      clearTimeout(timer);
      reject(new Error(`dsvl2 serve exited (${JSON.stringify(e)}) before it was ready:\n${err}`));
    });
  });
  try {
    const { host, port } = await ready;
    s.port = port;
    s.url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      const r = await request(s.url, { path: '/health' }).catch(() => null);
      if (r && r.status === 200) break;
      if (!s.alive()) throw new Error(`dsvl2 serve exited while loading:\n${err}`);
      if (Date.now() > deadline) throw new Error(`/health not 200 after ${readyTimeoutMs} ms (last: ${r && r.status})`);
      await sleep(50);
    }
  } catch (e) {
    await s.stop();
    throw e;
  }
  return s;
}

function saveLog(s, n, argv) {
  const dir = process.env.DSVL2_TEST_ARTIFACTS;
  if (!dir) return;
  try {
    fs.mkdirSync(path.join(dir, 'serve'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'serve', `${TEST_FILE}-${n}.log`), `dsvl2 ${argv.join(' ')}\n${s.stderr()}`);
  } catch {}
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- Raw HTTP: exact bytes out, status, headers and body back. -----------
// body: a string, a Buffer, or an object (sent as JSON). Resolves even when
// the server answers early and resets the connection (413 on a big body).
export function request(base, { method = 'GET', path: p = '/', headers = {}, body, timeoutMs = 60_000, chunked = false } = {}) {
  const u = new URL(p, base);
  let data = body === undefined ? null
           : Buffer.isBuffer(body) ? body
           : typeof body === 'string' ? Buffer.from(body)
           : Buffer.from(JSON.stringify(body));
  const h = { ...headers };
  if (data && !chunked && h['content-length'] === undefined) h['content-length'] = data.length;
  if (data && h['content-type'] === undefined) h['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    let response = null;
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: h, agent: false },
      (res) => {
        const chunks = [];
        response = { status: res.statusCode, headers: res.headers, body: null };
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => finish());
        res.on('error', () => finish());
        res.on('aborted', () => (response.aborted = true));  // cut off: the server died or reset
        function finish() {
          response.body = Buffer.concat(chunks);
          response.text = response.body.toString('utf8');
          try { response.json = JSON.parse(response.text); } catch { response.json = undefined; }
          resolve(response);
        }
      });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${p}: no answer in ${timeoutMs} ms`)));
    req.on('error', (e) => {
      // An early answer followed by a reset still counts as the answer.
      if (response) return;
      setTimeout(() => (response ? null : reject(e)), 200);
    });
    if (data) {
      if (chunked) {
        for (let i = 0; i < data.length; i += 65536) req.write(data.subarray(i, i + 65536));
      } else {
        req.write(data);
      }
    }
    req.end();
  });
}

export function postChat(base, body, { headers = {}, ...opts } = {}) {
  return request(base, { method: 'POST', path: '/v1/chat/completions', body, headers, ...opts });
}

// Splits an SSE body into its `data:` payloads; throws on any other framing.
export function sseData(text) {
  const events = text.split('\n\n');
  if (events.pop() !== '') throw new Error(`SSE body does not end with a blank line: ${JSON.stringify(text.slice(-80))}`);
  return events.map((e) => {
    if (!e.startsWith('data: ') || e.includes('\n')) throw new Error(`not a single data: line: ${JSON.stringify(e.slice(0, 200))}`);
    return e.slice(6);
  });
}

// Reads an OpenAI-style SSE stream from fetch() into its chunks and text.
export async function readStream(res) {
  const text = await res.text();
  const data = sseData(text);
  if (data.at(-1) !== '[DONE]') throw new Error('stream does not end with data: [DONE]');
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
  return { chunks, text: chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join('') };
}

// ---- /metrics and /proc ----------------------------------------------------
// Prometheus text to {name or name{labels}: value}.
export async function metrics(base, headers = {}) {
  const r = await request(base, { path: '/metrics', headers });
  if (r.status !== 200) throw new Error(`/metrics: HTTP ${r.status}`);
  const out = {};
  for (const line of r.text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+)\s+(\S+)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

export function rssKb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

// ---- Images ------------------------------------------------------------------
const MIME = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp', '.gif': 'image/gif', '.bmp': 'image/bmp' };
export function imageDataUrl(file = DEMO_PNG) {
  const mime = MIME[path.extname(file).toLowerCase()] || 'application/octet-stream';
  return `data:${mime};base64,${fs.readFileSync(file).toString('base64')}`;
}
export const pngDataUrl = (buf) => `data:image/png;base64,${buf.toString('base64')}`;

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function pngChunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

// An 8-bit RGB PNG. idat: the compressed rows (default: pixel(x, y) -> [r,g,b]).
export function makePng(width, height, pixel = () => [0, 0, 0], { idat } = {}) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;  // bit depth
  ihdr[9] = 2;  // RGB
  if (!idat) {
    const raw = Buffer.alloc(height * (1 + 3 * width));
    for (let y = 0; y < height; y++) {
      const row = y * (1 + 3 * width);
      for (let x = 0; x < width; x++) raw.set(pixel(x, y), row + 1 + 3 * x);
    }
    idat = zlib.deflateSync(raw);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr), pngChunk('IDAT', idat), pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

// ---- Chat bodies -----------------------------------------------------------
export function userMessage(text, images = []) {
  if (!images.length) return { role: 'user', content: text };
  return {
    role: 'user',
    content: [...images.map((url) => ({ type: 'image_url', image_url: { url } })), { type: 'text', text }],
  };
}

// Asserts the OpenAI error shape {error: {message, type, param, code}}.
export function checkErrorShape(assert, r, what = '') {
  assert.ok(r.json && typeof r.json === 'object', `${what}: body is not JSON: ${JSON.stringify(r.text?.slice(0, 200))}`);
  const e = r.json.error;
  assert.ok(e && typeof e === 'object', `${what}: no "error" object: ${r.text.slice(0, 200)}`);
  assert.equal(typeof e.message, 'string', `${what}: error.message`);
  assert.ok(e.message.length > 0, `${what}: empty error.message`);
  assert.equal(typeof e.type, 'string', `${what}: error.type`);
  assert.ok('param' in e && (e.param === null || typeof e.param === 'string'), `${what}: error.param`);
  assert.ok('code' in e && (e.code === null || typeof e.code === 'string'), `${what}: error.code`);
  return e;
}
