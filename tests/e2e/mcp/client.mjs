// A real MCP client for the black-box tests: the SDK's Client over its StdioClientTransport,
// spawning the command given after `--` (signoff mcp-proxy, or a server run directly).
//
// usage: node client.mjs [--script FILE | --steps JSON] -- COMMAND ARGS...
//
// It executes steps, one JSON object each: from stdin, one per line, as the test sends them
// (the test drives), or from a JSON array in FILE or on the command line (then it closes the
// session after the last step). It reports every event as one JSON line on stdout, so the test
// can react (approve a pending call through the HTTP API) and assert. The spawned command's
// stderr goes to this process's stderr.
//
// Steps ("tag" names an operation in the events; it defaults to the op's name):
//   {"op": "connect"}                               initialize + notifications/initialized;
//                                                   waits for it before the next step
//   {"op": "listTools", "tag": T}                   these four start and do not wait:
//   {"op": "callTool", "tag": T, "name": N, "arguments": {...}, "timeoutMs": MS}
//   {"op": "ping", "tag": T}                        the next step runs at once; each reports
//   {"op": "request", "tag": T, "method": M, "params": {...}}     "result" or "error" later
//   {"op": "await", "tag": T}                       wait until T has reported; then "awaited"
//   {"op": "say", "text": S}                        report "say" (a readiness mark)
//   {"op": "close"}                                 close the session and exit 0
//
// Events:
//   {"event": "connected", "serverInfo", "capabilities", "instructions", "pid"}
//   {"event": "result", "tag", "op", "result"}
//   {"event": "error", "tag", "op", "error": {"code", "message", "data"}}
//   {"event": "notification", "method", "params"}   a server notification we have no handler for
//   {"event": "client-error", "message"}            the SDK's onerror (e.g. an unknown response id)
//   {"event": "exit", "code", "signal"}             the spawned command exited
//   {"event": "transport-closed"}, {"event": "awaited", "tag"}, {"event": "say", "text"},
//   {"event": "bad-step", "message"}, {"event": "closed"}

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import process from "node:process";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ResultSchema } from "@modelcontextprotocol/sdk/types.js";

const DEFAULT_TIMEOUT_MS = 120000; // an approval may take a while; the test bounds its own waits

function emit(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

function usage(message) {
  process.stderr.write(`client.mjs: ${message}\n` +
    "usage: node client.mjs [--script FILE | --steps JSON] -- COMMAND ARGS...\n");
  process.exit(2);
}

function parseArgs(argv) {
  let steps = null;
  let i = 0;
  for (; i < argv.length && argv[i] !== "--"; i++) {
    if (argv[i] === "--script" && i + 1 < argv.length) {
      steps = JSON.parse(readFileSync(argv[++i], "utf8"));
    } else if (argv[i] === "--steps" && i + 1 < argv.length) {
      steps = JSON.parse(argv[++i]);
    } else {
      usage(`unknown option ${argv[i]}`);
    }
  }
  const command = argv.slice(i + 1);
  if (i >= argv.length || command.length === 0) usage("no command after --");
  if (steps !== null && !Array.isArray(steps)) usage("the steps must be a JSON array");
  return { steps, command };
}

function errorShape(err) {
  return {
    code: typeof err?.code === "number" ? err.code : null,
    message: String(err?.message ?? err),
    data: err?.data ?? null,
  };
}

const { steps, command } = parseArgs(process.argv.slice(2));
const transport = new StdioClientTransport({
  command: command[0],
  args: command.slice(1),
  env: { ...process.env }, // SIGNOFF_URL and SIGNOFF_TOKEN reach the proxy
  stderr: "inherit",
});
const client = new Client({ name: "signoff-e2e", version: "1.0.0" }, { capabilities: {} });
client.fallbackNotificationHandler = async (n) => {
  emit({ event: "notification", method: n.method, params: n.params ?? null });
};
client.onerror = (err) => emit({ event: "client-error", message: String(err?.message ?? err) });
client.onclose = () => emit({ event: "transport-closed" });

const running = new Map(); // tag -> promise that settles once the op has reported

function start(tag, op, fn) {
  if (running.has(tag)) {
    emit({ event: "bad-step", message: `tag ${tag} is already in use` });
    return;
  }
  running.set(tag, fn().then(
    (result) => emit({ event: "result", tag, op, result }),
    (err) => emit({ event: "error", tag, op, error: errorShape(err) }),
  ));
}

async function close() {
  try {
    await client.close();
  } catch (err) {
    emit({ event: "client-error", message: String(err?.message ?? err) });
  }
  emit({ event: "closed" });
  process.exit(0);
}

async function step(s) {
  const tag = s.tag ?? s.op;
  const options = { timeout: s.timeoutMs ?? DEFAULT_TIMEOUT_MS };
  switch (s.op) {
    case "connect":
      try {
        await client.connect(transport, options);
      } catch (err) {
        emit({ event: "error", tag, op: s.op, error: errorShape(err) });
        return;
      }
      // Report the spawned command's end; the SDK keeps the child private.
      transport._process?.once("exit", (code, signal) => emit({ event: "exit", code, signal }));
      emit({
        event: "connected",
        serverInfo: client.getServerVersion() ?? null,
        capabilities: client.getServerCapabilities() ?? null,
        instructions: client.getInstructions() ?? null,
        pid: transport.pid,
      });
      return;
    case "listTools":
      start(tag, s.op, () => client.listTools(undefined, options));
      return;
    case "callTool": {
      const params = { name: s.name };
      if (s.arguments !== undefined) params.arguments = s.arguments;
      start(tag, s.op, () => client.callTool(params, undefined, options));
      return;
    }
    case "ping":
      start(tag, s.op, () => client.ping(options));
      return;
    case "request":
      start(tag, s.op, () => client.request({ method: s.method, params: s.params }, ResultSchema,
        options));
      return;
    case "await":
      if (!running.has(tag)) {
        emit({ event: "bad-step", message: `nothing started under tag ${tag}` });
        return;
      }
      await running.get(tag);
      emit({ event: "awaited", tag });
      return;
    case "say":
      emit({ event: "say", text: s.text ?? null });
      return;
    case "close":
      await close();
      return;
    default:
      emit({ event: "bad-step", message: `unknown op ${JSON.stringify(s.op)}` });
  }
}

if (steps !== null) {
  for (const s of steps) await step(s);
  await close();
} else {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    let s;
    try {
      s = JSON.parse(line);
    } catch (err) {
      emit({ event: "bad-step", message: `not JSON: ${err.message}` });
      continue;
    }
    await step(s);
  }
  await close(); // the test closed our stdin
}
