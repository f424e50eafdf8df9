/**
 * MQTT.js client option that turns its debug logging off unless `DEBUG` asks for it.
 *
 * MQTT.js calls its `debug` logger several times per publish and per acknowledgement, and each
 * call checks whether the namespace is enabled. In the simulator at 8 KB that was 5% of the
 * process's CPU (--cpu-prof) with `DEBUG` unset. MQTT.js takes a `log` function in place of
 * `debug`; with `DEBUG` set (to anything) its own logger is kept, so `DEBUG=mqttjs*` still works.
 * @param env - environment to read `DEBUG` from; default `process.env`.
 */
export function quietMqttLog(env: NodeJS.ProcessEnv = process.env): { log?: () => void } {
  return env.DEBUG ? {} : { log: noLog };
}

function noLog(): void {
  // Intentionally empty: see quietMqttLog.
}
