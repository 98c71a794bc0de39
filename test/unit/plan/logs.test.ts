import { describe, expect, it } from 'vitest';
import { formatLogLine, parseRawLogLine, planLogRequest, selectLines, serviceLogsQuery, type LogLine } from '../../../src/plan/logs.js';

const line = (time: string, node: string, message: string): LogLine => ({ time, version: 'v2', service: 'api', task: '1.abcde', node, message });

describe('depl logs planning', () => {
  it('turns the options into an Engine API query', () => {
    const request = planLogRequest({ since: '10m', tail: 50 });
    expect(serviceLogsQuery(request, 1_700_000_000)).toEqual({ stdout: true, stderr: true, timestamps: true, details: true, follow: false, since: 1_699_999_400, tail: 50 });
    // with --grep the tail counts matching lines, so every line is read
    expect(serviceLogsQuery(planLogRequest({ tail: 5, grep: 'x', follow: true }), 0)).toEqual({ stdout: true, stderr: true, timestamps: true, details: true, follow: true });
  });

  it('refuses what it cannot use, saying what to write', () => {
    expect(() => planLogRequest({ since: 'yesterday' })).toThrow(/--since "yesterday" is not a duration/);
    expect(() => planLogRequest({ grep: '(' })).toThrow(/--grep "\(" is not a regular expression/);
  });

  it('reads the engine\'s lines with their swarm details', () => {
    expect(parseRawLogLine('2026-11-30T01:02:03.123456789Z com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1 hello world')).toEqual({
      time: '2026-11-30T01:02:03.123456789Z', nodeId: 'n1', taskId: 't1', message: 'hello world',
    });
    expect(parseRawLogLine('2026-11-30T01:02:03.000000001Z plain')).toEqual({ time: '2026-11-30T01:02:03.000000001Z', nodeId: '', taskId: '', message: 'plain' });
    expect(parseRawLogLine('not a log line')).toBeNull();
  });

  it('merges by time, filters, then keeps the newest N', () => {
    const lines = [line('2026-11-30T01:00:02.000000000Z', 'node-2', 'b error'), line('2026-11-30T01:00:01.000000000Z', 'node-1', 'a ok'), line('2026-11-30T01:00:03.000000000Z', 'node-3', 'c error')];
    expect(selectLines(lines, { follow: false }).map((l) => l.node)).toEqual(['node-1', 'node-2', 'node-3']);
    expect(selectLines(lines, { follow: false, grep: /error/, tail: 1 }).map((l) => l.message)).toEqual(['c error']);
  });

  it('prints one prefixed line, or one JSON object per line', () => {
    const l = line('2026-11-30T01:00:02.123456789Z', 'node-2', 'started');
    expect(formatLogLine(l, 'text')).toBe('2026-11-30T01:00:02.123Z v2 api 1.abcde node-2 | started');
    expect(JSON.parse(formatLogLine(l, 'json'))).toEqual(l);
  });

  it('removes the task\'s escape sequences unless --raw; --json keeps the text, escaped by JSON', () => {
    // colour, a window title (OSC), clear screen and cursor home, a bell, a CR that would overwrite the line
    const hostile = line('2026-11-30T01:00:02.123456789Z', 'node-2', '\u001b[31merror\u001b[0m \u001b]0;pwned\u0007\u001b[2J\u001b[Hdone\u0007\rfake ok \u009b2J');
    expect(formatLogLine(hostile, 'text')).toBe('2026-11-30T01:00:02.123Z v2 api 1.abcde node-2 | error done\\u0007\\rfake ok ');
    expect(formatLogLine(hostile, 'raw')).toBe(`2026-11-30T01:00:02.123Z v2 api 1.abcde node-2 | ${hostile.message}`);
    const json = formatLogLine(hostile, 'json');
    expect(JSON.parse(json)).toEqual(hostile);
    // eslint-disable-next-line no-control-regex -- no raw control character may reach the terminal
    expect(json).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    // the other fields come from the cluster too: shown escaped even with --raw
    expect(formatLogLine({ ...hostile, node: 'node\u001b[2J', message: 'ok' }, 'raw')).toBe('2026-11-30T01:00:02.123Z v2 api 1.abcde node\\u001b[2J | ok');
  });
});
