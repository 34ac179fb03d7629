import assert from 'node:assert/strict';
import { test } from 'node:test';
import { handoffMessage } from '../../src/lib/handoff.ts';

test('handoff message: magic, program, counted args and env, end marker', () => {
  const m = handoffMessage('/bin/mon', ['/bin/mon', 'a b'], { A: '1', B: undefined, C: 'x=y' }).toString();
  assert.deepEqual(m.split('\0'), ['rkt-handoff-1', '/bin/mon', '2', '/bin/mon', 'a b', '2', 'A=1', 'C=x=y', 'end', '']);
});

test('handoff message refuses NUL bytes', () => {
  assert.throws(() => handoffMessage('/bin/x', ['a\0b'], {}), /NUL/);
});

test('spawn message: its own kind, same layout', () => {
  const m = handoffMessage('/bin/sh', ['/bin/sh', '-c', 'x'], { P: '1' }, 'spawn').toString();
  assert.deepEqual(m.split('\0'), ['rkt-spawn-1', '/bin/sh', '3', '/bin/sh', '-c', 'x', '1', 'P=1', 'end', '']);
});
