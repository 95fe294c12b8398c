// Raw SSE framing as curl sees it: `data: {json}\n\n` events, then
// `data: [DONE]\n\n`, with Content-Type text/event-stream.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { skipReason, startServer, imageDataUrl, userMessage } from './lib/server.mjs';

// curl -sN -i: headers and body exactly as received, no buffering.
function curl(url, body, extra = []) {
  return new Promise((resolve, reject) => {
    const p = spawn('curl', ['-sN', '-i', '--max-time', '60', '-H', 'Content-Type: application/json',
                             '--data-binary', '@-', ...extra, url], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    let err = '';
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`curl exited ${code}: ${err}`));
      let raw = Buffer.concat(out).toString('utf8');
      // curl may send Expect: 100-continue on a large body: skip the interim answer.
      while (/^HTTP\/[\d.]+ 100\b/.test(raw)) raw = raw.slice(raw.indexOf('\r\n\r\n') + 4);
      const split = raw.indexOf('\r\n\r\n');
      assert.ok(split > 0, `no header/body split in ${JSON.stringify(raw.slice(0, 200))}`);
      const head = raw.slice(0, split).split('\r\n');
      const status = Number(head[0].split(' ')[1]);
      const headers = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status, headers, body: raw.slice(split + 4) });
    });
    p.stdin.end(JSON.stringify(body));
  });
}

// Every event must be exactly one `data: ` line followed by a blank line.
function frames(body) {
  assert.ok(body.endsWith('data: [DONE]\n\n'), `does not end with data: [DONE]: ${JSON.stringify(body.slice(-120))}`);
  assert.match(body, /^(data: [^\n]+\n\n)+$/, 'framing is not only `data: ...\\n\\n` events');
  assert.ok(!body.includes('\r'), 'no CR in the event stream');
  const data = body.split('\n\n').slice(0, -1).map((e) => e.slice('data: '.length));
  assert.equal(data.filter((d) => d === '[DONE]').length, 1, 'one [DONE], at the end');
  return data.slice(0, -1).map((d) => {
    try {
      return JSON.parse(d);
    } catch {
      assert.fail(`not JSON: ${d.slice(0, 200)}`);
    }
  });
}

describe('SSE framing (curl)', { skip: skipReason, timeout: 120_000 }, () => {
  let server, url;
  before(async () => {
    server = await startServer(['--parallel', '1']);
    url = server.url + '/v1/chat/completions';
  });
  after(async () => {
    const { wasRunning } = await server.stop();
    assert.ok(wasRunning, 'the server died during the tests');
  });

  test('a streamed answer with an image and include_usage', async () => {
    const max = 10;
    const r = await curl(url, {
      model: 'm', stream: true, stream_options: { include_usage: true }, max_tokens: max, temperature: 0,
      messages: [userMessage('Describe this image.', [imageDataUrl()])],
    });
    assert.equal(r.status, 200, r.body.slice(0, 300));
    assert.match(r.headers['content-type'] ?? '', /^text\/event-stream\b/);
    const chunks = frames(r.body);
    assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
    for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    const usage = chunks.at(-1);
    assert.deepEqual(usage.choices, []);
    assert.ok(usage.usage.completion_tokens >= 1 && usage.usage.completion_tokens <= max);
    assert.ok(usage.usage.prompt_tokens > 500);
    const last = chunks.at(-2).choices[0];
    assert.ok(['stop', 'length'].includes(last.finish_reason), `finish_reason ${last.finish_reason}`);
    const text = chunks.slice(0, -1).map((c) => c.choices[0].delta.content ?? '').join('');
    assert.ok(text.length > 0);
  });

  test('a streamed answer without usage', async () => {
    const r = await curl(url, { model: 'm', stream: true, max_tokens: 5, messages: [userMessage('Hello!')] });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'] ?? '', /^text\/event-stream\b/);
    const chunks = frames(r.body);
    assert.ok(chunks.length >= 1);
    for (const c of chunks) assert.equal(c.choices.length, 1);
    assert.ok(chunks.at(-1).choices[0].finish_reason);
  });

  test('a bad streamed request is a plain JSON 400, not an event stream', async () => {
    const r = await curl(url, { model: 'm', stream: true, max_tokens: -1, messages: [userMessage('Hello!')] });
    assert.equal(r.status, 400);
    assert.match(r.headers['content-type'] ?? '', /^application\/json\b/);
    const e = JSON.parse(r.body).error;
    assert.equal(e.param, 'max_tokens');
    assert.equal(e.type, 'invalid_request_error');
  });

  test('a non-streamed answer is one JSON body', async () => {
    const r = await curl(url, { model: 'm', max_tokens: 3, messages: [userMessage('Hello!')] });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'] ?? '', /^application\/json\b/);
    const j = JSON.parse(r.body);
    assert.equal(j.object, 'chat.completion');
    assert.ok(!r.body.startsWith('data:'));
  });
});
