import { randomUUID } from 'node:crypto';
import type { Message as AmqpMessage, Delivery, EventContext, Receiver, Sender } from 'rhea';
import rhea from 'rhea';
import { EdgePerfError, type Logger, toError } from '../../modules/common/index.js';
import { idText, jsonDataSection, parseJsonBody, toInputAmqpMessage } from './amqp-message.js';
import type { HubCore, MethodResult, ModuleLink } from './contracts.js';
import { type EdgeMessage, type Identity, identityKey } from './message.js';

/** Application properties of direct-method messages (azure-iot-device-amqp AmqpDeviceMethodClient). */
const METHOD_NAME_PROPERTY = 'IoThub-methodname';
const METHOD_STATUS_PROPERTY = 'IoThub-status';

/** Options for {@link AmqpModuleLink}. */
export interface AmqpModuleLinkOptions {
  readonly identity: Identity;
  readonly core: HubCore;
  /** How long an input delivery waits for the module's disposition, ms (edgeHub MessageAckTimeoutSecs). */
  readonly inputAckTimeoutMs: number;
  readonly logger: Logger;
  /** Called by {@link AmqpModuleLink.close}; the endpoint drops the identity's links and connection. */
  readonly onCloseRequested: (reason: string) => void;
}

interface PendingDelivery {
  resolve(): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

interface PendingMethod {
  resolve(result: MethodResult): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

interface Outgoing {
  readonly message: AmqpMessage;
  readonly onSent?: (delivery: Delivery) => void;
  /** Called when the message never left because its link closed first. */
  readonly onDropped?: (reason: string) => void;
}

/**
 * The {@link ModuleLink} of one module on one AMQP connection: the input link (the module's
 * receiver on `…/messages/events`), the method link pair and the twin link pair. The endpoint
 * creates it once the module's CBS token verified and routes link events and dispositions to it.
 */
export class AmqpModuleLink implements ModuleLink {
  readonly protocol = 'amqp' as const;
  private inputSender: Sender | undefined;
  private methodSender: Sender | undefined;
  private methodReceiver: Receiver | undefined;
  private twinSender: Sender | undefined;
  private twinReceiver: Receiver | undefined;
  private desiredSubscribed = false;
  private closed = false;
  private readonly pendingDeliveries = new Map<Delivery, PendingDelivery>();
  private readonly pendingMethods = new Map<string, PendingMethod>();
  private readonly outbox = new Map<Sender, Outgoing[]>();

  constructor(private readonly options: AmqpModuleLinkOptions) {}

  /** The module's identity. */
  get identity(): Identity {
    return this.options.identity;
  }

  /** True when the module has its input link open. */
  get acceptsInputs(): boolean {
    return isOpen(this.inputSender);
  }

  /** True when both method links are open. */
  get acceptsMethods(): boolean {
    return isOpen(this.methodSender) && isOpen(this.methodReceiver);
  }

  /** Registers a link the module opened toward us as its receiver (our sender). */
  addSender(kind: 'events' | 'methods' | 'twin', sender: Sender): void {
    if (kind === 'events') this.inputSender = sender;
    else if (kind === 'methods') this.methodSender = sender;
    else this.twinSender = sender;
  }

  /** Registers a link the module opened toward us as its sender (our receiver). */
  addReceiver(kind: 'methods' | 'twin', receiver: Receiver): void {
    if (kind === 'methods') this.methodReceiver = receiver;
    else {
      this.twinReceiver = receiver;
      // A new twin link pair starts without desired-property notifications until the module asks.
      this.desiredSubscribed = false;
    }
  }

  /** Forgets a link that closed; fails what waited on it. */
  linkClosed(link: Sender | Receiver): void {
    if (link === this.inputSender) {
      this.inputSender = undefined;
      this.failDeliveriesOf(link, 'input link closed before the module settled the message');
    } else if (link === this.methodSender || link === this.methodReceiver) {
      if (link === this.methodSender) this.methodSender = undefined;
      else this.methodReceiver = undefined;
      this.failMethods('method links closed before the module answered');
    } else if (link === this.twinSender) {
      this.twinSender = undefined;
      this.desiredSubscribed = false;
    } else if (link === this.twinReceiver) {
      this.twinReceiver = undefined;
    }
    this.dropQueued(link as Sender, 'link closed before the message could be sent');
  }

