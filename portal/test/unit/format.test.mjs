// Money, counts and dates as the portal shows them (src/format.ts), compiled with esbuild
// and run under node: amounts stay exact decimal strings (never a float), with each
// currency's own digits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSync } from 'esbuild';

const out = buildSync({
  entryPoints: [new URL('../../src/format.ts', import.meta.url).pathname],
  bundle: true,
  format: 'esm',
  write: false,
  platform: 'neutral',
});
const f = await import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString('base64')}`);
// The test runs with node's default locale; the separators are whatever it says.
const group = new Intl.NumberFormat(undefined).formatToParts(1234567).find((p) => p.type === 'group')?.value ?? ',';
const dec = new Intl.NumberFormat(undefined).formatToParts(1.5).find((p) => p.type === 'decimal')?.value ?? '.';

test('money keeps its digits: no float ever rounds it', () => {
  assert.equal(f.formatMoney('1234.50', 'USD'), `1${group}234${dec}50 USD`);
  assert.equal(f.formatMoney('12', 'USD'), `12${dec}00 USD`);
  assert.equal(f.formatMoney('1200', 'JPY'), `1${group}200 JPY`);
  assert.equal(f.formatMoney('1000.00', 'JPY'), `1${group}000 JPY`);
  assert.equal(f.formatMoney('1.500', 'KWD'), `1${dec}500 KWD`);
  assert.equal(f.formatMoney('-0.10', 'EUR'), `−0${dec}10 EUR`);
  // Beyond a double's precision, still exact.
  assert.equal(f.formatMoney('90071992547409931.07', 'USD'), `90${group}071${group}992${group}547${group}409${group}931${dec}07 USD`);
  assert.equal(f.formatMoney(null, 'USD'), '—');
  assert.equal(f.currencyDigits('jpy'), 0);
  assert.equal(f.currencyDigits('BHD'), 3);
  assert.equal(f.currencyDigits('USD'), 2);
});

test('sums are exact: 0.1 + 0.2 is 0.30', () => {
  assert.equal(f.sumDecimals(['0.10', '0.20'], 2), '0.30');
  assert.equal(f.sumDecimals(['10.00', '-12.50'], 2), '-2.50');
  assert.equal(f.sumDecimals(['1200', '34'], 0), '1234');
  assert.equal(f.sumDecimals(['0.001', '0.002'], 3), '0.003');
  assert.equal(f.sumDecimals([], 2), '0.00');
  // Many small amounts: a float sum drifts, this one does not.
  assert.equal(f.sumDecimals(Array(1000).fill('0.01'), 2), '10.00');
  assert.equal(f.isPositive('0.00'), false);
  assert.equal(f.isPositive('-1.00'), false);
  assert.equal(f.isPositive('0.01'), true);
});

test('dates: local time, UTC for the tooltip', () => {
  const d = f.formatDate('2026-12-01T10:00:00.000Z');
  assert.equal(d.utc, '2026-12-01 10:00:00 UTC');
  assert.ok(d.local.length > 0);
  assert.deepEqual(f.formatDate(null), { local: '—', utc: '' });
  assert.equal(f.formatCount(1234567), `1${group}234${group}567`);
});
