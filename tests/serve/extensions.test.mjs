// The DeepSeek-VL2 extensions and the server options a plain client does not
// see: grounding answers carry `objects`, visual prompts are drawn and named,
// in-context grounding, CORS only when asked, the wall-time limit.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { skipReason, startServer, imageDataUrl, postChat, request, sseData } from './lib/server.mjs';

describe('extensions', { skip: skipReason, timeout: 180_000 }, () => {
  let server;
  const image = skipReason ? '' : imageDataUrl();
  const imagePart = (extra = {}) => ({ type: 'image_url', image_url: { url: image }, ...extra });

  before(async () => {
    server = await startServer(['--parallel', '2', '-c', '4096', '--cors', 'http://app.example']);
  });
  after(async () => {
    const { wasRunning } = await server.stop();
    assert.ok(wasRunning, `the server died during the tests:\n${server.stderr().slice(-2000)}`);
  });

  test('grounding answers carry objects, streamed or not', async () => {
    const body = {
      max_tokens: 6, temperature: 0,
      messages: [{ role: 'user', content: [imagePart(), { type: 'text', text: 'ignored' }] }],
      grounding: { query: 'the house', mode: 'locate' },
    };
    const r = await postChat(server.url, body);
    assert.equal(r.status, 200, r.text);
    assert.ok(Array.isArray(r.json.choices[0].message.objects), r.text);
    for (const o of r.json.choices[0].message.objects) {
      assert.equal(o.box.length, 4);
      assert.equal(o.box_px.length, 4);
    }
    const s = await postChat(server.url, { ...body, stream: true });
    const events = sseData(s.text);
    assert.equal(events.at(-1), '[DONE]');
    const last = JSON.parse(events.at(-2));
    assert.ok(last.choices[0].finish_reason, s.text.slice(-400));
    assert.ok(Array.isArray(last.choices[0].delta.objects), s.text.slice(-400));
    // Without grounding there is no objects field.
    const plain = await postChat(server.url, { ...body, grounding: undefined });
    assert.equal(plain.json.choices[0].message.objects, undefined);
  });

  test('a visual prompt is drawn, named in the text and returned', async () => {
    const ask = (vp) => postChat(server.url, {
      max_tokens: 4, temperature: 0,
      messages: [{ role: 'user', content: [imagePart(vp), { type: 'text', text: 'What is within {mark}?' }] }],
    });
    const r = await ask({ visual_prompt: { shape: 'ellipse', box: [100, 80, 300, 240], color: 'red', seed: 3 } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.visual_prompts, [{ image: 0, phrase: 'the red ellipse' }]);
    // The drawn image is a different image: nothing of the plain one's prefix
    // past the text before it is reused.
    const plain = await ask({});
    assert.equal(plain.json.visual_prompts, undefined);
    assert.ok(plain.json.usage.prompt_tokens_details.cached_tokens < 20, plain.text);
  });

  test('in-context grounding over two images names the mark of the first', async () => {
    const r = await postChat(server.url, {
      max_tokens: 4, temperature: 0, grounding: { mode: 'in_context' },
      messages: [{ role: 'user', content: [
        imagePart({ visual_prompt: { shape: 'rectangle', box: [10, 10, 200, 200], color: 'blue' } }), imagePart()] }],
    });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.visual_prompts, [{ image: 0, phrase: 'the blue rectangle' }]);
    assert.ok(r.json.usage.prompt_tokens > 1000, 'two images, each global view and tiles');
  });

  test('CORS headers only for the origin given with --cors', async () => {
    const pre = await request(server.url, {
      method: 'OPTIONS', path: '/v1/chat/completions',
      headers: { origin: 'http://app.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], 'http://app.example');
    const models = await request(server.url, { path: '/v1/models' });
    assert.equal(models.headers['access-control-allow-origin'], 'http://app.example');
  });
});

describe('no CORS unless asked', { skip: skipReason, timeout: 60_000 }, () => {
  let server;
  before(async () => { server = await startServer(['--parallel', '1']); });
  after(async () => { await server.stop(); });
  test('no Access-Control headers by default', async () => {
    const r = await request(server.url, { path: '/v1/models', headers: { origin: 'http://app.example' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
  });
});

describe('wall-time limit', { skip: skipReason, timeout: 60_000 }, () => {
  let server;
  before(async () => {
    server = await startServer(['--parallel', '1', '-c', '4096', '--timeout', '0.1']);
  });
  after(async () => { await server.stop(); });
  test('a request over --timeout ends with length and timed_out', async () => {
    const r = await postChat(server.url, {
      max_tokens: 4000, temperature: 0, stop: [],
      messages: [{ role: 'user', content: 'Write a very long story.' }],
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].finish_reason, 'length', r.text.slice(0, 400));
    assert.ok(r.json.usage.completion_tokens < 4000, `not cut by the 0.1 s limit: ${r.json.usage.completion_tokens} tokens`);
    assert.equal(r.json.timed_out, true, r.text.slice(0, 400));
  });
});
