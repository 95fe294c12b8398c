// Continuous batching seen from clients: parallel streams equal the same
// requests run alone; an aborted stream frees its slot; a full queue is 503.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import {
  skipReason, startServer, imageDataUrl, makePng, pngDataUrl, metrics, postChat, userMessage, sleep, checkErrorShape,
} from './lib/server.mjs';

const client = (url) => new OpenAI({ baseURL: url + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 120_000 });

async function stream(openai, body, opts = {}) {
  const t0 = performance.now();
  const s = await openai.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }, opts);
  let text = '', finish = null, usage = null, first = null;
  for await (const c of s) {
    first ??= performance.now() - t0;
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      text += ch.delta?.content ?? '';
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  return { text, finish, usage, first, end: performance.now() - t0, start: t0 };
}

describe('8 parallel greedy streams equal the same requests one at a time (f32)', { skip: skipReason, timeout: 240_000 }, () => {
  let server;
  before(async () => {
    server = await startServer(['--parallel', '8', '--compute', 'f32']);
  });
  after(async () => {
    const { wasRunning } = await server.stop();
    assert.ok(wasRunning, 'the server died during the tests');
  });

  test('parallel vs sequential', async () => {
    // Two different images: their tiles are encoded in the same batches.
    const images = [imageDataUrl(), pngDataUrl(makePng(300, 200, (x, y) => [x & 255, y & 255, (x ^ y) & 255]))];
    const prompts = ['Describe this image.', 'Write a haiku about rain.', 'What is in the picture?',
                     'Count from one to ten.', 'Name three colours.', 'Is there a person here?',
                     'Tell me a joke.', 'What is the capital of France?'];
    // Every other request carries an image.
    const bodies = prompts.map((p, i) => ({
      model: 'm', temperature: 0, max_tokens: 16, messages: [userMessage(p, i % 2 === 0 ? [images[(i / 2) % 2]] : [])],
    }));
    const openai = client(server.url);
    const parallel = await Promise.all(bodies.map((b) => stream(openai, b)));
    const sequential = [];
    for (const b of bodies) sequential.push(await stream(openai, b));
    for (let i = 0; i < bodies.length; i++) {
      const p = parallel[i], s = sequential[i];
      assert.ok(p.usage && s.usage, `request ${i}: no usage chunk`);
      assert.ok(p.text.length > 0, `request ${i}: empty text`);
      assert.ok(['stop', 'length'].includes(p.finish), `request ${i}: finish_reason ${p.finish}`);
      assert.equal(p.text, s.text, `request ${i} (${prompts[i]}): parallel and sequential texts differ`);
      assert.equal(p.finish, s.finish, `request ${i}: finish_reason`);
      assert.equal(p.usage.completion_tokens, s.usage.completion_tokens, `request ${i}: completion_tokens`);
      assert.equal(p.usage.prompt_tokens, s.usage.prompt_tokens, `request ${i}: prompt_tokens`);
      assert.equal(p.usage.prompt_tokens > 300, i % 2 === 0, `request ${i}: prompt_tokens ${p.usage.prompt_tokens}`);
    }
    // The parallel streams were in flight together (some overlap in time).
    const overlap = parallel.some((p, i) => parallel.some((q, j) =>
      i !== j && p.start + p.first < q.start + q.end && q.start + q.first < p.start + p.end));
    assert.ok(overlap, 'no two streams were generating at the same time');
    const m = await metrics(server.url);
    assert.equal(m.dsvl2_slots, 8);
    assert.equal(m.dsvl2_active_slots, 0, 'every slot is free after the streams ended');
  });
});

