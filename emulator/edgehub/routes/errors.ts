import { EdgePerfError } from '../../../modules/common/index.js';

/**
 * An invalid route: names the route and the 1-based character position where parsing failed, so a
 * user can fix a manifest without guessing (exit code 2, like any configuration error).
 */
export class RouteError extends EdgePerfError {
  /** Name of the route in `$edgeHub` desired `routes`. */
  readonly routeName: string;
  /** 1-based character position in the route text. */
  readonly position: number;

  constructor(routeName: string, position: number, detail: string) {
    super('E_ROUTE', `invalid route "${routeName}" at position ${position}: ${detail}`, { exitCode: 2 });
    this.name = 'RouteError';
    this.routeName = routeName;
    this.position = position;
  }
}

/** Thrown inside the parsers with a 0-based offset; {@link RouteError} is built from it. */
export class RouteSyntaxError extends Error {
  readonly offset: number;
  constructor(offset: number, message: string) {
    super(message);
    this.name = 'RouteSyntaxError';
    this.offset = offset;
  }
}
