"""A small MCP server for the tests, written with the SDK's own server API (MCPServer).

Run as `python tools_server.py` for stdio, or `python tools_server.py http PORT_FILE` for
streamable HTTP on a free loopback port (the port is written to PORT_FILE once listening).
`PID_FILE` in the environment: the server writes its pid there at start. `HELPER_PID_FILE`:
it also starts a helper process that runs until killed and writes the helper's pid there.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("test-tools")
_release = anyio.Event()


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo_env(name: str) -> str:
    """The value of an environment variable of the server process (tests of secrets)."""
    return os.environ.get(name, "")


@server.tool()
def header_digest(name: str, ctx: Context) -> str:
    """The SHA-256 of one HTTP header of this request (headers are secret: never echo them)."""
    return hashlib.sha256((ctx.headers or {}).get(name.lower(), "").encode()).hexdigest()


@server.tool()
def fail(message: str) -> str:
    """Always fail with `message` (the error the model should read)."""
    raise ToolError(message)


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
async def wait_forever(marker: str) -> str:
    """Write `marker` to the file (or FIFO) MARKER_FILE names, then block until the process
    ends; a cancelled call writes "cancelled" there."""
    with open(os.environ["MARKER_FILE"], "a") as f:
        f.write(marker + "\n")
        f.flush()
        try:
            await _release.wait()
        except anyio.get_cancelled_exc_class():
            f.write("cancelled\n")
            raise
    return "released"


@server.tool()
def crash() -> str:
    """Exit the server process at once, as a crash would."""
    os._exit(3)


if __name__ == "__main__":
    if os.environ.get("HELPER_PID_FILE"):
        helper = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        with open(os.environ["HELPER_PID_FILE"], "w") as f:
            f.write(str(helper.pid))
    if os.environ.get("PID_FILE"):
        with open(os.environ["PID_FILE"], "w") as f:
            f.write(str(os.getpid()))
    if len(sys.argv) > 1 and sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
