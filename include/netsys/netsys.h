/* netsys/netsys.h — the umbrella header: include this one.
 *
 * netsys builds network services as graphs of actors over libuv. Start with
 * runtime.h (actors, messages, timers), then the layers above it.
 */
#ifndef NETSYS_NETSYS_H
#define NETSYS_NETSYS_H

#define NSYS_VERSION_MAJOR 0
#define NSYS_VERSION_MINOR 1
#define NSYS_VERSION_PATCH 0
#define NSYS_VERSION_STRING "0.1.0"

#include "backoff.h"
#include "buf.h"
#include "client.h"
#include "config.h"
#include "error.h"
#include "framing.h"
#include "log.h"
#include "net.h"
#include "proxy.h"
#include "runtime.h"
#include "supervisor.h"
#include "transport.h"

#endif
