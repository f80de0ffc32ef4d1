#!/usr/bin/env node
// Google Cloud Storage JSON-API emulator for drgw's tests.
//
// Plain Node (no npm runtime dependencies). It aims to answer the way the
// real service does, including its error statuses and bodies, so that drgw's
// retry and resume logic is exercised against realistic behaviour. README.md
// lists what is covered and what is knowingly not emulated.
//
//   node server.js --port 0 --dir DATA_DIR [--log FILE] [--bucket NAME]...
//                  [--require-token TOKEN] [--token-file FILE]
//
// Once ready it prints exactly one line to stdout:
//   listening http://127.0.0.1:PORT
// Everything else goes to stderr.
//
// On-disk layout under DATA_DIR (object and bucket names are stored by hash,
// so no name can address a path outside DATA_DIR):
//   buckets/<sha256(bucket)>/bucket.json
//   buckets/<sha256(bucket)>/objects/<sha256(name)>.json           metadata
//   buckets/<sha256(bucket)>/objects/<sha256(name)>.<gen>.data     content
//   sessions/<upload_id>.json, sessions/<upload_id>.data            resumable uploads
//   tmp/                                                            in-flight simple uploads
'use strict';

const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { pipeline } = require('stream/promises');

// GCS requires every resumable chunk except the last to be a multiple of this.
const CHUNK_ALIGN = 256 * 1024;
const MAX_JSON_BODY = 1024 * 1024;
const MAX_LIST_RESULTS = 1000;

// ---------------------------------------------------------------- CRC32C

// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8 so that
// hashing multi-MiB uploads stays cheap. GCS reports it as base64 of the
// big-endian 32-bit value.
const CRC_TABLES = (() => {
  const tables = [new Uint32Array(256)];
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    tables[0][n] = c >>> 0;
  }
  for (let t = 1; t < 8; t++) {
    tables[t] = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      const prev = tables[t - 1][n];
      tables[t][n] = (prev >>> 8) ^ tables[0][prev & 0xff];
    }
  }
  return tables;
})();

class Crc32c {
  constructor() {
    this.reg = 0xffffffff;
  }

  update(buf) {
    const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC_TABLES;
    let c = this.reg;
    let i = 0;
    const n = buf.length;
    while (n - i >= 8) {
      c ^= buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24);
      const hi = buf[i + 4] | (buf[i + 5] << 8) | (buf[i + 6] << 16) | (buf[i + 7] << 24);
      c = t7[c & 0xff] ^ t6[(c >>> 8) & 0xff] ^ t5[(c >>> 16) & 0xff] ^ t4[c >>> 24] ^
        t3[hi & 0xff] ^ t2[(hi >>> 8) & 0xff] ^ t1[(hi >>> 16) & 0xff] ^ t0[hi >>> 24];
      i += 8;
    }
    while (i < n) c = t0[(c ^ buf[i++]) & 0xff] ^ (c >>> 8);
    this.reg = c >>> 0;
  }

  base64() {
    const out = Buffer.alloc(4);
    out.writeUInt32BE((this.reg ^ 0xffffffff) >>> 0);
    return out.toString('base64');
  }
}

// MD5 + CRC32C + size of a byte stream, in the encodings GCS reports.
class ContentHasher {
  constructor() {
    this.md5 = crypto.createHash('md5');
    this.crc = new Crc32c();
    this.size = 0;
  }

  update(buf) {
    this.md5.update(buf);
    this.crc.update(buf);
    this.size += buf.length;
  }

  digest() {
    return { md5Hash: this.md5.digest('base64'), crc32c: this.crc.base64(), size: this.size };
  }
}

async function hashFile(file) {
  const hasher = new ContentHasher();
  for await (const chunk of fs.createReadStream(file)) hasher.update(chunk);
  return hasher.digest();
}

// ---------------------------------------------------------------- errors

class ApiError extends Error {
  // plain: GCS's upload front end answers some session errors as text/plain
  // rather than JSON; clients (e.g. java-storage) sniff that, so keep it.
  // extra: additional fields for the errors[0] entry of the JSON body.
  constructor(status, reason, message, { plain = false, headers = {}, extra = {} } = {}) {
    super(message);
    this.status = status;
    this.reason = reason;
    this.plain = plain;
    this.headers = headers;
    this.extra = extra;
  }
}

const errors = {
  invalid: (msg) => new ApiError(400, 'invalid', msg),
  required: (msg) => new ApiError(400, 'required', msg),
  noBucket: () => new ApiError(404, 'notFound', 'The specified bucket does not exist.'),
  noObject: (bucket, name) => new ApiError(404, 'notFound', `No such object: ${bucket}/${name}`),
  noSession: () => new ApiError(404, 'notFound', 'No such upload session.'),
  conditionNotMet: () =>
    new ApiError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.'),
};

function errorBody(status, reason, message, extra = {}) {
  return JSON.stringify({
    error: { code: status, message, errors: [{ message, domain: 'global', reason, ...extra }] },
  });
}

// Reasons GCS uses for these statuses; used for injected faults.
const FAULT_REASONS = {
  400: 'invalid', 401: 'authError', 403: 'forbidden', 404: 'notFound', 408: 'requestTimeout',
  409: 'conflict', 410: 'gone', 412: 'conditionNotMet', 429: 'rateLimitExceeded',
  500: 'internalError', 502: 'badGateway', 503: 'backendError', 504: 'gatewayTimeout',
};

// ---------------------------------------------------------------- small helpers

const sha256hex = (s) => crypto.createHash('sha256').update(s, 'utf8').digest('hex');
const byteCompare = (a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

// The first index of sorted (byte order) whose name is not below key.
function lowerBound(sorted, key) {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (byteCompare(sorted[mid], key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function writeJsonAtomic(file, value) {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value));
  fs.renameSync(tmp, file);
}

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if (e.code === 'ENOENT') return null;
    throw e;
  }
}

function unlinkQuiet(file) {
  try {
    fs.unlinkSync(file);
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
  }
}

function validateBucketName(name) {
  // The GCS rules, simplified: 3-222 chars of [a-z0-9._-], alphanumeric ends.
  if (!/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(name)) {
    throw errors.invalid(`Invalid bucket name: '${name}'`);
  }
}

function validateObjectName(name) {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes > 1024 || /[\r\n]/.test(name) || name === '.' || name === '..') {
    throw errors.invalid('The object name is invalid.');
  }
}

// Generation-style precondition query parameters, compared as integers.
const PRECONDITIONS = ['ifGenerationMatch', 'ifGenerationNotMatch', 'ifMetagenerationMatch', 'ifMetagenerationNotMatch'];

function pickPreconditions(query) {
  const out = {};
  for (const key of PRECONDITIONS) {
    const v = query.get(key);
    if (v === null) continue;
    if (!/^\d+$/.test(v)) throw errors.invalid(`Invalid value for ${key}: ${v}`);
    out[key] = BigInt(v).toString();
  }
  return out;
}

