import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { SettingNode } from './config-settings.js';

/*
 * TRIBUTARY_* variables over the config file. The variable names are derived from the config
 * schema's tree of settings: a setting added to the schema can be set from the environment
 * without a change here.
 */

const ENV_PREFIX = 'TRIBUTARY_';

/** The variable naming the config file itself, not a setting. */
export const CONFIG_FILE_VARIABLE = 'TRIBUTARY_CONFIG';

export function toEnvSegment(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/-/g, '_')
    .toUpperCase();
}

/** The environment variable that sets a config path, e.g. `routes.access.batch.maxRows`. */
export function envVarFor(path: readonly string[]): string {
  return ENV_PREFIX + path.map(toEnvSegment).join('_');
}

interface Resolved {
  path: string[];
  node: SettingNode;
}

function resolveEnvPath(tokens: string[], tree: SettingNode, value: unknown): Resolved | undefined {
  if (tokens.length === 0 || tree.kind === 'value') return undefined;
  const candidates: Array<[string, SettingNode]> = [];
  if (tree.kind === 'map') {
    // Prefer names already in the file; otherwise the first token names a new entry.
    const existing = value && typeof value === 'object' ? Object.keys(value) : [];
    for (const name of existing) candidates.push([name, tree.value]);
    const first = tokens[0];
    if (first !== undefined && !existing.some((n) => toEnvSegment(n) === first)) candidates.push([first.toLowerCase(), tree.value]);
  } else {
    for (const [key, sub] of Object.entries(tree.fields)) candidates.push([key, sub]);
  }
  // Longest key first so `MAX_DELAY_MS` is not read as `MAX` + `DELAY_MS`.
  candidates.sort((a, b) => toEnvSegment(b[0]).length - toEnvSegment(a[0]).length);
  for (const [key, sub] of candidates) {
    const segs = toEnvSegment(key).split('_');
    if (segs.length > tokens.length || !segs.every((s, i) => s === tokens[i])) continue;
    const rest = tokens.slice(segs.length);
    // With nothing left the variable sets this key whole (an object may be given as YAML/JSON).
    if (rest.length === 0) return { path: [key], node: sub };
    if (sub.kind === 'value') continue;
    const child = value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
    const deeper = resolveEnvPath(rest, sub, child);
    if (deeper) return { path: [key, ...deeper.path], node: deeper.node };
  }
  return undefined;
}

/** A string setting (a name, a secret, an enum) takes the variable as written: `0123` stays a string. */
function takesRawText(node: SettingNode): boolean {
  return node.kind === 'value' && (node.schema instanceof z.ZodString || node.schema instanceof z.ZodEnum);
}

/**
 * Overlays TRIBUTARY_* variables on the file's values, following the settings tree. Each value
 * is read as YAML, so numbers, booleans and flow lists (`[a, b]`) work. Returns unknown variables
 * as problems: a typo in a Helm value must not be silently ignored.
 */
export function overlayEnvironment(raw: Record<string, unknown>, env: NodeJS.ProcessEnv, tree: SettingNode): string[] {
  const problems: string[] = [];
  const names = Object.keys(env)
    .filter((k) => k.startsWith(ENV_PREFIX) && k !== CONFIG_FILE_VARIABLE)
    .sort();
  for (const name of names) {
    const text = env[name];
    if (text === undefined) continue;
    const resolved = resolveEnvPath(name.slice(ENV_PREFIX.length).split('_'), tree, raw);
    if (!resolved) {
      problems.push(`${name}: no such setting`);
      continue;
    }
    const { path, node } = resolved;
    let parsed: unknown;
    try {
      parsed = parseYaml(text);
    } catch {
      parsed = text;
    }
    // A YAML mapping or list is kept so that zod names the wrong shape instead of taking it as text.
    if (takesRawText(node) && (parsed === null || typeof parsed !== 'object')) parsed = text;
    let target: Record<string, unknown> = raw;
    for (const key of path.slice(0, -1)) {
      const next = target[key];
      if (next === undefined || next === null || typeof next !== 'object') target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    target[path[path.length - 1] as string] = parsed;
  }
  return problems;
}
