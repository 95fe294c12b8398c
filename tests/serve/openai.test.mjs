// The official `openai` npm client, unmodified, against `dsvl2 serve`.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import net from 'node:net';
import { skipReason, startServer, imageDataUrl, request, userMessage } from './lib/server.mjs';

const MAX_TOKENS = 12;

function client(url, apiKey = 'unused') {
  // No retries: a 5xx or 429 must fail the test, not be retried away.
  return new OpenAI({ baseURL: url + '/v1', apiKey, maxRetries: 0, timeout: 60_000 });
}

function checkUsage(u, { image, maxTokens = MAX_TOKENS }) {
  assert.ok(u, 'usage missing');
  assert.ok(Number.isInteger(u.prompt_tokens) && Number.isInteger(u.completion_tokens), JSON.stringify(u));
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens, 'total_tokens = prompt + completion');
  // One image of 640x480 is several tiles of hundreds of tokens each.
  if (image) assert.ok(u.prompt_tokens > 500, `prompt_tokens ${u.prompt_tokens} with an image`);
  else assert.ok(u.prompt_tokens > 0 && u.prompt_tokens < 200, `prompt_tokens ${u.prompt_tokens} without an image`);
  assert.ok(u.completion_tokens >= 1 && u.completion_tokens <= maxTokens, `completion_tokens ${u.completion_tokens}`);
}

function checkFinish(reason, usage, maxTokens = MAX_TOKENS) {
  assert.ok(reason === 'stop' || reason === 'length', `finish_reason ${reason}`);
  if (reason === 'length') assert.equal(usage.completion_tokens, maxTokens, 'length means max_tokens were generated');
}