// rec is null when the object does not exist (its generation then counts as 0).
// A failed *NotMatch on a read is "not modified" rather than a failure.
function checkPreconditions(conds, rec, isRead) {
  const gen = rec ? rec.generation : '0';
  const notModified = () => (isRead ? new ApiError(304, 'notModified', '') : errors.conditionNotMet());
  if (conds.ifGenerationMatch !== undefined && conds.ifGenerationMatch !== gen) throw errors.conditionNotMet();
  if (conds.ifGenerationNotMatch !== undefined && conds.ifGenerationNotMatch === gen) throw notModified();
  if (conds.ifMetagenerationMatch !== undefined && (!rec || conds.ifMetagenerationMatch !== rec.metageneration)) {
    throw errors.conditionNotMet();
  }
  if (conds.ifMetagenerationNotMatch !== undefined && rec && conds.ifMetagenerationNotMatch === rec.metageneration) {
    throw notModified();
  }
}

// Holds and unexpired retention forbid deleting or replacing an object.
function assertMutable(rec) {
  if (!rec) return;
  const id = `${rec.bucket}/${rec.name}`;
  for (const [field, label] of [['temporaryHold', 'Temporary'], ['eventBasedHold', 'Event-Based']]) {
    if (rec[field]) {
      throw new ApiError(403, 'forbidden',
        `Object '${id}' is under active ${label} hold and cannot be deleted, overwritten or archived until hold is removed.`);
    }
  }
  const until = rec.retention && rec.retention.retainUntilTime;
  if (until && Date.parse(until) > Date.now()) {
    throw new ApiError(403, 'forbidden',
      `Object '${id}' is subject to object retention and cannot be deleted, overwritten or archived until ${until}.`);
  }
}

// Object resource fields a client may set at upload time or via PATCH.
const USER_FIELDS = ['contentType', 'contentEncoding', 'contentDisposition', 'contentLanguage', 'cacheControl',
  'customTime', 'metadata', 'temporaryHold', 'eventBasedHold', 'retention'];

function pickUserFields(src) {
  const out = {};
  for (const key of USER_FIELDS) {
    if (src[key] !== undefined && src[key] !== null) out[key] = src[key];
  }
  return out;
}

// Custom metadata may also arrive as x-goog-meta-* headers on the final request.
function headerMetadata(headers) {
  const out = {};
  for (const [k, v] of Object.entries(headers)) {
    if (k.startsWith('x-goog-meta-')) out[k.slice('x-goog-meta-'.length)] = String(v);
  }
  return out;
}

// "crc32c=AAAA==,md5=BBBB==" (possibly several headers, joined by Node).
function parseGoogHash(value) {
  const out = {};
  if (!value) return out;
  for (const part of String(value).split(',')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim().toLowerCase()] = part.slice(i + 1).trim();
  }
  return out;
}

function verifyHashes(expected, actual) {
  if (expected.crc32c && expected.crc32c !== actual.crc32c) {
    throw errors.invalid(`Provided CRC32C "${expected.crc32c}" doesn't match calculated CRC32C "${actual.crc32c}".`);
  }
  if (expected.md5 && expected.md5 !== actual.md5Hash) {
    throw errors.invalid(`Provided MD5 hash "${expected.md5}" doesn't match calculated MD5 hash "${actual.md5Hash}".`);
  }
}

// ---------------------------------------------------------------- storage

class Store {
  constructor(dir) {
    this.dir = path.resolve(dir);
    this.bucketsDir = path.join(this.dir, 'buckets');
    this.sessionsDir = path.join(this.dir, 'sessions');
    this.tmpDir = path.join(this.dir, 'tmp');
    // Leftovers of uploads that were in flight when a previous run died.
    fs.rmSync(this.tmpDir, { recursive: true, force: true });
    for (const d of [this.bucketsDir, this.sessionsDir, this.tmpDir]) fs.mkdirSync(d, { recursive: true });
    this.buckets = new Map(); // bucket name -> { rec, dir, objects: Map(name -> rec), sorted }
    this.lastGeneration = 0n;
    this.load();
  }

  load() {
    for (const entry of fs.readdirSync(this.bucketsDir)) {
      const dir = path.join(this.bucketsDir, entry);
      const rec = readJson(path.join(dir, 'bucket.json'));
      if (!rec) continue;
      const bucket = { rec, dir, objects: new Map(), sorted: null };
      const objDir = path.join(dir, 'objects');
      fs.mkdirSync(objDir, { recursive: true });
      const live = new Set();
      for (const file of fs.readdirSync(objDir)) {
        if (!file.endsWith('.json')) continue;
        const obj = readJson(path.join(objDir, file));
        if (!obj) continue;
        bucket.objects.set(obj.name, obj);
        live.add(path.basename(this.objectDataPath(bucket, obj.name, obj.generation)));
        if (BigInt(obj.generation) > this.lastGeneration) this.lastGeneration = BigInt(obj.generation);
      }
      // Content of generations replaced while a previous run was crashing.
      for (const file of fs.readdirSync(objDir)) {
        if (file.endsWith('.data') && !live.has(file)) unlinkQuiet(path.join(objDir, file));
      }
      this.buckets.set(rec.name, bucket);
    }
  }

  // Microsecond timestamps like GCS, forced strictly increasing.
  nextGeneration() {
    let gen = BigInt(Date.now()) * 1000n;
    if (gen <= this.lastGeneration) gen = this.lastGeneration + 1n;
    this.lastGeneration = gen;
    return gen.toString();
  }

  getBucket(name) {
    const bucket = this.buckets.get(name);
    if (!bucket) throw errors.noBucket();
    return bucket;
  }

  createBucket(name, fields = {}) {
    validateBucketName(name);
    if (this.buckets.has(name)) {
      throw new ApiError(409, 'conflict',
        'Your previous request to create the named bucket succeeded and you already own it.');
    }
    const now = new Date().toISOString();
    const rec = {
      name, location: fields.location || 'US', storageClass: fields.storageClass || 'STANDARD',
      timeCreated: now, updated: now,
    };
    const dir = path.join(this.bucketsDir, sha256hex(name));
    fs.mkdirSync(path.join(dir, 'objects'), { recursive: true });
    writeJsonAtomic(path.join(dir, 'bucket.json'), rec);
    const bucket = { rec, dir, objects: new Map(), sorted: null };
    this.buckets.set(name, bucket);
    return bucket;
  }

  // Uploads create their bucket on first use.
  ensureBucket(name) {
    return this.buckets.get(name) || this.createBucket(name);
  }

  deleteBucket(name) {
    const bucket = this.getBucket(name);
    if (bucket.objects.size > 0) throw new ApiError(409, 'conflict', 'The bucket you tried to delete is not empty.');
    fs.rmSync(bucket.dir, { recursive: true, force: true });
    this.buckets.delete(name);
  }

  objectMetaPath(bucket, name) {
    return path.join(bucket.dir, 'objects', `${sha256hex(name)}.json`);
  }

  objectDataPath(bucket, name, generation) {
    return path.join(bucket.dir, 'objects', `${sha256hex(name)}.${generation}.data`);
  }

