#!/usr/bin/env node
// Validates server.js against Google's official Node client
// (@google-cloud/storage 7) and, for protocol edges the client never
// produces, against raw HTTP requests shaped like the ones GCS documents.
//
// Prints one line per check, then "N passed, N failed"; exits 0 only if
// every check passed.
'use strict';

const assert = require('assert/strict');
const { spawn } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const { Readable } = require('stream');
const { pipeline } = require('stream/promises');
const { Storage, CRC32C } = require('@google-cloud/storage');
const { Crc32c } = require('./server.js');

const KiB = 1024;
const MiB = 1024 * KiB;
const ALIGN = 256 * KiB;

// Keeps the client's retry back-off near 1 s (its floor: async-retry's
// minTimeout); the defaults back off exponentially up to 64 s.
const FAST_RETRY = { maxRetries: 5, retryDelayMultiplier: 1.1, maxRetryDelay: 1, totalTimeout: 60 };

// ---------------------------------------------------------------- harness

let passed = 0;
let failed = 0;

async function check(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (err) {
    failed += 1;
    console.log(`FAIL ${name}: ${(err && err.stack) || err}`);
  }
}

const emulators = [];

// Starts server.js on a free port and resolves once it printed its address.
function startEmulator(dir, args = []) {
  const proc = spawn(process.execPath, [path.join(__dirname, 'server.js'), '--port', '0', '--dir', dir, ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const emu = {
    proc,
    dir,
    stop() {
      if (proc.exitCode !== null) return Promise.resolve();
      return new Promise((resolve) => {
        proc.once('exit', resolve);
        proc.kill('SIGTERM');
      });
    },
  };
  emulators.push(emu);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('emulator did not start within 10 s')), 10000);
    let out = '';
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /^listening (http:\/\/127\.0\.0\.1:(\d+))\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        emu.base = m[1];
        resolve(emu);
      }
    });
    proc.once('exit', (code) => reject(new Error(`emulator exited early with ${code}`)));
  });
}

// Raw HTTP with full control over headers; rawHeaders keeps repeated lines.
function request(method, url, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(parts);
        const text = buf.toString('utf8');
        let json = null;
        if (/json/.test(res.headers['content-type'] || '')) json = JSON.parse(text);
        resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, body: buf, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function headerLines(res, name) {
  const out = [];
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    if (res.rawHeaders[i].toLowerCase() === name) out.push(res.rawHeaders[i + 1]);
  }
  return out;
}

const admin = (emu, method, what) => request(method, `${emu.base}/_emulator/${what}`);

async function getLog(emu) {
  return (await admin(emu, 'GET', 'log')).json;
}

async function resetLog(emu) {
  assert.equal((await admin(emu, 'POST', 'reset-log')).status, 204);
}

function hashes(buf) {
  const crc = new CRC32C();
  crc.update(buf);
  return { md5Hash: crypto.createHash('md5').update(buf).digest('base64'), crc32c: crc.toString() };
}

