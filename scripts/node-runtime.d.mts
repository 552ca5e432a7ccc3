/** See node-runtime.mjs. */
export function ensureNode(major: string | number): { bin: string; version: string };