  getObject(bucketName, name) {
    const rec = this.getBucket(bucketName).objects.get(name);
    if (!rec) throw errors.noObject(bucketName, name);
    return rec;
  }

  // Opens the content of rec. Callers look rec up and open it in the same
  // tick, so a concurrent replacement cannot pair old metadata with new data.
  openObjectData(rec) {
    return fs.openSync(this.objectDataPath(this.getBucket(rec.bucket), rec.name, rec.generation), 'r');
  }

  // Makes srcData the new live generation of bucket/name. Everything from the
  // precondition check to the index update is synchronous, so two racing
  // ifGenerationMatch=0 uploads cannot both win.
  commitObject(bucketName, name, fields, srcData, conds) {
    const bucket = this.ensureBucket(bucketName);
    const old = bucket.objects.get(name) || null;
    checkPreconditions(conds, old, false);
    assertMutable(old);
    const generation = this.nextGeneration();
    const now = new Date().toISOString();
    const rec = {
      ...fields, name, bucket: bucketName, generation, metageneration: '1',
      contentType: fields.contentType || 'application/octet-stream',
      size: String(fields.size), timeCreated: now, updated: now,
    };
    fs.renameSync(srcData, this.objectDataPath(bucket, name, generation));
    writeJsonAtomic(this.objectMetaPath(bucket, name), rec);
    bucket.objects.set(name, rec);
    if (old) {
      unlinkQuiet(this.objectDataPath(bucket, name, old.generation));
    } else {
      bucket.sorted = null;
    }
    return rec;
  }

  updateObject(rec) {
    const bucket = this.getBucket(rec.bucket);
    writeJsonAtomic(this.objectMetaPath(bucket, rec.name), rec);
    bucket.objects.set(rec.name, rec);
  }

  deleteObject(rec) {
    const bucket = this.getBucket(rec.bucket);
    unlinkQuiet(this.objectMetaPath(bucket, rec.name));
    unlinkQuiet(this.objectDataPath(bucket, rec.name, rec.generation));
    bucket.objects.delete(rec.name);
    bucket.sorted = null;
  }

  // Object names in UTF-8 byte order, the order GCS lists in.
  sortedNames(bucket) {
    if (!bucket.sorted) bucket.sorted = [...bucket.objects.keys()].sort(byteCompare);
    return bucket.sorted;
  }

  tmpPath() {
    return path.join(this.tmpDir, crypto.randomBytes(12).toString('hex'));
  }

  // ---- resumable sessions

  sessionPaths(id) {
    // upload_id comes from the client: only our own alphabet may touch the disk.
    if (!/^[A-Za-z0-9_-]{16,128}$/.test(id)) return null;
    return { meta: path.join(this.sessionsDir, `${id}.json`), data: path.join(this.sessionsDir, `${id}.data`) };
  }

  createSession(fields) {
    const id = crypto.randomBytes(24).toString('base64url');
    const session = { id, ...fields, persisted: 0, state: 'active', created: new Date().toISOString() };
    fs.writeFileSync(this.sessionPaths(id).data, '');
    this.saveSession(session);
    return session;
  }

  loadSession(id) {
    const p = this.sessionPaths(id);
    const session = p && readJson(p.meta);
    if (!session) throw errors.noSession();
    return session;
  }

  saveSession(session) {
    writeJsonAtomic(this.sessionPaths(session.id).meta, session);
  }

  deleteSession(id) {
    const p = this.sessionPaths(id);
    unlinkQuiet(p.meta);
    unlinkQuiet(p.data);
  }
}

// ---------------------------------------------------------------- resources

function baseUrl(req) {
  return `http://${req.headers.host || `${req.socket.localAddress}:${req.socket.localPort}`}`;
}

function objectResource(rec, base) {
  const enc = encodeURIComponent(rec.name);
  return {
    kind: 'storage#object',
    id: `${rec.bucket}/${rec.name}/${rec.generation}`,
    selfLink: `${base}/storage/v1/b/${rec.bucket}/o/${enc}`,
    mediaLink: `${base}/download/storage/v1/b/${rec.bucket}/o/${enc}?generation=${rec.generation}&alt=media`,
    storageClass: 'STANDARD',
    etag: Buffer.from(`${rec.generation}/${rec.metageneration}`).toString('base64'),
    timeStorageClassUpdated: rec.timeCreated,
    ...rec,
  };
}

function bucketResource(rec, base) {
  return {
    kind: 'storage#bucket',
    id: rec.name,
    selfLink: `${base}/storage/v1/b/${rec.name}`,
    projectNumber: '0',
    metageneration: '1',
    etag: 'CAE=',
    ...rec,
  };
}

// ---------------------------------------------------------------- request context

// Per-request state: parsed URL, the log record, and an injected fault.
class Ctx {
  constructor(req, res) {
    this.req = req;
    this.res = res;
    this.log = null;
    this.fault = null;
    this.aborted = false;
    const q = req.url.indexOf('?');
    // The raw path is split by hand: WHATWG URL parsing would resolve
    // %2E%2E segments and so alter object names.
    this.rawPath = q < 0 ? req.url : req.url.slice(0, q);
    this.query = new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1));
    this.base = baseUrl(req);
  }

  // Every body read goes through here, one awaited chunk at a time, so that
  // received bytes are counted exactly and a "reset after N bytes" fault
  // cuts the connection with exactly N bytes handed to onChunk. Sets
  // this.aborted when the connection died mid-body.
  async receive(onChunk) {
    const resetAt = this.fault && this.fault.mode === 'reset' ? this.fault.bytes : Infinity;
    let sinkError = null;
    try {
      // destroyOnReturn:false: when onChunk fails, the connection must
      // survive for the error response.
      for await (const chunk of this.req.iterator({ destroyOnReturn: false })) {
        const buf = chunk.subarray(0, resetAt - this.log.bytesReceived);
        this.log.bytesReceived += buf.length;
        try {
          await onChunk(buf);
        } catch (err) {
          sinkError = err;
          break;
        }
        if (this.log.bytesReceived >= resetAt) {
          this.req.socket.destroy();
          this.aborted = true;
          break;
        }
      }
    } catch (err) {
      this.aborted = true; // the client went away mid-body
      throw err;
    }
    if (this.aborted) throw new Error('connection reset by injected fault');
    if (sinkError) {
      this.req.resume(); // discard the unread rest so the connection stays usable
      throw sinkError;
    }
  }

  async readAll(limit = MAX_JSON_BODY) {
    const parts = [];
    let size = 0;
    await this.receive((buf) => {
      size += buf.length;
      if (size > limit) throw errors.invalid('Request body too large.');
      parts.push(buf);
    });
    return Buffer.concat(parts);
  }

  async readJson() {
    const body = await this.readAll();
    if (body.length === 0) return {};
    try {
      const value = JSON.parse(body.toString('utf8'));
      if (value && typeof value === 'object' && !Array.isArray(value)) return value;
    } catch {
      // fall through
    }
    throw new ApiError(400, 'parseError', 'Parse Error');
  }

  // A fault in "after" mode lets the request take effect, then replaces
  // the response: the client sees a failure although the server changed state.
  faultAfter() {
    if (!this.fault || this.fault.mode !== 'after') return false;
    sendFault(this, this.fault);
    return true;
  }

  send(status, headers = {}, body = '') {
    if (this.faultAfter()) return;
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
    if (STATUS_TEXT[status]) this.res.statusMessage = STATUS_TEXT[status];
    if (this.log) this.log.responseRange = headers.Range || null;
    // 204 and 304 carry no body and, per RFC 9110, no Content-Length either.
    this.res.writeHead(status, status === 204 || status === 304 ? headers : { ...headers, 'Content-Length': buf.length });
    this.res.end(buf);
  }

  json(status, value, headers = {}) {
    // Partial responses, as GCS sends them for ?fields= (clients ask for
    // a few members of each listed object to keep pages small).
    const fields = this.query.get('fields');
    if (fields !== null && status < 300) value = pickFields(value, parseFields(fields));
    this.send(status, { ...headers, 'Content-Type': 'application/json; charset=UTF-8' }, JSON.stringify(value));
  }

  error(err) {
    if (err.status === 304) return this.send(304);
    if (err.plain) {
      return this.send(err.status, { ...err.headers, 'Content-Type': 'text/plain; charset=utf-8' }, err.message);
    }
    this.send(err.status, { ...err.headers, 'Content-Type': 'application/json; charset=UTF-8' },
      errorBody(err.status, err.reason, err.message, err.extra));
  }
}

