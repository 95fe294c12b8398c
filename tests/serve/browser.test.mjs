// The built-in web page (GET /) in a real headless Chromium driven by
// playwright-core: image upload (picker and drop), streamed chat against a
// real `dsvl2 serve` on a random-weight toy model, errors, visual prompts
// drawn by dragging, and grounding boxes drawn on the overlay.
//
// Environment: DSVL2_BIN (the dsvl2 binary), DSVL2_SOURCE_DIR,
// DSVL2_SHARED_DIR (default <source>/../shared), DSVL2_CHROMIUM (default
// /usr/bin/chromium), DSVL2_TEST_ARTIFACTS (default <source>/build/test-artifacts),
// DSVL2_PLAYWRIGHT_PREFIX (an npm prefix holding playwright-core, used only
// when it does not resolve from here). Without Chromium, playwright-core, the
// binary or the tokenizer the test is skipped, except under CI=true, where it fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const SOURCE = path.resolve(process.env.DSVL2_SOURCE_DIR || path.join(here, '..', '..'));
const BIN = path.resolve(process.env.DSVL2_BIN || path.join(SOURCE, 'build', 'dsvl2'));
const SHARED = path.resolve(process.env.DSVL2_SHARED_DIR || path.join(SOURCE, '..', 'shared'));
const CHROMIUM = process.env.DSVL2_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.resolve(process.env.DSVL2_TEST_ARTIFACTS || path.join(SOURCE, 'build', 'test-artifacts'));
const DEMO_IMAGE = path.join(SOURCE, 'demo', 'demo.png'); // 640 x 480
const DEMO_W = 640, DEMO_H = 480;

async function loadPlaywright() {
  try {
    return await import('playwright-core');
  } catch (first) {
    const prefix = process.env.DSVL2_PLAYWRIGHT_PREFIX;
    if (!prefix) throw first;
    return createRequire(path.join(path.resolve(prefix), 'package.json'))('playwright-core');
  }
}

const TOKENIZER = path.join(SHARED, 'tokenizer', 'deepseek_v3', 'tokenizer.json');
let playwright = null, missing = null;
try {
  playwright = await loadPlaywright();
} catch {
  missing = 'playwright-core is not installed (npm install in tests/serve)';
}
if (!missing && !fs.existsSync(CHROMIUM)) missing = `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
if (!missing && !fs.existsSync(BIN)) missing = `no dsvl2 binary at ${BIN} (set DSVL2_BIN)`;
if (!missing && !fs.existsSync(TOKENIZER)) missing = `no tokenizer at ${TOKENIZER}`;
const inCI = process.env.CI === 'true';
// CTest's SKIP_REGULAR_EXPRESSION for tests/serve matches this prefix.
const skip = missing && !inCI ? `dsvl2-serve: skipped: ${missing}` : false;
if (skip) console.log(skip);

const ctx = { server: null, serverLog: '', base: '', browser: null, tmp: null };

// Starts `dsvl2 serve` and resolves with its URL once the ready line is out.
function startServer(modelDir) {
  const args = ['serve', '-m', modelDir, '--port', '0', '--parallel', '2', '-c', '2048', '-t', '2'];
  const proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  ctx.server = proc;
  proc.on('exit', (code, sig) => { ctx.serverLog += `[dsvl2 serve exited: ${code ?? sig}]\n`; });
  // Even if this process dies without running the after hook.
  const kill = () => proc.kill('SIGKILL');
  process.on('exit', kill);
  proc.on('exit', () => process.off('exit', kill));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line in 120 s:\n${ctx.serverLog}`)), 120_000);
    const onData = (d) => {
      ctx.serverLog += d.toString();
      const m = ctx.serverLog.match(/dsvl2: serving .* at (http:\/\/127\.0\.0\.1:(\d+)\/)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    };
    proc.stderr.on('data', onData);
    proc.stdout.on('data', (d) => { ctx.serverLog += d.toString(); });
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    proc.on('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`dsvl2 serve exited (${code ?? sig}) before it was ready:\n${ctx.serverLog}`));
    });
  });
}

async function waitHealthy(base) {
  const deadline = Date.now() + 120_000;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const r = await fetch(base + 'health');
      if (r.status === 200) return;
      last = `${r.status} ${await r.text()}`;
    } catch (e) { last = String(e); }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`/health never became 200 (last: ${last})`);
}