async function expectReject(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`);
    return true;
  });
}

async function readAll(stream) {
  const parts = [];
  await pipeline(stream, async function* (source) {
    for await (const chunk of source) parts.push(chunk);
  });
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------- client suite

async function clientSuite(label, storage, emu) {
  const bucketName = `validate-${label === 'apiEndpoint' ? 'api' : 'env'}`;
  const bucket = storage.bucket(bucketName);
  const t = (name) => `[${label}] ${name}`;
  const small = crypto.randomBytes(100 * KiB + 3);

  await check(t('createBucket, then exists()'), async () => {
    await storage.createBucket(bucketName);
    assert.equal((await bucket.exists())[0], true);
  });

  await check(t('simple upload (resumable:false) is a multipart upload'), async () => {
    await resetLog(emu);
    await bucket.file('small.bin').save(small, { resumable: false, contentType: 'application/x-test' });
    const uploads = (await getLog(emu)).filter((e) => e.method === 'POST' && e.path.includes('/upload/'));
    assert.equal(uploads.length, 1);
    assert.match(uploads[0].path, /uploadType=multipart/);
    assert.equal(uploads[0].status, 200);
  });

  await check(t('getMetadata: fields, string types, correct md5/crc32c'), async () => {
    const [md] = await bucket.file('small.bin').getMetadata();
    for (const key of ['kind', 'id', 'selfLink', 'name', 'bucket', 'generation', 'metageneration', 'contentType',
      'size', 'md5Hash', 'crc32c', 'timeCreated', 'updated', 'etag']) {
      assert.equal(typeof md[key], 'string', `${key} should be a string`);
    }
    assert.equal(md.kind, 'storage#object');
    assert.equal(md.name, 'small.bin');
    assert.equal(md.bucket, bucketName);
    assert.match(md.generation, /^\d+$/);
    assert.equal(md.metageneration, '1');
    assert.equal(md.contentType, 'application/x-test');
    assert.equal(md.size, String(small.length));
    const want = hashes(small);
    assert.equal(md.md5Hash, want.md5Hash);
    assert.equal(md.crc32c, want.crc32c);
    const ours = new Crc32c();
    ours.update(small);
    assert.equal(ours.base64(), want.crc32c, 'emulator CRC32C agrees with the client library');
    assert.ok(!Number.isNaN(Date.parse(md.timeCreated)) && !Number.isNaN(Date.parse(md.updated)));
  });

  await check(t('full download with the client\'s hash validation on'), async () => {
    const [data] = await bucket.file('small.bin').download();
    assert.ok(data.equals(small));
  });

  const big = crypto.randomBytes(5 * MiB + 12345);
  await check(t('resumable upload, 1 MiB chunks: 308 rounds then 200'), async () => {
    await resetLog(emu);
    await bucket.file('big/chunked.bin').save(big, { resumable: true, chunkSize: MiB });
    const puts = (await getLog(emu)).filter((e) => e.method === 'PUT' && e.path.includes('upload_id='));
    assert.equal(puts.length, 6);
    let next = 0;
    for (const [i, e] of puts.entries()) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(e.contentRange);
      assert.ok(m, `chunk Content-Range ${e.contentRange}`);
      assert.equal(Number(m[1]), next, 'each chunk starts at the confirmed offset');
      next = Number(m[2]) + 1;
      if (i < puts.length - 1) {
        assert.equal(e.status, 308);
        assert.equal(e.responseRange, `bytes=0-${next - 1}`);
      } else {
        assert.equal(e.status, 200);
        assert.equal(m[3], String(big.length));
      }
    }
    const [data] = await bucket.file('big/chunked.bin').download();
    assert.ok(data.equals(big));
  });

  await check(t('resumable single-shot stream (Content-Range bytes 0-*/*)'), async () => {
    await resetLog(emu);
    const data = crypto.randomBytes(3 * MiB + 7);
    await pipeline(Readable.from([data.subarray(0, MiB), data.subarray(MiB)]),
      bucket.file('big/stream.bin').createWriteStream({ resumable: true }));
    const puts = (await getLog(emu)).filter((e) => e.method === 'PUT');
    assert.equal(puts.length, 1);
    assert.equal(puts[0].contentRange, 'bytes 0-*/*');
    assert.equal(puts[0].status, 200);
    assert.equal(puts[0].bytesReceived, data.length);
    const [md] = await bucket.file('big/stream.bin').getMetadata();
    assert.equal(md.size, String(data.length));
    assert.equal(md.crc32c, hashes(data).crc32c);
  });

  await check(t('ranged downloads (start/end and tail) return the right bytes'), async () => {
    const file = bucket.file('big/chunked.bin');
    assert.ok((await readAll(file.createReadStream({ start: 1000, end: 3 * MiB }))).equals(big.subarray(1000, 3 * MiB + 1)));
    assert.ok((await readAll(file.createReadStream({ end: -100 }))).equals(big.subarray(big.length - 100)));
  });

  await check(t('list: maxResults paging over >= 3 pages, then delimiter'), async () => {
    const names = [];
    for (let i = 0; i < 23; i++) names.push(`list/k-${String(i).padStart(2, '0')}`);
    names.push('list/sub/x', 'list/sub/y', 'list/\u00e9', 'list/Z');
    await Promise.all(names.map((n) => bucket.file(n).save(n, { resumable: false })));
    const seen = [];
    let query = { prefix: 'list/', maxResults: 5, autoPaginate: false };
    let pages = 0;
    while (query) {
      const [files, nextQuery] = await bucket.getFiles(query);
      pages += 1;
      assert.ok(files.length <= 5);
      seen.push(...files.map((f) => f.name));
      query = nextQuery;
    }
    assert.ok(pages >= 3, `only ${pages} pages`);
    const byBytes = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    assert.deepEqual(seen, byBytes);
    const [files, , resp] = await bucket.getFiles({ prefix: 'list/', delimiter: '/', autoPaginate: false });
    assert.deepEqual(resp.prefixes, ['list/sub/']);
    assert.equal(files.length, names.length - 2);
    // A partial response: only the members asked for.
    const [few, , part] = await bucket.getFiles({ prefix: 'list/k-0', maxResults: 3, autoPaginate: false,
      fields: 'items(name,size),nextPageToken' });
    assert.deepEqual(few.map((f) => f.name), ['list/k-00', 'list/k-01', 'list/k-02']);
    assert.deepEqual(Object.keys(part).sort(), ['items', 'nextPageToken']);
    assert.deepEqual(part.items[0], { name: 'list/k-00', size: String('list/k-00'.length) });
  });

  const oddNames = ['with space.txt', 'plus+sign&amp=1.txt', 'percent%2Fnot-a-slash%', 'dir/sub dir/file',
    'unicode/\u65e5\u672c\u8a9e-\u00fc-\ud83d\ude00', 'question?hash#.txt'];
  await check(t('names with spaces, +, %, /, unicode round-trip'), async () => {
    for (const name of oddNames) {
      const file = bucket.file(`names/${name}`);
      await file.save(Buffer.from(name), { resumable: false });
      const [md] = await file.getMetadata();
      assert.equal(md.name, `names/${name}`);
      assert.equal((await file.download())[0].toString(), name);
    }
    const [files] = await bucket.getFiles({ prefix: 'names/' });
    assert.deepEqual(files.map((f) => f.name).sort(), oddNames.map((n) => `names/${n}`).sort());
  });

  await check(t('ifGenerationMatch=0 refuses to overwrite (412)'), async () => {
    await expectReject(bucket.file('small.bin').save('x', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }), 412);
  });

  await check(t('temporaryHold via PATCH blocks delete (403) until released'), async () => {
    const file = bucket.file('small.bin');
    const [md] = await file.setMetadata({ temporaryHold: true, metadata: { k: 'v' } });
    assert.equal(md.temporaryHold, true);
    assert.equal(md.metageneration, '2');
    assert.deepEqual(md.metadata, { k: 'v' });
    await expectReject(file.delete(), 403);
    await file.setMetadata({ temporaryHold: false });
  });

  await check(t('delete, then exists() false and 404s'), async () => {
    const file = bucket.file('small.bin');
    await file.delete();
    assert.equal((await file.exists())[0], false);
    await expectReject(file.getMetadata(), 404);
    await expectReject(file.download(), 404);
    await expectReject(file.delete(), 404);
  });
}

// The client retries a failed chunk by asking the session where it stands.
// It only retries uploads made idempotent by a precondition, hence
// ifGenerationMatch=0 below.
async function clientRetrySuite(storage, emu) {
  const bucket = storage.bucket('validate-api');
  const data = crypto.randomBytes(3 * 512 * KiB + 99);
  const opts = { resumable: true, chunkSize: 512 * KiB, preconditionOpts: { ifGenerationMatch: 0 } };
  const faulted = (name, fn) => check(name, async () => {
    try {
      await fn();
    } finally {
      await admin(emu, 'DELETE', 'fail');
    }
  });

  // A 5xx on the client's status query is fatal to it, so only the
  // initiation (twice) and one chunk are made to fail.
  await faulted('client retries injected 503s (before processing) and completes', async () => {
    await resetLog(emu);
    await request('POST', `${emu.base}/_emulator/fail?count=2&status=503&method=POST&path=uploadType%3Dresumable`);
    await request('POST', `${emu.base}/_emulator/fail?count=1&status=503&method=PUT&path=upload_id%3D`);
    await bucket.file('retry/before.bin').save(data, opts);
    const log = await getLog(emu);
    assert.deepEqual(log.slice(0, 6).map((e) => [e.method, e.status, e.contentRange, e.fault]), [
      ['POST', 503, null, 'before'],
      ['POST', 503, null, 'before'],
      ['POST', 200, null, null],
      ['PUT', 503, 'bytes 0-524287/*', 'before'],
      ['PUT', 308, 'bytes */*', null],
      ['PUT', 308, 'bytes 0-524287/*', null],
    ]);
    assert.equal(log[log.length - 1].status, 200);
    assert.ok((await bucket.file('retry/before.bin').download())[0].equals(data));
  });

  await faulted('lost chunk response: client resumes at the confirmed offset, no resend', async () => {
    await resetLog(emu);
    await request('POST', `${emu.base}/_emulator/fail?count=1&status=503&mode=after&method=PUT&path=upload_id%3D`);
    await bucket.file('retry/after.bin').save(data, opts);
    const puts = (await getLog(emu)).filter((e) => e.method === 'PUT');
    assert.deepEqual(puts.slice(0, 3).map((e) => [e.contentRange, e.status, e.responseRange]), [
      ['bytes 0-524287/*', 503, null],
      ['bytes */*', 308, 'bytes=0-524287'],
      ['bytes 524288-1048575/*', 308, 'bytes=0-1048575'],
    ]);
    assert.ok((await bucket.file('retry/after.bin').download())[0].equals(data));
  });
}

// ---------------------------------------------------------------- raw protocol suite

async function newSession(emu, bucket, name, headers = {}) {
  const res = await request('POST', `${emu.base}/upload/storage/v1/b/${bucket}/o?uploadType=resumable&name=${encodeURIComponent(name)}`,
    { headers });
  assert.equal(res.status, 200, res.text);
  return res.headers.location;
}

const put = (url, contentRange, body, headers = {}) =>
  request('PUT', url, { headers: { ...(contentRange ? { 'Content-Range': contentRange } : {}), ...headers }, body });

async function rawSuite(emu) {
  const full = crypto.randomBytes(2 * ALIGN + 1000);
  let session;

  await check('raw: initiate answers 200 with an absolute Location carrying upload_id', async () => {
    session = await newSession(emu, 'raw', 'resumable.bin');
    const url = new URL(session);
    assert.equal(url.origin, emu.base);
    assert.match(url.search, /[?&]upload_id=[A-Za-z0-9_-]+/);
  });

  await check('raw: status query with nothing persisted is 308 without Range', async () => {
    for (const cr of ['bytes */*', `bytes */${full.length}`]) {
      const res = await put(session, cr);
      assert.equal(res.status, 308);
      assert.equal(res.headers.range, undefined);
    }
  });

  await check('raw: 256 KiB chunk is 308 with Range bytes=0-262143, and so is the status query', async () => {
    const res = await put(session, `bytes 0-${ALIGN - 1}/*`, full.subarray(0, ALIGN));
    assert.equal(res.status, 308);
    assert.equal(res.headers.range, `bytes=0-${ALIGN - 1}`);
    for (const cr of ['bytes */*', `bytes */${full.length}`]) {
      assert.equal((await put(session, cr)).headers.range, `bytes=0-${ALIGN - 1}`);
    }
  });

  await check('raw: intermediate chunk not a multiple of 256 KiB is 400, session unchanged', async () => {
    for (const len of [1000, ALIGN + 1000]) {
      const res = await put(session, `bytes ${ALIGN}-${ALIGN + len - 1}/*`, full.subarray(ALIGN, ALIGN + len));
      assert.equal(res.status, 400);
      assert.match(res.text, /262144/);
    }
    assert.equal((await put(session, 'bytes */*')).headers.range, `bytes=0-${ALIGN - 1}`);
  });

  await check('raw: chunk starting past the persisted size is 503 text/plain', async () => {
    const res = await put(session, `bytes ${2 * ALIGN}-${3 * ALIGN - 1}/*`, crypto.randomBytes(ALIGN));
    assert.equal(res.status, 503);
    assert.match(res.headers['content-type'], /^text\/plain/);
    assert.match(res.text, /upload offset is 524288 byte\(s\), which exceeds already uploaded size of 262144/);
  });

  await check('raw: overlapping retransmission is accepted, persisted bytes skipped', async () => {
    const res = await put(session, `bytes 0-${2 * ALIGN - 1}/*`, full.subarray(0, 2 * ALIGN));
    assert.equal(res.status, 308);
    assert.equal(res.headers.range, `bytes=0-${2 * ALIGN - 1}`);
  });

  await check('raw: final chunk with a wrong X-Goog-Hash is 400 invalid, session kept', async () => {
    const res = await put(session, `bytes ${2 * ALIGN}-${full.length - 1}/${full.length}`, full.subarray(2 * ALIGN),
      { 'X-Goog-Hash': 'crc32c=AAAAAA==' });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.errors[0].reason, 'invalid');
    assert.match(res.json.error.message, /Provided CRC32C "AAAAAA==" doesn't match calculated CRC32C/);
    assert.equal((await put(session, 'bytes */*')).headers.range, `bytes=0-${2 * ALIGN - 1}`);
  });

  await check('raw: final chunk with matching X-Goog-Hash is 200 with the object', async () => {
    const want = hashes(full);
    const res = await put(session, `bytes ${2 * ALIGN}-${full.length - 1}/${full.length}`, full.subarray(2 * ALIGN),
      { 'X-Goog-Hash': `crc32c=${want.crc32c},md5=${want.md5Hash}` });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.size, String(full.length));
    assert.equal(res.json.crc32c, want.crc32c);
    assert.equal(res.json.md5Hash, want.md5Hash);
    const got = await request('GET', `${emu.base}/storage/v1/b/raw/o/resumable.bin?alt=media`);
    assert.ok(got.body.equals(full));
  });

  await check('raw: a finished session answers 200 with the object', async () => {
    const res = await put(session, 'bytes */*');
    assert.equal(res.status, 200);
    assert.equal(res.json.name, 'resumable.bin');
  });

  await check('raw: "bytes */N" with N equal to the persisted size completes the upload', async () => {
    const s = await newSession(emu, 'raw', 'aligned.bin');
    assert.equal((await put(s, `bytes 0-${2 * ALIGN - 1}/*`, full.subarray(0, 2 * ALIGN))).status, 308);
    const res = await put(s, `bytes */${2 * ALIGN}`);
    assert.equal(res.status, 200);
    assert.equal(res.json.size, String(2 * ALIGN));
  });

  await check('raw: malformed Content-Range is 400 and ends the session', async () => {
    for (const cr of ['bytes 0-10', 'bytes=0-9/10', '0-9/10', 'bytes 9-0/10', 'bytes 0-10/5', 'bytes a-b/*']) {
      const s = await newSession(emu, 'raw', 'malformed.bin');
      const res = await put(s, cr, Buffer.alloc(11));
      assert.equal(res.status, 400, cr);
      assert.equal(res.text, 'Failed to parse Content-Range header.');
      assert.equal((await put(s, 'bytes */*')).status, 404, `session should be gone after ${cr}`);
    }
  });

  await check('raw: unknown or hostile upload_id is 404', async () => {
    for (const id of ['AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', '..%2F..%2Fetc%2Fpasswd', '']) {
      const res = await put(`${emu.base}/upload/storage/v1/b/raw/o?uploadType=resumable&upload_id=${id}`, 'bytes */*');
      assert.equal(res.status, 404, id);
    }
  });

  await check('raw: DELETE on a session cancels it (499), then 404', async () => {
    const s = await newSession(emu, 'raw', 'cancelled.bin');
    assert.equal((await request('DELETE', s)).status, 499);
    assert.equal((await put(s, 'bytes */*')).status, 404);
    assert.equal((await request('DELETE', s)).status, 404);
  });

  await check('raw: X-Upload-Content-Length must match the total', async () => {
    const s = await newSession(emu, 'raw', 'declared.bin', { 'X-Upload-Content-Length': '10' });
    assert.equal((await put(s, 'bytes 0-10/11', Buffer.alloc(11))).status, 400);
    assert.equal((await put(s, 'bytes 0-9/10', Buffer.alloc(10))).status, 200);
  });

  const media = (name, q = '') =>
    `${emu.base}/upload/storage/v1/b/raw/o?uploadType=media&name=${encodeURIComponent(name)}${q}`;

  await check('raw: simple upload with ifGenerationMatch=0 is 200, then 412 conditionNotMet', async () => {
    assert.equal((await request('POST', media('once.txt', '&ifGenerationMatch=0'), { body: 'a' })).status, 200);
    const res = await request('POST', media('once.txt', '&ifGenerationMatch=0'), { body: 'b' });
    assert.equal(res.status, 412);
    assert.equal(res.json.error.errors[0].reason, 'conditionNotMet');
  });

  await check('raw: multipart upload checks the md5Hash given in its metadata', async () => {
    const boundary = 'xyzzy';
    const body = (md5) => Buffer.from(`--${boundary}\r\nContent-Type: application/json\r\n\r\n` +
      `${JSON.stringify({ name: 'mp.txt', md5Hash: md5 })}\r\n--${boundary}\r\nContent-Type: text/plain\r\n\r\n` +
      `hello\r\n--${boundary}--\r\n`);
    const url = `${emu.base}/upload/storage/v1/b/raw/o?uploadType=multipart`;
    const headers = { 'Content-Type': `multipart/related; boundary=${boundary}` };
    assert.equal((await request('POST', url, { headers, body: body('AAAAAAAAAAAAAAAAAAAAAA==') })).status, 400);
    const ok = await request('POST', url, { headers, body: body(hashes(Buffer.from('hello')).md5Hash) });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.contentType, 'text/plain');
  });

  await check('raw: media download: 206/416, x-goog-hash lines for the whole object, generation pin', async () => {
    const url = `${emu.base}/storage/v1/b/raw/o/resumable.bin?alt=media`;
    const want = hashes(full);
    const tail = await request('GET', url, { headers: { Range: 'bytes=-10' } });
    assert.equal(tail.status, 206);
    assert.equal(tail.headers['content-range'], `bytes ${full.length - 10}-${full.length - 1}/${full.length}`);
    assert.ok(tail.body.equals(full.subarray(full.length - 10)));
    assert.deepEqual(headerLines(tail, 'x-goog-hash'), [`crc32c=${want.crc32c}`, `md5=${want.md5Hash}`]);
    const from = await request('GET', url, { headers: { Range: `bytes=${full.length - 5}-` } });
    assert.equal(from.status, 206);
    assert.ok(from.body.equals(full.subarray(full.length - 5)));
    const mid = await request('GET', url, { headers: { Range: 'bytes=100-199' } });
    assert.ok(mid.body.equals(full.subarray(100, 200)));
    const bad = await request('GET', url, { headers: { Range: `bytes=${full.length}-` } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers['content-range'], `bytes */${full.length}`);
    const whole = await request('GET', url);
    assert.equal(whole.status, 200);
    const gen = whole.headers['x-goog-generation'];
    assert.match(gen, /^\d+$/);
    assert.equal((await request('GET', `${url}&generation=${gen}`)).status, 200);
    assert.equal((await request('GET', `${url}&generation=1`)).status, 404);
  });

  await check('raw: list leaves out empty items/prefixes; unknown bucket is 404', async () => {
    const res = await request('GET', `${emu.base}/storage/v1/b/raw/o?prefix=nothing-here/`);
    assert.deepEqual(res.json, { kind: 'storage#objects' });
    assert.equal((await request('GET', `${emu.base}/storage/v1/b/no-such-bucket/o`)).status, 404);
  });

  await check('raw: hostile object names stay inside DATA_DIR', async () => {
    for (const name of ['../../../escape-attempt', '/etc/escape-attempt', '..']) {
      const res = await request('POST', media(name), { body: 'x' });
      if (name === '..') {
        assert.equal(res.status, 400);
        continue;
      }
      assert.equal(res.status, 200);
      const got = await request('GET', `${emu.base}/storage/v1/b/raw/o/${encodeURIComponent(name)}?alt=media`);
      assert.equal(got.text, 'x');
    }
    assert.equal(fs.existsSync(path.join(emu.dir, '..', 'escape-attempt')), false);
    assert.equal(fs.existsSync('/etc/escape-attempt'), false);
  });
}