// Reason phrases GCS uses where Node has none or a different one.
const STATUS_TEXT = { 308: 'Resume Incomplete', 499: 'Client Closed Request' };

function sendFault(ctx, fault) {
  const reason = FAULT_REASONS[fault.status] || 'backendError';
  const body = errorBody(fault.status, reason, `Injected fault: ${fault.status} ${http.STATUS_CODES[fault.status] || ''}`.trim());
  ctx.res.writeHead(fault.status, { 'Content-Type': 'application/json; charset=UTF-8', 'Content-Length': Buffer.byteLength(body) });
  ctx.res.end(body);
}

// ---------------------------------------------------------------- object handlers

async function handleInsert(ctx, store, bucketName) {
  const uploadType = ctx.query.get('uploadType');
  validateBucketName(bucketName);
  if (uploadType === 'media') return uploadMedia(ctx, store, bucketName);
  if (uploadType === 'multipart') return uploadMultipart(ctx, store, bucketName);
  if (uploadType === 'resumable') return initiateResumable(ctx, store, bucketName);
  throw errors.invalid(`Invalid upload type: ${uploadType === null ? '(none)' : uploadType}`);
}

async function uploadMedia(ctx, store, bucketName) {
  const name = ctx.query.get('name');
  if (name === null) throw errors.required('Required parameter: name');
  validateObjectName(name);
  const conds = pickPreconditions(ctx.query);
  const tmp = store.tmpPath();
  const hasher = new ContentHasher();
  try {
    const fh = await fs.promises.open(tmp, 'w');
    try {
      await ctx.receive(async (buf) => {
        hasher.update(buf);
        await fh.write(buf);
      });
    } finally {
      await fh.close();
    }
    const digest = hasher.digest();
    verifyHashes(parseGoogHash(ctx.req.headers['x-goog-hash']), digest);
    const rec = store.commitObject(bucketName, name, { contentType: ctx.req.headers['content-type'], ...digest }, tmp, conds);
    ctx.json(200, objectResource(rec, ctx.base));
  } finally {
    unlinkQuiet(tmp);
  }
}

function nonEmpty(obj) {
  return Object.keys(obj).length ? obj : undefined;
}

// multipart/related: a JSON metadata part, then the media part.
function parseMultipartRelated(body, contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType || '');
  if (!/^multipart\/related/i.test(contentType || '') || !m) {
    throw errors.invalid('Multipart upload requires a multipart/related body with a boundary.');
  }
  const delim = Buffer.from(`--${m[1] || m[2]}`);
  const parts = [];
  let pos = body.indexOf(delim);
  while (pos >= 0) {
    let start = pos + delim.length;
    if (body.slice(start, start + 2).toString() === '--') break;
    if (body.slice(start, start + 2).toString() === '\r\n') start += 2;
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delim]), start);
    if (next < 0) break;
    const part = body.slice(start, next);
    const sep = part.indexOf('\r\n\r\n');
    if (sep < 0) throw errors.invalid('Malformed multipart body.');
    const headers = {};
    for (const line of part.slice(0, sep).toString('utf8').split('\r\n')) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    parts.push({ headers, body: part.slice(sep + 4) });
    pos = next + 2;
  }
  if (parts.length !== 2) throw errors.invalid('Multipart upload must have exactly a metadata part and a media part.');
  let metadata;
  try {
    metadata = JSON.parse(parts[0].body.toString('utf8'));
  } catch {
    throw new ApiError(400, 'parseError', 'Parse Error');
  }
  return { metadata, media: parts[1].body, mediaType: parts[1].headers['content-type'] };
}

// The object name may be given as ?name= or in the JSON metadata, not both differently.
function resolveName(query, metadata) {
  const fromQuery = query.get('name');
  if (fromQuery !== null && metadata.name !== undefined && metadata.name !== fromQuery) {
    throw errors.invalid(`Value '${metadata.name}' in content does not agree with value '${fromQuery}'.`);
  }
  const name = fromQuery !== null ? fromQuery : metadata.name;
  if (name === undefined || name === null) throw errors.required('Required parameter: name');
  validateObjectName(String(name));
  return String(name);
}

async function uploadMultipart(ctx, store, bucketName) {
  const conds = pickPreconditions(ctx.query);
  // Multipart is meant for small objects, so buffering the body is fine.
  const body = await ctx.readAll(Number.MAX_SAFE_INTEGER);
  const { metadata, media, mediaType } = parseMultipartRelated(body, ctx.req.headers['content-type']);
  const name = resolveName(ctx.query, metadata);
  const hasher = new ContentHasher();
  hasher.update(media);
  const digest = hasher.digest();
  verifyHashes({ crc32c: metadata.crc32c, md5: metadata.md5Hash }, digest);
  verifyHashes(parseGoogHash(ctx.req.headers['x-goog-hash']), digest);
  const tmp = store.tmpPath();
  try {
    fs.writeFileSync(tmp, media);
    const fields = { ...pickUserFields(metadata), ...digest };
    fields.contentType = metadata.contentType || mediaType;
    const rec = store.commitObject(bucketName, name, fields, tmp, conds);
    ctx.json(200, objectResource(rec, ctx.base));
  } finally {
    unlinkQuiet(tmp);
  }
}

