import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

// scripts/provision-azure.sh, run with --dry-run against fixtures (exact az command lines) and for
// real against a fake az on PATH (idempotency, key files, printed settings).
const repo = resolve(import.meta.dirname, '../..');
const script = join(repo, 'scripts/provision-azure.sh');
const fixtures = join(repo, 'test/fixtures/scripts');
const fixtureAsa = join(fixtures, 'asa');

let tmp: string;
let bin: string;
let trapLog: string;

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'edgeperf-provision-'));
  bin = join(tmp, 'bin');
  trapLog = join(tmp, 'trap.log');
  writeFileSync(trapLog, '');
  spawnSync('mkdir', ['-p', bin]);
});

afterEach(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** Puts `name` on the test PATH as a wrapper around a fixture script. */
function onPath(name: string, fixture: string): void {
  const file = join(bin, name);
  writeFileSync(file, `#!/usr/bin/env bash\nexec bash ${JSON.stringify(join(fixtures, fixture))} "$@"\n`);
  chmodSync(file, 0o755);
}

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync('bash', [script, ...args], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, TRAP_LOG: trapLog, ...env },
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stdout.split('\n').filter(Boolean) };
}

describe('provision-azure.sh --dry-run', () => {
  it('prints every az command of a first run, bound to the flags and the ASA project files', () => {
    // az must never run in a dry run: a trap stands in for it (and for curl).
    onPath('az', 'trap-command');
    onPath('curl', 'trap-command');
    const wd = join(tmp, 'wd');
    const r = run([
      '--dry-run',
      '--asa-dir',
      fixtureAsa,
      '--work-dir',
      wd,
      '--prefix',
      'perfx',
      '--resource-group',
      'rg-perf',
      '--location',
      'northeurope',
      '--hub-sku',
      'S3',
      '--hub-units=2',
      '--hub-partitions',
      '8',
      '--device-id',
      'dev-1',
      '--eventhub-partitions',
      '2',
      '--log-analytics',
      '--subscription',
      'sub-1',
    ]);
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    expect(readFileSync(trapLog, 'utf8')).toBe('');
    const s = '--subscription sub-1';
    const rg = '--resource-group rg-perf';
    const eh = `${rg} --namespace-name perfx-ehns --eventhub-name fixture-results`;
    const job = `${rg} --job-name perfx-asa`;
    expect(r.lines).toEqual([
      'az extension show --name azure-iot --output none',
      'az extension add --name azure-iot --output none',
      'az extension show --name stream-analytics --output none',
      'az extension add --name stream-analytics --output none',
      `az group show --name rg-perf --output none ${s}`,
      `az group create --name rg-perf --location northeurope --output none ${s}`,
      `az iot hub show --name perfx-hub ${rg} --output none ${s}`,
      `az iot hub create --name perfx-hub ${rg} --location northeurope --sku S3 --unit 2 --partition-count 8 --output none ${s}`,
      `az iot hub consumer-group show --hub-name perfx-hub ${rg} --name fixture-cg --output none ${s}`,
      `az iot hub consumer-group create --hub-name perfx-hub ${rg} --name fixture-cg --output none ${s}`,
      `az iot hub consumer-group show --hub-name perfx-hub ${rg} --name edgeperf --output none ${s}`,
      `az iot hub consumer-group create --hub-name perfx-hub ${rg} --name edgeperf --output none ${s}`,
      `az iot hub device-identity show --hub-name perfx-hub ${rg} --device-id dev-1 --output none ${s}`,
      `az iot hub device-identity create --hub-name perfx-hub ${rg} --device-id dev-1 --edge-enabled --output none ${s}`,
      `az eventhubs namespace show ${rg} --name perfx-ehns --output none ${s}`,
      `az eventhubs namespace create ${rg} --name perfx-ehns --location northeurope --sku Standard --output none ${s}`,
      `az eventhubs eventhub show ${rg} --namespace-name perfx-ehns --name fixture-results --output none ${s}`,
      `az eventhubs eventhub create ${rg} --namespace-name perfx-ehns --name fixture-results --partition-count 2 --output none ${s}`,
      `az eventhubs eventhub authorization-rule show ${eh} --name asa-send --output none ${s}`,
      `az eventhubs eventhub authorization-rule create ${eh} --name asa-send --rights Send --output none ${s}`,
      `az eventhubs eventhub authorization-rule show ${eh} --name listen --output none ${s}`,
      `az eventhubs eventhub authorization-rule create ${eh} --name listen --rights Listen --output none ${s}`,
      `az stream-analytics job show ${rg} --name perfx-asa --output none ${s}`,
      `az stream-analytics job create ${rg} --name perfx-asa --location northeurope --compatibility-level 1.2 --data-locale de-DE --arrival-max-delay 7 --order-max-delay 3 --out-of-order-policy Drop --output-error-policy Drop --content-storage-policy SystemAccount --output none ${s}`,
      `az stream-analytics input show ${job} --name telemetry --output none ${s}`,
      `az iot hub policy show --hub-name perfx-hub ${rg} --name service --query primaryKey --output tsv ${s}`,
      `# write ${wd}/asa-input-telemetry.json (mode 600): {"type":"Stream","datasource":{"type":"Microsoft.Devices/IotHubs","properties":{"iotHubNamespace":"perfx-hub","sharedAccessPolicyName":"service","sharedAccessPolicyKey":"<iothub-service-key>","endpoint":"messages/events","consumerGroupName":"fixture-cg"}},"serialization":{"type":"Json","properties":{"encoding":"UTF8"}},"compression":{"type":"GZip"}}`,
      `az stream-analytics input create ${job} --name telemetry --properties @${wd}/asa-input-telemetry.json --output none ${s}`,
      `az stream-analytics output show ${job} --name results --output none ${s}`,
      `az eventhubs eventhub authorization-rule keys list ${eh} --name asa-send --query primaryKey --output tsv ${s}`,
      `# write ${wd}/asa-output-results-datasource.json (mode 600): {"type":"Microsoft.ServiceBus/EventHub","properties":{"serviceBusNamespace":"perfx-ehns","eventHubName":"fixture-results","sharedAccessPolicyName":"asa-send","sharedAccessPolicyKey":"<eventhub-asa-send-key>","partitionKey":"sid"}}`,
      `# write ${wd}/asa-output-results-serialization.json (mode 600): {"type":"Json","properties":{"encoding":"UTF8","format":"LineSeparated"}}`,
      `az stream-analytics output create ${job} --name results --datasource @${wd}/asa-output-results-datasource.json --serialization @${wd}/asa-output-results-serialization.json --output none ${s}`,
      `az stream-analytics transformation show ${job} --name Transformation --output none ${s}`,
      `az stream-analytics transformation create ${job} --name Transformation --streaming-units 1 --saql @${fixtureAsa}/edgeperf.asaql --output none ${s}`,
      `az stream-analytics job show ${rg} --name perfx-asa --query jobState --output tsv ${s}`,
      `az stream-analytics job start ${rg} --name perfx-asa --output-start-mode JobStartTime --output none ${s}`,
      `az monitor log-analytics workspace show ${rg} --workspace-name perfx-law --output none ${s}`,
      `az monitor log-analytics workspace create ${rg} --workspace-name perfx-law --location northeurope --output none ${s}`,
      `az monitor log-analytics workspace show ${rg} --workspace-name perfx-law --query customerId --output tsv ${s}`,
      `az monitor log-analytics workspace get-shared-keys ${rg} --workspace-name perfx-law --query primarySharedKey --output tsv ${s}`,
      `az iot hub show --name perfx-hub ${rg} --query id --output tsv ${s}`,
      `az iot hub connection-string show --hub-name perfx-hub ${rg} --policy-name iothubowner --key-type primary --query connectionString --output tsv ${s}`,
      `az iot hub connection-string show --hub-name perfx-hub ${rg} --default-eventhub --policy-name service --key-type primary --query connectionString --output tsv ${s}`,
      `az eventhubs eventhub authorization-rule keys list ${eh} --name listen --query primaryConnectionString --output tsv ${s}`,
      `az iot hub device-identity connection-string show --hub-name perfx-hub ${rg} --device-id dev-1 --query connectionString --output tsv ${s}`,
      '# edgeperf settings for perfx-hub (private: these hold keys)',
      "EDGEPERF_IOTHUB_CONNECTION_STRING='<iothub-connection-string>'",
      "EDGEPERF_EVENTHUB_CONNECTION_STRING='<iothub-builtin-endpoint-connection-string>'",
      "EDGEPERF_CONSUMER_GROUP='edgeperf'",
      "EDGEPERF_ASA_EVENTHUB_CONNECTION_STRING='<asa-eventhub-connection-string>'",
      "EDGEPERF_ASA_EVENTHUB_NAME='fixture-results'",
      "EDGEPERF_DEVICE_ID='dev-1'",
      "EDGEPERF_DEVICE_CONNECTION_STRING='<device-connection-string>'",
      "EDGEPERF_LOG_ANALYTICS_WORKSPACE_ID='<log-analytics-workspace-id>'",
      "EDGEPERF_LOG_ANALYTICS_SHARED_KEY='<log-analytics-shared-key>'",
      "EDGEPERF_IOTHUB_RESOURCE_ID='<iothub-resource-id>'",
    ]);
    // Nothing is written in a dry run.
    expect(() => readdirSync(wd)).toThrow();
  });

  it('reads the real asa/ project: input, output and job settings as a JSON parser sees them', () => {
    const r = run(['--dry-run', '--work-dir', '/tmp/wd', '--no-start']);
    expect(r.code).toBe(0);
    const asa = join(repo, 'asa');
    const input = JSON.parse(readFileSync(join(asa, 'Inputs/hub.json'), 'utf8'));
    const output = JSON.parse(readFileSync(join(asa, 'Outputs/eventhub.json'), 'utf8'));
    const config = JSON.parse(readFileSync(join(asa, 'JobConfig.json'), 'utf8'));
    const written = (suffix: string) => {
      const line = r.lines.find((l) => l.startsWith('# write') && l.includes(suffix));
      expect(line, suffix).toBeDefined();
      return JSON.parse((line ?? '').replace(/^# write \S+ \(mode 600\): /, ''));
    };
    const inProps = written(`asa-input-${input.Name}.json`).datasource.properties;
    expect(inProps.sharedAccessPolicyName).toBe(input.IoTHubProperties.SharedAccessPolicyName);
    expect(inProps.consumerGroupName).toBe(input.IoTHubProperties.ConsumerGroupName);
    expect(inProps.endpoint).toBe(input.IoTHubProperties.Endpoint);
    const outProps = written(`asa-output-${output.Name}-datasource.json`).properties;
    expect(outProps.eventHubName).toBe(output.EventHubProperties.EventHubName);
    expect(outProps.sharedAccessPolicyName).toBe(output.EventHubProperties.SharedAccessPolicyName);
    expect(r.stdout).toContain(`--streaming-units ${config.StreamingUnits} --saql @${asa}/edgeperf.asaql`);
    expect(r.stdout).toContain(`--compatibility-level ${config.CompatibilityLevel} `);
    expect(r.stdout).toContain(`EDGEPERF_ASA_EVENTHUB_NAME='${output.EventHubProperties.EventHubName}'`);
    // edgeperf's consumer group on the built-in endpoint is not the job's.
    expect(input.IoTHubProperties.ConsumerGroupName).not.toBe('edgeperf');
    expect(r.stdout).toContain("EDGEPERF_CONSUMER_GROUP='edgeperf'");
    // --no-start: no start command.
    expect(r.stdout).not.toContain('job start');
  });

  it("refuses an ASA input that reads edgeperf's own consumer group", () => {
    const asa = join(tmp, 'asa');
    cpSync(fixtureAsa, asa, { recursive: true });
    const input = join(asa, 'Inputs/hub.json');
    writeFileSync(input, readFileSync(input, 'utf8').replace('"fixture-cg"', '"edgeperf"'));
    const r = run(['--dry-run', '--asa-dir', asa]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).toBe(
      `provision-azure.sh: ${input}: ConsumerGroupName must not be edgeperf, which edgeperf run reads`,
    );
  });

  it('prints --help with every flag and its default', () => {
    const r = run(['--help']);
    expect(r.code).toBe(0);
    for (const flag of [
      '--resource-group',
      '--location',
      '--prefix',
      '--subscription',
      '--hub-name',
      '--hub-sku',
      '--hub-units',
      '--hub-partitions',
      '--device-id',
      '--eventhubs-namespace',
      '--eventhubs-sku',
      '--eventhub-name',
      '--eventhub-partitions',
      '--asa-dir',
      '--job-name',
      '--streaming-units',
      '--no-start',
      '--log-analytics',
      '--workspace-name',
      '--env-file',
      '--work-dir',
      '--dry-run',
      'EDGEPERF_IOTHUB_CONNECTION_STRING',
      'EDGEPERF_EVENTHUB_CONNECTION_STRING',
      'EDGEPERF_CONSUMER_GROUP',
      'EDGEPERF_ASA_EVENTHUB_CONNECTION_STRING',
      'EDGEPERF_ASA_EVENTHUB_NAME',
      'EDGEPERF_DEVICE_ID',
    ]) {
      expect(r.stdout).toContain(flag);
    }
    expect(r.stdout).toContain('(default: S1)');
  });

  it.each([
    [['--hub-sku', 'B1'], "--hub-sku 'B1' is not valid: F1, S1, S2 or S3"],
    [['--hub-units', '0'], "--hub-units '0' is not valid: an integer from 1 to 200"],
    [['--hub-units', 'many'], "--hub-units 'many' is not valid"],
    [['--eventhub-partitions', '64'], "--eventhub-partitions '64' is not valid: an integer from 1 to 32"],
    [['--location'], '--location needs a value'],
    [['--frobnicate'], "unknown argument '--frobnicate'"],
    [['--device-id', 'a b'], "--device-id 'a b' is not valid"],
    [['--asa-dir', '/nonexistent'], "--asa-dir '/nonexistent' is not a directory"],
  ])('rejects %j with one line and exit 2', (args, message) => {
    const r = run(['--dry-run', ...args]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(message);
    expect(lines[0]).toMatch(/^provision-azure\.sh: .*\(run with --help for usage\)$/);
  });
});

describe('provision-azure.sh against a fake az', () => {
  function runFake(existing: string[], extraArgs: string[] = [], jobState = 'Stopped') {
    onPath('az', 'fake-az');
    const log = join(tmp, 'az.log');
    const existingFile = join(tmp, 'existing');
    writeFileSync(log, '');
    writeFileSync(existingFile, existing.map((e) => `${e}\n`).join(''));
    const wd = join(tmp, 'keys');
    const r = run(['--asa-dir', fixtureAsa, '--work-dir', wd, ...extraArgs], {
      FAKE_AZ_LOG: log,
      FAKE_AZ_EXISTING: existingFile,
      FAKE_AZ_JOB_STATE: jobState,
    });
    return { ...r, log: readFileSync(log, 'utf8').split('\n').filter(Boolean), wd };
  }

  it('creates what is missing, passes keys in files it deletes afterwards, and prints the settings', () => {
    const envFile = join(tmp, 'edgeperf.env');
    const r = runFake([], ['--env-file', envFile]);
    expect(r.stderr).not.toMatch(/failed|not found/);
    expect(r.code).toBe(0);
    const creates = r.log.filter((l) => / (create|add|start) /.test(l));
    expect(creates.map((l) => l.split(' --')[0])).toEqual([
      'az extension add',
      'az extension add',
      'az group create',
      'az iot hub create',
      'az iot hub consumer-group create',
      'az iot hub consumer-group create',
      'az iot hub device-identity create',
      'az eventhubs namespace create',
      'az eventhubs eventhub create',
      'az eventhubs eventhub authorization-rule create',
      'az eventhubs eventhub authorization-rule create',
      'az stream-analytics job create',
      'az stream-analytics input create',
      'az stream-analytics output create',
      'az stream-analytics transformation create',
      'az stream-analytics job start',
    ]);
    // az read the key from the property file while the script ran...
    const inputFile = r.log.find((l) => l.startsWith(`file ${r.wd}/asa-input-telemetry.json`));
    expect(inputFile).toContain('"sharedAccessPolicyKey":"fake-primaryKey"');
    // ...and the file is gone now (the directory was the caller's, so it stays).
    expect(readdirSync(r.wd)).toEqual([]);
    expect(
      creates.filter((l) => l.includes('consumer-group create')).map((l) => l.split(' --name ')[1]),
    ).toEqual(['fixture-cg --output none', 'edgeperf --output none']);
    // The built-in endpoint's connection string comes from the service policy, Event Hub-compatible.
    expect(r.log).toContain(
      'az iot hub connection-string show --hub-name edgeperf-hub --resource-group edgeperf --default-eventhub --policy-name service --key-type primary --query connectionString --output tsv',
    );
    const settings = [
      "EDGEPERF_IOTHUB_CONNECTION_STRING='fake-connectionString'",
      "EDGEPERF_EVENTHUB_CONNECTION_STRING='fake-connectionString'",
      "EDGEPERF_CONSUMER_GROUP='edgeperf'",
      "EDGEPERF_ASA_EVENTHUB_CONNECTION_STRING='fake-primaryConnectionString'",
      "EDGEPERF_ASA_EVENTHUB_NAME='fixture-results'",
      "EDGEPERF_DEVICE_ID='edgeperf-device'",
      "EDGEPERF_DEVICE_CONNECTION_STRING='fake-connectionString'",
    ];
    expect(r.lines.filter((l) => !l.startsWith('#'))).toEqual(settings);
    const envText = readFileSync(envFile, 'utf8');
    expect(envText.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual(settings);
    expect(spawnSync('stat', ['-c', '%a', envFile], { encoding: 'utf8' }).stdout.trim()).toBe('600');
  });

  it('is idempotent: creates nothing that exists and does not restart a running job', () => {
    const r = runFake(
      [
        'extension show',
        'group show',
        'iot hub show',
        'iot hub consumer-group show',
        'iot hub device-identity show',
        'eventhubs namespace show',
        'eventhubs eventhub show',
        'eventhubs eventhub authorization-rule show',
        'stream-analytics job show',
        'stream-analytics input show',
        'stream-analytics output show',
        'stream-analytics transformation show',
      ],
      [],
      'Running',
    );
    expect(r.code).toBe(0);
    expect(r.log.filter((l) => / (create|add|start) /.test(l))).toEqual([]);
    expect(r.stderr).toContain('job edgeperf-asa is already Running');
    expect(r.lines).toContain("EDGEPERF_DEVICE_ID='edgeperf-device'");
  });
});
