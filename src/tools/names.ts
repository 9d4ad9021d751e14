/** Every tool exai offers, in the order `tools/list` shows them. EXAI_TOOLS and EXAI_DISABLED_TOOLS choose among these. */
export const toolNames = [
  'chat',
  'challenge',
  'thinkdeep',
  'planner',
  'consensus',
  'codereview',
  'precommit',
  'debug',
  'analyze',
  'refactor',
  'testgen',
  'secaudit',
  'docgen',
  'tracer',
  'listmodels',
  'version',
  'conversation_list',
  'conversation_get',
  'conversation_delete',
  'performance_stats',
  'usage_stats',
] as const;

export type ToolName = (typeof toolNames)[number];