async function initiateResumable(ctx, store, bucketName) {
  const metadata = await ctx.readJson();
  const name = resolveName(ctx.query, metadata);
  const conds = pickPreconditions(ctx.query);
  let declaredLength = null;
  const declared = ctx.req.headers['x-upload-content-length'];
  if (declared !== undefined) {
    if (!/^\d+$/.test(declared)) throw errors.invalid('Invalid X-Upload-Content-Length header.');
    declaredLength = Number(declared);
  }
  // Checked again when the upload completes; failing early saves the transfer.
  const bucket = store.ensureBucket(bucketName);
  checkPreconditions(conds, bucket.objects.get(name) || null, false);
  const fields = pickUserFields(metadata);
  fields.contentType = metadata.contentType || ctx.req.headers['x-upload-content-type'];
  const session = store.createSession({
    bucket: bucketName, name, fields, conds, declaredLength,
    expect: { crc32c: metadata.crc32c, md5: metadata.md5Hash },
  });
  const location = `${ctx.base}/upload/storage/v1/b/${encodeURIComponent(bucketName)}/o` +
    `?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${session.id}`;
  ctx.send(200, { Location: location, 'X-GUploader-UploadID': session.id });
}

// Requests on one session are serialised, as GCS does per upload.
const sessionLocks = new Map();

async function withSessionLock(id, fn) {
  const prev = sessionLocks.get(id) || Promise.resolve();
  let release;
  const mine = new Promise((resolve) => { release = resolve; });
  const tail = prev.then(() => mine);
  sessionLocks.set(id, tail);
  await prev;
  try {
    return await fn();
  } finally {
    release();
    if (sessionLocks.get(id) === tail) sessionLocks.delete(id);
  }
}

// Content-Range of a chunk PUT. Forms: "bytes a-b/T", "bytes a-b/*",
// "bytes a-*/T|*" (the rest of the object is this body, as the Node client
// sends for a single-shot stream), "bytes */T|*" (status query).
// A missing header means the whole object in this one request.
function parseContentRange(value) {
  if (value === undefined) return { start: 0, last: null, total: null };
  const m = /^bytes (?:(\d+)-(\d+|\*)|\*)\/(\d+|\*)$/.exec(value.trim());
  const total = m && m[3] !== '*' ? Number(m[3]) : null;
  if (m && m[1] === undefined) return { query: true, total };
  const range = m && { start: Number(m[1]), last: m[2] === '*' ? null : Number(m[2]), total };
  if (!range || (range.last !== null && (range.last < range.start || (total !== null && range.last >= total)))) {
    return { malformed: true };
  }
  return range;
}

const gapError = (offset, persisted) => new ApiError(503, 'backendError',
  `Invalid request.  According to the Content-Range header, the upload offset is ${offset} byte(s), ` +
  `which exceeds already uploaded size of ${persisted} byte(s).`, { plain: true });

const chunkSizeError = (len) => new ApiError(400, 'invalid',
  len < CHUNK_ALIGN
    ? 'Invalid request. The number of bytes uploaded is required to be equal or greater than 262144, except for ' +
      "the final request (it's recommended to be the exact multiple of 262144). The received request contained " +
      `${len} bytes, which does not meet this requirement.`
    : 'Invalid request. The number of bytes uploaded is required to be a multiple of 262144, except for the ' +
      `final request. The received request contained ${len} bytes, which does not meet this requirement.`,
  { plain: true });

function sendResumeIncomplete(ctx, persisted) {
  // No Range header at all while nothing is persisted: "bytes=0--1" is not a range.
  ctx.send(308, persisted > 0 ? { Range: `bytes=0-${persisted - 1}` } : {});
}

async function handleSessionPut(ctx, store, id) {
  await withSessionLock(id, async () => {
    const session = store.loadSession(id);
    if (session.state === 'done') return ctx.json(200, objectResource(session.result, ctx.base));
    const cr = parseContentRange(ctx.req.headers['content-range']);
    if (cr.malformed) {
      // Per GCS's troubleshooting guide this answer also ends the session.
      store.deleteSession(id);
      throw new ApiError(400, 'invalid', 'Failed to parse Content-Range header.', { plain: true });
    }
    if (cr.query) return statusQuery(ctx, store, session, cr.total);
    await appendChunk(ctx, store, session, cr);
  });
}

async function statusQuery(ctx, store, session, total) {
  // "bytes */N" with N equal to what is persisted completes the upload.
  if (total !== null && total === session.persisted && checkDeclaredLength(session, total)) {
    const rec = await finalizeSession(ctx, store, session);
    return ctx.json(200, objectResource(rec, ctx.base));
  }
  sendResumeIncomplete(ctx, session.persisted);
}

function checkDeclaredLength(session, total) {
  if (session.declaredLength !== null && total !== null && total !== session.declaredLength) {
    throw errors.invalid(`Content-Range total ${total} does not match X-Upload-Content-Length ${session.declaredLength}.`);
  }
  return true;
}

async function appendChunk(ctx, store, session, cr) {
  const P = session.persisted;
  if (cr.start > P) throw gapError(cr.start, P);
  const headerLength = ctx.req.headers['content-length'] !== undefined ? Number(ctx.req.headers['content-length']) : null;
  let len = cr.last !== null ? cr.last - cr.start + 1 : headerLength;
  let total = cr.last === null && cr.total === null && len !== null ? cr.start + len : cr.total;
  const isFinal = () => cr.last === null || (total !== null && cr.start + len === total);
  // Reject what the headers already show to be wrong before taking the body.
  if (len !== null && headerLength !== null && len !== headerLength) {
    throw errors.invalid(`Content-Range length ${len} does not match Content-Length ${headerLength}.`);
  }
  if (len !== null && !isFinal() && len % CHUNK_ALIGN !== 0) throw chunkSizeError(len);
  checkDeclaredLength(session, total);

  const dataFile = store.sessionPaths(session.id).data;
  fs.truncateSync(dataFile, P); // drop anything a crashed run wrote past P
  const fh = await fs.promises.open(dataFile, 'r+');
  let skip = P - cr.start;
  let end = P;
  try {
    await ctx.receive(async (buf) => {
      // Bytes before P were already persisted: a retransmission, skipped as GCS does.
      const drop = Math.min(skip, buf.length);
      skip -= drop;
      if (drop < buf.length) {
        const { bytesWritten } = await fh.write(buf, drop, buf.length - drop, end);
        end += bytesWritten;
      }
    });
  } catch (err) {
    if (!ctx.aborted) {
      fs.truncateSync(dataFile, P);
      throw err;
    }
    // Client gone mid-chunk: keep the 256 KiB-aligned prefix of what
    // arrived, like GCS may, so clients must trust the server's Range.
    const kept = Math.max(P, Math.floor(end / CHUNK_ALIGN) * CHUNK_ALIGN);
    fs.truncateSync(dataFile, kept);
    session.persisted = kept;
    store.saveSession(session);
    return;
  } finally {
    await fh.close();
  }

  // Anything wrong from here on leaves the session at P. That includes a
  // final chunk whose object cannot be created (hash mismatch, failed
  // precondition): the client may fix that and send the chunk again.
  const received = ctx.log.bytesReceived;
  try {
    if (cr.last === null) {
      len = received;
      if (total === null) total = cr.start + len;
      if (total !== cr.start + len) {
        throw errors.invalid(`Content-Range total ${total} does not match the ${cr.start + len} bytes uploaded.`);
      }
      checkDeclaredLength(session, total);
    } else if (len !== received) {
      throw errors.invalid(`Content-Range length ${len} does not match the ${received} bytes received.`);
    }
    if (!isFinal() && len % CHUNK_ALIGN !== 0) throw chunkSizeError(len);
    session.persisted = Math.max(P, cr.start + len);
    if (!isFinal()) {
      store.saveSession(session);
      return sendResumeIncomplete(ctx, session.persisted);
    }
    const rec = await finalizeSession(ctx, store, session);
    ctx.json(200, objectResource(rec, ctx.base));
  } catch (err) {
    if (session.state === 'active') fs.truncateSync(dataFile, P);
    throw err;
  }
}

