import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, type Logger } from '../modules/common/index.js';
import { EdgeAgentTwin } from './agent/agent-twin.js';
import { localEntryPoint, localImageEnv } from './agent/image-map.js';
import type { DeploymentSpec, ModuleSpec } from './agent/manifest.js';
import { parseDeployment } from './agent/manifest.js';
import { ModuleSupervisor } from './agent/supervisor.js';
import { AmqpEndpoint } from './edgehub/amqp-endpoint.js';
import type { MessageIntake } from './edgehub/contracts.js';
import { EdgeHubCore } from './edgehub/core.js';
import type { EdgeMessage } from './edgehub/message.js';
import { EdgeHubMetrics } from './edgehub/metrics.js';
import { MqttEndpoint } from './edgehub/mqtt-endpoint.js';
import { type EdgeHubEnvSettings, parseEdgeHubDesired, parseEdgeHubEnv } from './edgehub/settings.js';
import { StoreAndForward } from './edgehub/store-and-forward.js';
import { EventHubsServer, EventLog } from './eventhubs/index.js';
import { IotHubIngest } from './iothub/ingest.js';
import { LinkModel } from './iothub/link-model.js';
import { DEFAULT_HUB_HOST_NAME, IdentityRegistry } from './iothub/registry.js';
import { createLocalHubAgent } from './iothub/rest-client-agent.js';
import { IotHubRestServer } from './iothub/rest-server.js';
import { RuntimeServiceBackend } from './iothub/service-backend.js';
import { ensureRuntimeCertificates, type RuntimeCertificates } from './pki/index.js';
import type { LocalEdgeRuntimeOptions } from './runtime-options.js';
import { StreamJobRunner } from './streamjob/index.js';

/** The line `edgeperf emulator --json` prints once ready (architecture.md). */
export interface RuntimeReadyInfo {
  readonly ready: true;
  readonly gatewayHost: string;
  readonly caFile: string;
  readonly edgeDeviceId: string;
  readonly edgeHub: { readonly mqtt: string; readonly amqp: string; readonly metrics: string };
  /** Module name → connection string (MQTT port in GatewayHostName when not 8883). */
  readonly modules: Readonly<Record<string, string>>;
  /** Service connection string (`HostName=host:port` when the REST port is not 443). */
  readonly iothub: string;
  readonly eventHubs: {
    readonly builtin: string;
    /** The stream job's output event hub (`asa-output`), as the ASA job's Event Hub output. */
    readonly asaOutput: string;
  };
}

/** Event hub the local stream job writes its rows to (the ASA job's output). */
const ASA_OUTPUT_HUB = 'asa-output';
/** Consumer group the local stream job reads the built-in endpoint with (the ASA input's own). */
const STREAM_JOB_CONSUMER_GROUP = 'streamjob';

/** Env names a module may use to pick AMQP; its connection string then carries the AMQP port. */
const AMQP_TRANSPORT_VALUES = new Set(['sdk-amqp', 'amqp', 'amqps']);

/**
 * The local edge runtime: edgeHub (MQTT + AMQP over TLS, routes, store and forward, upstream pump,
 * metrics), IoT Hub (identity registry, ingest with tier throttles over a modelled link, service REST
 * API, built-in Event Hub-compatible endpoint) and the agent (identities and child processes for the
 * manifest's modules), all on loopback.
 */
