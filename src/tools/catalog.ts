/** Every tool, and the set a configuration offers (EXAI_TOOLS, EXAI_DISABLED_TOOLS). */
import type { Config } from '../config.js';
import { consensusTool } from './consensus.js';
import { toolNames } from './names.js';
import { conversationDeleteTool, conversationGetTool, conversationListTool, listModelsTool, versionTool } from './platform-tools.js';
import { challengeTool, chatTool } from './simple-tools.js';
import { stepTools } from './step-tools.js';
import type { ToolDefinition } from './types.js';
import { performanceStatsTool, usageStatsTool } from './metrics-tools.js';
import { fileDeleteTool, fileInfoTool, fileListTool, fileUploadTool } from './file-tools.js';
import { smartFileQueryTool } from './smart-file-query.js';
import { conversationSearchTool } from './search-tools.js';

const allTools: readonly ToolDefinition[] = [chatTool, challengeTool, consensusTool, ...stepTools, listModelsTool, versionTool, conversationListTool, conversationGetTool, conversationDeleteTool, conversationSearchTool, fileUploadTool, fileListTool, fileInfoTool, fileDeleteTool, smartFileQueryTool, performanceStatsTool, usageStatsTool];

/** The tools offered, in the order of `toolNames`. */
export function offeredTools(config: Pick<Config, 'tools'>): ToolDefinition[] {
  const byName = new Map(allTools.map((tool) => [tool.name, tool]));
  const enabled = config.tools.enabled === undefined ? undefined : new Set(config.tools.enabled);
  const disabled = new Set(config.tools.disabled);
  return toolNames
    .filter((name) => (enabled === undefined || enabled.has(name)) && !disabled.has(name))
    .map((name) => byName.get(name))
    .filter((tool): tool is ToolDefinition => tool !== undefined);
}