// ---------------------------------------------------------------- faults and log

async function faultAndLogSuite(emu, logFile) {
  await check('fault mode=after: the chunk is persisted though the client saw 503', async () => {
    const s = await newSession(emu, 'raw', 'lost-response.bin');
    await request('POST', `${emu.base}/_emulator/fail?mode=after&status=503&method=PUT`);
    const res = await put(s, `bytes 0-${ALIGN - 1}/*`, crypto.randomBytes(ALIGN));
    assert.equal(res.status, 503);
    assert.equal(res.json.error.errors[0].reason, 'backendError');
    assert.equal((await put(s, 'bytes */*')).headers.range, `bytes=0-${ALIGN - 1}`);
  });

  await check('fault mode=reset&bytes=N: connection cut, 256 KiB-aligned prefix kept', async () => {
    const s = await newSession(emu, 'raw', 'cut.bin');
    await request('POST', `${emu.base}/_emulator/fail?mode=reset&bytes=300000&method=PUT`);
    await assert.rejects(put(s, `bytes 0-${2 * ALIGN - 1}/*`, crypto.randomBytes(2 * ALIGN)));
    assert.equal((await put(s, 'bytes */*')).headers.range, `bytes=0-${ALIGN - 1}`);
  });

  await check('fault rules: count, status, method and path filters', async () => {
    const rule = await request('POST', `${emu.base}/_emulator/fail?count=2&status=429&method=GET&path=alt%3Dmedia`);
    assert.equal(rule.status, 200);
    assert.equal(rule.json.remaining, 2);
    const url = `${emu.base}/storage/v1/b/raw/o/once.txt`;
    assert.equal((await request('GET', url)).status, 200, 'metadata GET does not match path');
    assert.equal((await request('GET', `${url}?alt=media`)).status, 429);
    assert.equal((await request('GET', `${url}?alt=media`)).json.error.errors[0].reason, 'rateLimitExceeded');
    assert.equal((await request('GET', `${url}?alt=media`)).status, 200);
    assert.deepEqual((await admin(emu, 'GET', 'fail')).json, []);
    await request('POST', `${emu.base}/_emulator/fail?count=5`);
    assert.equal((await admin(emu, 'DELETE', 'fail')).status, 204);
    assert.equal((await request('GET', url)).status, 200);
  });

  await check('log: one record per request with the documented fields; --log file matches', async () => {
    await resetLog(emu);
    const s = await newSession(emu, 'raw', 'logged.bin');
    await put(s, `bytes 0-${ALIGN - 1}/*`, crypto.randomBytes(ALIGN));
    const log = await getLog(emu);
    assert.equal(log.length, 2);
    const [init, chunk] = log;
    assert.equal(init.method, 'POST');
    assert.match(init.path, /^\/upload\/storage\/v1\/b\/raw\/o\?uploadType=resumable&name=logged\.bin$/);
    assert.equal(init.status, 200);
    assert.deepEqual(Object.keys(chunk).sort(), ['bytesReceived', 'contentRange', 'durationMs', 'fault', 'method', 'path',
      'range', 'responseRange', 'seq', 'status', 'time'].sort());
    assert.equal(chunk.contentRange, `bytes 0-${ALIGN - 1}/*`);
    assert.equal(chunk.bytesReceived, ALIGN);
    assert.equal(chunk.status, 308);
    assert.equal(chunk.responseRange, `bytes=0-${ALIGN - 1}`);
    assert.ok(chunk.seq > init.seq && !Number.isNaN(Date.parse(chunk.time)));
    const lines = fs.readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.slice(-2), log);
  });
}

