import { z } from 'zod';

/*
 * The config schema seen as a tree of settings. The environment overlay and the generated
 * configuration reference both walk this tree, so neither keeps a list of keys of its own.
 */

export interface SettingInfo {
  /** The schema's `.describe()` text, from the outermost wrapper that has one. */
  readonly description: string | undefined;
  /** May be left out (optional, or filled in by a default). */
  readonly optional: boolean;
  readonly hasDefault: boolean;
  readonly defaultValue: unknown;
}

export type SettingNode =
  /** A value set as a whole: a scalar, an enum, a list. */
  | { readonly kind: 'value'; readonly info: SettingInfo; readonly schema: z.ZodTypeAny }
  /** A fixed set of keys. */
  | { readonly kind: 'object'; readonly info: SettingInfo; readonly fields: Readonly<Record<string, SettingNode>> }
  /** Keys chosen by the user (route names), each holding the same kind of setting. */
  | { readonly kind: 'map'; readonly info: SettingInfo; readonly keySchema: z.ZodTypeAny; readonly value: SettingNode };

/** Strips optional, nullable, default and effects (refinements) wrappers, collecting what they say. */
export function unwrapSetting(schema: z.ZodTypeAny): { schema: z.ZodTypeAny; info: SettingInfo } {
  let description: string | undefined;
  let optional = false;
  let hasDefault = false;
  let defaultValue: unknown;
  let current = schema;
  for (;;) {
    description ??= current.description;
    if (current instanceof z.ZodOptional || current instanceof z.ZodNullable) {
      optional = true;
      current = current.unwrap() as z.ZodTypeAny;
    } else if (current instanceof z.ZodDefault) {
      optional = true;
      if (!hasDefault) {
        hasDefault = true;
        defaultValue = (current._def as z.ZodDefaultDef).defaultValue();
      }
      current = (current._def as z.ZodDefaultDef).innerType;
    } else if (current instanceof z.ZodEffects) {
      current = current.innerType() as z.ZodTypeAny;
    } else {
      return { schema: current, info: { description, optional, hasDefault, defaultValue } };
    }
  }
}

export function settingTree(schema: z.ZodTypeAny): SettingNode {
  const { schema: inner, info } = unwrapSetting(schema);
  if (inner instanceof z.ZodObject) {
    const fields: Record<string, SettingNode> = {};
    for (const [key, field] of Object.entries(inner.shape as z.ZodRawShape)) fields[key] = settingTree(field);
    return { kind: 'object', info, fields };
  }
  if (inner instanceof z.ZodRecord) {
    return { kind: 'map', info, keySchema: inner.keySchema as z.ZodTypeAny, value: settingTree(inner.valueSchema as z.ZodTypeAny) };
  }
  return { kind: 'value', info, schema: inner };
}
