-- SPDX-License-Identifier: MIT
-- A catalog as the first release (schema 1) wrote it, with one version:
-- tests/unit/test_catalog.c opens it with the current code to test the
-- migrations.  Never edit: it is what old catalogs look like.
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS versions(
  id INTEGER PRIMARY KEY,
  vid TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  mode INTEGER NOT NULL,
  created_ns INTEGER NOT NULL,
  state TEXT NOT NULL CHECK(state IN ('sealed','encoded')),
  stored_size INTEGER NOT NULL DEFAULT 0,
  sha256 TEXT NOT NULL DEFAULT '',
  object_sha256 TEXT NOT NULL DEFAULT '',
  error TEXT,
  next_attempt_ns INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  encoded_ns INTEGER NOT NULL DEFAULT 0,
  reseal INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS versions_by_name ON versions(name, created_ns);
CREATE INDEX IF NOT EXISTS versions_by_state ON versions(state, next_attempt_ns);
CREATE TABLE IF NOT EXISTS backends(
  name TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  last_ok_ns INTEGER NOT NULL DEFAULT 0,
  last_error_ns INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  uploaded_bytes INTEGER NOT NULL DEFAULT 0,
  failures INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS replicas(
  version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
  backend TEXT NOT NULL,
  key TEXT NOT NULL,
  state TEXT NOT NULL CHECK(state IN ('pending','uploading','done','failing')),
  resume_token BLOB,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  next_attempt_ns INTEGER NOT NULL DEFAULT 0,
  bytes_done INTEGER NOT NULL DEFAULT 0,
  done_ns INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(version_id, backend));
CREATE INDEX IF NOT EXISTS replicas_due ON replicas(state, next_attempt_ns);
CREATE TABLE IF NOT EXISTS drills(
  id INTEGER PRIMARY KEY,
  started_ns INTEGER NOT NULL,
  backend TEXT NOT NULL,
  pattern TEXT NOT NULL,
  name TEXT NOT NULL,
  vid TEXT NOT NULL,
  ok INTEGER NOT NULL,
  restore_seconds REAL NOT NULL,
  bytes INTEGER NOT NULL,
  issues TEXT,
  probe TEXT);
CREATE TABLE IF NOT EXISTS streams(
  vid TEXT NOT NULL,
  backend TEXT NOT NULL,
  key TEXT NOT NULL,
  token BLOB NOT NULL,
  PRIMARY KEY(vid, backend));
CREATE TABLE IF NOT EXISTS settling(
  name TEXT PRIMARY KEY,
  since_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS remote_objects(
  backend TEXT NOT NULL,
  key TEXT NOT NULL,
  object_size INTEGER NOT NULL,
  etag TEXT NOT NULL,
  vid TEXT NOT NULL,
  name TEXT NOT NULL,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  created_ns INTEGER NOT NULL,
  mode INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  key_id TEXT NOT NULL,
  PRIMARY KEY(backend, key));
INSERT INTO meta VALUES('schema_version','1');
INSERT INTO versions(id, vid, name, size, mtime_ns, mode, created_ns, state) VALUES(7, 'v1', 'old.db', 1000, 995, 420, 1000, 'sealed');