describe('an aborted stream frees its slot (--parallel 1)', { skip: skipReason, timeout: 180_000 }, () => {
  let server;
  before(async () => {
    server = await startServer(['--parallel', '1', '-c', '4096']);
  });
  after(async () => {
    const { wasRunning } = await server.stop();
    assert.ok(wasRunning, 'the server died during the tests');
  });

  test('abort after the first chunk', async () => {
    const openai = client(server.url);
    const MAX = 2000;
    // A greedy request that, left alone, runs long (over 1000 tokens).
    let body = null, full = 0;
    for (const p of ['Tell me a very long story.', 'Write an essay.', 'List every number you know.', 'Go on forever.']) {
      const b = { model: 'm', temperature: 0, max_tokens: MAX, messages: [userMessage(p)] };
      const r = await openai.chat.completions.create(b);
      if (r.usage.completion_tokens >= 1000) {
        body = b;
        full = r.usage.completion_tokens;
        break;
      }
    }
    assert.ok(body, 'no prompt generated 1000 tokens (every greedy answer ended early)');

    const before = await metrics(server.url);
    const ac = new AbortController();
    let chunks = 0;
    try {
      const s = await openai.chat.completions.create({ ...body, stream: true }, { signal: ac.signal });
      for await (const c of s) {
        chunks++;
        ac.abort();  // closes the connection
        break;
      }
    } catch (e) {
      if (!(e instanceof OpenAI.APIUserAbortError || e?.name === 'AbortError')) throw e;
    }
    assert.equal(chunks, 1, 'no first chunk');

    // The slot must be free soon: the engine stops generating for a gone client.
    const t0 = performance.now();
    let m;
    do {
      await sleep(20);
      m = await metrics(server.url);
    } while (m.dsvl2_active_slots !== 0 && performance.now() - t0 < 5000);
    assert.equal(m.dsvl2_active_slots, 0, 'the aborted request still holds the slot after 5 s');
    const generated = m.dsvl2_generated_tokens_total - before.dsvl2_generated_tokens_total;
    console.log(`abort: the full answer has ${full} tokens; the aborted one generated ${generated}; slot free after ${(performance.now() - t0).toFixed(0)} ms`);
    assert.ok(generated < full / 2, `the aborted stream generated ${generated} of ${full} tokens`);
    assert.ok(m.dsvl2_request_cancellations_total - before.dsvl2_request_cancellations_total >= 1, 'no cancellation counted');

    const t1 = performance.now();
    const next = await openai.chat.completions.create({ model: 'm', max_tokens: 8, messages: [userMessage('Hello.')] });
    const dt = performance.now() - t1;
    assert.ok(next.choices[0].message.content.length > 0);
    assert.ok(dt < 5000, `the next request took ${dt.toFixed(0)} ms`);
  });
});

describe('a full queue answers 503 with Retry-After (--parallel 1 --queue 1)', { skip: skipReason, timeout: 180_000 }, () => {
  let server;
  before(async () => {
    server = await startServer(['--parallel', '1', '--queue', '1']);
  });
  after(async () => {
    const { wasRunning } = await server.stop();
    assert.ok(wasRunning, 'the server died during the tests');
  });

  test('6 long requests at once', async () => {
    const N = 6;
    const results = await Promise.all(Array.from({ length: N }, (_, i) => postChat(server.url, {
      model: 'm', temperature: 0, max_tokens: 1000, messages: [userMessage(`Write a long story number ${i}.`)],
    })));
    const busy = results.filter((r) => r.status === 503);
    const ok = results.filter((r) => r.status === 200);
    assert.equal(busy.length + ok.length, N, `statuses: ${results.map((r) => r.status)}`);
    assert.ok(busy.length >= 1, `no 503 among ${results.map((r) => r.status)}`);
    assert.ok(ok.length >= 1, `nothing completed: ${results.map((r) => r.status)}`);
    for (const r of busy) {
      assert.match(String(r.headers['retry-after']), /^\d+$/, 'Retry-After is a number of seconds');
      checkErrorShape(assert, r, '503');
    }
    for (const r of ok) {
      assert.equal(r.json.object, 'chat.completion');
      assert.ok(r.json.choices[0].message.content.length > 0);
      assert.ok(r.json.usage.completion_tokens >= 1 && r.json.usage.completion_tokens <= 1000);
    }
    const m = await metrics(server.url);
    assert.equal(m['dsvl2_requests_total{status="503"}'], busy.length, '503s counted');
    // And it serves again once the queue drained.
    const again = await postChat(server.url, { model: 'm', max_tokens: 3, messages: [userMessage('Hi.')] });
    assert.equal(again.status, 200);
  });
});