async function stopServer() {
  const proc = ctx.server;
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

before(async () => {
  if (skip) return;
  if (missing) throw new Error(`${missing}; CI=true does not allow skipping`);
  ctx.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dsvl2-browser-'));
  const model = path.join(ctx.tmp, 'model');
  execFileSync(BIN, ['make-random-checkpoint', '--preset', 'tiny-test', '--out', model, '--seed', '5',
    '--tokenizer', TOKENIZER], { stdio: 'pipe', timeout: 120_000 });
  ctx.base = await startServer(model);
  await waitHealthy(ctx.base);
  ctx.browser = await playwright.chromium.launch({ executablePath: CHROMIUM, headless: true });
});

after(async () => {
  try { if (ctx.browser) await ctx.browser.close(); } finally {
    await stopServer();
    if (ctx.serverLog) {
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      fs.writeFileSync(path.join(ARTIFACTS, 'serve-browser.log'), ctx.serverLog);
    }
    if (ctx.tmp) fs.rmSync(ctx.tmp, { recursive: true, force: true });
  }
});

// A fresh context (own localStorage) and page; page errors and requests
// to other origins fail the test.
async function openPage(t) {
  assert.ok(ctx.server && ctx.server.exitCode === null && ctx.server.signalCode === null,
    `dsvl2 serve is not running:\n${ctx.serverLog}`);
  const context = await ctx.browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // Works offline: every request stays on the server's origin.
  page.on('request', (r) => { if (!r.url().startsWith(ctx.base) && !r.url().startsWith('data:')) errors.push(`request to ${r.url()}`); });
  t.after(async () => {
    await context.close();
    assert.deepEqual(errors, [], 'no JavaScript errors on the page');
  });
  await page.goto(ctx.base);
  return page;
}

async function pickImage(page) {
  await page.setInputFiles('#file', DEMO_IMAGE);
  await page.waitForSelector('#preview[data-loaded="1"]');
}

async function sendAndWait(page, text) {
  const before = await page.locator('.msg.assistant').count();
  await page.fill('#prompt', text);
  await page.click('#send');
  const msg = page.locator('.msg.assistant').nth(before);
  await msg.and(page.locator('[data-done="1"]')).waitFor({ timeout: 60_000 });
  return msg;
}

const lastUser = (body) => body.messages[body.messages.length - 1];

test('GET / serves the self-contained page', { skip }, async () => {
  const r = await fetch(ctx.base);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/html/);
  const html = await r.text();
  assert.equal(html, fs.readFileSync(path.join(SOURCE, 'src', 'serve', 'web', 'index.html'), 'utf8'), 'the page as written');
  // Works offline: nothing is loaded from another origin.
  assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)="(https?:)?\/\//);
});

test('chat streams from the server and keeps the conversation', { skip, timeout: 180_000 }, async (t) => {
  const page = await openPage(t);
  await pickImage(page);
  await page.fill('#max-tokens', '8');

  const firstReq = page.waitForRequest('**/v1/chat/completions');
  const first = await sendAndWait(page, 'Describe the image.');
  const body1 = (await firstReq).postDataJSON();
  assert.equal(body1.stream, true);
  assert.equal(body1.max_tokens, 8);
  assert.equal(body1.messages.length, 1);
  const [imagePart, textPart] = lastUser(body1).content;
  assert.match(imagePart.image_url.url, /^data:image\/png;base64,/);
  assert.deepEqual(textPart, { type: 'text', text: 'Describe the image.' });
  assert.equal(await first.getAttribute('data-error'), null, await page.locator('#messages').innerText());
  const answer1 = await first.locator('.text').textContent();
  assert.ok(answer1.length > 0, 'streamed text appeared');
  assert.match(await first.getAttribute('data-finish'), /^(length|stop)$/);

  // The second turn carries the first exchange; the image is not sent again.
  const secondReq = page.waitForRequest('**/v1/chat/completions');
  const second = await sendAndWait(page, 'And the colours?');
  const body2 = (await secondReq).postDataJSON();
  assert.equal(body2.messages.length, 3);
  assert.deepEqual(body2.messages[0], body1.messages[0]);
  assert.deepEqual(body2.messages[1], { role: 'assistant', content: answer1 });
  assert.deepEqual(body2.messages[2], { role: 'user', content: 'And the colours?' });
  assert.equal(await second.getAttribute('data-error'), null);
});

test('a server error shows its message', { skip, timeout: 60_000 }, async (t) => {
  const page = await openPage(t);
  await page.fill('#temperature', '7'); // outside 0-2: the server answers 400
  await sendAndWait(page, 'Hello');
  const error = page.locator('.msg.error');
  await error.waitFor();
  assert.match(await error.textContent(), /temperature/);
  assert.equal(await page.locator('.msg.assistant').last().getAttribute('data-error'), '1');
});

test('a drag on the image sends a visual prompt in image pixels', { skip, timeout: 120_000 }, async (t) => {
  const page = await openPage(t);
  await pickImage(page);
  await page.fill('#max-tokens', '8');
  await page.check('#mode-vp');
  await page.selectOption('#vp-shape', 'ellipse');
  const r = await page.locator('#preview').boundingBox();
  assert.ok(r.width > 100 && r.height > 100, `preview shown (${r.width}x${r.height})`);
  // Drag from 25%,30% to 60%,70% of the displayed image, bottom-right to top-left.
  await page.mouse.move(r.x + 0.6 * r.width, r.y + 0.7 * r.height);
  await page.mouse.down();
  await page.mouse.move(r.x + 0.4 * r.width, r.y + 0.5 * r.height, { steps: 4 });
  await page.mouse.move(r.x + 0.25 * r.width, r.y + 0.3 * r.height, { steps: 4 });
  await page.mouse.up();
  const expected = [0.25 * DEMO_W, 0.3 * DEMO_H, 0.6 * DEMO_W, 0.7 * DEMO_H];
  const tolerance = 2 * DEMO_W / r.width + 1; // a display pixel or two, rounded

  const req = page.waitForRequest('**/v1/chat/completions');
  const msg = await sendAndWait(page, 'What is in {mark}?');
  const body = (await req).postDataJSON();
  const part = lastUser(body).content.find((p) => p.type === 'image_url');
  assert.equal(part.visual_prompt.shape, 'ellipse');
  assert.equal(part.visual_prompt.color, 'red');
  const box = part.visual_prompt.box;
  assert.equal(box.length, 4);
  box.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) <= tolerance, `box ${box} near ${expected}`));
  assert.equal(await msg.getAttribute('data-error'), null, await page.locator('#messages').innerText());
  // The server drew the mark and named it; the page shows the phrase.
  assert.match(await msg.locator('.note').textContent(), /the red ellipse/);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'serve-page-visual-prompt.png') });
});

