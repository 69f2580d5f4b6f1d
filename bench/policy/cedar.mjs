// bench/policy/cedar.mjs: the Cedar side of bench/policy, with @cedar-policy/cedar-wasm.
//
//   node cedar.mjs CEDAR-N.json REQUESTS.jsonl ENTITIES.json OUTCOMES.txt [PASSES]
//                  [--warmup K] [--reparse K]
//
// Preparses the policy set once (preparsePolicySet: the policies are parsed and kept inside
// the wasm module, as signoff compiles its rules once at load), then, per request, times
// statefulIsAuthorized() with the request's principal, action, resource and context and the
// requester's entity (with its groups as parents). Warm-up pass first (over the first K
// requests with --warmup K, else all), then PASSES (default 3) measured passes over all
// requests, each call timed on its own with process.hrtime.bigint().
//
// The signoff outcome is read from the one answer: a deny with a determining policy is a
// forbid that matched (deny); an allow whose determining policies include a "review-*"
// permit is review; another allow is allow; a deny with no determining policy means that no
// policy matched, and the signoff default (review) applies.
//
// --reparse K also times the stateless isAuthorized() (which parses the policy text on every
// call) on the first K requests, one pass, for reference.
//
// Prints one JSON object on stdout, like bench.c; writes one outcome a line to OUTCOMES.
import { readFileSync, writeFileSync } from "node:fs";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";

const args = process.argv.slice(2);
function option(name, dflt) {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = parseInt(args[i + 1], 10);
  args.splice(i, 2);
  return v;
}
const reparse = option("--reparse", 0);
const warmup = option("--warmup", Infinity);
if (args.length < 4) {
  console.error("usage: node cedar.mjs CEDAR-N.json REQUESTS.jsonl ENTITIES.json OUTCOMES.txt [PASSES] [--warmup K] [--reparse K]");
  process.exit(2);
}
const [polPath, reqPath, entPath, outPath] = args;
const passes = Math.max(1, parseInt(args[4] || "3", 10));

const pol = JSON.parse(readFileSync(polPath, "utf8"));
const ents = JSON.parse(readFileSync(entPath, "utf8"));
const lines = readFileSync(reqPath, "utf8").split("\n").filter((l) => l.length);
const calls = lines.map((l) => {
  const r = JSON.parse(l);
  const c = r.cedar;
  return {
    principal: c.principal,
    action: c.action,
    resource: c.resource,
    context: c.context,
    preparsedPolicySetId: "bench",
    entities: [ents[r.requester]],
  };
});

const ids = Object.keys(pol.policies);
let t0 = process.hrtime.bigint();
const parsed = cedar.preparsePolicySet("bench", { staticPolicies: pol.policies });
const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
if (parsed.type !== "success") {
  console.error(JSON.stringify(parsed.errors, null, 1));
  process.exit(1);
}
const isReview = new Set(ids.filter((id) => pol.decide[id] === "review"));

function outcome(ans) {
  if (ans.type !== "success") {
    console.error(JSON.stringify(ans.errors));
    process.exit(1);
  }
  const { decision, diagnostics } = ans.response;
  if (diagnostics.errors.length) return "error";
  if (decision === "deny") return diagnostics.reason.length ? "deny" : pol.default;
  return diagnostics.reason.some((id) => isReview.has(id)) ? "review" : "allow";
}

const n = calls.length;
const lat = new Float64Array(n * passes);
let nlat = 0;
let wall = 0;
let outs = new Array(n);
for (let pass = 0; pass <= passes; pass++) {
  const w0 = process.hrtime.bigint();
  for (let i = 0; i < (pass ? n : Math.min(n, warmup)); i++) {
    const a = process.hrtime.bigint();
    const ans = cedar.statefulIsAuthorized(calls[i]);
    const b = process.hrtime.bigint();
    if (pass) lat[nlat++] = Number(b - a);
    outs[i] = outcome(ans);
  }
  if (pass) wall += Number(process.hrtime.bigint() - w0);
}
const sorted = lat.subarray(0, nlat).sort();
const pct = (p) => sorted[Math.min(nlat - 1, Math.round((p / 100) * (nlat - 1)))] / 1e3;
let sum = 0;
for (let i = 0; i < nlat; i++) sum += sorted[i];
const counts = { allow: 0, review: 0, deny: 0, error: 0 };
for (const o of outs) counts[o]++;
writeFileSync(outPath, outs.join("\n") + "\n");

// An empty timer pair, for reading the small figures.
const tl = new Float64Array(10000);
for (let i = 0; i < tl.length; i++) {
  const a = process.hrtime.bigint();
  tl[i] = Number(process.hrtime.bigint() - a);
}
tl.sort();

const result = {
  engine: "cedar-wasm",
  cedar_version: cedar.getCedarVersion(),
  rules: ids.length,
  requests: n,
  passes,
  load_ms: +loadMs.toFixed(1),
  decisions_per_s: Math.round(nlat / (wall / 1e9)),
  mean_us: +(sum / nlat / 1e3).toFixed(3),
  p50_us: +pct(50).toFixed(3),
  p90_us: +pct(90).toFixed(3),
  p99_us: +pct(99).toFixed(3),
  max_us: +(sorted[nlat - 1] / 1e3).toFixed(3),
  timer_ns: tl[tl.length >> 1],
  counts,
};

if (reparse > 0) {
  // The stateless call: the policy text is parsed again on every request.
  const k = Math.min(reparse, n);
  const rl = new Float64Array(k);
  const policies = { staticPolicies: pol.policies };
  for (let i = 0; i < k; i++) {
    const { preparsedPolicySetId, ...rest } = calls[i];
    const call = { ...rest, policies };
    const a = process.hrtime.bigint();
    const ans = cedar.isAuthorized(call);
    rl[i] = Number(process.hrtime.bigint() - a);
    if (outcome(ans) !== outs[i]) {
      console.error(`isAuthorized and statefulIsAuthorized disagree on request ${i + 1}`);
      process.exit(1);
    }
  }
  rl.sort();
  result.reparse = { requests: k, p50_us: +(rl[k >> 1] / 1e3).toFixed(1) };
}
console.log(JSON.stringify(result));
