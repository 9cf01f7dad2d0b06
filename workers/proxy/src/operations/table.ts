/**
 * The gateway's MCP operations: one table from method to handler, which both agent-side adapters
 * serve (the SDK server registers every entry; the hot path answers the plain tools/list and
 * tools/call itself). What the gateway does for a method is decided here and nowhere else.
 */
import type { OperationCall } from "./call.ts";
import { type CompleteParams, complete } from "./completion.ts";
import { setLevel } from "./logging.ts";
import { getPrompt, listPrompts } from "./prompts.ts";
import {
  listResources,
  listResourceTemplates,
  readResource,
  subscribeResource,
} from "./resources.ts";
import { type CallParams, callTool, listTools } from "./tools.ts";

export const OPERATIONS = {
  "tools/list": (call: OperationCall) => listTools(call),
  "tools/call": (call: OperationCall, params: CallParams) => callTool(call, params),
  "resources/list": (call: OperationCall) => listResources(call),
  "resources/templates/list": (call: OperationCall) => listResourceTemplates(call),
  "resources/read": (call: OperationCall, params: { uri: string }) => readResource(call, params),
  "resources/subscribe": (call: OperationCall, params: { uri: string }) =>
    subscribeResource(call, "resources/subscribe", params),
  "resources/unsubscribe": (call: OperationCall, params: { uri: string }) =>
    subscribeResource(call, "resources/unsubscribe", params),
  "prompts/list": (call: OperationCall) => listPrompts(call),
  "prompts/get": (
    call: OperationCall,
    params: { name: string; arguments?: Record<string, string> },
  ) => getPrompt(call, params),
  "completion/complete": (call: OperationCall, params: CompleteParams) => complete(call, params),
  "logging/setLevel": (call: OperationCall, params: { level: string }) => setLevel(call, params),
};

export type OperationMethod = keyof typeof OPERATIONS;
