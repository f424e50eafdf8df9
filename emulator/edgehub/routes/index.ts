export type {
  CompareOp,
  ConditionNode,
  ConditionValue,
  FunctionName,
  ParsedCondition,
  SystemPropertyName,
} from './condition.js';
export { evaluateCondition, parseCondition } from './condition.js';
export { RouteError, RouteSyntaxError } from './errors.js';
export type { ParsedRoutes, Route, RouteSink, RouteSpec, RouteTarget } from './route.js';
export {
  DEFAULT_ROUTE_PRIORITY,
  messageSourcePath,
  normaliseSourcePath,
  parseRoute,
  parseRoutes,
  routeMatches,
  routeMessage,
  sourceMatches,
  tryParseRoutes,
  UPSTREAM_ENDPOINT_ID,
} from './route.js';