async function finalizeSession(ctx, store, session) {
  const dataFile = store.sessionPaths(session.id).data;
  const digest = await hashFile(dataFile);
  verifyHashes(session.expect, digest);
  verifyHashes(parseGoogHash(ctx.req.headers['x-goog-hash']), digest);
  const metadata = { ...(session.fields.metadata || {}), ...headerMetadata(ctx.req.headers) };
  const fields = { ...session.fields, metadata: nonEmpty(metadata), ...digest };
  const rec = store.commitObject(session.bucket, session.name, fields, dataFile, session.conds);
  // Kept so that later PUTs on the session answer 200 with the object, as GCS does.
  Object.assign(session, { state: 'done', result: rec, persisted: digest.size });
  store.saveSession(session);
  return rec;
}

async function handleSessionDelete(ctx, store, id) {
  await withSessionLock(id, async () => {
    store.loadSession(id);
    store.deleteSession(id);
    ctx.send(499);
  });
}

function getObjectRequest(ctx, store, bucketName, name) {
  const rec = store.getObject(bucketName, name);
  const generation = ctx.query.get('generation');
  // Only the live generation is kept, so any other one is gone.
  if (generation !== null && generation !== rec.generation) throw errors.noObject(bucketName, name);
  checkPreconditions(pickPreconditions(ctx.query), rec, true);
  if (ctx.query.get('alt') === 'media') return download(ctx, store, rec);
  ctx.json(200, objectResource(rec, ctx.base));
}

// "bytes=a-b", "bytes=a-", "bytes=-n". Returns null to serve the whole object
// (no header, or one this emulator ignores as RFC 9110 allows, such as
// multiple ranges), or { unsatisfiable: true }.
function parseRange(header, size) {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return { unsatisfiable: true };
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  if (m[2] !== '' && Number(m[2]) < start) return null;
  if (start >= size) return { unsatisfiable: true };
  return { start, end: m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1) };
}

async function download(ctx, store, rec) {
  const size = Number(rec.size);
  const range = parseRange(ctx.req.headers.range, size);
  if (range && range.unsatisfiable) {
    throw new ApiError(416, 'requestedRangeNotSatisfiable', 'The requested range cannot be satisfied.',
      { headers: { 'Content-Range': `bytes */${size}` } });
  }
  if (ctx.faultAfter()) return;
  const fd = store.openObjectData(rec);
  const start = range ? range.start : 0;
  const end = range ? range.end : size - 1;
  const headers = {
    'Content-Type': rec.contentType,
    'Content-Length': end - start + 1,
    'Accept-Ranges': 'bytes',
    // GCS's media ETag is the quoted hex MD5 (unlike the resource's etag field).
    ETag: `"${Buffer.from(rec.md5Hash, 'base64').toString('hex')}"`,
    'Last-Modified': new Date(rec.updated).toUTCString(),
    'x-goog-generation': rec.generation,
    'x-goog-metageneration': rec.metageneration,
    'x-goog-stored-content-encoding': rec.contentEncoding || 'identity',
    'x-goog-stored-content-length': rec.size,
    'x-goog-storage-class': 'STANDARD',
    // Two header lines, as GCS sends them; both describe the whole object.
    'x-goog-hash': [`crc32c=${rec.crc32c}`, `md5=${rec.md5Hash}`],
  };
  if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
  ctx.res.writeHead(range ? 206 : 200, headers);
  if (size === 0 || ctx.req.method === 'HEAD') {
    fs.closeSync(fd);
    return ctx.res.end();
  }
  await pipeline(fs.createReadStream(null, { fd, start, end }), ctx.res);
}

// "a,b(c,d),e/f" -> { a: true, b: { c: true, d: true }, e: { f: true } }:
// the syntax of GCS's fields parameter.
function parseFields(text) {
  let i = 0;
  const bad = () => errors.invalid(`Invalid field selection ${text}`);
  function selection() {
    const sel = {};
    for (;;) {
      const start = i;
      while (i < text.length && !',()'.includes(text[i])) i++;
      const path = text.slice(start, i).trim().split('/');
      if (path.some((p) => !p)) throw bad();
      let sub = true;
      if (text[i] === '(') {
        i++;
        sub = selection();
        if (text[i] !== ')') throw bad();
        i++;
      }
      let node = sel;
      for (const p of path.slice(0, -1)) {
        if (node[p] === true) break;
        node = node[p] = node[p] || {};
      }
      if (node !== true && node[path.at(-1)] !== true) node[path.at(-1)] = sub;
      if (text[i] !== ',') return sel;
      i++;
    }
  }
  const sel = selection();
  if (i !== text.length) throw bad();
  return sel;
}

// What a selection keeps of a value (of each element of an array).
function pickFields(value, sel) {
  if (sel === true || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => pickFields(v, sel));
  const out = {};
  for (const [k, s] of Object.entries(sel)) if (k in value) out[k] = pickFields(value[k], s);
  return out;
}

