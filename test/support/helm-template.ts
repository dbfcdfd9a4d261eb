import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';

/**
 * Renders a Helm chart with a subset of Go's text/template and of Helm's functions, enough for
 * helm/tributary (there is no helm binary here). Supported: `{{ }}` with `{{-`/`-}}` trimming,
 * comments, pipelines, parentheses, variables (`$x :=`, `$x =`, `$`), field chains, `if`/`else
 * if`/`else`, `range` (lists and maps in key order, with `$i, $v :=`), `with`, `define` +
 * `include`, `.Files.Get`, and the functions in FUNCTIONS. Anything else throws, so a template
 * that uses more than this fails the test instead of rendering wrongly.
 *
 * Not reproduced: Helm's type coercions (values are JSON-like here: numbers stay numbers), Sprig
 * functions not listed, `lookup`, `tpl`, `.Capabilities` beyond a fixed KubeVersion, hooks, and
 * the exact whitespace of toYaml (sorted keys here, as sigs.k8s.io/yaml does).
 */

type Value = unknown;
type Scope = { dot: Value; vars: Map<string, Value>[] };

interface Chart {
  name: string;
  version: string;
  appVersion: string;
  dir: string;
}

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Pipeline }
  | { kind: 'if'; branches: Array<{ cond: Pipeline; body: Node[] }>; otherwise: Node[] }
  | { kind: 'range'; keyVar?: string; valueVar?: string; pipe: Pipeline; body: Node[]; otherwise: Node[] }
  | { kind: 'with'; pipe: Pipeline; body: Node[]; otherwise: Node[] };

interface Pipeline {
  decl?: { names: string[]; assign: boolean };
  commands: Term[][];
}

type Term =
  | { kind: 'field'; base: 'dot' | string; path: string[] }
  | { kind: 'literal'; value: Value }
  | { kind: 'ident'; name: string }
  | { kind: 'sub'; pipe: Pipeline };

class TemplateError extends Error {}

/**
 * Helm reads every number of the values as a float64, and Go prints a float64 of a million or more
 * in exponent form (`{{ 1000000 }}` renders `1e+06`). Results of int/add/… are int64 in Go and
 * print plainly: they are wrapped so the difference survives here.
 */
class GoInt {
  constructor(readonly n: number) {}
}

function num(v: Value): number {
  return v instanceof GoInt ? v.n : Number(v);
}

function unwrap(v: Value): Value {
  if (v instanceof GoInt) return v.n;
  if (Array.isArray(v)) return v.map(unwrap);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)]));
  return v;
}

function goFloat(n: number): string {
  if (n === 0) return '0';
  const exp = Math.floor(Math.log10(Math.abs(n)));
  if (exp >= -4 && exp < 6) return String(n);
  return n.toExponential().replace(/e([+-])(\d)$/, 'e$10$2');
}

function print(v: Value): string {
  if (v === undefined || v === null) return '';
  if (v instanceof GoInt) return String(v.n);
  if (typeof v === 'number') return goFloat(v);
  if (typeof v === 'object') return JSON.stringify(unwrap(v));
  return String(v);
}

// ---- lexing actions ----

function tokenize(src: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      tokens.push(src.slice(i, j + 1));
      i = j + 1;
    } else if (c === '`') {
      const j = src.indexOf('`', i + 1);
      tokens.push(src.slice(i, j + 1));
      i = j + 1;
    } else if ('()|,'.includes(c)) {
      tokens.push(c);
      i++;
    } else if (src.startsWith(':=', i)) {
      tokens.push(':=');
      i += 2;
    } else if (c === '=') {
      tokens.push('=');
      i++;
    } else {
      let j = i;
      while (j < src.length && !/[\s()|,=]/.test(src[j] as string) && !src.startsWith(':=', j)) j++;
      tokens.push(src.slice(i, j));
      i = j;
    }
  }
  return tokens;
}

