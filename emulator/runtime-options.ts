import type { Logger } from '../modules/common/index.js';
import type { DeploymentSpec } from './agent/manifest.js';
import type { IotHubTier } from './iothub/ingest.js';
import type { LinkOutage } from './iothub/link-model.js';

/** Ports of the runtime's servers. 0 picks a free port (tests); defaults are the real ones. */
export interface RuntimePorts {
  /** edgeHub MQTT over TLS. Default 8883. */
  readonly mqtt?: number;
  /** edgeHub AMQP over TLS. Default 5671. */
  readonly amqp?: number;
  /** edgeHub Prometheus `/metrics`. Default `Metrics__Listener__Port` from the manifest, else 9600. */
  readonly metrics?: number;
  /** IoT Hub service REST API (HTTPS). Default 0: the service SDK cannot take a port, see README. */
  readonly iothub?: number;
  /** Event Hubs-compatible AMQP endpoint (plain TCP, `UseDevelopmentEmulator=true`). Default 5672. */
  readonly eventHubs?: number;
}

/** Options for {@link LocalEdgeRuntime}. */
export interface LocalEdgeRuntimeOptions {
  /** The deployment to run (from `loadDeployment`). */
  readonly deployment: DeploymentSpec;
  /** Certificates, identities, module logs and edgeHub storage live here; reused across restarts. */
  readonly stateDir: string;
  /** Edge device id. Default `edge-device`. */
  readonly edgeDeviceId?: string;
  /** IoT Hub host name. Default `edgeperf-local.azure-devices.net`. */
  readonly hubHostName?: string;
  /** Host modules connect to; the server certificate names it. Default `localhost`. */
  readonly gatewayHostName?: string;
  /** Listen address of every server. Default 127.0.0.1 (never beyond loopback unless told). */
  readonly listenHost?: string;
  readonly ports?: RuntimePorts;
  /** The edgeHub → IoT Hub link: round trip (ms), bandwidth (Mbit/s), scheduled outages. */
  readonly link?: {
    readonly rttMs?: number;
    readonly bandwidthMbps?: number;
    readonly outages?: readonly LinkOutage[];
  };
  /** IoT Hub tier and units for the D2C throttle. Default unlimited. */
  readonly hub?: { readonly tier?: IotHubTier; readonly units?: number; readonly partitionCount?: number };
  /** Start modules whose image maps to a local entry point. Default true. */
  readonly startModules?: boolean;
  /**
   * Run the local stream job (the semantics of `asa/edgeperf.asaql`): it reads the built-in endpoint
   * with consumer group `streamjob` from the earliest event and writes one row per (sid, burst,
   * 1 s window) to the event hub `asa-output` (`RuntimeReadyInfo.eventHubs.asaOutput`). Rows appear
   * once a window closes: up to the late-arrival delay (5 s, asa/JobConfig.json) after its end.
   * Default true.
   */
  readonly streamJob?: boolean;
  /** Backoff base of edgeHub's upstream retries, ms. Default 1000 (edge-facts §2). */
  readonly retryBaseMs?: number;
  /** Retention of the built-in endpoint, events per partition. Default 1,000,000. */
  readonly retentionEventsPerPartition?: number;
  readonly logger?: Logger;
}