// ---------------------------------------------------------------- auth

async function authSuite(root) {
  const tokenFile = path.join(root, 'token');
  fs.writeFileSync(tokenFile, 'rotating-a\n');
  const emu = await startEmulator(path.join(root, 'auth-data'),
    ['--require-token', 'fixed-token', '--token-file', tokenFile, '--bucket', 'secure']);
  const url = `${emu.base}/storage/v1/b/secure/o`;
  const bearer = (tok) => ({ headers: { Authorization: `Bearer ${tok}` } });

  await check('auth: no Authorization is 401 "required"', async () => {
    const res = await request('GET', url);
    assert.equal(res.status, 401);
    assert.equal(res.json.error.errors[0].reason, 'required');
  });

  await check('auth: wrong token is 401 "authError"', async () => {
    const res = await request('GET', url, bearer('nope'));
    assert.equal(res.status, 401);
    assert.equal(res.json.error.errors[0].reason, 'authError');
  });

  await check('auth: --require-token and --token-file tokens are accepted; file re-read per request', async () => {
    assert.equal((await request('GET', url, bearer('fixed-token'))).status, 200);
    assert.equal((await request('GET', url, bearer('rotating-a'))).status, 200);
    fs.writeFileSync(tokenFile, 'rotating-b\n');
    assert.equal((await request('GET', url, bearer('rotating-a'))).status, 401);
    assert.equal((await request('GET', url, bearer('rotating-b'))).status, 200);
  });

  await check('auth: session URI requests need no token; admin endpoints neither', async () => {
    const res = await request('POST', `${emu.base}/upload/storage/v1/b/secure/o?uploadType=resumable&name=s.bin`,
      bearer('fixed-token'));
    assert.equal(res.status, 200);
    assert.equal((await put(res.headers.location, 'bytes 0-2/3', Buffer.from('abc'))).status, 200);
    assert.equal((await admin(emu, 'GET', 'log')).status, 200);
  });
  await emu.stop();
}