function parsePipeline(tokens: string[]): Pipeline {
  let pos = 0;
  const pipe: Pipeline = { commands: [] };
  const declEnd = tokens.findIndex((t) => t === ':=' || t === '=');
  if (declEnd > 0 && tokens.slice(0, declEnd).every((t) => t === ',' || t.startsWith('$'))) {
    pipe.decl = { names: tokens.slice(0, declEnd).filter((t) => t !== ','), assign: tokens[declEnd] === '=' };
    pos = declEnd + 1;
  }
  const parseTerm = (): Term => {
    const t = tokens[pos++];
    if (t === undefined) throw new TemplateError('unexpected end of action');
    if (t === '(') {
      let depth = 1;
      const start = pos;
      while (depth > 0) {
        const u = tokens[pos++];
        if (u === undefined) throw new TemplateError('unbalanced parentheses');
        if (u === '(') depth++;
        if (u === ')') depth--;
      }
      const inner = parsePipeline(tokens.slice(start, pos - 1));
      const field = tokens[pos];
      if (field?.startsWith('.') && field.length > 1) {
        throw new TemplateError('field access on a parenthesised pipeline is not supported');
      }
      return { kind: 'sub', pipe: inner };
    }
    if (t.startsWith('"')) return { kind: 'literal', value: JSON.parse(t) as string };
    if (t.startsWith('`')) return { kind: 'literal', value: t.slice(1, -1) };
    // An integer constant is an int in Go, a constant with a point a float64.
    if (/^-?\d+$/.test(t)) return { kind: 'literal', value: new GoInt(Number(t)) };
    if (/^-?\d+\.\d+$/.test(t)) return { kind: 'literal', value: Number(t) };
    if (t === 'true' || t === 'false') return { kind: 'literal', value: t === 'true' };
    if (t === 'nil') return { kind: 'literal', value: null };
    if (t === '.') return { kind: 'field', base: 'dot', path: [] };
    if (t.startsWith('.')) return { kind: 'field', base: 'dot', path: t.slice(1).split('.') };
    if (t.startsWith('$')) {
      const [name, ...path] = t.split('.');
      return { kind: 'field', base: name as string, path };
    }
    if (/^[A-Za-z_]\w*$/.test(t)) return { kind: 'ident', name: t };
    throw new TemplateError(`unsupported token "${t}"`);
  };
  let command: Term[] = [];
  while (pos < tokens.length) {
    if (tokens[pos] === '|') {
      pos++;
      pipe.commands.push(command);
      command = [];
      continue;
    }
    command.push(parseTerm());
  }
  pipe.commands.push(command);
  return pipe;
}

// ---- parsing templates ----