test('grounding boxes are drawn over the image', { skip, timeout: 60_000 }, async (t) => {
  const page = await openPage(t);
  // Drop the image on the page instead of using the picker.
  const b64 = fs.readFileSync(DEMO_IMAGE).toString('base64');
  await page.evaluate((data) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], 'demo.png', { type: 'image/png' }));
    document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, b64);
  await page.waitForSelector('#preview[data-loaded="1"]');
  await page.fill('#max-tokens', '8');
  await page.check('#mode-ground');

  // The real server takes the page's grounding request (random weights find nothing).
  const realReq = page.waitForRequest('**/v1/chat/completions');
  const real = await sendAndWait(page, 'the house');
  assert.deepEqual((await realReq).postDataJSON().grounding, { query: 'the house', mode: 'locate' });
  assert.equal(await real.getAttribute('data-error'), null, await page.locator('#messages').innerText());

  // A new chat sends the image again.
  await page.click('#clear');
  await page.fill('#api-key', 'sk-test');
  // Random weights never answer with real boxes, so this exchange is answered
  // by a canned stream shaped like the server's (docs/serve.md): the test is
  // of the page's request and drawing, not of the model.
  const objects = [
    { label: 'car', box: [234, 520, 609, 823], box_px: [150, 250, 390, 395] },
    { label: null, box: [734, 83, 890, 292], box_px: [470, 40, 570, 140] },
  ];
  let seen = null;
  await page.route('**/v1/chat/completions', async (route) => {
    seen = { body: route.request().postDataJSON(), auth: route.request().headers().authorization };
    const chunk = (delta, finish = null) => 'data: ' + JSON.stringify({
      id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 0, model: 'dsvl2',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] }) + '\n\n';
    await route.fulfill({
      status: 200,
      headers: { 'Content-Type': 'text/event-stream' },
      body: chunk({ role: 'assistant', content: '<|ref|>car<|/ref|>' }) + chunk({ content: '<|det|>[[234,520,609,823]]<|/det|>' }) +
        chunk({ objects }, 'stop') + 'data: [DONE]\n\n',
    });
  });
  const msg = await sendAndWait(page, 'the car');
  assert.deepEqual(seen.body.grounding, { query: 'the car', mode: 'locate' });
  assert.match(lastUser(seen.body).content[0].image_url.url, /^data:image\/png;base64,/);
  assert.equal(seen.auth, 'Bearer sk-test');
  await page.waitForSelector('#overlay[data-boxes="2"]');
  assert.match(await msg.locator('.text').textContent(), /<\|ref\|>car/);

  // The boxes are where the image pixels are: box edges painted, interiors clear.
  const probe = await page.evaluate(({ objs, w }) => {
    const c = document.getElementById('overlay');
    const g = c.getContext('2d'), s = c.width / w;
    const alpha = (x, y) => {
      const d = g.getImageData(Math.round(x * s) - 1, Math.round(y * s) - 1, 3, 3).data;
      let a = 0;
      for (let i = 3; i < d.length; i += 4) a = Math.max(a, d[i]);
      return a;
    };
    return objs.map(({ box_px: [x1, y1, x2, y2] }) => ({
      left: alpha(x1, (y1 + y2) / 2), right: alpha(x2, (y1 + y2) / 2), bottom: alpha((x1 + x2) / 2, y2),
      inside: alpha((x1 + x2) / 2, (y1 + y2) / 2),
    }));
  }, { objs: objects, w: DEMO_W });
  for (const p of probe) {
    assert.ok(p.left > 0 && p.right > 0 && p.bottom > 0, `edges drawn: ${JSON.stringify(probe)}`);
    assert.equal(p.inside, 0, `interior clear: ${JSON.stringify(probe)}`);
  }
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'serve-page.png') });

  // The key is remembered across reloads.
  await page.reload();
  assert.equal(await page.inputValue('#api-key'), 'sk-test');
});

test('the server stops cleanly on SIGTERM', { skip, timeout: 30_000 }, async () => {
  const proc = ctx.server;
  assert.ok(proc, 'the server was started');
  await stopServer();
  assert.equal(proc.exitCode, 0, `exit status ${proc.exitCode ?? proc.signalCode}:\n${ctx.serverLog}`);
});
