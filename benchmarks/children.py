"""The child processes of a benchmark that trains (train_mnist.py, python -m minigan.toy, a
scoring), and the one way a signal to the benchmark stops them. time_to_quality.py,
conditional_runs.py, ablate_recipe.py and first_games.py each hold one ``Children``.

- Each child starts in a session of its own, so a Ctrl-C at the terminal, a SIGTERM or a SIGHUP
  reaches the benchmark alone. The benchmark passes one SIGTERM to every child under way (a
  training saves its step and exits 143, rundir.StopRequest), starts no other, and exits with
  128 + its own signal's number (rundir.STOPPED_STATUS), as a stopped train_mnist.py does.
- A child is told once: a second SIGTERM would end a training at once, before it saves. So a
  second Ctrl-C only says that the runs are saving.
- A child stopped by a signal sent to it alone (``kill`` of one training) is saved and
  resumable too; the benchmark goes on with the others and exits with that child's status at
  the end (``exit_status``), not 0: the ablation is unfinished.
"""

import contextlib
import signal
import subprocess
import sys
import threading

from minigan import rundir


class Children:
    def __init__(self):
        self.stopping = threading.Event()  # a signal asked the benchmark to stop
        self.signal_name = None  # its name (rundir.STOPPED_STATUS's key)
        self.stopped_alone = []  # exit statuses of children that a signal to them alone stopped
        self._untold = {}  # the children under way that no stop has told yet (dict: atomic pop)

    @contextlib.contextmanager
    def listening(self):
        """While a benchmark's queue runs, SIGINT, SIGTERM and SIGHUP stop the children (main
        thread only); the handlers before it are put back after. A signal already ignored stays
        ignored: under nohup, a closed terminal's SIGHUP must not stop the runs the user asked
        to outlive it."""
        self.__init__()  # a queue of its own (the tests run several in one process)
        previous = {s: signal.signal(s, self.stop) for s in rundir.StopRequest.SIGNALS
                    if signal.getsignal(s) is not signal.SIG_IGN}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def stop(self, signum, frame=None):
        """The signal handler: tell each child under way once, and start no more."""
        if self.stopping.is_set():
            print("already stopping: each run under way is saving its step", file=sys.stderr,
                  flush=True)
            return
        self.signal_name = signal.Signals(signum).name
        self.stopping.set()  # first, so that a child starting now is told by start() itself
        for proc in list(self._untold):
            self._tell(proc)
        print("stopping: each run under way saves its step; the same command continues them",
              file=sys.stderr, flush=True)

    def _tell(self, proc):
        if self._untold.pop(proc, None):  # once, whichever of stop() and start() comes first
            proc.terminate()  # SIGTERM: a training saves its step and exits

    def start(self, cmd, **popen_kwargs):
        """subprocess.Popen(cmd) in a session of its own, or None once a stop is asked for."""
        if self.stopping.is_set():
            return None
        proc = subprocess.Popen(cmd, start_new_session=True, **popen_kwargs)
        self._untold[proc] = True
        if self.stopping.is_set():  # asked for while it started: stop() may not have seen it
            self._tell(proc)
        return proc

    def wait(self, proc, stdin=None):
        """proc's (exit status, stdout, stderr), noting a stop that reached it alone."""
        try:
            out, err = proc.communicate(stdin)
        finally:
            self._untold.pop(proc, None)
        stopped = rundir.stop_status(proc.returncode)
        if stopped and not self.stopping.is_set():
            self.stopped_alone.append(stopped)
        return proc.returncode, out, err

    def run(self, cmd, **popen_kwargs):
        """subprocess.run(cmd, capture_output=True, text=True) under the stop: a
        CompletedProcess, or None when a stop came before it started."""
        proc = self.start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          **popen_kwargs)
        if proc is None:
            return None
        code, out, err = self.wait(proc)
        return subprocess.CompletedProcess(cmd, code, out, err)

    def exit_status(self):
        """The benchmark's exit status once its queue has ended: 128 + its own signal's number
        if one stopped it; else a child's that a signal to it alone stopped (saved: the same
        command continues it), said in a line; else 0."""
        if self.stopping.is_set():
            print("stopped: each run saved its last step; the same command continues them",
                  flush=True)
            return rundir.STOPPED_STATUS[self.signal_name]
        if self.stopped_alone:
            print(f"runs stopped by a signal sent to them, not to this script: "
                  f"{len(self.stopped_alone)} (exit status {self.stopped_alone[0]}); the same "
                  "command continues them", flush=True)
            return self.stopped_alone[0]
        return 0
