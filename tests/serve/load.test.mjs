// A bounded load on loopback: 60 requests, 4 at a time, with and without
// images, streamed and not. Memory stays within the image-cache budget plus a
// slack, and /metrics agrees with what the clients saw.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  skipReason, startServer, postChat, readStream, metrics, rssKb, imageDataUrl, makePng, pngDataUrl, userMessage,
} from './lib/server.mjs';

const CACHE_MB = 16;
const SLACK_MB = 64;  // allocator arenas, HTTP buffers, per-thread scratch
const REQUESTS = 60;
const CONCURRENCY = 4;
const MAX_TOKENS = 8;

// Distinct images: the demo photo and five generated ones of other sizes.
const images = skipReason ? [] : [
  imageDataUrl(),
  ...[[300, 200], [200, 300], [400, 400], [640, 200], [120, 90]].map(([w, h], k) =>
    pngDataUrl(makePng(w, h, (x, y) => [(x * (k + 3)) & 255, (y * (k + 5)) & 255, ((x + y) * 7 * k) & 255]))),
];

function body(i) {
  const withImage = i % 3 !== 0;
  const img = withImage ? [images[i % images.length]] : [];
  return {
    model: 'm', max_tokens: MAX_TOKENS, temperature: i % 2 ? 0 : 0.8, seed: i, stream: i % 4 < 2,
    stream_options: i % 4 < 2 ? { include_usage: true } : undefined,
    messages: [userMessage(`Question ${i}: what do you see?`, img)],
  };
}

// Sends one request and returns its usage, whatever the mode.
async function send(url, b) {
  if (!b.stream) {
    const r = await postChat(url, b);
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.ok(!r.aborted && r.json, `a 200 answer cut off: ${JSON.stringify(r.text.slice(0, 200))}`);
    return r.json.usage;
  }
  const res = await fetch(url + '/v1/chat/completions', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b),
  });
  assert.equal(res.status, 200);
  const { chunks } = await readStream(res);
  assert.ok(chunks.length > 0, 'a stream without chunks');
  return chunks.at(-1).usage;
}

async function runAll(url, bodies) {
  const usages = new Array(bodies.length);
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < bodies.length) {
      const i = next++;
      usages[i] = await send(url, bodies[i]);
    }
  }));
  return usages;
}

function checkHistogram(m, name) {
  const buckets = Object.entries(m).filter(([k]) => k.startsWith(`${name}_bucket{`));
  assert.ok(buckets.length >= 2, `${name}: no buckets`);
  const inf = m[`${name}_bucket{le="+Inf"}`];
  assert.equal(inf, m[`${name}_count`], `${name}: +Inf bucket = count`);
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i][1] >= buckets[i - 1][1], `${name}: buckets are cumulative`);
  assert.ok(Number.isFinite(m[`${name}_sum`]) && m[`${name}_sum`] >= 0, `${name}_sum`);
}

