import { Agent, type AgentOptions, type RequestOptions } from 'node:https';
import type { Duplex } from 'node:stream';
import { EdgePerfError } from '../../modules/common/index.js';

/*
 * How the unmodified azure-iothub 1.16 SDK reaches the local hub (checked in its sources and by
 * test/integration/iothub-rest-sdk.test.ts on Node 20):
 *
 * - Port: Client/Registry pass the connection string's HostName as `host` to https.request and
 *   never set `port`, so Node connects to {HostName}:443; with `HostName=localhost:8443` DNS fails
 *   (`getaddrinfo ENOTFOUND localhost:8443`). The token is still signed for `sr=localhost:8443`,
 *   which the server accepts. Two ways out:
 *     (a) the runtime listens on 127.0.0.1:443 (root or CAP_NET_BIND_SERVICE) and hands out
 *         `HostName=localhost`: then any unmodified process works (plus the CA, below);
 *     (b) in-process (edgeperf): keep `HostName=localhost:PORT` and attach the agent from
 *         createLocalHubAgent() with useLocalHubAgent(); it splits host:port and carries the CA.
 * - CA: Client/Registry construct their RestApiClient with their own `https.Agent({keepAlive})`
 *   and expose no public setOptions, so a custom CA reaches them only through
 *   NODE_EXTRA_CA_CERTS=ca.pem set before the process starts (Node reads it once, at start), or
 *   through the agent of (b), whose `ca` wins over the default trust store.
 */

/** Options for {@link createLocalHubAgent}. */
export interface LocalHubAgentOptions {
  /** PEM of the CA that signed the local hub's certificate (the runtime CA). Default: Node's trust store. */
  readonly caPem?: string | Buffer;
  /** Keep sockets alive between calls, as the SDK's own agent does; default true. */
  readonly keepAlive?: boolean;
}

class LocalHubAgent extends Agent {
  override createConnection(
    options: RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const split = splitHostPort(options.host ?? undefined);
    if (split === undefined) return super.createConnection(options, callback);
    return super.createConnection(
      { ...options, host: split.host, port: split.port, servername: split.host },
      callback,
    );
  }
}

/**
 * An https.Agent for azure-iothub Client/Registry talking to the local hub: it connects to
 * `host:port` when the SDK hands it `host = "localhost:PORT"` (a HostName with a port), keeps
 * TLS verification on (certificate must name the bare host) and trusts `caPem` (only it).
 */
export function createLocalHubAgent(options: LocalHubAgentOptions = {}): Agent {
  const agentOptions: AgentOptions = { keepAlive: options.keepAlive ?? true };
  if (options.caPem !== undefined) agentOptions.ca = options.caPem;
  return new LocalHubAgent(agentOptions);
}

/** The private seam of azure-iothub 1.16 Client and Registry this file relies on. */
interface WithRestApiClient {
  _restApiClient?: { setOptions?: (options: { http: { agent: Agent } }) => void };
}

/**
 * Makes an azure-iothub `Client` or `Registry` send its REST calls through `agent`
 * (from {@link createLocalHubAgent}). Uses the SDK's private `_restApiClient.setOptions`, the
 * same call the SDK makes in its constructors: there is no public way to set an agent or CA.
 *
 * @returns the same object, for chaining.
 * @throws EdgePerfError `E_IOTHUB_SDK` when the SDK no longer has that seam (version changed).
 */
export function useLocalHubAgent<T extends object>(sdkClient: T, agent: Agent): T {
  const rest = (sdkClient as WithRestApiClient)._restApiClient;
  if (rest === undefined || typeof rest.setOptions !== 'function') {
    throw new EdgePerfError(
      'E_IOTHUB_SDK',
      'this azure-iothub version has no _restApiClient.setOptions: cannot point it at the local hub',
    );
  }
  rest.setOptions({ http: { agent } });
  return sdkClient;
}

/** Splits `name:port` (not an IPv6 literal); undefined when there is no port. */
export function splitHostPort(host: string | undefined): { host: string; port: number } | undefined {
  if (host === undefined) return undefined;
  const match = /^([^:[\]]+):(\d{1,5})$/.exec(host);
  if (match === null) return undefined;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: match[1] as string, port };
}
