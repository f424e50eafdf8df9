import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

// Preloaded (`NODE_OPTIONS=--import …`) into a module under test when the bench runs with
// --cpu-prof: Node refuses `--cpu-prof` in NODE_OPTIONS, so profile through the inspector and
// write `<pid>.cpuprofile` into EDGEPERF_CPU_PROF_DIR on SIGUSR2 (the bench SIGKILLs modules
// after measuring, so `exit` never runs) or on exit. An in-thread session answers synchronously,
// so the write completes inside the handler.

const dir = process.env.EDGEPERF_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.start');
  let written = false;
  const write = () => {
    if (written) return;
    written = true;
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  };
  process.on('SIGUSR2', write);
  process.on('exit', write);
}