describe('load', { skip: skipReason, timeout: 180_000 }, () => {
  let server;
  before(async () => {
    server = await startServer(['--parallel', '4', '--image-cache-mb', String(CACHE_MB)]);
  });
  after(async () => {
    const { wasRunning } = await server.stop();
    assert.ok(wasRunning, `the server died:\n${server.stderr().slice(-3000)}`);
  });

  test(`${REQUESTS} requests, ${CONCURRENCY} at a time`, async () => {
    // Warm-up: every image once, so the measured run sees a filled cache.
    const warm = images.map((url, i) => ({ model: 'm', max_tokens: 2, messages: [userMessage(`Warm-up ${i}.`, [url])] }));
    await runAll(server.url, warm);
    const rss0 = rssKb(server.pid);
    const m0 = await metrics(server.url);

    let peak = rss0;
    const sampler = setInterval(() => {
      try { peak = Math.max(peak, rssKb(server.pid)); } catch {}
    }, 100);
    const t0 = performance.now();
    const bodies = Array.from({ length: REQUESTS }, (_, i) => body(i));
    let usages;
    try {
      usages = await runAll(server.url, bodies);
    } finally {
      clearInterval(sampler);
    }
    const seconds = (performance.now() - t0) / 1000;
    const rss1 = rssKb(server.pid);
    const m1 = await metrics(server.url);
    const d = (k) => (m1[k] ?? 0) - (m0[k] ?? 0);
    console.log(`load: ${REQUESTS} requests in ${seconds.toFixed(1)} s; RSS ${(rss0 / 1024).toFixed(1)} -> ${(rss1 / 1024).toFixed(1)} MB (peak ${(peak / 1024).toFixed(1)} MB)`);
    assert.ok(seconds < 60, `the load took ${seconds.toFixed(1)} s`);

    // Memory: growth after warm-up within the cache budget plus the slack.
    const growthMb = (rss1 - rss0) / 1024;
    assert.ok(growthMb <= CACHE_MB + SLACK_MB, `RSS grew ${growthMb.toFixed(1)} MB (limit ${CACHE_MB} + ${SLACK_MB})`);

    // Every answer is well formed.
    for (const [i, u] of usages.entries()) {
      assert.ok(u, `request ${i}: no usage`);
      assert.ok(u.completion_tokens >= 1 && u.completion_tokens <= MAX_TOKENS, `request ${i}: ${JSON.stringify(u)}`);
      assert.equal(u.prompt_tokens > 100, bodies[i].messages[0].content instanceof Array, `request ${i}: prompt_tokens ${u.prompt_tokens}`);
    }

    // /metrics agrees with the clients.
    const sum = (f) => usages.reduce((a, u) => a + f(u), 0);
    // Every HTTP response counts: the first /metrics scrape too, the second maybe.
    const ok200 = d('dsvl2_requests_total{status="200"}');
    assert.ok(ok200 === REQUESTS + 1 || ok200 === REQUESTS + 2, `requests by status 200: ${ok200} for ${REQUESTS} requests`);
    for (const k of Object.keys(m1)) {
      if (k.startsWith('dsvl2_requests_total{') && k !== 'dsvl2_requests_total{status="200"}') assert.equal(d(k), 0, k);
    }
    assert.equal(d('dsvl2_prompt_tokens_total'), sum((u) => u.prompt_tokens), 'prompt tokens');
    assert.equal(d('dsvl2_generated_tokens_total'), sum((u) => u.completion_tokens), 'generated tokens');
    assert.equal(d('dsvl2_prefix_cache_tokens_total'), sum((u) => u.prompt_tokens_details?.cached_tokens ?? 0), 'cached tokens');
    for (const h of ['dsvl2_time_to_first_token_seconds', 'dsvl2_inter_token_latency_seconds', 'dsvl2_queue_wait_seconds']) checkHistogram(m1, h);
    assert.equal(d('dsvl2_time_to_first_token_seconds_count'), REQUESTS, 'one time to first token per request');
    assert.equal(d('dsvl2_queue_wait_seconds_count'), REQUESTS, 'one queue wait per request');
    const itl = d('dsvl2_inter_token_latency_seconds_count');
    assert.ok(itl >= sum((u) => u.completion_tokens - 1) && itl <= sum((u) => u.completion_tokens),
              `inter-token latencies ${itl} for ${sum((u) => u.completion_tokens)} tokens`);
    // The cache holds every image after the warm-up: hits, and no new misses.
    const imagesSent = bodies.filter((b) => b.messages[0].content instanceof Array).length;
    assert.ok(d('dsvl2_image_cache_hits_total') > 0, 'no image-cache hits');
    assert.equal(d('dsvl2_image_cache_misses_total'), 0, 'image-cache misses after the warm-up');
    assert.ok(d('dsvl2_image_cache_hits_total') <= imagesSent, 'more hits than images sent');
    assert.ok(m1.dsvl2_image_cache_bytes > 0 && m1.dsvl2_image_cache_bytes <= CACHE_MB << 20, `cache bytes ${m1.dsvl2_image_cache_bytes}`);
    assert.equal(m1.dsvl2_image_cache_entries, images.length, 'one cache entry per distinct image');
    assert.equal(m1.dsvl2_active_slots, 0);
    assert.equal(m1.dsvl2_queue_length, 0);
    assert.equal(d('dsvl2_engine_errors_total'), 0);
  });
});
