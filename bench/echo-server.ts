/**
 * The baseline of the MCP overhead benchmark: a bare MCP server made with the
 * official SDK, one `echo` tool, on stdio — the least any MCP server over
 * stdio can do per tool call. Started by bench/mcp.ts as
 * `node dist/bench/echo-server.js`; it ends when stdin closes.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const server = new McpServer({ name: 'bench-echo', version: '1.0.0' });

server.registerTool(
  'echo',
  { description: 'Returns its text.', inputSchema: { text: z.string() } },
  async ({ text }) => ({ content: [{ type: 'text', text }] }),
);

await server.connect(new StdioServerTransport());
await new Promise<void>((resolve) => {
  process.stdin.once('end', resolve);
  process.stdin.once('close', resolve);
});
await server.close();