export class LocalEdgeRuntime {
  private readonly logger: Logger;
  private deployment: DeploymentSpec;
  private certs: RuntimeCertificates | undefined;
  private registryRef: IdentityRegistry | undefined;
  private coreRef: EdgeHubCore | undefined;
  private safRef: StoreAndForward | undefined;
  private metricsRef: EdgeHubMetrics | undefined;
  private ingestRef: IotHubIngest | undefined;
  private linkRef: LinkModel | undefined;
  private eventLogRef: EventLog | undefined;
  private eventHubsRef: EventHubsServer | undefined;
  private streamJobRef: StreamJobRunner | undefined;
  private mqtt: MqttEndpoint | undefined;
  private amqp: AmqpEndpoint | undefined;
  private rest: IotHubRestServer | undefined;
  private supervisorRef: ModuleSupervisor | undefined;
  private agentTwin: EdgeAgentTwin | undefined;
  private env: EdgeHubEnvSettings | undefined;
  private ready: RuntimeReadyInfo | undefined;
  /** Module name → spec last applied (a changed spec restarts the module). */
  private readonly applied = new Map<string, string>();
  /** Module name → desired properties last applied (a change replaces the twin's desired). */
  private readonly appliedTwins = new Map<string, string>();

  constructor(private readonly options: LocalEdgeRuntimeOptions) {
    this.logger = options.logger ?? createLogger('runtime');
    this.deployment = options.deployment;
  }

  get edgeDeviceId(): string {
    return this.options.edgeDeviceId ?? 'edge-device';
  }

  /** Name of the built-in endpoint's event hub (IoT Hub names it after the hub). */
  get builtinEventHubName(): string {
    return this.hubHostName.split('.')[0] ?? 'edgeperf-local';
  }

  private get hubHostName(): string {
    return this.options.hubHostName ?? DEFAULT_HUB_HOST_NAME;
  }

  private get gateway(): string {
    return this.options.gatewayHostName ?? 'localhost';
  }