  /** Sends what waited for credit on `sender`. */
  flush(sender: Sender): void {
    const queue = this.outbox.get(sender);
    while (queue !== undefined && queue.length > 0 && sender.sendable()) {
      const next = queue.shift() as Outgoing;
      const delivery = sender.send(next.message);
      next.onSent?.(delivery);
    }
  }

  /** Routes a disposition of one of our deliveries; true when it settled a pending input. */
  settled(delivery: Delivery, outcome: 'accepted' | 'rejected' | 'released' | 'modified'): boolean {
    const pending = this.pendingDeliveries.get(delivery);
    if (pending === undefined) return false;
    this.pendingDeliveries.delete(delivery);
    clearTimeout(pending.timer);
    if (outcome === 'accepted') pending.resolve();
    else
      pending.reject(
        new EdgePerfError('E_INPUT_NOT_ACCEPTED', `module ${this.key()} ${outcome} the message`),
      );
    return true;
  }

  /**
   * Sends a message to the module's input; resolves when the module accepts it (complete()),
   * rejects when it rejects/abandons it, the link closes, or no disposition came in time.
   */
  deliverInput(input: string, message: EdgeMessage): Promise<void> {
    const sender = this.inputSender;
    if (this.closed || sender === undefined || !isOpen(sender)) {
      return Promise.reject(
        new EdgePerfError('E_NOT_LISTENING', `module ${this.key()} has no input link open`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      let delivery: Delivery | undefined;
      const timer = setTimeout(() => {
        if (delivery !== undefined) this.pendingDeliveries.delete(delivery);
        reject(
          new EdgePerfError(
            'E_INPUT_ACK_TIMEOUT',
            `module ${this.key()} did not settle an input message within ${this.options.inputAckTimeoutMs} ms`,
          ),
        );
      }, this.options.inputAckTimeoutMs);
      timer.unref();
      this.send(sender, {
        message: toInputAmqpMessage(input, message),
        onSent: (d) => {
          delivery = d;
          this.pendingDeliveries.set(d, { resolve, reject, timer });
        },
        onDropped: (reason) => {
          clearTimeout(timer);
          reject(new EdgePerfError('E_NOT_CONNECTED', `module ${this.key()}: ${reason}`));
        },
      });
    });
  }

  /** Invokes a direct method over the method links; rejects on timeout or when not listening. */
  invokeMethod(name: string, payload: unknown, timeoutMs: number): Promise<MethodResult> {
    const sender = this.methodSender;
    if (this.closed || sender === undefined || !this.acceptsMethods) {
      return Promise.reject(
        new EdgePerfError('E_NOT_LISTENING', `module ${this.key()} does not listen for direct methods`),
      );
    }
    const requestId = randomUUID();
    return new Promise<MethodResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingMethods.delete(requestId);
        reject(
          new EdgePerfError(
            'E_METHOD_TIMEOUT',
            `module ${this.key()} did not answer method ${name} within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      timer.unref();
      this.pendingMethods.set(requestId, { resolve, reject, timer });
      // IoT Hub sends the request id as an AMQP uuid; the SDK echoes it back in its response.
      this.send(sender, {
        message: {
          correlation_id: rhea.string_to_uuid(requestId),
          application_properties: { [METHOD_NAME_PROPERTY]: name },
          body: jsonDataSection(payload),
        },
      });
    });
  }

  /** Pushes a desired patch when the module enabled desired-property notifications. */
  sendDesiredPatch(patch: Record<string, unknown>): void {
    const sender = this.twinSender;
    if (this.closed || sender === undefined || !isOpen(sender) || !this.desiredSubscribed) return;
    // No correlation id: that is how the SDK tells a notification from a response.
    this.send(sender, { message: { body: jsonDataSection(patch) } });
  }

  /** Drops the module's links (a newer connection for the same identity replaced this one). */
  close(reason: string): void {
    this.options.onCloseRequested(reason);
  }

  /** A method response from the module. */
  onMethodResponse(context: EventContext): void {
    const msg = context.message;
    context.delivery?.accept();
    if (msg === undefined) return;
    const requestId = idText(msg.correlation_id);
    const pending = requestId === undefined ? undefined : this.pendingMethods.get(requestId);
    if (requestId === undefined || pending === undefined) {
      this.options.logger.debug({ module: this.key(), requestId }, 'method response for no pending request');
      return;
    }
    this.pendingMethods.delete(requestId);
    clearTimeout(pending.timer);
    const status = Number(msg.application_properties?.[METHOD_STATUS_PROPERTY] ?? 200);
    pending.resolve({
      status: Number.isFinite(status) ? status : 500,
      payload: parseJsonBody(msg.body) ?? null,
    });
  }

  /**
   * A twin request (azure-iot-device-amqp AmqpTwinClient): annotation `operation` GET / PATCH /
   * PUT / DELETE and `resource`; answered on the twin sender with the same correlation id and
   * annotation `status` (and `version` after a reported patch).
   */
  onTwinRequest(context: EventContext): void {
    const msg = context.message;
    context.delivery?.accept();
    if (msg === undefined) return;
    const operation = String(msg.message_annotations?.operation ?? '');
    const resource = String(msg.message_annotations?.resource ?? '');
    let status = 200;
    let body: unknown;
    const annotations: Record<string, unknown> = {};
    try {
      if (operation === 'GET') {
        body = this.options.core.getTwin(this.options.identity);
      } else if (operation === 'PATCH' && resource === '/properties/reported') {
        const patch = parseJsonBody(msg.body);
        if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
          status = 400;
          body = 'reported patch must be a JSON object';
        } else {
          annotations.version = this.options.core.patchReported(
            this.options.identity,
            patch as Record<string, unknown>,
          );
          status = 204;
        }
      } else if (operation === 'PUT' && resource === '/notifications/twin/properties/desired') {
        this.desiredSubscribed = true;
      } else if (operation === 'DELETE' && resource === '/notifications/twin/properties/desired') {
        this.desiredSubscribed = false;
      } else {
        status = 400;
        body = `unsupported twin operation ${operation} ${resource}`;
      }
    } catch (err) {
      const error = toError(err);
      status = (error as { code?: string }).code === 'E_IDENTITY' ? 404 : 400;
      body = error.message;
    }
    const sender = this.twinSender;
    if (sender === undefined || !isOpen(sender)) {
      this.options.logger.warn(
        { module: this.key(), operation },
        'twin request without an open twin response link',
      );
      return;
    }
    const reply: AmqpMessage = { body: undefined, message_annotations: { status, ...annotations } };
    if (msg.correlation_id !== undefined) reply.correlation_id = msg.correlation_id;
    if (body !== undefined) reply.body = jsonDataSection(body);
    this.send(sender, { message: reply });
  }

  /** Fails everything pending and forgets the links (the connection or the identity went away). */
  shutdown(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const [delivery, pending] of this.pendingDeliveries) {
      this.pendingDeliveries.delete(delivery);
      clearTimeout(pending.timer);
      pending.reject(new EdgePerfError('E_NOT_CONNECTED', `module ${this.key()} disconnected: ${reason}`));
    }
    this.failMethods(`module disconnected: ${reason}`);
    for (const sender of [...this.outbox.keys()]) this.dropQueued(sender, `disconnected: ${reason}`);
    this.inputSender = undefined;
    this.methodSender = undefined;
    this.methodReceiver = undefined;
    this.twinSender = undefined;
    this.twinReceiver = undefined;
  }

  private send(sender: Sender, item: Outgoing): void {
    let queue = this.outbox.get(sender);
    if (queue === undefined) {
      queue = [];
      this.outbox.set(sender, queue);
    }
    queue.push(item);
    this.flush(sender);
  }

  private dropQueued(sender: Sender, reason: string): void {
    const queue = this.outbox.get(sender);
    this.outbox.delete(sender);
    for (const item of queue ?? []) item.onDropped?.(reason);
  }

  private failDeliveriesOf(link: Sender, reason: string): void {
    for (const [delivery, pending] of this.pendingDeliveries) {
      if ((delivery as { link?: unknown }).link !== link) continue;
      this.pendingDeliveries.delete(delivery);
      clearTimeout(pending.timer);
      pending.reject(new EdgePerfError('E_NOT_CONNECTED', `module ${this.key()}: ${reason}`));
    }
  }

  private failMethods(reason: string): void {
    for (const [id, pending] of this.pendingMethods) {
      this.pendingMethods.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new EdgePerfError('E_NOT_CONNECTED', `module ${this.key()}: ${reason}`));
    }
  }

  private key(): string {
    return identityKey(this.options.identity);
  }
}

function isOpen(link: Sender | Receiver | undefined): boolean {
  return link?.is_open() === true && link.is_remote_open();
}
