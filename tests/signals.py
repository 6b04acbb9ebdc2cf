"""Starting a child process that Ctrl-C reaches, whatever this test process inherited."""
import sys

#: a prefix for a command line: the child starts with SIGINT's default action, as from a
#: terminal, even where the test process inherited an ignored SIGINT (a background job of a
#: non-interactive shell), which Python and exec keep
WITH_DEFAULT_SIGINT = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                       "os.execvp(sys.argv[1], sys.argv[1:])"]