describe('openai client', { skip: skipReason, timeout: 240_000 }, () => {
  let server, openai;
  const image = skipReason ? '' : imageDataUrl();
  const askImage = (text) => [userMessage(text, [image])];

  before(async () => {
    // f32: greedy answers do not depend on batching or cached prefixes.
    server = await startServer(['--max-images', '2', '--parallel', '2', '--compute', 'f32']);
    openai = client(server.url);
  });
  after(async () => {
    const { wasRunning } = await server.stop();
    assert.ok(wasRunning, `the server died during the tests:\n${server.stderr().slice(-2000)}`);
  });

  let nonStreamed;
  test('non-streaming chat completion with an image', async () => {
    const r = await openai.chat.completions.create({
      model: 'deepseek-vl2', messages: askImage('Describe this image.'), max_tokens: MAX_TOKENS, temperature: 0,
    });
    assert.equal(r.object, 'chat.completion');
    assert.match(r.id, /^chatcmpl-/);
    assert.ok(Number.isInteger(r.created) && r.created > 1.6e9, `created ${r.created}`);
    assert.equal(r.choices.length, 1);
    const c = r.choices[0];
    assert.equal(c.index, 0);
    assert.equal(c.message.role, 'assistant');
    assert.equal(typeof c.message.content, 'string');
    assert.ok(c.message.content.length > 0, 'empty answer');
    checkUsage(r.usage, { image: true });
    checkFinish(c.finish_reason, r.usage);
    nonStreamed = c.message.content;
  });

  test('streaming chat completion with an image and include_usage', async () => {
    const stream = await openai.chat.completions.create({
      model: 'deepseek-vl2', messages: askImage('Describe this image.'), max_tokens: MAX_TOKENS, temperature: 0,
      stream: true, stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
    for (const ch of chunks) {
      assert.equal(ch.object, 'chat.completion.chunk');
      assert.equal(ch.id, chunks[0].id, 'one id for every chunk');
    }
    assert.equal(chunks[0].choices[0].delta.role, 'assistant', 'the first delta carries the role');
    const usageChunk = chunks.at(-1);
    assert.deepEqual(usageChunk.choices, [], 'the usage chunk has no choices');
    const body = chunks.slice(0, -1);
    for (const ch of body) assert.equal(ch.usage ?? null, null, 'usage only on the last chunk');
    const finishes = body.filter((ch) => ch.choices[0]?.finish_reason);
    assert.equal(finishes.length, 1, 'exactly one chunk carries finish_reason');
    assert.equal(finishes[0], body.at(-1), 'finish_reason is on the last content chunk');
    const text = body.map((ch) => ch.choices[0]?.delta?.content ?? '').join('');
    assert.ok(text.length > 0, 'empty streamed text');
    checkUsage(usageChunk.usage, { image: true });
    checkFinish(finishes[0].choices[0].finish_reason, usageChunk.usage);
    // The same greedy request, streamed or not, gives the same text.
    if (nonStreamed !== undefined) assert.equal(text, nonStreamed, 'streamed text differs from the non-streamed one');
  });

  test('streaming without include_usage sends no usage chunk', async () => {
    const stream = await openai.chat.completions.create({
      model: 'm', messages: [userMessage('Say something.')], max_tokens: 4, stream: true,
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.ok(chunks.length >= 1);
    for (const ch of chunks) {
      assert.equal(ch.choices.length, 1, 'every chunk has one choice');
      assert.equal(ch.usage ?? null, null);
    }
    assert.ok(chunks.at(-1).choices[0].finish_reason, 'last chunk has finish_reason');
  });

  test('a second request about the same image reuses the cached prefix', async () => {
    const ask = (q) => openai.chat.completions.create({
      model: 'm', messages: askImage(q), max_tokens: 4, temperature: 0,
    });
    const first = await ask('What colours do you see?');
    const second = await ask('How many objects are there?');
    checkUsage(first.usage, { image: true, maxTokens: 4 });
    checkUsage(second.usage, { image: true, maxTokens: 4 });
    const cached = second.usage.prompt_tokens_details?.cached_tokens;
    assert.ok(Number.isInteger(cached) && cached > 0, `cached_tokens ${cached} on the second request`);
    assert.ok(cached < second.usage.prompt_tokens, 'the question itself is not cached');
    // The image's tokens are most of the prompt: most of it must come from the cache.
    assert.ok(cached > second.usage.prompt_tokens / 2, `cached ${cached} of ${second.usage.prompt_tokens}`);
  });

  test('models.list names the loaded model', async () => {
    const page = await openai.models.list();
    const models = page.data;
    assert.equal(models.length, 1);
    assert.equal(models[0].object, 'model');
    assert.equal(models[0].owned_by, 'dsvl2');
    assert.equal(typeof models[0].id, 'string');
    assert.ok(models[0].id.length > 0);
  });

  test('3 images over --max-images 2 is a BadRequestError, and the server goes on', async () => {
    await assert.rejects(
      openai.chat.completions.create({
        model: 'm', messages: [userMessage('Compare these.', [image, image, image])], max_tokens: 4,
      }),
      (e) => {
        assert.ok(e instanceof OpenAI.BadRequestError, `got ${e?.constructor?.name}: ${e?.message}`);
        assert.equal(e.status, 400);
        assert.equal(e.type, 'invalid_request_error');
        assert.match(e.message, /3/, 'the message names the count');
        return true;
      });
    await assert.rejects(
      openai.chat.completions.create({
        model: 'm', messages: [userMessage('Describe.', ['data:image/png;base64,@@not*base64@@'])], max_tokens: 4,
      }),
      (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && typeof e.param === 'string' && /image_url/.test(e.param));
    const ok = await openai.chat.completions.create({ model: 'm', messages: [userMessage('Hello.')], max_tokens: 4 });
    assert.ok(ok.choices[0].message.content.length > 0);
  });
});

describe('openai client with --api-key', { skip: skipReason, timeout: 120_000 }, () => {
  const KEY = 'sk-test-' + Math.random().toString(36).slice(2);
  let server, stopped = false;
  before(async () => {
    server = await startServer(['--api-key', KEY, '--parallel', '1']);
  });
  after(async () => {
    if (stopped) return;
    const { wasRunning } = await server.stop();
    assert.ok(wasRunning, 'the server died during the tests');
  });

  test('a wrong key is an AuthenticationError (401)', async () => {
    for (const key of ['wrong', KEY + 'x', KEY.slice(0, -1)]) {
      await assert.rejects(
        client(server.url, key).chat.completions.create({ model: 'm', messages: [userMessage('Hi.')], max_tokens: 2 }),
        (e) => {
          assert.ok(e instanceof OpenAI.AuthenticationError, `key ${key}: got ${e?.constructor?.name}: ${e?.message}`);
          assert.equal(e.status, 401);
          return true;
        });
    }
    await assert.rejects(client(server.url, 'wrong').models.list(), OpenAI.AuthenticationError);
  });

  // A refused POST followed on the same connection by another request: the
  // refused body must never be parsed as a request (request smuggling). The
  // server answers one request per connection, so the second gets no answer
  // at all, and never a 400 made from the first one's body.
  test('a refused POST is not followed by a request parsed from its body', async () => {
    const { port } = new URL(server.url);
    const sock = net.connect(Number(port), '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const body = JSON.stringify({ messages: [userMessage('Hi.')], max_tokens: 2 });
    let got = '';
    sock.on('data', (d) => { got += d.toString('latin1'); });
    const closed = new Promise((r) => sock.once('close', r));
    sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n` +
               `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
               'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000))]);
    sock.destroy();
    const statuses = [...got.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    assert.equal(statuses[0], '401', got.slice(0, 300));
    assert.ok(!statuses.includes('400'), `a request was parsed from the refused body: ${statuses}`);
  });

  // A body on a route that takes none is refused before it is read.
  test('a body on GET or on an unknown route is refused, unread', async () => {
    const r = await request(server.url, { method: 'POST', path: '/health', body: 'x'.repeat(1000) });
    assert.equal(r.status, 405);
    const c = await request(server.url, { method: 'PUT', path: '/nowhere', body: 'x'.repeat(200_000), chunked: true });
    assert.equal(c.status, 404);
    const g = await request(server.url, { method: 'GET', path: '/v1/models', body: 'x'.repeat(100), headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(g.status, 413);
  });

  test('no key at all is 401 on the API and /metrics, in OpenAI shape', async () => {
    for (const p of ['/v1/models', '/metrics']) {
      const r = await request(server.url, { path: p });
      assert.equal(r.status, 401, p);
      assert.equal(r.json?.error?.type, 'authentication_error', `${p}: ${r.text.slice(0, 200)}`);
    }
  });

  test('the right key is accepted', async () => {
    const openai = client(server.url, KEY);
    const r = await openai.chat.completions.create({ model: 'm', messages: [userMessage('Hi.')], max_tokens: 3 });
    assert.ok(r.choices[0].message.content.length > 0);
    assert.equal((await openai.models.list()).data.length, 1);
    const m = await request(server.url, { path: '/metrics', headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(m.status, 200);
  });

  test('/health and / stay open', async () => {
    const h = await request(server.url, { path: '/health' });
    assert.equal(h.status, 200);
    assert.equal(h.json?.status, 'ok');
    const page = await request(server.url, { path: '/' });
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /text\/html/);
  });

  test('SIGTERM ends the server cleanly', async () => {
    assert.ok(server.alive());
    stopped = true;
    const t0 = performance.now();
    const r = await server.stop();
    // Exit 0 from a handler, or the default SIGTERM death: not an abort or a crash.
    assert.ok(r.code === 0 || r.signal === 'SIGTERM', `exit ${JSON.stringify(r)}:\n${server.stderr().slice(-1000)}`);
    assert.ok(performance.now() - t0 < 10_000, 'the server needed SIGKILL');
  });
});
