import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv-draft-04';

// A CommonJS package: under NodeNext the default import is module.exports, whose `default` is the class.
const Ajv = AjvModule.default;

// The public SchemaStore schemas live beside the repository (shared/schemas); they are read at
// test time, never copied into the project. EDGEPERF_SCHEMAS_DIR points elsewhere in CI.
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Directory of the SchemaStore IoT Edge schemas. */
export const SCHEMAS_DIR = process.env.EDGEPERF_SCHEMAS_DIR ?? join(repoRoot, '..', 'shared', 'schemas');
/** True when the schemas are present. */
export const HAVE_SCHEMAS = existsSync(join(SCHEMAS_DIR, 'azure-iot-edge-deployment-2.0.json'));

const BASE = 'https://json.schemastore.org/';

/** Validators by schema file name, with every error reported (draft-04, cross-file $refs resolved). */
export function loadSchemas(): (file: string) => ValidateFunction {
  // strict off: the schemas use `examples` and `contentMediaType`, which draft-04 does not define.
  const ajv = new Ajv({ allErrors: true, strict: false });
  for (const f of readdirSync(SCHEMAS_DIR).filter((n) => n.endsWith('.json'))) {
    const schema = JSON.parse(readFileSync(join(SCHEMAS_DIR, f), 'utf8')) as { $schema?: string };
    // The 1.0 deployment schema is draft-07 and describes the old form we do not generate.
    if (schema.$schema?.includes('draft-04')) ajv.addSchema(schema);
  }
  return (file: string) => {
    const v = ajv.getSchema(`${BASE}${file}`);
    if (!v) throw new Error(`schema ${file} not found in ${SCHEMAS_DIR}`);
    return v;
  };
}

/** Readable errors of a failed validation (empty when valid). */
export function schemaErrors(v: ValidateFunction, data: unknown): string[] {
  if (v(data)) return [];
  return (v.errors ?? []).map(
    (e: ErrorObject) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`,
  );
}
