import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalEdgeRuntime, parseDeployment, type RuntimeReadyInfo } from '../../emulator/index.js';
import { createLogger } from '../../modules/common/index.js';

// The module images' build steps (modules/*/Dockerfile.*) on a clean copy: production
// dependencies only, then only the dist folders the Dockerfile copies. Each entry point must start
// and connect to edgeHub from there, so an image cannot ship with a missing dependency.

const app = mkdtempSync(join(tmpdir(), 'image-'));
const state = mkdtempSync(join(tmpdir(), 'image-state-'));
let runtime: LocalEdgeRuntime;
let ready: RuntimeReadyInfo;
const children: ChildProcess[] = [];

function manifest() {
  const mod = {
    type: 'docker',
    status: 'running',
    restartPolicy: 'always',
    settings: { image: 'example.azurecr.io/x:1' },
  };
  return {
    modulesContent: {
      $edgeAgent: {
        'properties.desired': {
          schemaVersion: '1.1',
          runtime: { type: 'docker', settings: {} },
          systemModules: {
            edgeAgent: { type: 'docker', settings: { image: 'a' } },
            edgeHub: { type: 'docker', settings: { image: 'h' } },
          },
          modules: { translator: mod, simulator: mod },
        },
      },
      $edgeHub: {
        'properties.desired': { schemaVersion: '1.1', routes: { up: 'FROM /messages/* INTO $upstream' } },
      },
    },
  };
}

beforeAll(async () => {
  cpSync('package.json', join(app, 'package.json'));
  cpSync('package-lock.json', join(app, 'package-lock.json'));
  // Asynchronous: a synchronous npm (45–75 s in CI) blocked the test worker past vitest's 60 s RPC
  // timeout ("Timeout calling onTaskUpdate"), which fails the run although every test passed.
  const npm = (args: string[]) =>
    promisify(execFile)('npm', args, { cwd: app, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 });
  try {
    await npm(['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund']);
  } catch {
    // Same npm 11 lockfile quirk as .ci/run: a clean install from the same lockfile instead.
    await npm(['install', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund']);
  }
  for (const dir of ['modules/common', 'modules/translator', 'modules/simulator']) {
    mkdirSync(join(app, 'dist', dir), { recursive: true });
    cpSync(resolve('dist', dir), join(app, 'dist', dir), { recursive: true });
  }
  runtime = new LocalEdgeRuntime({
    deployment: parseDeployment(manifest()),
    stateDir: state,
    ports: { mqtt: 0, amqp: 0, metrics: 0, iothub: 0, eventHubs: 0 },
    streamJob: false,
    logger: createLogger('test', { level: 'warn', pretty: false }),
  });
  ready = await runtime.start();
}, 300_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await runtime?.stop();
  rmSync(app, { recursive: true, force: true });
  rmSync(state, { recursive: true, force: true });
});

describe('module images with production dependencies only', () => {
  for (const name of ['translator', 'simulator'] as const) {
    it(`${name} starts from its image layout and connects to edgeHub`, async () => {
      const child = spawn(process.execPath, [join(app, 'dist', 'modules', name, 'main.js')], {
        cwd: app,
        env: {
          PATH: process.env.PATH ?? '',
          NODE_ENV: 'production',
          EdgeHubConnectionString: ready.modules[name] as string,
          EdgeModuleCACertificateFile: ready.caFile,
          EmbeddedBrokerEnabled: 'true',
          EmbeddedBrokerPort: '0',
          MetricsPort: '0',
          SourceBrokerUrl: 'mqtt://127.0.0.1:9',
          RuntimeLogLevel: 'warn',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      children.push(child);
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const identity = { deviceId: ready.edgeDeviceId, moduleId: name };
      const deadline = Date.now() + 30_000;
      while (!runtime.core?.isConnected(identity) && Date.now() < deadline && child.exitCode === null) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(child.exitCode, stderr.slice(-1500)).toBeNull();
      expect(runtime.core?.isConnected(identity), stderr.slice(-1500)).toBe(true);
      child.kill('SIGTERM');
    });
  }
});