function listObjects(ctx, store, bucketName) {
  const bucket = store.getBucket(bucketName);
  const q = ctx.query;
  const prefix = q.get('prefix') || '';
  const delimiter = q.get('delimiter') || '';
  const startOffset = q.get('startOffset');
  const endOffset = q.get('endOffset');
  let max = MAX_LIST_RESULTS;
  if (q.get('maxResults') !== null) {
    if (!/^\d+$/.test(q.get('maxResults'))) throw errors.invalid(`Invalid value for maxResults: ${q.get('maxResults')}`);
    max = Math.min(Math.max(Number(q.get('maxResults')), 1), MAX_LIST_RESULTS);
  }
  // The token is the last entry (object name or prefix) already returned.
  const after = q.get('pageToken') ? Buffer.from(q.get('pageToken'), 'base64url').toString('utf8') : null;

  const items = [];
  const prefixes = [];
  let lastKey = null;
  let more = false;
  // Like a real store, start at the first name that can be listed (the
  // names are sorted) instead of walking every name for every page.
  const sorted = store.sortedNames(bucket);
  let from = prefix;
  for (const k of [startOffset, after]) if (k !== null && byteCompare(k, from) > 0) from = k;
  for (let n = lowerBound(sorted, from); n < sorted.length; n++) {
    const name = sorted[n];
    if (!name.startsWith(prefix)) break; // past the names with the prefix
    if (endOffset !== null && byteCompare(name, endOffset) >= 0) break;
    let key = name;
    let isPrefix = false;
    if (delimiter) {
      const i = name.indexOf(delimiter, prefix.length);
      if (i >= 0) {
        key = name.slice(0, i + delimiter.length);
        isPrefix = true;
      }
    }
    if (after !== null && byteCompare(key, after) <= 0) continue;
    if (key === lastKey) continue; // names sharing a prefix are adjacent in sorted order
    if (items.length + prefixes.length === max) {
      more = true;
      break;
    }
    if (isPrefix) prefixes.push(key);
    else items.push(objectResource(bucket.objects.get(name), ctx.base));
    lastKey = key;
  }
  // Like GCS, empty arrays are left out rather than sent as [].
  const out = { kind: 'storage#objects' };
  if (more) out.nextPageToken = Buffer.from(lastKey, 'utf8').toString('base64url');
  if (prefixes.length) out.prefixes = prefixes;
  if (items.length) out.items = items;
  ctx.json(200, out);
}

function deleteObjectRequest(ctx, store, bucketName, name) {
  const rec = store.getObject(bucketName, name);
  const generation = ctx.query.get('generation');
  if (generation !== null && generation !== rec.generation) throw errors.noObject(bucketName, name);
  checkPreconditions(pickPreconditions(ctx.query), rec, false);
  assertMutable(rec);
  store.deleteObject(rec);
  ctx.send(204);
}

async function patchObject(ctx, store, bucketName, name) {
  const body = await ctx.readJson();
  // Looked up after the body arrived so the check and update share a tick.
  const rec = store.getObject(bucketName, name);
  checkPreconditions(pickPreconditions(ctx.query), rec, false);
  const next = { ...rec };
  for (const key of USER_FIELDS) {
    if (!(key in body)) continue;
    if (body[key] === null) {
      delete next[key];
    } else if (key === 'metadata') {
      if (typeof body.metadata !== 'object') throw errors.invalid('metadata must be an object.');
      // Per-key merge; a null value removes that key.
      const merged = { ...(next.metadata || {}) };
      for (const [k, v] of Object.entries(body.metadata)) {
        if (v === null) delete merged[k];
        else merged[k] = String(v);
      }
      next.metadata = nonEmpty(merged);
    } else {
      next[key] = body[key];
    }
  }
  next.metageneration = String(Number(rec.metageneration) + 1);
  next.updated = new Date().toISOString();
  store.updateObject(next);
  ctx.json(200, objectResource(next, ctx.base));
}

// ---------------------------------------------------------------- bucket handlers

async function createBucketRequest(ctx, store) {
  const body = await ctx.readJson();
  if (typeof body.name !== 'string') throw errors.required('Required parameter: name');
  const bucket = store.createBucket(body.name, body);
  ctx.json(200, bucketResource(bucket.rec, ctx.base));
}

function listBuckets(ctx, store) {
  const items = [...store.buckets.values()]
    .map((b) => b.rec)
    .sort((a, b) => byteCompare(a.name, b.name))
    .map((rec) => bucketResource(rec, ctx.base));
  const out = { kind: 'storage#buckets' };
  if (items.length) out.items = items;
  ctx.json(200, out);
}

// ---------------------------------------------------------------- routing

const API_PREFIXES = [
  ['/upload/storage/v1', 'upload'],
  ['/download/storage/v1', 'api'],
  ['/storage/v1', 'api'],
  // STORAGE_EMULATOR_HOST makes the Node client drop /storage/v1 on JSON calls.
  ['', 'api'],
];

function decodeSegment(raw) {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw errors.invalid(`Invalid percent-encoding in path: ${raw}`);
  }
}

async function route(ctx, store) {
  const method = ctx.req.method === 'HEAD' ? 'GET' : ctx.req.method;
  let kind = null;
  let rest = null;
  for (const [prefix, k] of API_PREFIXES) {
    if (ctx.rawPath === `${prefix}/b` || ctx.rawPath.startsWith(`${prefix}/b/`)) {
      kind = k;
      rest = ctx.rawPath.slice(prefix.length);
      break;
    }
  }
  const notFound = () => new ApiError(404, 'notFound', `Not Found: ${method} ${ctx.rawPath}`);
  if (rest === null) throw notFound();

  // rest: "/b", "/b/BUCKET", "/b/BUCKET/o", "/b/BUCKET/o/NAME..." (NAME may hold raw "/")
  const m = /^\/b(?:\/([^/]+)(?:\/o(?:\/(.+))?)?)?$/.exec(rest);
  if (!m) throw notFound();
  const bucket = m[1] === undefined ? null : decodeSegment(m[1]);
  const objectsColl = /^\/b\/[^/]+\/o$/.test(rest);
  const name = m[2] === undefined ? null : decodeSegment(m[2]);

  if (kind === 'upload') {
    if (!objectsColl) throw notFound();
    const uploadId = ctx.query.get('upload_id');
    if (uploadId !== null) {
      // The Go client sends chunks as POST; both mean the same.
      if (method === 'PUT' || method === 'POST') return handleSessionPut(ctx, store, uploadId);
      if (method === 'DELETE') return handleSessionDelete(ctx, store, uploadId);
      throw notFound();
    }
    if (method === 'POST') return handleInsert(ctx, store, bucket);
    throw notFound();
  }

  if (bucket === null) {
    if (method === 'GET') return listBuckets(ctx, store);
    if (method === 'POST') return createBucketRequest(ctx, store);
    throw notFound();
  }
  if (name !== null) {
    if (method === 'GET') return getObjectRequest(ctx, store, bucket, name);
    if (method === 'DELETE') return deleteObjectRequest(ctx, store, bucket, name);
    if (method === 'PATCH') return patchObject(ctx, store, bucket, name);
    throw notFound();
  }
  if (objectsColl) {
    if (method === 'GET') return listObjects(ctx, store, bucket);
    if (method === 'POST') {
      throw errors.invalid(
        'Upload requests must include an uploadType URL parameter and a URL path beginning with /upload/');
    }
    throw notFound();
  }
  if (method === 'GET') return ctx.json(200, bucketResource(store.getBucket(bucket).rec, ctx.base));
  if (method === 'DELETE') {
    store.deleteBucket(bucket);
    return ctx.send(204);
  }
  throw notFound();
}

// ---------------------------------------------------------------- auth

// Returns null when auth is off, else the accepted tokens. The token file is
// re-read on every request so tests can rotate tokens; an unreadable file
// accepts nothing rather than turning auth off.
function acceptedTokens(opts) {
  if (opts.requireToken === null && opts.tokenFile === null) return null;
  const tokens = [];
  if (opts.requireToken !== null) tokens.push(opts.requireToken);
  if (opts.tokenFile !== null) {
    try {
      tokens.push(...fs.readFileSync(opts.tokenFile, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean));
    } catch (e) {
      process.stderr.write(`gcs-emulator: cannot read token file: ${e.message}\n`);
    }
  }
  return tokens;
}

