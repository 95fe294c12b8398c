// Malformed and oversized requests, sent as exact bytes: each gets its status
// and OpenAI's error shape, and the server keeps serving.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import {
  skipReason, startServer, request, postChat, metrics, imageDataUrl, makePng, pngDataUrl, userMessage,
  checkErrorShape, DEMO_PNG,
} from './lib/server.mjs';

const MAX_BODY_MB = 1;
const chat = (messages, extra = {}) => ({ model: 'm', max_tokens: 4, messages, ...extra });
const ask = (extra) => chat([userMessage('Hello.')], extra);
const withImage = (url) => chat([{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: 'What is this?' }] }]);
const b64 = (buf) => Buffer.from(buf).toString('base64');

const tinyPng = makePng(32, 32, (x, y) => [x * 8, y * 8, 128]);
const demoPng = fs.readFileSync(DEMO_PNG);

// A valid 100000 x 100000 PNG header over a tiny compressed stream: decoding
// it would take 30 GB, so the size must be refused from the header.
const bombPng = makePng(100000, 100000, null, { idat: zlib.deflateSync(Buffer.alloc(1 << 16)) });

// A BMP whose header declares 100000 x 100000 24-bit pixels.
function bombBmp() {
  const b = Buffer.alloc(54 + 64);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(b.length, 2);
  b.writeUInt32LE(54, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(100000, 18);
  b.writeInt32LE(100000, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(24, 28);
  return b;
}

const nested = (n) => '['.repeat(n) + ']'.repeat(n);

// [name, request, expected status(es), {param, message}]
const CASES = [
  ['invalid JSON', { body: '{"model": "m", "messages": [' }, 400],
  ['JSON array body', { body: '[1, 2, 3]' }, 400],
  ['JSON string body', { body: '"hello"' }, 400],
  ['empty body', { body: '' }, 400],
  ['missing messages', { body: { model: 'm' } }, 400, { param: /^messages$/ }],
  ['empty messages', { body: chat([]) }, 400, { param: /^messages$/ }],
  ['messages not a list', { body: chat('hello') }, 400, { param: /^messages$/ }],
  ['message not an object', { body: chat(['hello']) }, 400, { param: /^messages\[0\]/ }],
  ['unknown role', { body: chat([{ role: 'bot', content: 'hi' }]) }, 400, { param: /^messages\[0\]\.role$/ }],
  ['content a number', { body: chat([{ role: 'user', content: 42 }]) }, 400, { param: /^messages\[0\]\.content/ }],
  ['content an object', { body: chat([{ role: 'user', content: { text: 'hi' } }]) }, 400, { param: /^messages\[0\]\.content/ }],
  ['missing content', { body: chat([{ role: 'user' }]) }, 400, { param: /^messages\[0\]/ }],
  ['unknown part type', { body: chat([{ role: 'user', content: [{ type: 'audio', audio: 'x' }] }]) }, 400, { param: /^messages\[0\]\.content\[0\]/ }],
  ['image_url a bare string', { body: chat([{ role: 'user', content: [{ type: 'image_url', image_url: imageDataUrl() }, { type: 'text', text: 'x' }] }]) }, 400, { param: /image_url/ }],
  ['empty image url', { body: withImage('') }, 400, { param: /image_url/ }],
  ['http URL', { body: withImage('http://127.0.0.1:9/cat.png') }, 400, { param: /image_url/ }],
  ['https URL', { body: withImage('https://example.com/cat.png') }, 400, { param: /image_url/ }],
  ['file:// without --allow-files', { body: withImage(`file://${DEMO_PNG}`) }, 400, { param: /image_url/ }],
  ['bad base64', { body: withImage('data:image/png;base64,@@@@not base64!!') }, 400, { param: /image_url/ }],
  ['data URL without a comma', { body: withImage('data:image/png;base64') }, 400, { param: /image_url/ }],
  ['data URL of text/plain', { body: withImage(`data:text/plain;base64,${b64('hello')}`) }, 400, { param: /image_url/ }],
  ['base64 of non-image bytes', { body: withImage(`data:image/png;base64,${b64('this is certainly not a PNG file')}`) }, 400, { param: /image_url/ }],
  ['truncated PNG', { body: withImage(pngDataUrl(demoPng.subarray(0, demoPng.length >> 1))) }, 400, { param: /image_url/ }],
  ['PNG header only', { body: withImage(pngDataUrl(demoPng.subarray(0, 33))) }, 400, { param: /image_url/ }],
  ['PNG bomb 100000x100000', { body: withImage(pngDataUrl(bombPng)) }, 400, { param: /image_url/ }],
  ['BMP bomb 100000x100000', { body: withImage(`data:image/bmp;base64,${b64(bombBmp())}`) }, 400, { param: /image_url/ }],
  ['too many images (3 > --max-images 2)', { body: chat([userMessage('Compare.', [1, 2, 3].map(() => pngDataUrl(tinyPng)))]) }, 400, { message: /3/ }],
  ['image in an assistant message', { body: chat([{ role: 'assistant', content: [{ type: 'image_url', image_url: { url: pngDataUrl(tinyPng) } }] }, userMessage('hi')]) }, 400],
  ['invalid UTF-8 in the body', { body: Buffer.concat([Buffer.from('{"model":"m","max_tokens":2,"messages":[{"role":"user","content":"a'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}]}')]) }, 400],
  ['lone surrogate escape', { body: '{"model":"m","max_tokens":2,"messages":[{"role":"user","content":"\\ud800"}]}' }, 400],
  ['max_tokens negative', { body: ask({ max_tokens: -5 }) }, 400, { param: /^max_tokens$/ }],
  ['max_tokens zero', { body: ask({ max_tokens: 0 }) }, 400, { param: /^max_tokens$/ }],
  ['max_tokens huge', { body: ask({ max_tokens: 1e9 }) }, 400, { param: /^max_tokens$/ }],
  ['max_tokens 2^64', { body: '{"model":"m","max_tokens":18446744073709551616,"messages":[{"role":"user","content":"hi"}]}' }, 400],
  ['max_tokens a string', { body: ask({ max_tokens: '16' }) }, 400, { param: /^max_tokens$/ }],
  ['max_tokens fractional', { body: ask({ max_tokens: 1.5 }) }, 400, { param: /^max_tokens$/ }],
  ['max_completion_tokens negative', { body: ask({ max_completion_tokens: -1 }) }, 400, { param: /^max_completion_tokens$/ }],
  ['temperature negative', { body: ask({ temperature: -1 }) }, 400, { param: /^temperature$/ }],
  ['temperature "NaN"', { body: ask({ temperature: 'NaN' }) }, 400, { param: /^temperature$/ }],
  ['temperature 1e999', { body: '{"model":"m","max_tokens":2,"temperature":1e999,"messages":[{"role":"user","content":"hi"}]}' }, 400],
  ['temperature above 2', { body: ask({ temperature: 2.5 }) }, 400, { param: /^temperature$/ }],
  ['top_p 0', { body: ask({ top_p: 0 }) }, 400, { param: /^top_p$/ }],
  ['top_p above 1', { body: ask({ top_p: 1.5 }) }, 400, { param: /^top_p$/ }],
  ['top_k negative', { body: ask({ top_k: -1 }) }, 400, { param: /^top_k$/ }],
  ['presence_penalty 3', { body: ask({ presence_penalty: 3 }) }, 400, { param: /^presence_penalty$/ }],
  ['n = 2', { body: ask({ n: 2 }) }, 400, { param: /^n$/ }],
  ['stop with 10 entries', { body: ask({ stop: Array.from({ length: 10 }, (_, i) => `s${i}`) }) }, 400, { param: /^stop$/ }],
  ['stop not strings', { body: ask({ stop: [1, 2] }) }, 400, { param: /^stop$/ }],
  ['stream a string', { body: ask({ stream: 'yes' }) }, 400, { param: /^stream$/ }],
  ['stream_options a string', { body: ask({ stream: true, stream_options: 'usage' }) }, 400, { param: /^stream_options/ }],
  ['last message from the assistant', { body: chat([userMessage('hi'), { role: 'assistant', content: 'hello' }]) }, 400, { param: /^messages/ }],
  ['system message not first', { body: chat([userMessage('hi'), { role: 'system', content: 'be nice' }, userMessage('hi')]) }, 400, { param: /role/ }],
  ['600 messages', { body: chat(Array.from({ length: 600 }, () => userMessage('hi'))) }, 400, { param: /^messages$/ }],
  ['unknown visual_prompt shape', { body: chat([{ role: 'user', content: [{ type: 'image_url', image_url: { url: pngDataUrl(tinyPng) }, visual_prompt: { shape: 'hexagon', box: [1, 1, 10, 10] } }, { type: 'text', text: 'what is {mark}?' }] }]) }, 400, { param: /visual_prompt/ }],
  ['visual_prompt box reversed', { body: chat([{ role: 'user', content: [{ type: 'image_url', image_url: { url: pngDataUrl(tinyPng) }, visual_prompt: { shape: 'rectangle', box: [20, 20, 10, 10] } }, { type: 'text', text: 'what is {mark}?' }] }]) }, 400, { param: /visual_prompt/ }],
  ['grounding mode unknown', { body: ask({ grounding: { query: 'cat', mode: 'teleport' } }) }, 400, { param: /^grounding/ }],
  ['depth bomb as the body', { body: nested(100000) }, 400],
  ['depth bomb in messages', { body: `{"model":"m","messages":${nested(100000)}}` }, 400],
  ['depth bomb in content', { body: `{"model":"m","messages":[{"role":"user","content":${nested(5000)}}]}` }, 400],
  ['prompt longer than the context', { body: chat([userMessage(' hello'.repeat(3000))]) }, 400, { context: true }],
  ['body over --max-body-mb', { body: ask({ pad: 'x'.repeat((MAX_BODY_MB << 20) + 1000) }) }, 413],
  ['chunked body over --max-body-mb', { body: ask({ pad: 'x'.repeat(2 * (MAX_BODY_MB << 20)) }), chunked: true }, 413],
  ['GET on chat/completions', { method: 'GET' }, [404, 405]],
  ['PUT on chat/completions', { method: 'PUT', body: ask({}) }, [404, 405]],
  ['DELETE on models', { method: 'DELETE', path: '/v1/models' }, [404, 405]],
  ['POST on health', { method: 'POST', path: '/health', body: '{}' }, [404, 405]],
  ['unknown path', { method: 'POST', path: '/v1/completions', body: ask({}) }, 404],
  ['unknown path (GET /etc/passwd)', { method: 'GET', path: '/etc/passwd' }, 404],
];

describe('hostile requests', { skip: skipReason, timeout: 240_000 }, () => {
  let server;
  const statusCount = {};
  before(async () => {
    server = await startServer(['--parallel', '1', '--max-images', '2', '--max-body-mb', String(MAX_BODY_MB)]);
  });
  after(async () => {
    const { wasRunning } = await server.stop();
    assert.ok(wasRunning, `the server died:\n${server.stderr().slice(-3000)}`);
  });

  test('a valid request with the small image works (control)', async () => {
    const r = await postChat(server.url, chat([userMessage('What is this?', [pngDataUrl(tinyPng), pngDataUrl(tinyPng)])]));
    assert.equal(r.status, 200, r.text.slice(0, 300));
  });

  for (const [name, req, want, check = {}] of CASES) {
    test(name, async () => {
      const r = await request(server.url, { method: 'POST', path: '/v1/chat/completions', ...req });
      const wants = [want].flat();
      assert.ok(wants.includes(r.status), `status ${r.status} (want ${wants}): ${r.text.slice(0, 300)}`);
      statusCount[r.status] = (statusCount[r.status] ?? 0) + 1;
      const e = checkErrorShape(assert, r, name);
      assert.match(String(r.headers['content-type']), /^application\/json/);
      if (r.status === 400) assert.equal(e.type, 'invalid_request_error');
      if (check.param) assert.match(String(e.param), check.param, `param of: ${e.message}`);
      if (check.message) assert.match(e.message, check.message);
      if (check.context) {
        // "prompt has N tokens, the context allows C": both numbers.
        const nums = (e.message.match(/\d+/g) ?? []).map(Number);
        assert.ok(nums.some((n) => n >= 3000), `no prompt length in: ${e.message}`);
        assert.ok(nums.some((n) => n >= 1024 && n <= 2048), `no context size in: ${e.message}`);
      }
      assert.ok(server.alive(), 'the server died');
    });
  }

  test('/metrics counted every 400', async () => {
    const m = await metrics(server.url);
    assert.equal(m['dsvl2_requests_total{status="400"}'], statusCount[400], '400 responses counted by /metrics');
  });

  test('broken connections do not hurt the server', async () => {
    const raw = (bytes, waitAnswer = true) => new Promise((resolve) => {
      const s = net.connect(server.port, '127.0.0.1');
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('error', () => resolve(got));
      s.on('close', () => resolve(got));
      s.setTimeout(5000, () => s.destroy());
      s.write(bytes, () => (waitAnswer ? s.end() : s.destroy()));
    });
    // A body shorter than its Content-Length, then the client goes away.
    await raw('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"model":', false);
    // Garbage instead of a request line.
    const g = await raw('HELLO THERE\r\n\r\n');
    assert.ok(g === '' || /^HTTP\/1\.[01] 4\d\d/.test(g), `garbage answered ${JSON.stringify(g.slice(0, 80))}`);
    // A 200 kB header.
    const h = await raw(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(200000)}\r\n\r\n`);
    assert.ok(h === '' || /^HTTP\/1\.[01] 4\d\d/.test(h), `a huge header answered ${JSON.stringify(h.slice(0, 80))}`);
    // A client that leaves in the middle of a streamed answer.
    await raw(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${
      JSON.stringify(ask({ stream: true, max_tokens: 500 })).length}\r\n\r\n${JSON.stringify(ask({ stream: true, max_tokens: 500 }))}`, false);
    assert.ok(server.alive());
  });

  test('afterwards: /health is 200 and a normal request works', async () => {
    assert.equal((await request(server.url, { path: '/health' })).status, 200);
    const r = await postChat(server.url, chat([userMessage('Describe this image.', [imageDataUrl()])]));
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.ok(r.json.choices[0].message.content.length > 0);
  });
});

describe('file:// URLs under --allow-files', { skip: skipReason, timeout: 120_000 }, () => {
  let server, root;
  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'dsvl2-serve-files-'));
    fs.mkdirSync(path.join(root, 'allowed', 'sub'), { recursive: true });
    fs.writeFileSync(path.join(root, 'allowed', 'ok.png'), tinyPng);
    fs.writeFileSync(path.join(root, 'allowed', 'sub', 'ok2.png'), tinyPng);
    fs.writeFileSync(path.join(root, 'outside.png'), tinyPng);
    fs.symlinkSync(path.join(root, 'outside.png'), path.join(root, 'allowed', 'link.png'));
    fs.symlinkSync(root, path.join(root, 'allowed', 'up'));
    server = await startServer(['--parallel', '1', '--allow-files', path.join(root, 'allowed')]);
  });
  after(async () => {
    const { wasRunning } = server ? await server.stop() : { wasRunning: true };
    fs.rmSync(root, { recursive: true, force: true });
    assert.ok(wasRunning, 'the server died');
  });

  test('a file inside the folder is read', async () => {
    for (const url of ['file://ok.png', 'file://sub/ok2.png']) {
      const r = await postChat(server.url, withImage(url));
      assert.equal(r.status, 200, `${url}: ${r.text.slice(0, 300)}`);
      assert.ok(r.json.usage.prompt_tokens > 100, `${url}: the image was not in the prompt`);
    }
  });

  for (const [name, url] of [
    ['.. out of the folder', 'file://../outside.png'],
    ['.. after a subfolder', 'file://sub/../../outside.png'],
    ['an absolute path outside', `file://${'/..'.repeat(8)}/etc/passwd`],
    ['a symlink to a file outside', 'file://link.png'],
    ['a symlinked folder outside', 'file://up/outside.png'],
    ['a missing file', 'file://nothing.png'],
    ['the folder itself', 'file://.'],
  ]) {
    test(`refused: ${name}`, async () => {
      const r = await postChat(server.url, withImage(url));
      assert.equal(r.status, 400, `${url}: ${r.status} ${r.text.slice(0, 300)}`);
      const e = checkErrorShape(assert, r, name);
      assert.match(String(e.param), /image_url/);
      assert.doesNotMatch(e.message, /root:/, 'file content leaked into the message');
    });
  }
});
