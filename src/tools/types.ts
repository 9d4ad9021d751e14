/** What a tool is, apart from the transport that serves it. */
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import type { Services } from '../app/services.js';
import type { ToolCategory } from '../providers/model-choice.js';
import type { ToolName } from './names.js';
import type { Principal } from '../auth/principal.js';
import type { Scope } from '../auth/scopes.js';

export interface ToolContext {
  services: Services;
  /** The user the call acts for; every query runs as this user. */
  userId: string;
  /** How the caller authenticated, and what they may do. */
  principal: Principal;
  /** Where the call came from (a client address, `stdio`), for the audit log. */
  source: string;
  /** Unique per call; idempotency keys derive from it. */
  requestId: string;
  signal: AbortSignal;
  /** Tells the client the call is still alive (a progress notification when it asked for them). */
  progress(message: string): void;
  /** Text is streaming in from a model. */
  onDelta(): void;
}

export interface ToolDefinition<Shape extends z.ZodRawShape = z.ZodRawShape> {
  name: ToolName;
  title: string;
  description: string;
  category: ToolCategory;
  inputSchema: Shape;
  annotations?: ToolAnnotations;
  /** What the caller must hold beyond `tools:call`; AI tools store turns, so by default conversations:write. */
  scopes?: Scope[];
  run(args: z.output<z.ZodObject<Shape>>, context: ToolContext): Promise<CallToolResult>;
}

/** Keeps each definition's argument types while the list holds them all. */
export function defineTool<Shape extends z.ZodRawShape>(definition: ToolDefinition<Shape>): ToolDefinition {
  return definition as unknown as ToolDefinition;
}
