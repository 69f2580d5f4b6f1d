#!/usr/bin/python3
"""A tiny MCP server over stdio for the cases a real server cannot show.

usage: stub_server.py LOG

Every line it receives is appended to LOG as it arrives, so a test can tell what reached the
server (a denied call must never get here). Tools:
  echo   {message}  answers "stub echo: <message>"
  crash  {}         exits with status 3 at once, without answering
Anything else that has an id gets -32601. End of input ends it with status 0.
"""

import json
import sys

TOOLS = [
    {"name": "echo", "description": "Answers with its message.",
     "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}},
                     "required": ["message"]}},
    {"name": "crash", "description": "Exits without answering.",
     "inputSchema": {"type": "object", "properties": {}}},
]


def answer(msg_id, result=None, error=None):
    msg = {"jsonrpc": "2.0", "id": msg_id}
    if error is not None:
        msg["error"] = error
    else:
        msg["result"] = result
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def main():
    log = open(sys.argv[1], "a", encoding="utf-8")
    for line in sys.stdin:
        log.write(line if line.endswith("\n") else line + "\n")
        log.flush()
        try:
            msg = json.loads(line)
        except ValueError:
            answer(None, error={"code": -32700, "message": "parse error"})
            continue
        method, msg_id, params = msg.get("method"), msg.get("id"), msg.get("params") or {}
        if msg_id is None:
            continue  # a notification
        if method == "initialize":
            answer(msg_id, {"protocolVersion": params.get("protocolVersion", "2025-06-18"),
                            "capabilities": {"tools": {}},
                            "serverInfo": {"name": "stub", "version": "1.0.0"}})
        elif method == "ping":
            answer(msg_id, {})
        elif method == "tools/list":
            answer(msg_id, {"tools": TOOLS})
        elif method == "tools/call" and params.get("name") == "echo":
            text = "stub echo: " + str((params.get("arguments") or {}).get("message"))
            answer(msg_id, {"content": [{"type": "text", "text": text}]})
        elif method == "tools/call" and params.get("name") == "crash":
            log.close()
            sys.exit(3)
        else:
            answer(msg_id, error={"code": -32601, "message": f"no such method or tool: {method}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
