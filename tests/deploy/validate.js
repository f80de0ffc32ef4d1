#!/usr/bin/env node
// SPDX-License-Identifier: MIT
//
// Validates Kubernetes objects (a JSON array in the file argv[2]) two ways:
//
//  1. against the JSON schemas of the Kubernetes OpenAPI spec, compiled
//     into ajv validators by kubernetes-models (core and batch kinds) and
//     @kubernetes-models/prometheus-operator (PrometheusRule): types,
//     required fields, enums, formats and patterns;
//  2. for unknown fields, which those schemas let through: each object
//     becomes a TypeScript object literal typed with the package's interface
//     for its kind, and the TypeScript compiler rejects any property the
//     type does not declare, at any depth (what `kubeconform -strict` does).
//     A misplaced `defaultMode` or `readOnly` is silently ignored by the API
//     server; here it is an error.
//
// Prints one line per problem, "Kind/name: where: what", and exits 1 if
// there is any.  The versions are pinned by package-lock.json.
"use strict";

const fs = require("fs");
const path = require("path");
const ts = require("typescript");

const GROUPS = {
  v1: "kubernetes-models/v1",
  "batch/v1": "kubernetes-models/batch/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "monitoring.coreos.com/v1":
    "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
};

function modulePath(obj) {
  const base = GROUPS[obj.apiVersion];
  if (!base || !/^[A-Za-z]+$/.test(obj.kind || "")) return null;
  const mod = `${base}/${obj.kind}`;
  try {
    require.resolve(mod);
  } catch (e) {
    return null;
  }
  return mod;
}

function label(obj) {
  return `${obj.kind}/${(obj.metadata && obj.metadata.name) || "?"}`;
}

function main() {
  const objects = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const problems = [];
  const lines = [];
  const imports = [];

  objects.forEach((obj, i) => {
    const mod = modulePath(obj);
    if (!mod) {
      problems.push(`${label(obj)}: no schema for ${obj.apiVersion} ${obj.kind}`);
      lines.push("");
      return;
    }
    const Model = require(mod)[obj.kind];
    try {
      new Model(obj).validate();
    } catch (e) {
      problems.push(`${label(obj)}: schema: ${e.message}`);
    }
    imports.push(`import type { I${obj.kind} as T${i} } from ${JSON.stringify(mod)};`);
    lines.push(`export const o${i}: T${i} = ${JSON.stringify(obj)};`);
  });

  // Line k of the program (after the imports) is object k.
  const source = imports.join("\n") + "\n" + lines.join("\n") + "\n";
  const first = imports.length;
  const file = path.join(__dirname, "__manifests__.ts");
  const options = {
    noEmit: true,
    strict: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2020,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile;
  host.getSourceFile = (name, lang, ...rest) =>
    path.resolve(name) === file
      ? ts.createSourceFile(name, source, lang)
      : getSourceFile.call(host, name, lang, ...rest);
  const fileExists = host.fileExists;
  host.fileExists = (name) => path.resolve(name) === file || fileExists.call(host, name);
  const program = ts.createProgram([file], options, host);
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const msg = ts.flattenDiagnosticMessageText(d.messageText, " ");
    if (d.file && path.resolve(d.file.fileName) === file) {
      const { line } = d.file.getLineAndCharacterOfPosition(d.start);
      const obj = objects[line - first];
      problems.push(`${obj ? label(obj) : "?"}: strict: ${msg}`);
    } else {
      problems.push(`typescript: ${msg}`);
    }
  }

  for (const p of problems) console.log(p);
  console.log(`${objects.length} objects, ${problems.length} problems`);
  process.exit(problems.length ? 1 : 0);
}

main();
