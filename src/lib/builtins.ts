// Node built-ins that are costly to load, required on first use rather than
// at bundle load: child_process alone pulls in net, stream and dgram (~10 ms
// of every `rkt run` start, which never spawns on its common path).
import type * as ChildProcess from 'node:child_process';
import type * as Dgram from 'node:dgram';
import type * as Net from 'node:net';

export const childProcess = (): typeof ChildProcess => process.getBuiltinModule('node:child_process') as typeof ChildProcess;
export const net = (): typeof Net => process.getBuiltinModule('node:net') as typeof Net;
export const dgram = (): typeof Dgram => process.getBuiltinModule('node:dgram') as typeof Dgram;
