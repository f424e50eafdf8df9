/**
 * Preloaded (`node --import`) into every module the agent starts. Node has no parent-death signal,
 * so a SIGKILLed runtime would leave its modules running and holding the source broker's session;
 * this exits the child once its parent is gone. It does not touch the module's own code.
 */
const parent = process.ppid;
const timer = setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 500);
timer.unref();