  /**
   * Starts every part, registers and starts the manifest's modules, and returns the connection
   * details. Rejects (after stopping what started) when a manifest setting is invalid or a port is taken.
   */
  async start(): Promise<RuntimeReadyInfo> {
    try {
      return await this.startParts();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async startParts(): Promise<RuntimeReadyInfo> {
    const { stateDir } = this.options;
    const host = this.options.listenHost ?? '127.0.0.1';
    const ports = this.options.ports ?? {};
    mkdirSync(stateDir, { recursive: true });
    // The manifest's StorageFolder is a container path; on this machine edgeHub's store lives in the state dir.
    this.env = parseEdgeHubEnv({ ...this.deployment.edgeHubEnv, StorageFolder: join(stateDir, 'storage') });
    const desired = parseEdgeHubDesired(this.deployment.edgeHubDesired);

    this.certs = await ensureRuntimeCertificates({ stateDir, hostNames: [this.gateway] });
    const registry = new IdentityRegistry({ stateDir, hubHostName: this.hubHostName });
    registry.open();
    this.registryRef = registry;

    const partitionCount = this.options.hub?.partitionCount ?? 4;
    const eventLog = new EventLog({
      hubs: [
        { name: this.builtinEventHubName, partitionCount, consumerGroups: [STREAM_JOB_CONSUMER_GROUP] },
        { name: ASA_OUTPUT_HUB, partitionCount: 2 },
      ],
      retention: {
        // Bounded: a long soak keeps the last hour or these many events per partition, whichever is less.
        maxEventsPerPartition: this.options.retentionEventsPerPartition ?? 200_000,
        maxBytesPerPartition: 256 * 1024 * 1024,
        retentionSecs: 3600,
      },
    });
    this.eventLogRef = eventLog;
    const builtin = eventLog.hub(this.builtinEventHubName);
    this.ingestRef = new IotHubIngest({
      ...(this.options.hub?.tier ? { tier: this.options.hub.tier } : {}),
      ...(this.options.hub?.units ? { units: this.options.hub.units } : {}),
      partitionCount,
      onEnqueued: (partitionId, message, enqueuedTimeMs) => {
        builtin.append([toBuiltinEvent(message, enqueuedTimeMs)], { partitionId: String(partitionId) });
      },
    });
    this.linkRef = new LinkModel(this.ingestRef, this.options.link ?? {});
    this.linkRef.start();

    this.metricsRef = new EdgeHubMetrics({
      iothub: this.hubHostName,
      edgeDevice: this.edgeDeviceId,
      storageFolder: this.env.storageFolder,
    });
    const metricsUrl = await this.metricsRef.start(ports.metrics ?? this.env.metricsListenerPort, host);

    // The core and store-and-forward need each other (intake / input delivery): bind through a forwarder.
    const intake: MessageIntake = { accept: (m) => (this.safRef as StoreAndForward).accept(m) };
    const core = new EdgeHubCore({
      registry,
      intake,
      gatewayHostName: this.gateway,
      edgeDeviceId: this.edgeDeviceId,
      logger: this.logger.child({ component: 'edgehub' }),
    });
    this.coreRef = core;
    this.safRef = new StoreAndForward({
      env: this.env,
      desired,
      upstream: this.linkRef,
      inputs: core,
      metrics: this.metricsRef,
      logger: this.logger.child({ component: 'store' }),
      ...(this.options.retryBaseMs === undefined ? {} : { retryBaseMs: this.options.retryBaseMs }),
    });
    await this.safRef.start();
    // A module that (re)connects gets its queued inputs at once rather than after the retry delay.
    core.on('connected', (identity) => {
      if (identity.moduleId !== undefined) this.safRef?.moduleConnected(identity.moduleId);
    });

    const tls = { certPem: this.certs.certPem, keyPem: this.certs.keyPem };
    this.mqtt = new MqttEndpoint({
      core,
      ...tls,
      host,
      port: ports.mqtt ?? 8883,
      gatewayHostName: this.gateway,
      stateDir,
      ackTimeoutInMs: this.env.messageAckTimeoutSecs * 1000,
      logger: this.logger.child({ component: 'edgehub-mqtt' }),
    });
    await this.mqtt.start();
    this.amqp = new AmqpEndpoint({
      core,
      ...tls,
      host,
      port: ports.amqp ?? 5671,
      logger: this.logger.child({ component: 'edgehub-amqp' }),
    });
    await this.amqp.start();

    this.eventHubsRef = new EventHubsServer({
      log: eventLog,
      host,
      port: ports.eventHubs ?? 5672,
      sharedAccessKeys: [{ keyName: 'service', key: registry.serviceKey }],
      logger: this.logger.child({ component: 'eventhubs' }),
    });
    await this.eventHubsRef.start();
    if (this.options.streamJob ?? true) {
      this.streamJobRef = new StreamJobRunner({
        inputConnectionString: this.eventHubsRef.connectionString(this.builtinEventHubName, 'service'),
        consumerGroup: STREAM_JOB_CONSUMER_GROUP,
        outputConnectionString: this.eventHubsRef.connectionString(ASA_OUTPUT_HUB, 'service'),
        // asa/JobConfig.json's ordering policy, so local rows close windows as the ASA job does.
        lateArrivalMaxDelaySecs: 5,
        outOfOrderMaxDelaySecs: 2,
        outOfOrderPolicy: 'Adjust',
        logger: this.logger.child({ component: 'streamjob' }),
      });
      await this.streamJobRef.start();
    }

    const backend = new RuntimeServiceBackend({
      registry,
      core,
      deploy: async (_deviceId, content) => this.deploy(parseDeployment(content)),
    });
    this.rest = new IotHubRestServer({
      backend,
      ...tls,
      host,
      port: ports.iothub ?? 0,
      hubHostName: this.gateway,
      logger: this.logger.child({ component: 'iothub-rest' }),
    });
    await this.rest.start();

    this.supervisorRef = new ModuleSupervisor({
      logDir: join(stateDir, 'logs'),
      logger: this.logger.child({ component: 'agent' }),
    });
    this.agentTwin = new EdgeAgentTwin({
      registry,
      deviceId: this.edgeDeviceId,
      supervisor: this.supervisorRef,
      logger: this.logger.child({ component: 'agent-twin' }),
    });
    this.agentTwin.start();
    const versions = this.agentTwin.setDesired(this.deployment);
    await this.applyModules(this.deployment);
    this.agentTwin.succeeded(versions, this.deployment);

    const modules: Record<string, string> = {};
    for (const m of this.deployment.modules) modules[m.name] = this.moduleConnectionString(m);
    this.ready = {
      ready: true,
      gatewayHost: this.gateway,
      caFile: this.certs.caFile,
      edgeDeviceId: this.edgeDeviceId,
      edgeHub: {
        mqtt: `mqtts://${this.gateway}:${this.mqtt.port}`,
        amqp: `amqps://${this.gateway}:${this.amqp.port}`,
        metrics: `${metricsUrl.replace(/\/metrics$/, '')}/metrics`,
      },
      modules,
      iothub: this.rest.serviceConnectionString('iothubowner', registry.serviceKey),
      eventHubs: {
        builtin: this.eventHubsRef.connectionString(this.builtinEventHubName, 'service'),
        asaOutput: this.eventHubsRef.connectionString(ASA_OUTPUT_HUB, 'service'),
      },
    };
    this.logger.info({ modules: Object.keys(modules) }, 'local edge runtime ready');
    return this.ready;
  }

  /**
   * Re-applies a deployment: changed or new modules (re)start, removed ones stop, twins are replaced,
   * routes and store settings change in place without losing queued messages. As on a device, the
   * `$edgeAgent`/`$edgeHub` desired properties are replaced first (`$version` grows on every call),
   * then `$edgeAgent` reports `lastDesiredVersion` with `lastDesiredStatus` 200, or 400/500 and
   * the reason when applying failed (the error is rethrown too).
   */
  async deploy(next: DeploymentSpec): Promise<void> {
    const versions = this.agentTwin?.setDesired(next);
    try {
      await this.applyDeployment(next);
    } catch (err) {
      if (versions) this.agentTwin?.failed(versions, err);
      throw err;
    }
    if (versions) this.agentTwin?.succeeded(versions, next);
  }

  private async applyDeployment(next: DeploymentSpec): Promise<void> {
    const desired = parseEdgeHubDesired(next.edgeHubDesired);
    const env = parseEdgeHubEnv({
      ...next.edgeHubEnv,
      StorageFolder: join(this.options.stateDir, 'storage'),
    });
    this.safRef?.reconfigure({ desired, env });
    this.env = env;
    const names = new Set(next.modules.map((m) => m.name));
    for (const old of this.deployment.modules) {
      if (!names.has(old.name)) {
        await this.supervisorRef?.stopOne(old.name);
        this.applied.delete(old.name);
        this.appliedTwins.delete(old.name);
      }
    }
    this.deployment = next;
    await this.applyModules(next);
  }

  private async applyModules(deployment: DeploymentSpec): Promise<void> {
    const registry = this.registryRef as IdentityRegistry;
    const core = this.coreRef as EdgeHubCore;
    for (const spec of deployment.modules) {
      const identity = { deviceId: this.edgeDeviceId, moduleId: spec.name };
      registry.ensure(identity);
      const twin = JSON.stringify(spec.desired);
      if (this.appliedTwins.get(spec.name) !== twin) core.replaceDesired(identity, { ...spec.desired });
      this.appliedTwins.set(spec.name, twin);
      const fingerprint = JSON.stringify(spec);
      if (this.applied.get(spec.name) === fingerprint) continue;
      this.applied.set(spec.name, fingerprint);
      const entry = this.options.startModules === false ? undefined : localEntryPoint(spec.image);
      if (entry === undefined) {
        this.logger.info(
          { module: spec.name, image: spec.image },
          'module registered only (no local entry point)',
        );
        continue;
      }
      await this.supervisorRef?.run({
        spec,
        entryPoint: entry,
        imageEnv: localImageEnv(spec.image),
        runtimeEnv: {
          EdgeHubConnectionString: this.moduleConnectionString(spec),
          EdgeModuleCACertificateFile: (this.certs as RuntimeCertificates).caFile,
          IOTEDGE_DEVICEID: this.edgeDeviceId,
          IOTEDGE_MODULEID: spec.name,
          IOTEDGE_IOTHUBHOSTNAME: this.hubHostName,
          IOTEDGE_GATEWAYHOSTNAME: this.gateway,
          RuntimeLogLevel: spec.env.RuntimeLogLevel ?? 'info',
        },
      });
    }
  }

  /** A module's connection string; the gateway carries the port the module's transport needs. */
  moduleConnectionString(spec: ModuleSpec): string {
    const registry = this.registryRef as IdentityRegistry;
    const transport = (spec.env.UpstreamTransport ?? spec.env.Transport ?? '').toLowerCase();
    const amqp = AMQP_TRANSPORT_VALUES.has(transport);
    const port = amqp ? this.amqp?.port : this.mqtt?.port;
    const standard = amqp ? 5671 : 8883;
    const gateway = port === undefined || port === standard ? this.gateway : `${this.gateway}:${port}`;
    return registry.connectionString(this.edgeDeviceId, spec.name, gateway);
  }

  /** The connection details (after start). */
  get readyInfo(): RuntimeReadyInfo | undefined {
    return this.ready;
  }

  get core(): EdgeHubCore | undefined {
    return this.coreRef;
  }

  get storeAndForward(): StoreAndForward | undefined {
    return this.safRef;
  }

  get ingest(): IotHubIngest | undefined {
    return this.ingestRef;
  }

  get link(): LinkModel | undefined {
    return this.linkRef;
  }

  get metrics(): EdgeHubMetrics | undefined {
    return this.metricsRef;
  }

  get supervisor(): ModuleSupervisor | undefined {
    return this.supervisorRef;
  }

  get registry(): IdentityRegistry | undefined {
    return this.registryRef;
  }

  get eventLog(): EventLog | undefined {
    return this.eventLogRef;
  }

  /** The local stream job (after start, when the `streamJob` option is on). */
  get streamJob(): StreamJobRunner | undefined {
    return this.streamJobRef;
  }

  /** An https.Agent that trusts the runtime CA and reaches the REST port (for the azure-iothub SDK in-process). */
  serviceAgent(): ReturnType<typeof createLocalHubAgent> {
    return createLocalHubAgent({ caPem: (this.certs as RuntimeCertificates).caPem });
  }

  /**
   * Stops modules first (they flush into edgeHub), then the servers, then the store (backup if
   * configured), then the stream job (flushing open windows), then the Event Hubs endpoint.
   */
  async stop(): Promise<void> {
    // edgeAgent going down reports nothing about the modules it stops.
    this.agentTwin?.stop();
    await this.supervisorRef?.stopAll();
    await this.mqtt?.stop();
    await this.amqp?.stop();
    await this.rest?.stop();
    await this.safRef?.stop();
    // Before the server: its last windows are flushed to asa-output while the server still runs.
    await this.streamJobRef?.stop();
    await this.eventHubsRef?.stop();
    await this.metricsRef?.stop();
  }
}

/** How IoT Hub presents a device-to-cloud message on its built-in endpoint. */
function toBuiltinEvent(message: EdgeMessage, enqueuedTimeMs: number) {
  const s = message.system;
  const annotations: Record<string, string | number | boolean | Date> = {
    'iothub-connection-device-id': s.connectionDeviceId,
    'iothub-enqueuedtime': new Date(enqueuedTimeMs),
    'iothub-message-source': 'Telemetry',
    'iothub-connection-auth-method': '{"scope":"module","type":"sas","issuer":"iothub"}',
  };
  if (s.connectionModuleId !== undefined) annotations['iothub-connection-module-id'] = s.connectionModuleId;
  return {
    body: message.body,
    properties: { ...message.properties },
    annotations,
    amqpProperties: {
      message_id: s.messageId,
      correlation_id: s.correlationId,
      content_type: s.contentType,
      content_encoding: s.contentEncoding,
      user_id: s.userId,
    },
    enqueuedTimeMs,
  };
}
