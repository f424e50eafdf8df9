import { EdgePerfError } from '../../modules/common/index.js';
import { isObject } from './manifest-model.js';
import type { DeploymentManifest } from './manifest-types.js';

/**
 * `--set TARGET.PATH=VALUE`: one assignment in a deployment manifest.
 *
 * TARGET is `$edgeAgent`, `$edgeHub`, a module name, or a prefix ending in `*` (every custom module
 * whose name starts with it: `translator*`). PATH, by its first segment:
 * - `env.NAME` — the module's environment variable; the value is kept as a string;
 * - `createOptions.A.B` — inside the module's parsed createOptions, re-serialised as a JSON string;
 * - `settings.K`, `status`, `restartPolicy`, `startupOrder`, `version`, `imagePullPolicy` — the
 *   module definition;
 * - `desired.A.B` — the module twin's desired properties (`modulesContent.<module>`);
 * - any other path on `$edgeHub`/`$edgeAgent` — their desired properties
 *   (`$edgeHub.routes.NAME`, `$edgeHub.storeAndForwardConfiguration.timeToLiveSecs`).
 * VALUE is parsed as JSON when it parses (numbers, booleans, objects), else kept as a string;
 * env values are always strings. An empty VALUE removes the key.
 *
 * Examples: `$edgeHub.env.MaxUpstreamBatchSize=50`, `translator.env.BatchMaxBytes=200000`,
 * `$edgeHub.routes.all=FROM /messages/* INTO $upstream`,
 * `$edgeHub.createOptions.HostConfig.Binds=["/srv/edgehub:/iotedge/storage"]`.
 */
export interface SetAssignment {
  readonly target: string;
  readonly path: readonly string[];
  readonly value: string;
}

const MODULE_FIELDS = new Set([
  'settings',
  'status',
  'restartPolicy',
  'startupOrder',
  'version',
  'imagePullPolicy',
  'type',
]);

function bad(text: string, why: string): EdgePerfError {
  return new EdgePerfError('E_ARGS', `--set ${text}: ${why}`, { exitCode: 2 });
}

/**
 * Parses `TARGET.PATH=VALUE`.
 * @throws EdgePerfError(E_ARGS, exit 2) naming the assignment and the expected form.
 */
export function parseSetAssignment(text: string): SetAssignment {
  const eq = text.indexOf('=');
  if (eq <= 0) throw bad(text, 'expected TARGET.PATH=VALUE, e.g. $edgeHub.env.MaxUpstreamBatchSize=50');
  const key = text.slice(0, eq).trim();
  const value = text.slice(eq + 1);
  const [target, ...path] = key.split('.');
  if (target === undefined || target === '' || path.length === 0 || path.some((p) => p === '')) {
    throw bad(
      text,
      'expected TARGET.PATH=VALUE with a non-empty path, e.g. translator.env.BatchMaxBytes=200000',
    );
  }
  if ((path[0] === 'env' || path[0] === 'desired' || path[0] === 'createOptions') && path.length < 2) {
    throw bad(text, `${path[0]} needs a key, e.g. ${target}.${path[0]}.NAME=VALUE`);
  }
  if (path[0] === 'env' && path.length !== 2) throw bad(text, 'env names cannot contain "."');
  return { target, path, value };
}

function parseValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function assign(
  obj: Record<string, unknown>,
  path: readonly string[],
  value: unknown,
  remove: boolean,
): void {
  let cur = obj;
  for (const seg of path.slice(0, -1)) {
    const next = cur[seg];
    if (!isObject(next)) {
      if (remove) return;
      cur[seg] = {};
    }
    cur = cur[seg] as Record<string, unknown>;
  }
  const last = path[path.length - 1] as string;
  if (remove) delete cur[last];
  else cur[last] = value;
}

/**
 * Applies assignments to a manifest in place, in order.
 * @throws EdgePerfError(E_ARGS, exit 2) for an unknown module (listing the known ones) or
 *   createOptions that are not JSON.
 */
export function applyAssignments(manifest: DeploymentManifest, assignments: readonly SetAssignment[]): void {
  const content = manifest.modulesContent;
  const agent = content.$edgeAgent['properties.desired'];
  for (const a of assignments) {
    const text = `${a.target}.${a.path.join('.')}=${a.value}`;
    const system = a.target === '$edgeAgent' || a.target === '$edgeHub';
    const names = system
      ? [a.target]
      : a.target.endsWith('*')
        ? Object.keys(agent.modules).filter((n) => n.startsWith(a.target.slice(0, -1)))
        : Object.keys(agent.modules).includes(a.target)
          ? [a.target]
          : [];
    if (names.length === 0) {
      throw bad(
        text,
        `no module ${a.target}; allowed: $edgeAgent, $edgeHub, ${Object.keys(agent.modules).join(', ')} or a prefix*`,
      );
    }
    const [head, ...rest] = a.path as [string, ...string[]];
    const remove = a.value === '';
    for (const name of names) {
      const def = (
        name === '$edgeAgent'
          ? agent.systemModules.edgeAgent
          : name === '$edgeHub'
            ? agent.systemModules.edgeHub
            : agent.modules[name]
      ) as Record<string, unknown>;
      if (head === 'env') {
        if (!isObject(def.env)) def.env = {};
        assign(def.env as Record<string, unknown>, rest, { value: a.value }, remove);
      } else if (head === 'createOptions') {
        const settings = def.settings as Record<string, unknown>;
        const raw = settings.createOptions;
        let opts: Record<string, unknown> = {};
        if (typeof raw === 'string' && raw.trim() !== '') {
          try {
            const parsed: unknown = JSON.parse(raw);
            if (isObject(parsed)) opts = parsed;
          } catch {
            throw bad(text, `${name}'s createOptions is not valid JSON`);
          }
        } else if (isObject(raw)) {
          opts = raw;
        }
        assign(opts, rest, parseValue(a.value), remove);
        settings.createOptions = JSON.stringify(opts);
      } else if (head === 'desired') {
        if (!isObject(content[name])) content[name] = { 'properties.desired': {} };
        const twin = content[name] as Record<string, unknown>;
        if (!isObject(twin['properties.desired'])) twin['properties.desired'] = {};
        assign(twin['properties.desired'] as Record<string, unknown>, rest, parseValue(a.value), remove);
      } else if (MODULE_FIELDS.has(head)) {
        assign(def, a.path, parseValue(a.value), remove);
      } else if (system) {
        const desired = content[name as '$edgeHub' | '$edgeAgent']['properties.desired'] as Record<
          string,
          unknown
        >;
        assign(desired, a.path, parseValue(a.value), remove);
      } else {
        throw bad(
          text,
          `unknown path ${a.path.join('.')}; allowed: env.NAME, createOptions.PATH, settings.KEY, status, restartPolicy, startupOrder, version, desired.PATH`,
        );
      }
    }
  }
}