function authorize(ctx, opts) {
  const tokens = acceptedTokens(opts);
  if (tokens === null) return;
  // A session URI is itself the credential for its chunks (GCS docs), so
  // requests carrying upload_id are not checked.
  if (ctx.query.get('upload_id') !== null) return;
  const header = ctx.req.headers.authorization;
  const where = { locationType: 'header', location: 'Authorization' };
  const challenge = { 'WWW-Authenticate': 'Bearer realm="gcs-emulator"' };
  if (!header) {
    throw new ApiError(401, 'required', 'Anonymous caller does not have access to the Google Cloud Storage resource.',
      { headers: challenge, extra: where });
  }
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m || !tokens.includes(m[1])) {
    throw new ApiError(401, 'authError', 'Invalid Credentials', { headers: challenge, extra: where });
  }
}

// ---------------------------------------------------------------- admin (faults, log)

class Admin {
  constructor(logFile) {
    this.rules = [];
    this.nextRuleId = 1;
    this.entries = [];
    this.seq = 0;
    this.logFile = logFile;
  }

  // The first pending rule matching the request is consumed.
  takeFault(req) {
    const rule = this.rules.find((r) => (!r.method || r.method === req.method) && (!r.path || r.path.test(req.url)));
    if (!rule) return null;
    rule.remaining -= 1;
    if (rule.remaining === 0) this.rules = this.rules.filter((r) => r !== rule);
    return rule;
  }

  addRule(query) {
    const int = (key, dflt, min, max) => {
      const v = query.get(key);
      if (v === null) return dflt;
      if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw errors.invalid(`Invalid ${key}: ${v}`);
      return Number(v);
    };
    const mode = query.get('mode') || 'before';
    if (!['before', 'after', 'reset'].includes(mode)) throw errors.invalid(`Invalid mode: ${mode}`);
    let pathRe = null;
    if (query.get('path') !== null) {
      try {
        pathRe = new RegExp(query.get('path'));
      } catch (e) {
        throw errors.invalid(`Invalid path regex: ${e.message}`);
      }
    }
    const rule = {
      id: this.nextRuleId++,
      remaining: int('count', 1, 1, 1e9),
      status: int('status', 503, 100, 599),
      mode,
      bytes: int('bytes', 0, 0, Number.MAX_SAFE_INTEGER),
      method: query.get('method') ? query.get('method').toUpperCase() : null,
      path: pathRe,
    };
    this.rules.push(rule);
    return rule;
  }

  describe(rule) {
    return { ...rule, path: rule.path ? rule.path.source : null };
  }

  startEntry(req) {
    const entry = {
      seq: ++this.seq,
      time: new Date().toISOString(),
      method: req.method,
      path: req.url,
      contentRange: req.headers['content-range'] ?? null,
      range: req.headers.range ?? null,
      status: null,
      responseRange: null,
      bytesReceived: 0,
      durationMs: null,
      fault: null,
    };
    this.entries.push(entry);
    return entry;
  }

  finishEntry(entry, res, started) {
    entry.status = res.headersSent ? res.statusCode : null;
    entry.durationMs = Date.now() - started;
    if (this.logFile) fs.appendFileSync(this.logFile, `${JSON.stringify(entry)}\n`);
  }

  handle(ctx) {
    const { req } = ctx;
    const what = `${req.method} ${ctx.rawPath}`;
    if (what === 'POST /_emulator/fail') return ctx.json(200, this.describe(this.addRule(ctx.query)));
    if (what === 'GET /_emulator/fail') return ctx.json(200, this.rules.map((r) => this.describe(r)));
    if (what === 'DELETE /_emulator/fail') {
      this.rules = [];
      return ctx.send(204);
    }
    if (what === 'GET /_emulator/log') return ctx.json(200, this.entries);
    if (what === 'POST /_emulator/reset-log') {
      this.entries = [];
      return ctx.send(204);
    }
    throw new ApiError(404, 'notFound', `Not Found: ${what}`);
  }
}

// ---------------------------------------------------------------- server

function usage(msg) {
  process.stderr.write(`gcs-emulator: ${msg}\n` +
    'usage: node server.js --port N --dir DATA_DIR [--log FILE] [--bucket NAME]... ' +
    '[--require-token TOKEN] [--token-file FILE]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { port: 0, dir: null, log: null, buckets: [], requireToken: null, tokenFile: null };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => (i + 1 < argv.length ? argv[++i] : usage(`${flag} needs a value`));
    if (flag === '--port') opts.port = Number(value());
    else if (flag === '--dir') opts.dir = value();
    else if (flag === '--log') opts.log = value();
    else if (flag === '--bucket') opts.buckets.push(value());
    else if (flag === '--require-token') opts.requireToken = value();
    else if (flag === '--token-file') opts.tokenFile = value();
    else usage(`unknown argument ${flag}`);
  }
  if (!opts.dir) usage('--dir is required');
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) usage('--port must be 0..65535');
  return opts;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const store = new Store(opts.dir);
  for (const name of opts.buckets) {
    try {
      store.ensureBucket(name);
    } catch (e) {
      usage(`--bucket ${name}: ${e.message}`);
    }
  }
  const admin = new Admin(opts.log);

  const server = http.createServer(async (req, res) => {
    const ctx = new Ctx(req, res);
    if (ctx.rawPath.startsWith('/_emulator/')) {
      // Test control: neither logged, nor faulted, nor authenticated.
      try {
        admin.handle(ctx);
      } catch (err) {
        ctx.error(err instanceof ApiError ? err : errors.invalid(String(err)));
      }
      return;
    }
    const started = Date.now();
    ctx.log = admin.startEntry(req);
    res.on('close', () => admin.finishEntry(ctx.log, res, started));
    ctx.fault = admin.takeFault(req);
    if (ctx.fault) ctx.log.fault = ctx.fault.mode;
    try {
      if (ctx.fault && ctx.fault.mode === 'before') return sendFault(ctx, ctx.fault);
      if (ctx.fault && ctx.fault.mode === 'reset' && ctx.fault.bytes === 0) return req.socket.destroy();
      authorize(ctx, opts);
      await route(ctx, store);
    } catch (err) {
      if (res.headersSent || req.socket.destroyed) return;
      if (err instanceof ApiError) return ctx.error(err);
      process.stderr.write(`gcs-emulator: ${req.method} ${req.url}: ${err.stack || err}\n`);
      ctx.error(new ApiError(500, 'internalError', 'Internal Error'));
    }
  });
  // Large uploads over slow links must not hit Node's default request timeout.
  server.requestTimeout = 0;
  server.listen(opts.port, '127.0.0.1', () => {
    process.stdout.write(`listening http://127.0.0.1:${server.address().port}\n`);
  });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
}

if (require.main === module) main();

module.exports = { Crc32c };