function parseTemplate(src: string, defines: Map<string, Node[]>): Node[] {
  // Split into text and actions, applying trim markers.
  const parts: Array<{ text: string } | { action: string }> = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      parts.push({ text: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    let start = open + 2;
    if (src[start] === '-' && /\s/.test(src[start + 1] ?? '')) {
      text = text.replace(/\s+$/, '');
      start++;
    }
    parts.push({ text });
    const close = src.indexOf('}}', start);
    if (close < 0) throw new TemplateError('unclosed action');
    let end = close;
    let trimAfter = false;
    if (src[close - 1] === '-' && /\s/.test(src[close - 2] ?? '')) {
      end = close - 1;
      trimAfter = true;
    }
    parts.push({ action: src.slice(start, end).trim() });
    i = close + 2;
    if (trimAfter) while (i < src.length && /\s/.test(src[i] as string)) i++;
  }
  let pos = 0;
  const parseList = (terminators: string[]): { nodes: Node[]; end: string } => {
    const nodes: Node[] = [];
    while (pos < parts.length) {
      const part = parts[pos++] as { text: string } | { action: string };
      if ('text' in part) {
        if (part.text !== '') nodes.push({ kind: 'text', text: part.text });
        continue;
      }
      const a = part.action;
      if (a.startsWith('/*')) continue;
      const word = a.split(/\s+/)[0] as string;
      if (terminators.includes(word) || (word === 'else' && terminators.includes('else'))) return { nodes, end: a };
      if (word === 'if') {
        const branches: Array<{ cond: Pipeline; body: Node[] }> = [];
        let cond = parsePipeline(tokenize(a.slice(2)));
        let otherwise: Node[] = [];
        for (;;) {
          const r = parseList(['else', 'end']);
          branches.push({ cond, body: r.nodes });
          if (r.end === 'end') break;
          if (r.end.startsWith('else if')) {
            cond = parsePipeline(tokenize(r.end.slice(7)));
            continue;
          }
          otherwise = parseList(['end']).nodes;
          break;
        }
        nodes.push({ kind: 'if', branches, otherwise });
      } else if (word === 'range' || word === 'with') {
        let rest = a.slice(word.length).trim();
        let keyVar: string | undefined;
        let valueVar: string | undefined;
        const decl = /^(\$\w+)\s*(?:,\s*(\$\w+))?\s*:=\s*/.exec(rest);
        if (decl && word === 'range') {
          if (decl[2]) {
            keyVar = decl[1];
            valueVar = decl[2];
          } else {
            valueVar = decl[1];
          }
          rest = rest.slice(decl[0].length);
        }
        const pipe = parsePipeline(tokenize(rest));
        const r = parseList(['else', 'end']);
        const otherwise = r.end === 'end' ? [] : parseList(['end']).nodes;
        if (word === 'range') nodes.push({ kind: 'range', ...(keyVar ? { keyVar } : {}), ...(valueVar ? { valueVar } : {}), pipe, body: r.nodes, otherwise });
        else nodes.push({ kind: 'with', pipe, body: r.nodes, otherwise });
      } else if (word === 'define') {
        const name = JSON.parse(a.slice(6).trim()) as string;
        defines.set(name, parseList(['end']).nodes);
      } else if (word === 'end' || word === 'else') {
        throw new TemplateError(`unexpected {{${a}}}`);
      } else if (word === 'template' || word === 'block') {
        throw new TemplateError(`{{${word}}} is not supported; use include`);
      } else {
        nodes.push({ kind: 'action', pipe: parsePipeline(tokenize(a)) });
      }
    }
    if (terminators.length > 0) throw new TemplateError(`missing {{end}} (expected ${terminators.join('/')})`);
    return { nodes, end: '' };
  };
  return parseList([]).nodes;
}

// ---- evaluation ----

function truthy(v: Value): boolean {
  if (v instanceof GoInt) return v.n !== 0;
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

function isMap(v: Value): v is Record<string, Value> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(dst: Record<string, Value>, src: Record<string, Value>): Record<string, Value> {
  // Sprig's merge: keys already in dst win; maps merge recursively.
  for (const [k, v] of Object.entries(src)) {
    const d = dst[k];
    if (d === undefined) dst[k] = structuredClone(v);
    else if (isMap(d) && isMap(v)) deepMerge(d, v);
  }
  return dst;
}

function toYaml(v: Value): string {
  if (v === null || v === undefined) return 'null';
  return stringifyYaml(unwrap(v), { sortMapEntries: true, lineWidth: 0 }).replace(/\n$/, '');
}

function goFormat(format: string, args: Value[]): string {
  let n = 0;
  return format.replace(/%([sdvq%])/g, (_, verb: string) => {
    if (verb === '%') return '%';
    const a = args[n++];
    if (verb === 'q') return JSON.stringify(String(a));
    if (verb === 'd') return String(Math.trunc(Number(a)));
    return typeof a === 'object' && a !== null ? JSON.stringify(a) : String(a);
  });
}

export class HelmRenderer {
  private readonly defines = new Map<string, Node[]>();
  private readonly templates = new Map<string, Node[]>();

  constructor(private readonly chart: Chart) {
    const dir = join(chart.dir, 'templates');
    for (const file of readdirSync(dir).sort()) {
      const src = readFileSync(join(dir, file), 'utf8');
      const nodes = parseTemplate(src, this.defines);
      if (!file.startsWith('_') && /\.(ya?ml|json)$/.test(file)) this.templates.set(file, nodes);
    }
  }

  static load(dir: string): HelmRenderer {
    const meta = parseYaml(readFileSync(join(dir, 'Chart.yaml'), 'utf8')) as { name: string; version: string; appVersion: string };
    return new HelmRenderer({ name: meta.name, version: meta.version, appVersion: String(meta.appVersion), dir });
  }

  defaultValues(): Record<string, Value> {
    return parseYaml(readFileSync(join(this.chart.dir, 'values.yaml'), 'utf8')) as Record<string, Value>;
  }

  /** Each template's output, as `helm template` would print it (values merged over values.yaml). */
  render(overrides: Record<string, Value>, release = { name: 'logs', namespace: 'tributary' }): Map<string, string> {
    const values = this.defaultValues();
    mergeOverrides(values, overrides);
    const root = {
      Values: values,
      Release: { Name: release.name, Namespace: release.namespace, Service: 'Helm' },
      Chart: { Name: this.chart.name, Version: this.chart.version, AppVersion: this.chart.appVersion },
      Capabilities: { KubeVersion: { Version: 'v1.33.0' } },
      Files: { Get: (path: string) => readFileSync(join(this.chart.dir, path), 'utf8') },
    };
    const out = new Map<string, string>();
    for (const [file, nodes] of this.templates) out.set(file, this.exec(nodes, { dot: root, vars: [new Map([['$', root]])] }));
    return out;
  }

  private exec(nodes: Node[], scope: Scope): string {
    let out = '';
    for (const node of nodes) {
      switch (node.kind) {
        case 'text':
          out += node.text;
          break;
        case 'action': {
          const v = this.pipe(node.pipe, scope);
          if (!node.pipe.decl) out += print(v);
          break;
        }
        case 'if': {
          const branch = node.branches.find((b) => truthy(this.pipe(b.cond, scope)));
          out += this.exec(branch ? branch.body : node.otherwise, { dot: scope.dot, vars: [...scope.vars, new Map()] });
          break;
        }
        case 'with': {
          const v = this.pipe(node.pipe, scope);
          out += truthy(v) ? this.exec(node.body, { dot: v, vars: [...scope.vars, new Map()] }) : this.exec(node.otherwise, scope);
          break;
        }
        case 'range': {
          const v = this.pipe(node.pipe, scope);
          const entries: Array<[Value, Value]> = Array.isArray(v)
            ? v.map((x, i) => [i, x])
            : isMap(v)
              ? Object.keys(v)
                  .sort()
                  .map((k) => [k, v[k]])
              : [];
          if (entries.length === 0) {
            out += this.exec(node.otherwise, scope);
            break;
          }
          for (const [k, x] of entries) {
            const frame = new Map<string, Value>();
            if (node.keyVar) frame.set(node.keyVar, k);
            if (node.valueVar) frame.set(node.valueVar, x);
            out += this.exec(node.body, { dot: x, vars: [...scope.vars, frame] });
          }
          break;
        }
      }
    }
    return out;
  }

  private lookupVar(name: string, scope: Scope): Value {
    for (let i = scope.vars.length - 1; i >= 0; i--) if (scope.vars[i]?.has(name)) return scope.vars[i]?.get(name);
    throw new TemplateError(`undefined variable ${name}`);
  }

  private pipe(pipe: Pipeline, scope: Scope): Value {
    let result: Value;
    let first = true;
    for (const command of pipe.commands) {
      result = this.command(command, scope, first ? undefined : { value: result });
      first = false;
    }
    if (pipe.decl) {
      const name = pipe.decl.names[0] as string;
      if (pipe.decl.assign) {
        for (let i = scope.vars.length - 1; i >= 0; i--) {
          if (scope.vars[i]?.has(name)) {
            scope.vars[i]?.set(name, result);
            return result;
          }
        }
        throw new TemplateError(`assignment to undeclared ${name}`);
      }
      scope.vars[scope.vars.length - 1]?.set(name, result);
    }
    return result;
  }

  private term(t: Term, scope: Scope): Value {
    switch (t.kind) {
      case 'literal':
        return t.value;
      case 'sub':
        return this.pipe(t.pipe, scope);
      case 'field': {
        let v = t.base === 'dot' ? scope.dot : this.lookupVar(t.base, scope);
        for (const key of t.path) v = isMap(v) ? v[key] : undefined;
        return v;
      }
      case 'ident':
        return this.call(t.name, [], scope);
    }
  }

  private command(command: Term[], scope: Scope, piped: { value: Value } | undefined): Value {
    const [head, ...rest] = command;
    if (head === undefined) throw new TemplateError('empty command');
    if (head.kind === 'ident') {
      const args = rest.map((t) => this.term(t, scope));
      if (piped) args.push(piped.value);
      return this.call(head.name, args, scope);
    }
    const target = this.term(head, scope);
    if (typeof target === 'function') {
      const args = rest.map((t) => this.term(t, scope));
      if (piped) args.push(piped.value);
      return (target as (...a: Value[]) => Value)(...args);
    }
    if (rest.length > 0 || piped) throw new TemplateError('arguments given to a value that is not a function');
    return target;
  }

  private call(name: string, args: Value[], scope: Scope): Value {
    const a = (i: number): Value => args[i];
    const s = (i: number): string => print(args[i]);
    switch (name) {
      case 'include': {
        const body = this.defines.get(s(0));
        if (!body) throw new TemplateError(`include of undefined template "${s(0)}"`);
        return this.exec(body, { dot: a(1), vars: [new Map([['$', this.lookupVar('$', scope)]])] });
      }
      case 'toYaml':
        return toYaml(a(0));
      case 'toJson':
        return JSON.stringify(unwrap(a(0)) ?? null);
      case 'fromYaml':
        return parseYaml(s(0)) as Value;
      case 'nindent':
        return `\n${s(1).replace(/^/gm, ' '.repeat(num(a(0))))}`;
      case 'indent':
        return s(1).replace(/^/gm, ' '.repeat(num(a(0))));
      case 'quote':
        return JSON.stringify(print(a(0)));
      case 'squote':
        return `'${s(0)}'`;
      case 'default':
        return args.length < 2 || !truthy(a(1)) ? a(0) : a(1);
      case 'required':
        if (a(1) === undefined || a(1) === null || a(1) === '') throw new TemplateError(s(0));
        return a(1);
      case 'fail':
        throw new TemplateError(s(0));
      case 'printf':
        return goFormat(s(0), args.slice(1).map(unwrap));
      case 'dict': {
        const d: Record<string, Value> = {};
        for (let i = 0; i + 1 < args.length; i += 2) d[s(i)] = a(i + 1);
        return d;
      }
      case 'list':
        return [...args];
      case 'merge':
      case 'mergeOverwrite': {
        const dst = a(0) as Record<string, Value>;
        for (const src of args.slice(1)) {
          if (name === 'merge') deepMerge(dst, src as Record<string, Value>);
          else mergeOverrides(dst, src as Record<string, Value>);
        }
        return dst;
      }
      case 'deepCopy':
        return structuredClone(a(0));
      case 'hasKey':
        return isMap(a(0)) && Object.hasOwn(a(0) as object, s(1));
      case 'keys':
        return isMap(a(0)) ? Object.keys(a(0) as object).sort() : [];
      case 'empty':
        return !truthy(a(0));
      case 'ternary':
        return truthy(a(2)) ? a(0) : a(1);
      case 'eq':
        return args.slice(1).some((x) => unwrap(x) === unwrap(a(0)));
      case 'ne':
        return unwrap(a(0)) !== unwrap(a(1));
      case 'lt':
        return num(a(0)) < num(a(1));
      case 'le':
        return num(a(0)) <= num(a(1));
      case 'gt':
        return num(a(0)) > num(a(1));
      case 'ge':
        return num(a(0)) >= num(a(1));
      case 'and':
        return args.every(truthy) ? args[args.length - 1] : args.find((x) => !truthy(x));
      case 'or':
        return args.find(truthy) ?? args[args.length - 1];
      case 'not':
        return !truthy(a(0));
      case 'int':
        return new GoInt(Math.trunc(num(a(0))));
      case 'add':
        return new GoInt(args.reduce((x: number, y) => x + Math.trunc(num(y)), 0));
      case 'sub':
        return new GoInt(Math.trunc(num(a(0))) - Math.trunc(num(a(1))));
      case 'mul':
        return new GoInt(args.reduce((x: number, y) => x * Math.trunc(num(y)), 1));
      case 'div':
        return new GoInt(Math.trunc(Math.trunc(num(a(0))) / Math.trunc(num(a(1)))));
      case 'max':
        return new GoInt(Math.max(...args.map((x) => Math.trunc(num(x)))));
      case 'trunc':
        return s(1).slice(0, num(a(0)));
      case 'trimSuffix':
        return s(1).endsWith(s(0)) ? s(1).slice(0, s(1).length - s(0).length) : s(1);
      case 'replace':
        return s(2).split(s(0)).join(s(1));
      case 'lower':
        return s(0).toLowerCase();
      case 'sha256sum':
        return createHash('sha256').update(s(0)).digest('hex');
      default:
        throw new TemplateError(`function "${name}" is not supported by this renderer`);
    }
  }
}

/** How `helm --values` layers a values file over values.yaml: maps merge, anything else replaces. */
export function mergeOverrides(dst: Record<string, Value>, src: Record<string, Value>): Record<string, Value> {
  for (const [k, v] of Object.entries(src)) {
    const d = dst[k];
    if (v === null) delete dst[k];
    else if (isMap(d) && isMap(v)) mergeOverrides(d, v);
    else dst[k] = structuredClone(v);
  }
  return dst;
}

export function parseManifests(rendered: Map<string, string>): Array<{ file: string; doc: Record<string, Value> }> {
  const out: Array<{ file: string; doc: Record<string, Value> }> = [];
  for (const [file, text] of rendered) {
    for (const part of text.split(/^---\s*$/m)) {
      if (part.trim() === '') continue;
      const doc = parseYaml(part) as Record<string, Value> | null;
      if (doc !== null) out.push({ file, doc });
    }
  }
  return out;
}

export { TemplateError, parseTemplate };
