/** Threads (conversations) and their turns, as the rest of exai sees them. */
export const turnRoles = ['system', 'user', 'assistant', 'tool'] as const;
export type TurnRole = (typeof turnRoles)[number];
export type ThreadStatus = 'active' | 'archived';

export interface Turn {
  id: string;
  seq: number;
  role: TurnRole;
  content: string;
  toolName: string | null;
  provider: string | null;
  model: string | null;
  /** Thinking output some models return and need replayed in later turns. */
  reasoningContent: string | null;
  files: string[];
  inputTokens: number | null;
  outputTokens: number | null;
  idempotencyKey: string | null;
  metadata: Record<string, unknown>;
  createdAt: string;
}

export interface ThreadSummary {
  /** The continuation id. */
  id: string;
  ownerId: string;
  title: string | null;
  toolName: string | null;
  parentId: string | null;
  status: ThreadStatus;
  summary: string | null;
  metadata: Record<string, unknown>;
  turnCount: number;
  createdAt: string;
  updatedAt: string;
}

export interface Thread extends ThreadSummary {
  turns: Turn[];
}

export interface NewThread {
  title?: string | undefined;
  toolName?: string | undefined;
  parentId?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
}

export interface NewTurn {
  role: TurnRole;
  content: string;
  toolName?: string | undefined;
  provider?: string | undefined;
  model?: string | undefined;
  reasoningContent?: string | undefined;
  files?: string[] | undefined;
  inputTokens?: number | undefined;
  outputTokens?: number | undefined;
  /** A retried append with the same key returns the first one instead of adding a turn. */
  idempotencyKey?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
}

export interface AppendResult {
  turn: Turn;
  /** True when the idempotency key matched an earlier turn, which is returned unchanged. */
  deduplicated: boolean;
}

export interface ThreadChain {
  /** The thread first, then its parent, grandparent, … */
  ids: string[];
  /** The walk stopped at the depth limit while more ancestors remained. */
  truncated: boolean;
  /** A parent link pointed back into the chain; the walk stopped there. */
  cycle: boolean;
}

export interface ThreadPage {
  threads: ThreadSummary[];
  /** Pass as `before` to get the next page; absent on the last page. */
  nextCursor?: string;
}
