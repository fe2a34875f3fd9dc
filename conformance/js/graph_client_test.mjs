// The official JavaScript client (@microsoft/microsoft-graph-client v3) against reportroot over
// https with customHosts: each report API, v1.0 and beta, compared byte for byte with the
// oracle's expected CSV files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { Client, ResponseType } from "@microsoft/microsoft-graph-client";

const cases = JSON.parse(readFileSync(process.env.RR_CASES, "utf8"));
const results = [];

const client = Client.init({
  baseUrl: process.env.RR_BASE,
  customHosts: new Set(["127.0.0.1"]),
  defaultVersion: "v1.0",
  authProvider: (done) => done(null, process.env.RR_TOKEN),
});

test("graph client reads every report", async () => {
  for (const c of cases) {
    const buf = await client.api(c.api).version(c.version).responseType(ResponseType.ARRAYBUFFER).get();
    const got = Buffer.from(buf);
    const want = readFileSync(c.expected);
    const ok = got.equals(want);
    results.push({ row: c.row, ok });
    assert.ok(ok, `${c.row}: got ${got.subarray(0, 120)}`);
  }
  writeFileSync(process.env.RR_RESULTS, JSON.stringify(results));
});
