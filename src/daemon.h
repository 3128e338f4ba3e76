/*
 * daemon: `postern serve`. Loads the configuration, binds the listeners
 * while root, drops to the configured user, opens the state store, and runs
 * the event loop until SIGTERM/SIGINT (graceful) with SIGHUP reloading.
 */
#ifndef POSTERN_DAEMON_H
#define POSTERN_DAEMON_H

/* Returns the process exit status. */
int daemon_serve(const char *config_path);

#endif