// ---------------------------------------------------------------- restart

async function restartSuite(root) {
  const dir = path.join(root, 'restart-data');
  let emu = await startEmulator(dir);
  const data = crypto.randomBytes(ALIGN + 500);
  const obj = crypto.randomBytes(1234);
  await request('POST', `${emu.base}/upload/storage/v1/b/keep/o?uploadType=media&name=kept.bin`, { body: obj });
  const gen = (await request('GET', `${emu.base}/storage/v1/b/keep/o/kept.bin`)).json.generation;
  const session = await newSession(emu, 'keep', 'unfinished.bin');
  await put(session, `bytes 0-${ALIGN - 1}/*`, data.subarray(0, ALIGN));
  await emu.stop();
  emu = await startEmulator(dir);
  // Session URIs embed the port, which changes across this restart.
  const moved = session.replace(/^http:\/\/[^/]+/, emu.base);

  await check('restart: objects survive with the same generation and content', async () => {
    const res = await request('GET', `${emu.base}/storage/v1/b/keep/o/kept.bin?alt=media`);
    assert.ok(res.body.equals(obj));
    assert.equal(res.headers['x-goog-generation'], gen);
  });

  await check('restart: an unfinished resumable session resumes at its persisted offset', async () => {
    const status = await put(moved, 'bytes */*');
    assert.equal(status.status, 308);
    assert.equal(status.headers.range, `bytes=0-${ALIGN - 1}`);
    const res = await put(moved, `bytes ${ALIGN}-${data.length - 1}/${data.length}`, data.subarray(ALIGN));
    assert.equal(res.status, 200);
    const got = await request('GET', `${emu.base}/storage/v1/b/keep/o/unfinished.bin?alt=media`);
    assert.ok(got.body.equals(data));
  });
  await emu.stop();
}

// ---------------------------------------------------------------- main

async function main() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-emulator-validate-'));
  const logFile = path.join(root, 'requests.jsonl');
  try {
    const emu = await startEmulator(path.join(root, 'data'), ['--log', logFile, '--bucket', 'raw']);

    await check('--bucket pre-creates a bucket', async () => {
      const res = await request('GET', `${emu.base}/storage/v1/b/raw`);
      assert.equal(res.status, 200);
      assert.equal(res.json.kind, 'storage#bucket');
    });

    await clientSuite('apiEndpoint', new Storage({ apiEndpoint: emu.base, projectId: 'test', retryOptions: FAST_RETRY }), emu);

    process.env.STORAGE_EMULATOR_HOST = emu.base;
    try {
      await clientSuite('STORAGE_EMULATOR_HOST', new Storage({ projectId: 'test', retryOptions: FAST_RETRY }), emu);
      await check('[STORAGE_EMULATOR_HOST] JSON calls arrive without the /storage/v1 prefix', async () => {
        await resetLog(emu);
        await new Storage({ projectId: 'test' }).bucket('validate-env').getFiles({ maxResults: 1, autoPaginate: false });
        const [entry] = await getLog(emu);
        assert.match(entry.path, /^\/b\/validate-env\/o\?/);
      });
    } finally {
      delete process.env.STORAGE_EMULATOR_HOST;
    }

    await clientRetrySuite(new Storage({ apiEndpoint: emu.base, projectId: 'test', retryOptions: FAST_RETRY }), emu);
    await rawSuite(emu);
    await faultAndLogSuite(emu, logFile);
    await emu.stop();
    await authSuite(root);
    await restartSuite(root);
  } catch (err) {
    failed += 1;
    console.log(`FAIL harness: ${(err && err.stack) || err}`);
  } finally {
    await Promise.all(emulators.map((e) => e.stop()));
    fs.rmSync(root, { recursive: true, force: true });
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}

main();
